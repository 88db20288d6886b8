//! Byte layout of segment headers and records: encoding and strict decoding.
//! `FORMAT.md` at the crate root describes the same layout byte by byte.

use std::path::Path;

use crate::{Lsn, WalError};

/// First 8 bytes of every segment file.
pub const MAGIC: [u8; 8] = *b"STKDWAL\0";
/// The segment format version this build writes: version 2's record layout in a file
/// whose space past the data is preallocated with written zeros (an all-zero record
/// header at a batch boundary ends the data). It also reads versions 2
/// ([`FORMAT_VERSION_V2`]) and 1 ([`FORMAT_VERSION_V1`]).
pub const FORMAT_VERSION: u32 = 3;
/// Format version 2: batch-framed records; the file ends where the data ends (zeros
/// after the last record are a torn tail). Still read, never written.
pub const FORMAT_VERSION_V2: u32 = 2;
/// The first format version: records without batch framing. Still read, never written.
pub const FORMAT_VERSION_V1: u32 = 1;
/// Segment header: magic (8) + version (4) + first LSN (8) + header CRC (4).
pub const SEGMENT_HEADER_LEN: usize = 24;
/// Record header of the current format (versions 2 and 3): payload length (4) + CRC (4) +
/// LSN (8) + type (1) + flags (1) + batch offset (4).
pub const RECORD_HEADER_LEN: usize = 22;
/// Record header of format version 1: payload length (4) + CRC (4) + LSN (8) + type (1).
pub const RECORD_HEADER_LEN_V1: usize = 17;
/// Version 2 flags bit: this record is the last of its batch (the records written
/// between two fdatasyncs); the batch is complete on disk when this record is.
const FLAG_COMMIT: u8 = 1;
/// Largest payload one record may carry: 1 MiB.
pub const MAX_PAYLOAD: usize = 1024 * 1024;

/// Appends a segment header for a segment whose first record has `first_lsn`.
pub(crate) fn encode_segment_header(first_lsn: Lsn, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&first_lsn.to_le_bytes());
    let crc = crc32fast::hash(&out[start..start + 20]);
    out.extend_from_slice(&crc.to_le_bytes());
    debug_assert_eq!(out.len() - start, SEGMENT_HEADER_LEN);
}

