use clap::Parser;
use stockd_server::cli::{Cli, Command};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = Cli::parse();
    let Command::Serve(args) = cli.command;
    stockd_server::init_logging(args.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let result = runtime.block_on(stockd_server::serve(args));
    // Handlers left running past the shutdown deadline (the engine is stopped by now)
    // must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    if let Err(e) = result {
        eprintln!("stockd: {e}");
        std::process::exit(1);
    }
}
