//! stockd-snapshots: checksummed, atomically written snapshot files of one shard.
//!
//! # What this crate owns
//!
//! A directory of files named `snapshot-{lsn:020}.snap`, each holding opaque payload
//! bytes plus the LSN of the last WAL record the payload covers. The crate knows nothing
//! of the engine; the byte layout is documented in `snapshots/FORMAT.md`. Every file
//! operation goes through a `stockd_fs::Fs` (the real filesystem by default;
//! [`SnapshotStore::open_with_fs`] takes another, e.g. `stockd_fs::SimFs` in tests).
//!
//! # What it promises
//!
//! * **Atomic, durable writes.** [`SnapshotStore::write`] writes a temp file, fsyncs it,
//!   renames it to the final name and fsyncs the directory; only then does it return
//!   `Ok`. After a crash a final name holds a complete snapshot or does not exist;
//!   leftover temp files are ignored by every read and deleted by
//!   [`SnapshotStore::open`], which also syncs the directory after deleting them and
//!   syncs the parent of every directory it creates. [`SnapshotStore::prune`] syncs
//!   the directory after its deletions.
//! * **Every read is verified.** Magic, format version, declared length (checked against
//!   the real file size *before* allocating) and a CRC-32 over all preceding bytes.
//! * **Fall back, never silently start empty.** [`SnapshotStore::load_latest`] returns
//!   the newest snapshot that verifies, logging (`tracing::warn!`) and listing each newer
//!   corrupt file. `Ok(None)` means no snapshot files exist at all; if files exist but
//!   none verifies it returns [`SnapshotError::NoValidSnapshot`].
//! * **Pruning never loses the last good snapshot.** [`SnapshotStore::prune`] counts only
//!   snapshots that verify. [`SnapshotStore::oldest_retained_lsn`] tells the caller up to
//!   which LSN the WAL is covered by *every* retained snapshot, so falling back to any of
//!   them still has the WAL it needs.
//! * **Read-only inspection and pure decoding.** [`read_snapshot_file`] and
//!   [`list_snapshots`] never modify anything; [`decode_snapshot`] is pure and never panics on any input.

mod error;
mod file;
mod format;
mod store;

pub use error::{CorruptReason, SnapshotError};
pub use file::{read_snapshot_file, read_snapshot_file_with, LoadedSnapshot};
pub use format::{
    decode_snapshot, encode_snapshot, FORMAT_VERSION, HEADER_LEN, MAGIC, MAX_PAYLOAD_LEN, MIN_FILE_LEN, TRAILER_LEN,
};
pub use store::{list_snapshots, list_snapshots_with, snapshot_file_name, SnapshotInfo, SnapshotStore};
