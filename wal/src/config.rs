//! Writer configuration.

use std::sync::Arc;

use stockd_fs::Fs;

use crate::FaultInjector;

/// When `WalWriter::sync` makes data durable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// `sync` writes the buffered records and then calls `fdatasync` (the default).
    #[default]
    Fsync,
    /// Never fsync. A crash (of the machine, not just the process) can lose records
    /// that `sync` reported durable. For benchmarks only; opening a writer with it logs
    /// a loud warning.
    None,
}

/// Options for `WalWriter::open`.
#[derive(Debug, Clone)]
pub struct WalConfig {
    /// Rotate to a new segment when appending a record would make the current segment
    /// larger than this many bytes. A segment always holds at least one record, so a
    /// single record larger than this gets a segment of its own. Default 64 MiB.
    pub segment_size: u64,
    /// Default [`Durability::Fsync`].
    pub durability: Durability,
    /// Fault injection for tests; `None` in production.
    pub faults: Option<Arc<FaultInjector>>,
    /// The filesystem every file operation goes through. Default: the real one
    /// (`stockd_fs::RealFs`); tests pass a `stockd_fs::SimFs`.
    pub fs: Arc<dyn Fs>,
}

/// 64 MiB.
pub const DEFAULT_SEGMENT_SIZE: u64 = 64 * 1024 * 1024;

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            segment_size: DEFAULT_SEGMENT_SIZE,
            durability: Durability::Fsync,
            faults: None,
            fs: stockd_fs::real(),
        }
    }
}
