//! stockd-tools: `stockd-wal`, the offline, strictly read-only WAL tool of stockd.
//!
//! It reads a stockd data directory (`stockd.manifest`, `shard-NNN/wal/*.wal`,
//! `shard-NNN/snapshots/snapshot-*.snap`) through `stockd_wal::WalReader` and
//! `stockd_snapshots::read_snapshot_file` only, so it never creates, modifies or
//! truncates a file and is safe to run while the server appends. Subcommands:
//! `inspect` (segments, snapshots, records), `verify` (checksums + replay through
//! `ShardState::apply` + invariants), `replay --until` (point-in-time state),
//! `history --sku` (stock transactions of one SKU) and `stats`. See tools/README.md.

pub mod cli;
pub mod commands;
pub mod data_dir;
pub mod output;
pub mod scan;
#[doc(hidden)]
pub mod testgen;

use std::process::ExitCode;

const BROKEN_PIPE: &str = "output closed (broken pipe)";

/// An error that ends the run: printed as `stockd-wal: error: ...`, exit code 2.
#[derive(Debug)]
pub struct Error(pub String);

impl Error {
    pub fn new(msg: impl Into<String>) -> Error {
        Error(msg.into())
    }

    pub fn io(e: std::io::Error) -> Error {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return Error(BROKEN_PIPE.to_string());
        }
        Error(format!("cannot write output: {e}"))
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Exit codes: 0 fine, 1 `verify` found a problem (or a warning with `--strict`),
/// 2 the run failed (bad directory, bad filter, unreadable or corrupt log).
pub fn run(cli: cli::Cli) -> ExitCode {
    let result = match cli.command {
        cli::Cmd::Inspect(a) => commands::inspect::run(&a),
        cli::Cmd::Verify(a) => commands::verify::run(&a),
        cli::Cmd::Replay(a) => commands::replay::run(&a),
        cli::Cmd::History(a) => commands::history::run(&a),
        cli::Cmd::Stats(a) => commands::stats::run(&a),
    };
    match result {
        Ok(code) => code,
        // `stockd-wal ... | head`: the reader went away; not an error.
        Err(e) if e.0 == BROKEN_PIPE => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stockd-wal: error: {e}");
            ExitCode::from(2)
        }
    }
}
