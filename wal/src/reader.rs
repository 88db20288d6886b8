//! The strictly read-only side: list segments and iterate verified records.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use stockd_fs::{FileBytes, Fs};

use crate::format::{check_segment_header, Header, SEGMENT_HEADER_LEN};
use crate::scan::{check_first_lsn, check_header_matches_name, data_limit, Step, Walk};
use crate::segment::{list_segments, read_segment};
use crate::{Lsn, TruncatedTail, WalError};

/// A segment file as listed by [`WalReader::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    pub path: PathBuf,
    /// From the file name (the header is checked against it while iterating).
    pub first_lsn: Lsn,
    /// The file's size in bytes when the reader was opened: the disk space it holds. In
    /// a format version 3 segment that includes the preallocated zeros after its data,
    /// so it is not where the data ends (only walking the records tells that).
    pub size: u64,
}

/// One verified record, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalRecord {
    pub lsn: Lsn,
    pub record_type: u8,
    pub payload: Vec<u8>,
    /// Index into [`WalReader::segments`].
    pub segment: usize,
    /// Byte offset of the record's first byte inside that segment.
    pub offset: u64,
    /// Byte offset just past the record (where the next one starts). For the last
    /// record of a segment that is where the segment's data ends; its file may be
    /// longer (format version 3 preallocates zeros after the data).
    pub end: u64,
}

/// Read-only view of a WAL directory. It opens files read-only (mapping them on the
/// real filesystem); it
/// never creates, writes, truncates or deletes anything, so it is safe to use while a
/// writer appends to the same directory (it then sees the log as of each segment's
/// mapping; a record still being written shows up as a torn tail) and while
/// retention removes segments from the front (a segment removed after it was listed
/// reads as [`WalError::LsnUnavailable`], never as an I/O error).
#[derive(Debug)]
pub struct WalReader {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    segments: Vec<SegmentInfo>,
    torn_tail: Mutex<Option<TruncatedTail>>,
}

impl WalReader {
    /// Lists the segments in `dir` on the real filesystem. Errors if `dir` does not
    /// exist.
    pub fn open(dir: &Path) -> Result<WalReader, WalError> {
        WalReader::open_with_fs(dir, stockd_fs::real())
    }

