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
    /// How far past the data the writer keeps a segment filled with written zeros
    /// (format version 3): when a batch would run past that space, the writer extends
    /// the file with zeros up to this many bytes past the batch's end (never past
    /// `segment_size`, unless the batch itself does), in the same fdatasync as the
    /// batch. Later batches then overwrite blocks that are already allocated and
    /// written, so their fdatasync commits no inode change (size, extents) through the
    /// filesystem journal. A batch of a sixteenth of this or more grows the file
    /// itself, without zeros ahead (its pages would be written twice). 0: no
    /// preallocation (the file grows with every batch, as in version 2). Default
    /// [`DEFAULT_PREALLOCATE`].
    pub preallocate: u64,
    /// Fault injection for tests; `None` in production.
    pub faults: Option<Arc<FaultInjector>>,
    /// The filesystem every file operation goes through. Default: the real one
    /// (`stockd_fs::RealFs`); tests pass a `stockd_fs::SimFs`.
    pub fs: Arc<dyn Fs>,
}

/// 64 MiB.
pub const DEFAULT_SEGMENT_SIZE: u64 = 64 * 1024 * 1024;

/// 1 MiB: one extension costs one fdatasync that writes 1 MiB more and commits the new
/// size, once per 1 MiB of log (see `benches/benches/wal.rs`, group `wal_prealloc`).
pub const DEFAULT_PREALLOCATE: u64 = 1024 * 1024;

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            segment_size: DEFAULT_SEGMENT_SIZE,
            durability: Durability::Fsync,
            preallocate: DEFAULT_PREALLOCATE,
            faults: None,
            fs: stockd_fs::real(),
        }
    }
}
