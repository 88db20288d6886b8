//! The appending side: open/recover, buffered append, group-commit sync, retention.

use std::path::{Path, PathBuf};

use stockd_fs::{Fs, FsFile};

use crate::format::{
    encode_record, encode_segment_header, mark_commit, record_len, FORMAT_VERSION, MAX_PAYLOAD, SEGMENT_HEADER_LEN,
};
use crate::scan::scan_segment;
use crate::segment::{
    create_dir_durably, list_segments, read_segment, segment_file_name, sync_dir, sync_file, write_all, write_at,
    write_zeros,
};
use crate::{Durability, FaultInjector, Lsn, WalConfig, WalError};

/// A batch of at least `preallocate / LARGE_BATCH_FRACTION` bytes grows the file
/// itself instead of being preceded by zeros (`WalSyncer::write_chunk`).
const LARGE_BATCH_FRACTION: u64 = 16;
/// What `WalWriter::open` found and repaired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// Segment files in the log after opening (including one it may have created).
    pub segments: usize,
    /// Valid records verified across all segments.
    pub records: u64,
    /// LSN of the last valid record, 0 if the log holds none.
    pub last_lsn: Lsn,
    /// The torn tail that was cut off the last segment, if there was one.
    pub truncated_tail: Option<TruncatedTail>,
}

/// A torn tail: the incomplete or unverifiable bytes at the end of the last segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruncatedTail {
    pub segment: PathBuf,
    /// Byte offset in `segment` where the tail starts (= where the log now ends).
    pub offset: u64,
    pub bytes_dropped: u64,
}

#[derive(Debug)]
struct SegmentMeta {
    first_lsn: Lsn,
    path: PathBuf,
}

/// Encoded records waiting for `sync`. The first chunk goes to the active segment
/// unless `new_segment`; each `new_segment` chunk becomes a new file, header included.
/// A chunk is one batch on disk: it is fsynced before anything after it is written,
/// and its last record carries the commit flag (set when it is written).
#[derive(Debug)]
struct Chunk {
    first_lsn: Lsn,
    new_segment: bool,
    records: u64,
    bytes: Vec<u8>,
    /// Offset in `bytes` of the last record.
    last_record: usize,
}

/// The single writer of one WAL directory. See the crate docs for the guarantees.
///
/// It is made of two halves that [`WalWriter::into_parts`] can separate, so that one
/// thread appends while another writes and fsyncs (a pipelined group commit): the
/// [`WalAppender`] buffers records in memory and decides segment rotation; the
/// [`WalSyncer`] owns the files and writes what it is handed, one batch per fdatasync.
#[derive(Debug)]
pub struct WalWriter {
    appender: WalAppender,
    syncer: WalSyncer,
}

/// The buffering half of a [`WalWriter`]: assigns LSNs and frames records in memory;
/// touches no file. [`WalAppender::take`] hands everything buffered so far to a
/// [`WalSyncer`] as one [`WalBatch`].
#[derive(Debug)]
pub struct WalAppender {
    segment_size: u64,
    pending: Vec<Chunk>,
    /// Logical size of the newest segment (on disk + pending) and whether it holds a
    /// record: decides rotation at append time.
    tail_len: u64,
    tail_has_records: bool,
    /// The active segment has an older format: the next append starts a new segment.
    rotate_first: bool,
    next_lsn: Lsn,
}

/// Records taken from a [`WalAppender`], not yet written: one batch on disk (one
/// fdatasync, plus one per segment rotation) once a [`WalSyncer`] writes it. Batches
/// must be written in the order they were taken, each exactly once.
#[derive(Debug)]
pub struct WalBatch {
    chunks: Vec<Chunk>,
}

impl WalBatch {
    /// The LSN of the last record in the batch, if it holds any.
    pub fn last_lsn(&self) -> Option<Lsn> {
        self.chunks.last().map(|c| c.first_lsn + c.records - 1)
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }
}