    /// Like [`WalReader::open`], reading through `fs`.
    pub fn open_with_fs(dir: &Path, fs: Arc<dyn Fs>) -> Result<WalReader, WalError> {
        // A directory listing taken while a writer rotates can miss a segment created
        // during the scan yet show a later one, which would read as a gap. List until
        // two listings in a row agree (bounded), so a live log reads consistently.
        // Retention removes segments from the front at any time: a listed segment
        // gone before its size was read means the log's start moved, so list again.
        let mut attempts = 0;
        loop {
            attempts += 1;
            match Self::list_stable(&*fs, dir) {
                Ok(segments) => {
                    return Ok(WalReader { fs, dir: dir.to_path_buf(), segments, torn_tail: Mutex::new(None) })
                }
                Err(WalError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound && attempts < 16 => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Segments and their sizes from a listing that two scans in a row agreed on.
    fn list_stable(fs: &dyn Fs, dir: &Path) -> Result<Vec<SegmentInfo>, WalError> {
        let mut listing = list_segments(fs, dir)?;
        for _ in 0..16 {
            let again = list_segments(fs, dir)?;
            if again == listing {
                break;
            }
            listing = again;
        }
        let mut segments = Vec::new();
        for (first_lsn, path) in listing {
            let size = fs.metadata(&path).map_err(|e| WalError::io(&path, e))?.len;
            segments.push(SegmentInfo { path, first_lsn, size });
        }
        Ok(segments)
    }

    /// The directory this reader reads.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Segments, oldest first.
    pub fn segments(&self) -> &[SegmentInfo] {
        &self.segments
    }

    /// Iterates records with LSN >= `from_lsn` (0 = from the oldest record on disk),
    /// verifying every checksum and LSN on the way (including records before
    /// `from_lsn` in the first segment read).
    ///
    /// * Corruption yields one `Err(WalError::Corrupt { segment, offset, lsn, .. })`
    ///   and then the iterator ends.
    /// * A torn tail at the end of the last segment ends iteration *without* an error;
    ///   it is then reported by [`WalIter::torn_tail`] and [`WalReader::torn_tail`].
    /// * If `from_lsn > 0` is older than the oldest segment's first LSN, the first item
    ///   is `Err(WalError::LsnUnavailable)`: the records in between are gone.
    pub fn iter_from(&self, from_lsn: Lsn) -> WalIter<'_> {
        let mut it = WalIter {
            reader: self,
            from_lsn,
            seg_idx: 0,
            cur: None,
            expected_first: None,
            done: false,
            torn_tail: None,
            pending_err: None,
        };
        if let Some(oldest) = self.segments.first().map(|s| s.first_lsn) {
            if from_lsn > 0 && from_lsn < oldest {
                it.pending_err = Some(WalError::LsnUnavailable { requested: from_lsn, oldest });
            }
            // Start in the last segment whose first LSN is <= from_lsn.
            it.seg_idx = self.segments.iter().rposition(|s| s.first_lsn <= from_lsn).unwrap_or(0);
        }
        it
    }

    /// The torn tail the most recent iteration that reached the end of the log found
    /// (`None` if none did, or the tail was clean).
    pub fn torn_tail(&self) -> Option<TruncatedTail> {
        self.torn_tail.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

struct Cursor {
    bytes: FileBytes,
    off: usize,
    expected: Lsn,
    walk: Walk,
}

/// Iterator returned by [`WalReader::iter_from`].
pub struct WalIter<'r> {
    reader: &'r WalReader,
    from_lsn: Lsn,
    seg_idx: usize,
    cur: Option<Cursor>,
    /// First LSN the next segment must have (after the first segment read).
    expected_first: Option<Lsn>,
    done: bool,
    torn_tail: Option<TruncatedTail>,
    pending_err: Option<WalError>,
}

impl WalIter<'_> {
    /// The torn tail at the end of the last segment, once iteration has ended there.
    pub fn torn_tail(&self) -> Option<&TruncatedTail> {
        self.torn_tail.as_ref()
    }

    fn finish_torn(&mut self, offset: u64, bytes_dropped: u64) {
        let tail = TruncatedTail { segment: self.reader.segments[self.seg_idx].path.clone(), offset, bytes_dropped };
        *self.reader.torn_tail.lock().unwrap_or_else(|e| e.into_inner()) = Some(tail.clone());
        self.torn_tail = Some(tail);
        self.done = true;
    }

    /// Maps segment `seg_idx` and checks its header; `Ok(None)` = torn header.
    fn open_segment(&mut self) -> Result<Option<Cursor>, WalError> {
        let info = &self.reader.segments[self.seg_idx];
        let is_last = self.seg_idx + 1 == self.reader.segments.len();
        check_first_lsn(&info.path, info.first_lsn, self.expected_first)?;
        let bytes = match read_segment(&*self.reader.fs, &info.path) {
            // Removed by retention since the reader listed it: its records are gone.
            Err(WalError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                let now = list_segments(&*self.reader.fs, &self.reader.dir).unwrap_or_default();
                let oldest = now.first().map_or(info.first_lsn + 1, |(lsn, _)| *lsn);
                return Err(WalError::LsnUnavailable { requested: self.from_lsn.max(info.first_lsn), oldest });
            }
            other => other?,
        };
        let limit = data_limit(&bytes);
        match check_segment_header(&bytes, &info.path, info.first_lsn, is_last, limit)? {
            Header::Torn => Ok(None),
            Header::Valid { first_lsn, version } => {
                check_header_matches_name(&info.path, info.first_lsn, first_lsn)?;
                let walk = Walk::new(version, is_last, &bytes, limit);
                Ok(Some(Cursor { bytes, off: SEGMENT_HEADER_LEN, expected: first_lsn, walk }))
            }
        }
    }
}

impl Iterator for WalIter<'_> {
    type Item = Result<WalRecord, WalError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.pending_err.take() {
            self.done = true;
            return Some(Err(e));
        }
        while !self.done {
            let Some(cur) = self.cur.as_mut() else {
                if self.seg_idx >= self.reader.segments.len() {
                    self.done = true;
                    return None;
                }
                match self.open_segment() {
                    Ok(Some(c)) => self.cur = Some(c),
                    Ok(None) => {
                        let size = self.reader.segments[self.seg_idx].size;
                        self.finish_torn(0, size);
                    }
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
                continue;
            };
            let off = cur.off;
            let lsn = cur.expected;
            match cur.walk.step(&cur.bytes, off, lsn) {
                Step::Record { record_type, payload, next } => {
                    cur.off = next;
                    cur.expected += 1;
                    if lsn >= self.from_lsn {
                        return Some(Ok(WalRecord {
                            lsn,
                            record_type,
                            payload: payload.to_vec(),
                            segment: self.seg_idx,
                            offset: off as u64,
                            end: next as u64,
                        }));
                    }
                }
                Step::End => {
                    self.expected_first = Some(cur.expected);
                    self.cur = None;
                    self.seg_idx += 1;
                }
                Step::Torn { bytes_dropped } => self.finish_torn(off as u64, bytes_dropped),
                Step::Corrupt { offset, lsn, reason } => {
                    self.done = true;
                    return Some(Err(WalError::Corrupt {
                        segment: self.reader.segments[self.seg_idx].path.clone(),
                        offset: offset as u64,
                        lsn: Some(lsn),
                        reason,
                    }));
                }
            }
        }
        None
    }
}
