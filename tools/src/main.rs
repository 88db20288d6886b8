use clap::Parser;

fn main() -> std::process::ExitCode {
    stockd_tools::run(stockd_tools::cli::Cli::parse())
}
