//! The crate's single error type.

use std::io;
use std::path::PathBuf;

use crate::Lsn;

/// Everything that can go wrong while writing or reading the log.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// An operating-system I/O error on `path` (a segment file or the WAL directory).
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The bytes on disk are not a valid log. `offset` is the byte offset inside
    /// `segment` where the bad segment header or record starts; `lsn` is the LSN that
    /// was expected there (`None` when the segment header itself is bad).
    #[error(
        "corrupt WAL segment {} at offset {offset}{}: {reason}",
        segment.display(),
        fmt_lsn(lsn)
    )]
    Corrupt { segment: PathBuf, offset: u64, lsn: Option<Lsn>, reason: String },

    /// The writer hit a write or sync error earlier (or just now) and refuses all
    /// further work. The string says what failed. Never retry: reopen the log.
    #[error("WAL writer has failed and refuses further work: {0}")]
    Failed(String),

    /// A segment header names a format version this build does not understand.
    #[error(
        "WAL segment {} has format version {found}; this build supports version {supported}",
        segment.display()
    )]
    BadVersion { segment: PathBuf, found: u32, supported: u32 },

    /// `append` was given a payload larger than [`crate::MAX_PAYLOAD`].
    #[error("WAL record payload of {size} bytes exceeds the limit of {max} bytes")]
    RecordTooLarge { size: usize, max: usize },

    /// `WalReader::iter_from` was asked for an LSN older than the oldest record still
    /// on disk (its segment was removed), so replay from there is impossible.
    #[error("LSN {requested} is no longer in the log; the oldest segment starts at LSN {oldest}")]
    LsnUnavailable { requested: crate::Lsn, oldest: crate::Lsn },
}

fn fmt_lsn(lsn: &Option<Lsn>) -> String {
    match lsn {
        Some(l) => format!(" (expected LSN {l})"),
        None => String::new(),
    }
}

impl WalError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> WalError {
        WalError::Io { path: path.into(), source }
    }
}
