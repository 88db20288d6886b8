//! The command line: `stockd-wal <inspect|verify|replay|history|stats> DIR ...`.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use stockd_engine::{Millis, Sku};

use stockd_engine::time::parse_rfc3339;

/// Offline, strictly read-only inspection, verification and point-in-time replay of a
/// stockd data directory (safe to run while the server writes to it).
#[derive(Debug, Parser)]
#[command(name = "stockd-wal", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Segments and snapshots of every shard; `--records` lists the records.
    Inspect(InspectArgs),
    /// Check every checksum, replay every record through the engine, check invariants.
    Verify(VerifyArgs),
    /// Rebuild the state as it was at an LSN or a time.
    Replay(ReplayArgs),
    /// The stock transaction history of one SKU.
    History(HistoryArgs),
    /// Records by type, busiest SKUs, reservations by outcome, expiry rate.
    Stats(StatsArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// An LSN (all digits) or an RFC 3339 time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    Lsn(u64),
    Time(Millis),
}

pub fn parse_point(s: &str) -> Result<Point, String> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map(Point::Lsn).map_err(|e| format!("bad LSN `{s}`: {e}"));
    }
    parse_rfc3339(s).map(Point::Time).map_err(|e| format!("{e}; expected an LSN number or an RFC 3339 time"))
}

pub fn parse_sku(s: &str) -> Result<Sku, String> {
    Sku::parse(s, "sku").map_err(|e| e.to_string())
}

/// The record type names accepted by `--type` (`Command::kind()`), case-insensitive.
pub const TYPE_NAMES: [&str; 22] = [
    "SET_ITEM",
    "ADJUST",
    "DELETE_ITEM",
    "TRANSFER",
    "RECEIVE",
    "SET_WAREHOUSES",
    "BLOCK_SALES",
    "UNBLOCK_SALES",
    "OPEN_RESERVATION",
    "RESERVE",
    "PLACE_HOLD",
    "ACTIVATE",
    "ABORT",
    "RELEASE_HOLD",
    "COMMIT_HOLD",
    "COMMIT",
    "RELEASE",
    "EXTEND",
    "EXPIRE",
    "EXPIRE_DUE",
    "HOLDS_SETTLED",
    "RETURN_SOLD",
];

pub fn parse_type(s: &str) -> Result<String, String> {
    let up = s.to_ascii_uppercase();
    if TYPE_NAMES.contains(&up.as_str()) {
        Ok(up)
    } else {
        Err(format!("unknown record type `{s}`; known types: {}", TYPE_NAMES.join(", ")))
    }
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The data directory (holding `stockd.manifest` and `shard-NNN/`).
    pub dir: PathBuf,
    /// List the records (merged across shards in time order).
    #[arg(long)]
    pub records: bool,
    /// Only records naming this SKU.
    #[arg(long, value_parser = parse_sku)]
    pub sku: Option<Sku>,
    /// Only records naming this orderId.
    #[arg(long)]
    pub order: Option<String>,
    /// Only records at or after this LSN (per shard) or RFC 3339 time.
    #[arg(long, value_parser = parse_point)]
    pub from: Option<Point>,
    /// Only records at or before this LSN (per shard) or RFC 3339 time.
    #[arg(long, value_parser = parse_point)]
    pub to: Option<Point>,
    /// Only records of these types (Command kinds: RESERVE-side names such as PLACE_HOLD,
    /// COMMIT, ...; case-insensitive; repeatable).
    #[arg(long = "type", value_parser = parse_type)]
    pub types: Vec<String>,
    /// Only records of this shard.
    #[arg(long)]
    pub shard: Option<usize>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    pub dir: PathBuf,
    /// Treat warnings (torn tail, cross-shard mismatch) as failures.
    #[arg(long)]
    pub strict: bool,
    /// Run the full per-shard invariant check every N applied records (and at the end).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub check_every: u64,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    pub dir: PathBuf,
    /// Replay up to and including this LSN (per shard: every shard's LSNs are its own)
    /// or this RFC 3339 time (all shards). Default: the end of the log.
    #[arg(long, value_parser = parse_point)]
    pub until: Option<Point>,
    /// Only this SKU (and reservations naming it).
    #[arg(long, value_parser = parse_sku)]
    pub sku: Option<Sku>,
    /// Write the state to FILE (JSON or CSV, by --format or the file extension).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    pub dir: PathBuf,
    #[arg(long, value_parser = parse_sku)]
    pub sku: Sku,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    pub dir: PathBuf,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}