/// The disk half of a [`WalWriter`]: the segment files. It writes and fsyncs the
/// batches it is handed and removes old segments; it may live on another thread than
/// its [`WalAppender`]. Any write or sync error fails it for good.
#[derive(Debug)]
pub struct WalSyncer {
    dir: PathBuf,
    config: WalConfig,
    /// Segment files on disk, oldest first; the last one is `active`.
    segments: Vec<SegmentMeta>,
    active: Box<dyn FsFile>,
    /// Where the next batch goes in `active`: just past its last record (its logical
    /// end). Only a version 3 active segment is ever written to.
    active_end: u64,
    /// `active`'s length: bytes `active_end .. zeroed_end` are written zeros
    /// (preallocated), synced together with the batch that extended them.
    zeroed_end: u64,
    /// Written to `active` since its last fsync.
    active_dirty: bool,
    /// LSN after the last record written to the active file (durable or not).
    written_next: Lsn,
    durable_lsn: Lsn,
    failed: Option<String>,
}

impl WalWriter {
    /// Opens (creating if needed) the log in `dir`, verifies every record, truncates a
    /// torn tail and positions at the end. Fails with `Corrupt` / `BadVersion` rather
    /// than guess when the log is damaged anywhere but its tail.
    ///
    /// With [`Durability::Fsync`] it also syncs the directory (and the parent of any
    /// directory it created): a segment found on disk may have been created by a
    /// process that died before syncing its directory entry.
    pub fn open(dir: &Path, config: WalConfig) -> Result<(WalWriter, OpenReport), WalError> {
        if config.durability == Durability::None {
            tracing::warn!(
                dir = %dir.display(),
                "WAL opened with Durability::None: records are NEVER fsynced and a crash \
                 can lose acknowledged writes; use only for benchmarks"
            );
        }
        let fs = config.fs.clone();
        let fs = &*fs;
        let faults = config.faults.clone();
        let faults = faults.as_deref();
        let fsync = config.durability == Durability::Fsync;
        if fsync {
            create_dir_durably(fs, dir, faults)?;
        } else {
            fs.create_dir_all(dir).map_err(|e| WalError::io(dir, e))?;
        }

        let listing = list_segments(fs, dir)?;
        let mut segments = Vec::with_capacity(listing.len() + 1);
        let mut records = 0;
        let mut expected_first = None;
        let mut last_scan = None;
        for (i, (name_lsn, path)) in listing.iter().enumerate() {
            let is_last = i + 1 == listing.len();
            let bytes = read_segment(fs, path)?;
            let scan = scan_segment(&bytes, path, *name_lsn, expected_first, is_last)?;
            records += scan.records;
            expected_first = Some(scan.first_lsn + scan.records);
            segments.push(SegmentMeta { first_lsn: scan.first_lsn, path: path.clone() });
            last_scan = Some(scan);
        }

        let mut truncated_tail = None;
        let mut rotate_first = false;
        let (active, tail_len, tail_has_records, next_lsn, zeroed_end) = match last_scan {
            None => {
                let path = dir.join(segment_file_name(1));
                let mut file = create_segment(fs, &path)?;
                let mut header = Vec::with_capacity(SEGMENT_HEADER_LEN);
                encode_segment_header(1, &mut header);
                write_all(&mut *file, &header, &path, faults)?;
                if fsync {
                    sync_file(&mut *file, &path, faults)?;
                }
                segments.push(SegmentMeta { first_lsn: 1, path });
                (file, SEGMENT_HEADER_LEN as u64, false, 1, SEGMENT_HEADER_LEN as u64)
            }
            Some(scan) => {
                let path = &segments.last().expect("scanned a segment").path;
                let mut file = fs.open_append(path).map_err(|e| WalError::io(path, e))?;
                let mut len = scan.end;
                let mut file_len = scan.file_len;
                // An older segment without records is rewritten as the current version;
                // one with records stays as it is and the next append starts a new
                // (current version) segment.
                let current = scan.version == FORMAT_VERSION;
                let old_empty = !current && scan.records == 0;
                rotate_first = !current && scan.records > 0;
                if let Some(bytes_dropped) = scan.torn_bytes {
                    tracing::warn!(
                        segment = %path.display(),
                        offset = scan.end,
                        bytes_dropped,
                        header_torn = scan.header_torn,
                        "cutting torn tail of the WAL"
                    );
                    truncated_tail = Some(TruncatedTail { segment: path.clone(), offset: scan.end, bytes_dropped });
                }
                let mut header = Vec::with_capacity(SEGMENT_HEADER_LEN);
                encode_segment_header(scan.first_lsn, &mut header);
                if current {
                    // Version 3: the tail is cut by overwriting it with zeros, never by
                    // shortening the file (the space stays preallocated; a reader's map
                    // of it never loses its pages).
                    if scan.header_torn {
                        write_at(&mut *file, 0, &header, path, faults)?;
                        len = SEGMENT_HEADER_LEN as u64;
                        file_len = file_len.max(len);
                    }
                    if scan.torn_bytes.is_some() {
                        write_zeros(&mut *file, len, scan.data_limit, path, faults)?;
                    }
                } else if scan.torn_bytes.is_some() || old_empty {
                    let keep = if scan.header_torn || old_empty { 0 } else { scan.end };
                    file.set_len(keep).map_err(|e| WalError::io(path, e))?;
                    if keep == 0 {
                        write_at(&mut *file, 0, &header, path, faults)?;
                        len = SEGMENT_HEADER_LEN as u64;
                    }
                    file_len = len;
                }
                // Records found on disk may only be in the page cache (the previous
                // process may have died before syncing), and a cut tail must be
                // durable before anything is written after it: sync now.
                if fsync {
                    sync_file(&mut *file, path, faults)?;
                }
                debug_assert!(file_len >= len);
                (file, len, scan.records > 0, scan.first_lsn + scan.records, file_len)
            }
        };
        // The segment files' directory entries (found or just created) may never have
        // been synced.
        if fsync {
            sync_dir(fs, dir, faults)?;
        }

        let report = OpenReport { segments: segments.len(), records, last_lsn: next_lsn - 1, truncated_tail };
        let writer = WalWriter {
            appender: WalAppender {
                segment_size: config.segment_size,
                pending: Vec::new(),
                tail_len,
                tail_has_records,
                rotate_first,
                next_lsn,
            },
            syncer: WalSyncer {
                dir: dir.to_path_buf(),
                config,
                segments,
                active,
                active_end: tail_len,
                zeroed_end,
                active_dirty: false,
                written_next: next_lsn,
                durable_lsn: next_lsn - 1,
                failed: None,
            },
        };
        Ok((writer, report))
    }

