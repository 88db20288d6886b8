//! Errors returned by the snapshot store and by the format decoder.

use std::io;
use std::path::PathBuf;

use crate::format::{MAX_FILE_LEN, MAX_PAYLOAD_LEN, MIN_FILE_LEN};

/// Everything that can go wrong reading, writing or managing snapshots.
///
/// Errors from the pure decoder ([`crate::decode_snapshot`]) carry an empty `path`,
/// since there is no file involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// An operating-system I/O call failed on `path`.
    #[error("I/O error on `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The bytes of `path` are not a valid snapshot (see [`CorruptReason`]).
    #[error("corrupt snapshot `{}`: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: CorruptReason },

    /// `path` carries the snapshot magic but a format version this build cannot read.
    #[error(
        "snapshot `{}` has unsupported format version {found} (this build reads version {})",
        path.display(),
        crate::format::FORMAT_VERSION
    )]
    BadVersion { path: PathBuf, found: u32 },

    /// Snapshot files exist in `dir` but none verifies. Returned by
    /// [`crate::SnapshotStore::load_latest`] so a caller never silently starts from an
    /// empty state when snapshots existed. `skipped` lists each file and why it failed.
    #[error(
        "no valid snapshot in `{}`: all {} snapshot file(s) failed verification",
        dir.display(),
        skipped.len()
    )]
    NoValidSnapshot { dir: PathBuf, skipped: Vec<(PathBuf, String)> },

    /// A payload handed to [`crate::SnapshotStore::write`] exceeds [`MAX_PAYLOAD_LEN`].
    #[error("snapshot payload of {len} bytes exceeds the {MAX_PAYLOAD_LEN}-byte limit")]
    PayloadTooLarge { len: u64 },

    /// [`crate::SnapshotStore::prune`] was asked to keep zero snapshots.
    #[error("prune must keep at least one snapshot (keep was 0)")]
    InvalidKeep,
}

/// Why a snapshot's bytes were rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CorruptReason {
    /// Fewer bytes than an empty-payload snapshot (header + checksum).
    #[error("{len} bytes is shorter than the {MIN_FILE_LEN}-byte minimum")]
    TooShort { len: u64 },

    /// The file is larger than any valid snapshot (payload limit plus framing).
    #[error("file of {len} bytes exceeds the largest possible snapshot ({MAX_FILE_LEN} bytes)")]
    FileTooLarge { len: u64 },

    /// The file ended before the length it had when opened (it shrank while being read).
    #[error("file ended before its expected {expected_len} bytes")]
    Truncated { expected_len: u64 },

    /// The first 8 bytes are not `STKDSNAP`.
    #[error("bad magic bytes (not a stockd snapshot)")]
    BadMagic,

    /// The header declares a payload larger than [`MAX_PAYLOAD_LEN`].
    #[error("declared payload length {declared} exceeds the {MAX_PAYLOAD_LEN}-byte limit")]
    PayloadTooLarge { declared: u64 },

    /// The declared payload length disagrees with the bytes actually present
    /// (truncated file, trailing garbage, or a damaged length field).
    #[error("declared payload length {declared} but {actual} payload bytes are present")]
    LengthMismatch { declared: u64, actual: u64 },

    /// The CRC-32 trailer does not match the bytes before it.
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    ChecksumMismatch { stored: u32, computed: u32 },

    /// The LSN in the header disagrees with the LSN in the file name.
    #[error("header LSN {header} does not match LSN {name} in the file name")]
    LsnMismatch { name: u64, header: u64 },
}

impl SnapshotError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        SnapshotError::Io { path: path.into(), source }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: CorruptReason) -> Self {
        SnapshotError::Corrupt { path: path.into(), reason }
    }

    /// True for errors that describe the snapshot's content (corrupt or unreadable
    /// version) rather than the environment; `load_latest` skips such files.
    pub fn is_content_error(&self) -> bool {
        matches!(self, SnapshotError::Corrupt { .. } | SnapshotError::BadVersion { .. })
    }
}
