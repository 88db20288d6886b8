//! Walking a segment record by record, and telling a torn tail from corruption.
//!
//! The rules are in FORMAT.md ("Torn tail versus corruption"). In short, for format
//! version 2 and 3 segments: records are only accepted as part of a *complete batch* (a run
//! of records ending with one that carries the commit flag; a batch is what one
//! fdatasync covered). In the last segment, an incomplete batch at the end is a torn
//! tail, even with a hole in it (a later page of the batch reached the disk, an
//! earlier one did not), unless some valid record after the damage belongs to a
//! *later* batch: a later batch is only written after the earlier one's fdatasync
//! returned, so the damage is in synced data and is corruption. Version 1 segments
//! keep the version 1 rule: a bad record is a torn tail only if it is in the last
//! segment and no valid record (LSN >= the expected one) follows it at any offset.
//!
//! Version 3 segments are version 2 segments whose space past the data is preallocated
//! with written zeros: the walk only looks at bytes before the segment's *data limit*
//! (just past its last non-zero byte, fixed when the walk starts), and a batch boundary
//! at or past that limit is the clean end of the segment. A record may run past the
//! limit (its payload may end in zeros) but never start past it (an LSN is never 0).
//! A reader whose mapping covers space the writer is filling never trusts bytes past
//! the limit, so it sees each batch either complete or as a torn tail, and cannot take
//! a batch written after its limit was fixed for proof that an earlier one was synced.

use std::path::Path;

use crate::format::{
    check_segment_header, decode_record, decode_verified_record, Header, FORMAT_VERSION, FORMAT_VERSION_V1,
    RECORD_HEADER_LEN, RECORD_HEADER_LEN_V1, SEGMENT_HEADER_LEN,
};
use crate::{Lsn, WalError};

/// One step of a segment walk from byte offset `off`.
#[derive(Debug)]
pub(crate) enum Step<'a> {
    /// A valid record with the expected LSN, in a complete batch.
    Record { record_type: u8, payload: &'a [u8], next: usize },
    /// `off` is exactly the end of the bytes (version 3: a batch boundary at or past the
    /// data limit; everything from there on is zeros).
    End,
    /// Last segment: everything from `off` on is a torn tail to drop.
    Torn { bytes_dropped: u64 },
    /// The record at `offset` (where LSN `lsn` belongs; `offset >= off`) is corrupt.
    Corrupt { offset: usize, lsn: Lsn, reason: String },
}

/// Where a segment walk stands: the format version, and up to which offset the
/// records are known to belong to complete batches.
#[derive(Debug, Clone)]
pub(crate) struct Walk {
    pub version: u32,
    pub is_last: bool,
    /// Version 3: just past the last non-zero byte (as seen when the walk started); no
    /// record starts at or past it. Other versions: the end of the bytes.
    pub limit: usize,
    complete_until: usize,
    /// Corruption found ahead, inside the batch being walked: the valid records before
    /// it are still yielded (up to `complete_until`), then this is reported.
    corrupt_ahead: Option<(usize, Lsn, String)>,
}

impl Walk {
    /// A walk of segment bytes `buf` of format `version`; `data_limit` is
    /// [`data_limit`]`(buf)`, taken before the header was read.
    pub(crate) fn new(version: u32, is_last: bool, buf: &[u8], data_limit: usize) -> Walk {
        let limit = if version >= FORMAT_VERSION { data_limit } else { buf.len() };
        Walk { version, is_last, limit, complete_until: 0, corrupt_ahead: None }
    }