    /// Buffers one record in memory and returns its LSN. Nothing reaches the disk
    /// until [`WalWriter::sync`]; until then the record is not durable.
    pub fn append(&mut self, record_type: u8, payload: &[u8]) -> Result<Lsn, WalError> {
        self.syncer.check_failed()?;
        let lsn = self.appender.append(record_type, payload)?;
        debug_assert!(self.syncer.durable_lsn < self.appender.next_lsn);
        Ok(lsn)
    }

    /// Group commit: writes every buffered record, then one `fdatasync` (plus one per
    /// segment rotation, and a directory fsync if a segment was created). Returns the
    /// durable LSN. Any write or sync error puts the writer in a permanent failed
    /// state: this call and every later `append`/`sync` return [`WalError::Failed`].
    pub fn sync(&mut self) -> Result<Lsn, WalError> {
        self.syncer.check_failed()?;
        let batch = self.appender.take();
        let lsn = self.syncer.write(batch)?;
        debug_assert_eq!(self.syncer.written_next, self.appender.next_lsn);
        Ok(lsn)
    }

    /// Separates the two halves, for a caller that appends on one thread and syncs on
    /// another: the [`WalAppender`]'s batches must reach this [`WalSyncer`] in the
    /// order [`WalAppender::take`] returned them. Unlike [`WalWriter::append`], the
    /// appender does not know when the syncer failed: its owner must stop appending
    /// (nothing it appends after a failure is ever written).
    pub fn into_parts(self) -> (WalAppender, WalSyncer) {
        (self.appender, self.syncer)
    }

    /// Highest LSN known to be on stable storage (0 if none).
    pub fn durable_lsn(&self) -> Lsn {
        self.syncer.durable_lsn
    }

    /// The LSN the next `append` will return.
    pub fn next_lsn(&self) -> Lsn {
        self.appender.next_lsn
    }

    /// Why the writer failed, if it did.
    pub fn failure(&self) -> Option<&str> {
        self.syncer.failure()
    }

    /// Deletes whole segments whose every record has an LSN below `lsn` (never the
    /// active segment), oldest first, fsyncing the directory after each deletion.
    /// Returns how many were deleted.
    pub fn remove_segments_before(&mut self, lsn: Lsn) -> Result<usize, WalError> {
        self.syncer.remove_segments_before(lsn)
    }
}

