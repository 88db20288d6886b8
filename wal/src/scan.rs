//! Walking a segment record by record, and telling a torn tail from corruption.
//!
//! The rule (see FORMAT.md, "Torn tail versus corruption"): a bad record is a *torn
//! tail* only if it is in the last segment and no valid record (LSN >= the expected
//! one) can be found at any byte offset after its start. Everything else that is not
//! a valid record with exactly the expected LSN is corruption.

use std::path::Path;

use crate::format::{check_segment_header, decode_record, Header, RECORD_HEADER_LEN};
use crate::{Lsn, WalError};

/// One step of a segment walk from byte offset `off`.
#[derive(Debug)]
pub(crate) enum Step<'a> {
    /// A valid record with the expected LSN.
    Record { record_type: u8, payload: &'a [u8], next: usize },
    /// `off` is exactly the end of the bytes.
    End,
    /// Last segment: everything from `off` on is a torn tail to drop.
    Torn { bytes_dropped: u64 },
    /// The bytes at `off` are corrupt.
    Corrupt(String),
}

/// Decodes what lies at `buf[off..]`, where the record with LSN `expected` belongs.
pub(crate) fn step(buf: &[u8], off: usize, expected: Lsn, is_last: bool) -> Step<'_> {
    if off >= buf.len() {
        return Step::End;
    }
    match decode_record(buf, off) {
        Ok(d) if d.lsn == expected => Step::Record { record_type: d.record_type, payload: d.payload, next: d.next },
        Ok(d) => {
            Step::Corrupt(format!("record carries LSN {} but LSN {expected} belongs here (gap or reordering)", d.lsn))
        }
        Err(reason) if !is_last => Step::Corrupt(format!("{reason} (not the last segment)")),
        Err(reason) => match find_valid_record_after(buf, off + 1, expected) {
            Some(p) => Step::Corrupt(format!("{reason}, yet a valid record follows at offset {p}")),
            None => Step::Torn { bytes_dropped: (buf.len() - off) as u64 },
        },
    }
}

/// Looks for a valid record with LSN >= `expected` starting at any offset >= `from`.
/// Cheap filters (plausible LSN) run before the checksum, so this is linear in practice.
fn find_valid_record_after(buf: &[u8], from: usize, expected: Lsn) -> Option<usize> {
    if buf.len() < RECORD_HEADER_LEN || from > buf.len() - RECORD_HEADER_LEN {
        return None;
    }
    // A record is at least RECORD_HEADER_LEN bytes, which bounds how far LSNs can run.
    let max_lsn = expected.saturating_add((buf.len() / RECORD_HEADER_LEN) as u64 + 1);
    (from..=buf.len() - RECORD_HEADER_LEN).find(|&p| {
        let lsn = u64::from_le_bytes(buf[p + 8..p + 16].try_into().unwrap());
        (expected..=max_lsn).contains(&lsn) && decode_record(buf, p).is_ok()
    })
}

/// Result of verifying one whole segment.
#[derive(Debug)]
pub(crate) struct SegmentScan {
    pub first_lsn: Lsn,
    /// Valid records in the segment (LSNs `first_lsn .. first_lsn + records`).
    pub records: u64,
    /// Offset just past the last valid record (or past the header), i.e. where the
    /// next record goes. 0 if the header itself is torn.
    pub end: u64,
    /// Bytes after `end` that form a torn tail (last segment only).
    pub torn_bytes: Option<u64>,
    /// The header is torn (last segment only): rewrite it before appending.
    pub header_torn: bool,
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
    let first_lsn = match check_segment_header(buf, path, is_last)? {
        Header::Torn => {
            return Ok(SegmentScan {
                first_lsn: name_lsn,
                records: 0,
                end: 0,
                torn_bytes: Some(buf.len() as u64),
                header_torn: true,
            })
        }
        Header::Valid { first_lsn } => first_lsn,
    };
    check_header_matches_name(path, name_lsn, first_lsn)?;
    let mut off = crate::format::SEGMENT_HEADER_LEN;
    let mut expected = first_lsn;
    loop {
        match step(buf, off, expected, is_last) {
            Step::Record { next, .. } => {
                off = next;
                expected += 1;
            }
            Step::End => {
                return Ok(SegmentScan {
                    first_lsn,
                    records: expected - first_lsn,
                    end: off as u64,
                    torn_bytes: None,
                    header_torn: false,
                })
            }
            Step::Torn { bytes_dropped } => {
                return Ok(SegmentScan {
                    first_lsn,
                    records: expected - first_lsn,
                    end: off as u64,
                    torn_bytes: Some(bytes_dropped),
                    header_torn: false,
                })
            }
            Step::Corrupt(reason) => {
                return Err(WalError::Corrupt {
                    segment: path.to_path_buf(),
                    offset: off as u64,
                    lsn: Some(expected),
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