    /// Decodes what lies at `buf[off..]`, where the record with LSN `expected` belongs.
    pub(crate) fn step<'a>(&mut self, buf: &'a [u8], off: usize, expected: Lsn) -> Step<'a> {
        if off >= buf.len() {
            return Step::End;
        }
        if self.version == FORMAT_VERSION_V1 {
            return step_v1(buf, off, expected, self.is_last);
        }
        if off >= self.complete_until {
            if let Some((offset, lsn, reason)) = self.corrupt_ahead.take() {
                debug_assert_eq!((offset, lsn), (off, expected));
                return Step::Corrupt { offset, lsn, reason };
            }
            if off >= self.limit {
                // Version 3: zeros from here on (preallocated space) at a batch boundary.
                return Step::End;
            }
            match self.find_batch_end(buf, off, expected) {
                None => {}
                Some(Step::Corrupt { offset, lsn, reason }) if offset > off => {
                    self.complete_until = offset;
                    self.corrupt_ahead = Some((offset, lsn, reason));
                }
                Some(stop) => return stop,
            }
        }
        match decode_verified_record(buf, off, self.version) {
            Ok(d) => Step::Record { record_type: d.record_type, payload: d.payload, next: d.next },
            Err(reason) => unreachable_step(off, expected, reason),
        }
    }

    /// Walks the batch starting at `off` to its commit record. `None`: it is complete
    /// (`complete_until` now points past it). `Some(step)`: it is not, and `step` says
    /// whether that is a torn tail or corruption.
    fn find_batch_end(&mut self, buf: &[u8], off: usize, expected: Lsn) -> Option<Step<'static>> {
        let (mut p, mut lsn) = (off, expected);
        let dropped = self.limit.saturating_sub(off) as u64;
        loop {
            if p >= self.limit {
                // The bytes end inside a batch: its commit record never reached the disk.
                return Some(if self.is_last {
                    Step::Torn { bytes_dropped: dropped }
                } else {
                    Step::Corrupt {
                        offset: off,
                        lsn: expected,
                        reason: "segment ends inside a batch without its commit record (not the last segment)".into(),
                    }
                });
            }
            match decode_record(buf, p, self.version) {
                Ok(d) if d.lsn == lsn => {
                    p = d.next;
                    lsn += 1;
                    if d.commit {
                        self.complete_until = p;
                        return None;
                    }
                }
                Ok(d) => {
                    return Some(Step::Corrupt {
                        offset: p,
                        lsn,
                        reason: format!("record carries LSN {} but LSN {lsn} belongs here (gap or reordering)", d.lsn),
                    })
                }
                Err(reason) if !self.is_last => {
                    return Some(Step::Corrupt { offset: p, lsn, reason: format!("{reason} (not the last segment)") })
                }
                Err(reason) => {
                    return Some(match find_later_batch(buf, p + 1, self.limit, lsn) {
                        Some((at, later)) => Step::Corrupt {
                            offset: p,
                            lsn,
                            reason: format!(
                                "{reason}, yet record LSN {later} at offset {at} belongs to a later batch, \
                                 so this batch had been synced"
                            ),
                        },
                        None => Step::Torn { bytes_dropped: dropped },
                    })
                }
            }
        }
    }
}

/// Just past the last non-zero byte of `buf` (0 if it is all zeros).
pub(crate) fn data_limit(buf: &[u8]) -> usize {
    buf.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1)
}

/// `find_batch_end` just verified the record at `off`; this cannot happen.
fn unreachable_step(off: usize, lsn: Lsn, reason: String) -> Step<'static> {
    debug_assert!(false, "record at {off} verified by find_batch_end failed to decode: {reason}");
    Step::Corrupt { offset: off, lsn, reason }
}

/// The version 1 rule (no batch framing).
fn step_v1(buf: &[u8], off: usize, expected: Lsn, is_last: bool) -> Step<'_> {
    let corrupt = |reason| Step::Corrupt { offset: off, lsn: expected, reason };
    match decode_record(buf, off, FORMAT_VERSION_V1) {
        Ok(d) if d.lsn == expected => Step::Record { record_type: d.record_type, payload: d.payload, next: d.next },
        Ok(d) => corrupt(format!("record carries LSN {} but LSN {expected} belongs here (gap or reordering)", d.lsn)),
        Err(reason) if !is_last => corrupt(format!("{reason} (not the last segment)")),
        Err(reason) => match find_valid_v1_record_after(buf, off + 1, expected) {
            Some(p) => corrupt(format!("{reason}, yet a valid record follows at offset {p}")),
            None => Step::Torn { bytes_dropped: (buf.len() - off) as u64 },
        },
    }
}

/// Candidate offsets in `from .. until` whose LSN field is plausible (in
/// `expected ..= max`). A record is at least `header_len` bytes, which bounds how far
/// LSNs can run.
fn candidates(
    buf: &[u8],
    from: usize,
    until: usize,
    expected: Lsn,
    header_len: usize,
) -> impl Iterator<Item = usize> + '_ {
    let last = buf.len().checked_sub(header_len);
    let max_lsn = expected.saturating_add((buf.len() / header_len) as u64 + 1);
    let range = match last {
        Some(last) if from <= last && from < until => from..(last + 1).min(until),
        _ => 0..0,
    };
    range.filter(move |&p| {
        let lsn = u64::from_le_bytes(buf[p + 8..p + 16].try_into().unwrap());
        (expected..=max_lsn).contains(&lsn)
    })
}

/// Version 1: a valid record with LSN >= `expected` starting at any offset >= `from`.
/// Cheap filters (plausible LSN) run before the checksum, so this is linear in practice.
fn find_valid_v1_record_after(buf: &[u8], from: usize, expected: Lsn) -> Option<usize> {
    candidates(buf, from, buf.len(), expected, RECORD_HEADER_LEN_V1)
        .find(|&p| decode_record(buf, p, FORMAT_VERSION_V1).is_ok_and(|d| d.lsn >= expected))
}