impl WalAppender {
    /// Buffers one record in memory and returns its LSN. Not durable until a
    /// [`WalSyncer`] wrote a batch holding it.
    pub fn append(&mut self, record_type: u8, payload: &[u8]) -> Result<Lsn, WalError> {
        if payload.len() > MAX_PAYLOAD {
            return Err(WalError::RecordTooLarge { size: payload.len(), max: MAX_PAYLOAD });
        }
        let lsn = self.next_lsn;
        let len = record_len(payload.len());
        if self.tail_has_records && (self.rotate_first || self.tail_len + len > self.segment_size) {
            let mut bytes = Vec::with_capacity(SEGMENT_HEADER_LEN + len as usize);
            encode_segment_header(lsn, &mut bytes);
            self.pending.push(Chunk { first_lsn: lsn, new_segment: true, records: 0, bytes, last_record: 0 });
            self.tail_len = SEGMENT_HEADER_LEN as u64;
            self.rotate_first = false;
        } else if self.pending.is_empty() {
            self.pending.push(Chunk {
                first_lsn: lsn,
                new_segment: false,
                records: 0,
                bytes: Vec::new(),
                last_record: 0,
            });
        }
        let chunk = self.pending.last_mut().expect("a chunk was just ensured");
        debug_assert_eq!(chunk.first_lsn + chunk.records, lsn, "LSNs must be contiguous");
        chunk.last_record = chunk.bytes.len();
        encode_record(lsn, chunk.first_lsn, record_type, payload, &mut chunk.bytes);
        chunk.records += 1;
        self.tail_len += len;
        self.tail_has_records = true;
        self.next_lsn += 1;
        Ok(lsn)
    }

    /// Everything buffered since the last `take`, as one batch (empty if nothing was
    /// appended). The records' batch framing is fixed here: the batch is what one
    /// `WalSyncer::write` makes durable.
    pub fn take(&mut self) -> WalBatch {
        WalBatch { chunks: std::mem::take(&mut self.pending) }
    }

    /// The LSN the next `append` will return.
    pub fn next_lsn(&self) -> Lsn {
        self.next_lsn
    }
}