/// Appends one framed version-2 record of the batch whose first record is
/// `batch_start`, without the commit flag ([`mark_commit`] sets it when the batch is
/// written). The caller has checked `payload.len() <= MAX_PAYLOAD`.
pub(crate) fn encode_record(lsn: Lsn, batch_start: Lsn, record_type: u8, payload: &[u8], out: &mut Vec<u8>) {
    debug_assert!(payload.len() <= MAX_PAYLOAD);
    debug_assert!(batch_start <= lsn);
    // Saturating keeps the claim sound: a smaller claimed batch start only makes the
    // scan treat more of an unsynced tail as torn, never a torn tail as corruption.
    let batch_offset = u32::try_from(lsn - batch_start).unwrap_or(u32::MAX);
    let len = (payload.len() as u32).to_le_bytes();
    let start = out.len();
    out.extend_from_slice(&len);
    out.extend_from_slice(&[0; 4]); // CRC, filled in below
    out.extend_from_slice(&lsn.to_le_bytes());
    out.push(record_type);
    out.push(0); // flags
    out.extend_from_slice(&batch_offset.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = record_crc(&len, &out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Sets the commit flag of the version-2 record starting at `buf[off..]` (encoded by
/// [`encode_record`]) and recomputes its CRC.
pub(crate) fn mark_commit(buf: &mut [u8], off: usize) {
    let len = u32::from_le_bytes(buf[off..off + 4].try_into().expect("4 bytes")) as usize;
    let end = off + RECORD_HEADER_LEN + len;
    buf[off + 17] |= FLAG_COMMIT;
    let crc = record_crc(&buf[off..off + 4], &buf[off + 8..end]);
    buf[off + 4..off + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Encoded size of a version-2 record carrying `payload_len` bytes.
pub(crate) fn record_len(payload_len: usize) -> u64 {
    (RECORD_HEADER_LEN + payload_len) as u64
}

/// CRC-32 over the length field and everything after the CRC field (LSN, type, payload).
fn record_crc(len: &[u8], rest: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(len);
    h.update(rest);
    h.finalize()
}

/// What a segment header turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Header {
    Valid {
        first_lsn: Lsn,
        version: u32,
    },
    /// Last segment only: shorter than a header, or nothing but zero bytes. Its creation
    /// was interrupted by a crash before any record in it was durable.
    Torn,
}

/// Checks the header at the start of segment bytes `buf` of the segment named for
/// `name_lsn`. `limit` is [`crate::scan::data_limit`] of `buf`, taken before anything
/// else was read from it: a writer filling preallocated space may be writing this
/// segment (see `scan`), and a record starting past the limit was written later and
/// proves nothing about the header.
pub(crate) fn check_segment_header(
    buf: &[u8],
    path: &Path,
    name_lsn: Lsn,
    is_last: bool,
    limit: usize,
) -> Result<Header, WalError> {
    let corrupt = |reason: String| WalError::Corrupt { segment: path.to_path_buf(), offset: 0, lsn: None, reason };
    if buf.len() < SEGMENT_HEADER_LEN {
        if is_last {
            return Ok(Header::Torn);
        }
        return Err(corrupt(format!(
            "segment is {} bytes, shorter than its {SEGMENT_HEADER_LEN}-byte header",
            buf.len()
        )));
    }
    if buf[..8] != MAGIC {
        if is_last && buf[..SEGMENT_HEADER_LEN].iter().all(|&b| b == 0) {
            // The header's page never reached the disk. It was written with the
            // segment's first batch, so it is torn unless a record of a later batch
            // proves that batch was synced.
            return match crate::scan::find_later_batch(buf, SEGMENT_HEADER_LEN, limit, name_lsn) {
                None => Ok(Header::Torn),
                Some((at, lsn)) => Err(corrupt(format!(
                    "zeroed segment header, yet record LSN {lsn} of a later batch at offset {at} proves it was synced"
                ))),
            };
        }
        return Err(corrupt("bad magic: not a stockd WAL segment".into()));
    }
    let version = u32::from_le_bytes(buf[8..12].try_into().unwrap());
    if !(FORMAT_VERSION_V1..=FORMAT_VERSION).contains(&version) {
        return Err(WalError::BadVersion { segment: path.to_path_buf(), found: version, supported: FORMAT_VERSION });
    }
    let stored = u32::from_le_bytes(buf[20..24].try_into().unwrap());
    let computed = crc32fast::hash(&buf[..20]);
    if stored != computed {
        return Err(corrupt(format!(
            "segment header checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
        )));
    }
    let first_lsn = u64::from_le_bytes(buf[12..20].try_into().unwrap());
    if first_lsn == 0 {
        return Err(corrupt("segment header names first LSN 0".into()));
    }
    Ok(Header::Valid { first_lsn, version })
}

/// A record that decoded and passed its checksum (its LSN is not yet checked).
#[derive(Debug)]
pub(crate) struct Decoded<'a> {
    pub lsn: Lsn,
    pub record_type: u8,
    pub payload: &'a [u8],
    /// Offset just past this record.
    pub next: usize,
    /// Version 2: the last record of its batch. Version 1 records are always `true`.
    pub commit: bool,
    /// Version 2: the LSN of the first record of its batch. Version 1: its own LSN.
    pub batch_start: Lsn,
}

/// Decodes the record of segment format `version` starting at `buf[off..]`; `Err`
/// says why it is not a whole, valid record. Never panics, whatever the bytes.
pub(crate) fn decode_record(buf: &[u8], off: usize, version: u32) -> Result<Decoded<'_>, String> {
    decode(buf, off, version, true)
}

/// Decodes a record that [`decode_record`] already verified, skipping the checksum
/// (the bytes are immutable for the walk's lifetime, so it cannot have changed).
pub(crate) fn decode_verified_record(buf: &[u8], off: usize, version: u32) -> Result<Decoded<'_>, String> {
    decode(buf, off, version, false)
}

fn decode(buf: &[u8], off: usize, version: u32, check_crc: bool) -> Result<Decoded<'_>, String> {
    let header_len = if version == FORMAT_VERSION_V1 { RECORD_HEADER_LEN_V1 } else { RECORD_HEADER_LEN };
    let rest = buf.get(off..).unwrap_or(&[]);
    if rest.len() < header_len {
        return Err(format!("incomplete record header: {} of {header_len} bytes", rest.len()));
    }
    let len = u32::from_le_bytes(rest[0..4].try_into().unwrap()) as usize;
    if len > MAX_PAYLOAD {
        return Err(format!("record length field {len} exceeds the {MAX_PAYLOAD}-byte limit"));
    }
    let total = header_len + len;
    if rest.len() < total {
        return Err(format!("incomplete record: {} of {total} bytes present", rest.len()));
    }
    if check_crc {
        let stored = u32::from_le_bytes(rest[4..8].try_into().unwrap());
        let computed = record_crc(&rest[0..4], &rest[8..total]);
        if stored != computed {
            return Err(format!("record checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"));
        }
    }
    let lsn = u64::from_le_bytes(rest[8..16].try_into().unwrap());
    let (commit, batch_start) = if version == FORMAT_VERSION_V1 {
        (true, lsn)
    } else {
        let flags = rest[17];
        if flags & !FLAG_COMMIT != 0 {
            return Err(format!("record flags {flags:#04x} name bits this build does not know"));
        }
        let batch_offset = u32::from_le_bytes(rest[18..22].try_into().unwrap());
        let Some(batch_start) = lsn.checked_sub(u64::from(batch_offset)).filter(|&b| b >= 1) else {
            return Err(format!("record LSN {lsn} with batch offset {batch_offset} names a batch before LSN 1"));
        };
        (flags & FLAG_COMMIT != 0, batch_start)
    };
    Ok(Decoded {
        lsn,
        record_type: rest[16],
        payload: &rest[header_len..total],
        next: off + total,
        commit,
        batch_start,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_layout_matches_format_md() {
        let mut out = Vec::new();
        encode_record(5, 3, 2, b"hi", &mut out);
        let covered = [2, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2, 0, 0, 0, b'h', b'i'];
        let crc = crc32fast::hash(&covered).to_le_bytes();
        let mut expect = vec![2, 0, 0, 0];
        expect.extend_from_slice(&crc);
        expect.extend_from_slice(&covered[4..]);
        assert_eq!(out, expect);
        let d = decode_record(&out, 0, FORMAT_VERSION).unwrap();
        assert_eq!(
            (d.lsn, d.record_type, d.payload, d.next, d.commit, d.batch_start),
            (5, 2, &b"hi"[..], 24, false, 3)
        );
        mark_commit(&mut out, 0);
        assert_eq!(out[17], 1);
        let covered = [2, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 2, 1, 2, 0, 0, 0, b'h', b'i'];
        assert_eq!(&out[4..8], &crc32fast::hash(&covered).to_le_bytes());
        assert!(decode_record(&out, 0, FORMAT_VERSION).unwrap().commit);
        assert!(decode_record(&out, 0, FORMAT_VERSION_V1).is_err(), "a v2 record is not a v1 record");
    }

    #[test]
    fn v1_record_layout_still_decodes() {
        let covered = [2, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 2, b'h', b'i'];
        let mut rec = vec![2, 0, 0, 0];
        rec.extend_from_slice(&crc32fast::hash(&covered).to_le_bytes());
        rec.extend_from_slice(&[5, 0, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']);
        let d = decode_record(&rec, 0, FORMAT_VERSION_V1).unwrap();
        assert_eq!((d.lsn, d.record_type, d.payload, d.next, d.commit, d.batch_start), (5, 2, &b"hi"[..], 19, true, 5));
    }

    #[test]
    fn header_layout_matches_format_md() {
        let mut out = Vec::new();
        encode_segment_header(417, &mut out);
        assert_eq!(&out[..8], b"STKDWAL\0");
        assert_eq!(&out[8..12], &3u32.to_le_bytes());
        assert_eq!(&out[12..20], &417u64.to_le_bytes());
        assert_eq!(&out[20..24], &crc32fast::hash(&out[..20]).to_le_bytes());
        let p = std::path::Path::new("x");
        assert_eq!(
            check_segment_header(&out, p, 417, false, 24).unwrap(),
            Header::Valid { first_lsn: 417, version: 3 }
        );
        assert_eq!(check_segment_header(&out[..10], p, 417, true, 10).unwrap(), Header::Torn);
        assert!(check_segment_header(&out[..10], p, 417, false, 10).is_err());
    }
}