/// Versions 2 and 3: a valid record starting at any offset in `from .. until` whose
/// batch starts after LSN `lsn`, which proves the batch holding `lsn` was synced
/// before it was written. Returns its offset and LSN. (`until` is the walk's data
/// limit: a record may run past it, but one starting past it was not there when the
/// walk began.)
pub(crate) fn find_later_batch(buf: &[u8], from: usize, until: usize, lsn: Lsn) -> Option<(usize, Lsn)> {
    candidates(buf, from, until, lsn, RECORD_HEADER_LEN).find_map(|p| {
        match decode_record(buf, p, crate::FORMAT_VERSION) {
            Ok(d) if d.batch_start > lsn => Some((p, d.lsn)),
            _ => None,
        }
    })
}

/// Result of verifying one whole segment.
#[derive(Debug)]
pub(crate) struct SegmentScan {
    pub first_lsn: Lsn,
    /// Format version of the segment (the current one if the header is torn).
    pub version: u32,
    /// Valid records in the segment (LSNs `first_lsn .. first_lsn + records`).
    pub records: u64,
    /// Offset just past the last valid record (or past the header), i.e. where the
    /// next record goes. 0 if the header itself is torn.
    pub end: u64,
    /// Bytes after `end` that form a torn tail (last segment only).
    pub torn_bytes: Option<u64>,
    /// The header is torn (last segment only): rewrite it before appending.
    pub header_torn: bool,
    /// Just past the last non-zero byte of the file: a version 3 writer zeroes
    /// `end .. data_limit` to cut a torn tail.
    pub data_limit: u64,
    /// The file's length in bytes.
    pub file_len: u64,
}

/// Verifies segment bytes `buf` named for `name_lsn`. `expected_first` is the LSN the
/// previous segment implies this one must start with (`None` for the oldest segment).
pub(crate) fn scan_segment(
    buf: &[u8],
    path: &Path,
    name_lsn: Lsn,
    expected_first: Option<Lsn>,
    is_last: bool,
) -> Result<SegmentScan, WalError> {
    check_first_lsn(path, name_lsn, expected_first)?;
    let limit = data_limit(buf);
    let (first_lsn, version) = match check_segment_header(buf, path, name_lsn, is_last, limit)? {
        Header::Torn => {
            return Ok(SegmentScan {
                first_lsn: name_lsn,
                version: crate::FORMAT_VERSION,
                records: 0,
                end: 0,
                torn_bytes: Some(buf.len() as u64),
                header_torn: true,
                data_limit: limit as u64,
                file_len: buf.len() as u64,
            })
        }
        Header::Valid { first_lsn, version } => (first_lsn, version),
    };
    check_header_matches_name(path, name_lsn, first_lsn)?;
    let mut off = SEGMENT_HEADER_LEN;
    let mut expected = first_lsn;
    let mut walk = Walk::new(version, is_last, buf, limit);
    loop {
        let done = |torn_bytes| SegmentScan {
            first_lsn,
            version,
            records: expected - first_lsn,
            end: off as u64,
            torn_bytes,
            header_torn: false,
            data_limit: limit as u64,
            file_len: buf.len() as u64,
        };
        match walk.step(buf, off, expected) {
            Step::Record { next, .. } => {
                off = next;
                expected += 1;
            }
            Step::End => return Ok(done(None)),
            Step::Torn { bytes_dropped } => return Ok(done(Some(bytes_dropped))),
            Step::Corrupt { offset, lsn, reason } => {
                return Err(WalError::Corrupt {
                    segment: path.to_path_buf(),
                    offset: offset as u64,
                    lsn: Some(lsn),
                    reason,
                })
            }
        }
    }
}

/// The file name's LSN must continue the previous segment.
pub(crate) fn check_first_lsn(path: &Path, name_lsn: Lsn, expected_first: Option<Lsn>) -> Result<(), WalError> {
    match expected_first {
        Some(e) if e != name_lsn => Err(WalError::Corrupt {
            segment: path.to_path_buf(),
            offset: 0,
            lsn: Some(e),
            reason: format!("segment starts at LSN {name_lsn} but the previous segment ends at LSN {}", e - 1),
        }),
        _ => Ok(()),
    }
}

/// The header's first LSN must agree with the file name.
pub(crate) fn check_header_matches_name(path: &Path, name_lsn: Lsn, header_lsn: Lsn) -> Result<(), WalError> {
    if header_lsn == name_lsn {
        return Ok(());
    }
    Err(WalError::Corrupt {
        segment: path.to_path_buf(),
        offset: 0,
        lsn: Some(name_lsn),
        reason: format!("header says first LSN {header_lsn} but the file name says {name_lsn}"),
    })
}