impl WalSyncer {
    /// Writes `batch` (which must continue exactly where the last written batch
    /// ended), then one `fdatasync` (plus one per segment rotation, and a directory
    /// fsync if a segment was created). Returns the durable LSN; an empty batch
    /// returns it at once. Any write or sync error fails the syncer for good: this
    /// call and every later one return [`WalError::Failed`].
    pub fn write(&mut self, batch: WalBatch) -> Result<Lsn, WalError> {
        self.check_failed()?;
        let Some(target) = batch.last_lsn() else { return Ok(self.durable_lsn) };
        match self.write_and_sync(batch.chunks) {
            Ok(()) => {
                debug_assert!(target >= self.durable_lsn);
                debug_assert_eq!(self.written_next, target + 1);
                self.durable_lsn = target;
                Ok(target)
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    fn write_and_sync(&mut self, chunks: Vec<Chunk>) -> Result<(), WalError> {
        let faults = self.config.faults.clone();
        let faults = faults.as_deref();
        let fs = self.config.fs.clone();
        let mut created = false;
        for mut chunk in chunks {
            // LSN contiguity: each chunk continues exactly where the disk ends.
            if chunk.first_lsn != self.written_next {
                return Err(WalError::Failed(format!(
                    "a batch starting at LSN {} was handed to a log that ends before LSN {}",
                    chunk.first_lsn, self.written_next
                )));
            }
            debug_assert!(chunk.records > 0, "a chunk is only created by an append");
            if chunk.new_segment {
                // The old segment must be complete on disk before its successor exists:
                // recovery treats only the last segment's tail as possibly torn. Its
                // directory entry too, if it is new: otherwise a power cut could keep
                // the successor's entry but not its own, a hole in the log.
                self.sync_active(faults)?;
                if created && self.config.durability == Durability::Fsync {
                    sync_dir(&*fs, &self.dir, faults)?;
                }
                let path = self.dir.join(segment_file_name(chunk.first_lsn));
                self.active = create_segment(&*fs, &path)?;
                self.segments.push(SegmentMeta { first_lsn: chunk.first_lsn, path });
                (self.active_end, self.zeroed_end) = (0, 0);
                created = true;
            }
            // The chunk is one batch: it is synced before anything after it is written.
            mark_commit(&mut chunk.bytes, chunk.last_record);
            self.active_dirty = true;
            self.write_chunk(&chunk.bytes, faults)?;
            self.written_next = chunk.first_lsn + chunk.records;
        }
        self.sync_active(faults)?;
        if created && self.config.durability == Durability::Fsync {
            sync_dir(&*fs, &self.dir, faults)?;
        }
        Ok(())
    }

    /// Writes `bytes` at the active segment's logical end; if they run past its
    /// preallocated space, first extends it with written zeros up to
    /// `WalConfig::preallocate` bytes past their end (capped at the segment size), so
    /// the batches after this one only overwrite allocated, written blocks. The
    /// caller's fdatasync covers both. A large batch (a sixteenth of `preallocate`
    /// or more) that runs past it is written without zeros ahead: the file grows
    /// with it, one size update for many records, where zeros would have each of the
    /// next pages written twice (measured: the batch client lost 3-5 % to them).
    fn write_chunk(&mut self, bytes: &[u8], faults: Option<&FaultInjector>) -> Result<(), WalError> {
        let path = &self.segments.last().expect("active segment").path;
        let at = self.active_end;
        let need = at + bytes.len() as u64;
        if need > self.zeroed_end {
            let large = bytes.len() as u64 >= self.config.preallocate / LARGE_BATCH_FRACTION;
            let ahead = if large { 0 } else { self.config.preallocate };
            let target = need.max(need.saturating_add(ahead).min(self.config.segment_size));
            // Only the part the batch itself does not cover.
            write_zeros(&mut *self.active, need.max(self.zeroed_end), target, path, faults)?;
            self.zeroed_end = target;
        }
        write_at(&mut *self.active, at, bytes, path, faults)?;
        self.active_end = need;
        debug_assert!(self.active_end <= self.zeroed_end);
        Ok(())
    }

    fn sync_active(&mut self, faults: Option<&FaultInjector>) -> Result<(), WalError> {
        if self.active_dirty && self.config.durability == Durability::Fsync {
            let path = &self.segments.last().expect("active segment").path;
            sync_file(&mut *self.active, path, faults)?;
        }
        self.active_dirty = false;
        Ok(())
    }

    /// Highest LSN known to be on stable storage (0 if none).
    pub fn durable_lsn(&self) -> Lsn {
        self.durable_lsn
    }

    /// Why the syncer failed, if it did.
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    /// Deletes whole segments whose every record has an LSN below `lsn` (never the
    /// active segment), oldest first, fsyncing the directory after each deletion.
    /// Returns how many were deleted.
    pub fn remove_segments_before(&mut self, lsn: Lsn) -> Result<usize, WalError> {
        self.check_failed()?;
        let mut removed = 0;
        // segments[1].first_lsn <= lsn  <=>  every record of segments[0] is < lsn.
        while self.segments.len() > 1 && self.segments[1].first_lsn <= lsn {
            let path = self.segments[0].path.clone();
            if let Err(e) = self.config.fs.remove_file(&path) {
                // The directory is now in a state we did not choose: fail for good,
                // like any other write error.
                return Err(self.fail(WalError::io(&path, e)));
            }
            self.segments.remove(0);
            removed += 1;
            // One removal at a time is made durable, oldest first: a power cut can then
            // only leave the log starting later, never with a hole in the middle.
            if self.config.durability == Durability::Fsync {
                if let Err(e) = sync_dir(&*self.config.fs, &self.dir, self.config.faults.as_deref()) {
                    return Err(self.fail(e));
                }
            }
        }
        Ok(removed)
    }

    fn check_failed(&self) -> Result<(), WalError> {
        match &self.failed {
            Some(why) => Err(WalError::Failed(why.clone())),
            None => Ok(()),
        }
    }

    fn fail(&mut self, cause: WalError) -> WalError {
        let why = cause.to_string();
        tracing::error!(dir = %self.dir.display(), error = %why, "WAL writer failed; refusing further appends");
        self.failed = Some(why.clone());
        WalError::Failed(why)
    }
}

fn create_segment(fs: &dyn Fs, path: &Path) -> Result<Box<dyn FsFile>, WalError> {
    fs.create_new(path).map_err(|e| WalError::io(path, e))
}
