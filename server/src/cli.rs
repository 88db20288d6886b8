//! Command-line flags (clap). Every flag of `stockd serve` also reads an environment
//! variable, so a container can be configured without arguments.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use stockd_engine::location::AllocationStrategy;

#[derive(Debug, Parser)]
#[command(name = "stockd", version, about = "stockd: a stock-reservation service for flash sales")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API.
    Serve(ServeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (the bound address is printed
    /// on stdout as `listening on ADDR`).
    #[arg(long, env = "STOCKD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Directory of the WAL and snapshots (created if missing).
    #[arg(long, env = "STOCKD_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Number of shards (1 to 256); default one per core.
    #[arg(long, env = "STOCKD_SHARDS", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub shards: Option<u16>,
    /// `fsync`: nothing is acknowledged before it is on disk. `none`: never syncs
    /// (benchmarks only; a crash loses acknowledged work).
    #[arg(long, env = "STOCKD_DURABILITY", value_enum, default_value_t = DurabilityArg::Fsync)]
    pub durability: DurabilityArg,
    /// When set, item create/update/delete/adjust, item history and admin expire need
    /// `Authorization: Bearer <token>`.
    #[arg(long, env = "STOCKD_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Warehouse table: a YAML (`.yaml`, `.yml`; seed 004's `warehouses: [{id, name,
    /// region, priority}]`) or TOML (`.toml`, `[[warehouses]]`) file, read and checked
    /// at start. Without it the table recovered from the data dir stays.
    #[arg(long, env = "STOCKD_WAREHOUSES")]
    pub warehouses: Option<PathBuf>,
    /// How a reservation line that names no location is allocated, unless the request
    /// says (`allocation`): the highest-priority location that fills it, else split in
    /// priority order; the most available first; or one location only.
    #[arg(long, env = "STOCKD_ALLOCATION", value_enum, default_value_t = AllocationArg::Priority)]
    pub allocation: AllocationArg,
    /// Log format on stderr.
    #[arg(long, env = "STOCKD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub kafka: crate::kafka::KafkaArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DurabilityArg {
    Fsync,
    None,
}

impl DurabilityArg {
    pub fn as_str(self) -> &'static str {
        match self {
            DurabilityArg::Fsync => "fsync",
            DurabilityArg::None => "none",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AllocationArg {
    Priority,
    MostAvailable,
    SingleLocationOnly,
}

impl AllocationArg {
    pub fn strategy(self) -> AllocationStrategy {
        match self {
            AllocationArg::Priority => AllocationStrategy::Priority,
            AllocationArg::MostAvailable => AllocationStrategy::MostAvailable,
            AllocationArg::SingleLocationOnly => AllocationStrategy::SingleLocationOnly,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}
