//! stockd-wal: the write-ahead log of one shard.
//!
//! **What it owns.** A directory of *segment* files named by their first LSN
//! (`00000000000000000001.wal`, ...), each written front to back and never rewritten
//! below its data's end. Each segment starts with a versioned header and holds framed
//! records `(LSN, type byte, opaque payload)`, each covered by a CRC-32 and marked with
//! the *batch* (the records one fdatasync covered) it belongs to, followed (format
//! version 3) by preallocated space of written zeros that later batches overwrite, so
//! most fdatasyncs write data pages only and commit no size change
//! ([`WalConfig::preallocate`]). The exact byte layout is in `wal/FORMAT.md`; segments
//! of the older format versions 2 and 1 are still read, never appended to (a log whose
//! last segment is older continues in a new version 3 segment). The crate knows nothing of the engine: payloads are
//! opaque bytes of at most [`MAX_PAYLOAD`]. Every file operation goes through the
//! `stockd_fs::Fs` in [`WalConfig::fs`] (the real filesystem by default).
//!
//! **What it promises.**
//! * LSNs start at 1 and are contiguous across segments; a gap or reordering on disk
//!   is reported as [`WalError::Corrupt`], never skipped.
//! * [`WalWriter::append`] only buffers. [`WalWriter::sync`] writes everything buffered
//!   and fsyncs once (group commit); when it returns `Ok(lsn)`, every record up to
//!   `lsn` survives a crash (with [`Durability::Fsync`], the default).
//! * [`WalWriter::into_parts`] splits a writer into a [`WalAppender`] (buffers, assigns
//!   LSNs, frames records; no I/O) and a [`WalSyncer`] (owns the files), so one thread
//!   can append while another writes and fsyncs: [`WalAppender::take`] hands
//!   everything buffered so far over as one [`WalBatch`], and [`WalSyncer::write`]
//!   makes it durable as one batch on disk, exactly as `sync` does. The two halves know
//!   nothing of who calls them; their caller keeps batches in order and stops
//!   appending once the syncer failed.
//! * A failed write or fsync is never retried: the writer enters a permanent failed
//!   state and every later call returns [`WalError::Failed`]. Reopen to recover.
//! * [`WalWriter::open`] verifies every record and keeps only complete batches. An
//!   incomplete last batch at the end of the last segment (a torn write, even one with
//!   a hole: a later page reached the disk, an earlier one did not) is cut off, synced,
//!   logged and reported in [`OpenReport::truncated_tail`]; it was never acknowledged.
//!   In a version 3 segment it is cut by overwriting it with zeros (the file is never
//!   shortened), and the writer continues at the log's logical end (just past the last
//!   record), not at the end of the file. Zeros after the last complete batch of a
//!   version 3 segment are its clean end, not a torn tail.
//!   Damage anywhere else, including damage followed by a record of a later batch
//!   (which proves the damaged batch had been synced), makes `open` fail with
//!   `Corrupt` naming segment, byte offset and expected LSN. Nothing is guessed.
//! * Every created, removed or adopted segment's directory entry is synced (with
//!   [`Durability::Fsync`]) before the writer relies on it.
//! * [`WalReader`] never modifies anything and verifies every record it yields. It may
//!   read while the writer fills preallocated space: each segment walk only trusts the
//!   bytes up to the last non-zero one it saw when it began.
//! * A segment's file size ([`SegmentInfo::size`]) is the disk space it holds,
//!   preallocated zeros included, not where its data ends.
//! * Only one `WalWriter` may use a directory at a time (not enforced by a lock).

mod config;
mod error;
mod fault;
mod format;
mod reader;
mod scan;
mod segment;
mod writer;

/// Log sequence number. The first record ever is LSN 1; 0 means "none".
pub type Lsn = u64;

pub use config::{Durability, WalConfig, DEFAULT_PREALLOCATE, DEFAULT_SEGMENT_SIZE};
pub use error::WalError;
pub use fault::FaultInjector;
pub use format::{
    FORMAT_VERSION, FORMAT_VERSION_V1, FORMAT_VERSION_V2, MAGIC, MAX_PAYLOAD, RECORD_HEADER_LEN, RECORD_HEADER_LEN_V1,
    SEGMENT_HEADER_LEN,
};
pub use reader::{SegmentInfo, WalIter, WalReader, WalRecord};
pub use segment::{parse_segment_file_name, segment_file_name};
pub use writer::{OpenReport, TruncatedTail, WalAppender, WalBatch, WalSyncer, WalWriter};
