use clap::Parser;
use stockd_server::cli::{Cli, Command};

fn main() {
    let cli = Cli::parse();
    let Command::Serve(args) = cli.command;
    stockd_server::init_logging(args.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    if let Err(e) = runtime.block_on(stockd_server::serve(args)) {
        eprintln!("stockd: {e}");
        std::process::exit(1);
    }
}
