//! Byte layout of segment headers and records: encoding and strict decoding.
//! `FORMAT.md` at the crate root describes the same layout byte by byte.

use std::path::Path;

use crate::{Lsn, WalError};

/// First 8 bytes of every segment file.
pub const MAGIC: [u8; 8] = *b"STKDWAL\0";
/// The only segment format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Segment header: magic (8) + version (4) + first LSN (8) + header CRC (4).
pub const SEGMENT_HEADER_LEN: usize = 24;
/// Record header: payload length (4) + CRC (4) + LSN (8) + type (1).
pub const RECORD_HEADER_LEN: usize = 17;
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

/// Appends one framed record. The caller has checked `payload.len() <= MAX_PAYLOAD`.
pub(crate) fn encode_record(lsn: Lsn, record_type: u8, payload: &[u8], out: &mut Vec<u8>) {
    debug_assert!(payload.len() <= MAX_PAYLOAD);
    let len = (payload.len() as u32).to_le_bytes();
    let start = out.len();
    out.extend_from_slice(&len);
    out.extend_from_slice(&[0; 4]); // CRC, filled in below
    out.extend_from_slice(&lsn.to_le_bytes());
    out.push(record_type);
    out.extend_from_slice(payload);
    let crc = record_crc(&len, &out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Encoded size of a record carrying `payload_len` bytes.
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
    },
    /// Last segment only: shorter than a header, or nothing but zero bytes. Its creation
    /// was interrupted by a crash before any record in it was durable.
    Torn,
}

/// Checks the header at the start of segment bytes `buf`.
pub(crate) fn check_segment_header(buf: &[u8], path: &Path, is_last: bool) -> Result<Header, WalError> {
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
        if is_last && buf.iter().all(|&b| b == 0) {
            return Ok(Header::Torn);
        }
        return Err(corrupt("bad magic: not a stockd WAL segment".into()));
    }
    let version = u32::from_le_bytes(buf[8..12].try_into().unwrap());
    if version != FORMAT_VERSION {
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
    Ok(Header::Valid { first_lsn })
}

/// A record that decoded and passed its checksum (its LSN is not yet checked).
#[derive(Debug)]
pub(crate) struct Decoded<'a> {
    pub lsn: Lsn,
    pub record_type: u8,
    pub payload: &'a [u8],
    /// Offset just past this record.
    pub next: usize,
}

/// Decodes the record starting at `buf[off..]`; `Err` says why it is not a whole,
/// valid record. Never panics, whatever the bytes.
pub(crate) fn decode_record(buf: &[u8], off: usize) -> Result<Decoded<'_>, String> {
    let rest = buf.get(off..).unwrap_or(&[]);
    if rest.len() < RECORD_HEADER_LEN {
        return Err(format!("incomplete record header: {} of {RECORD_HEADER_LEN} bytes", rest.len()));
    }
    let len = u32::from_le_bytes(rest[0..4].try_into().unwrap()) as usize;
    if len > MAX_PAYLOAD {
        return Err(format!("record length field {len} exceeds the {MAX_PAYLOAD}-byte limit"));
    }
    let total = RECORD_HEADER_LEN + len;
    if rest.len() < total {
        return Err(format!("incomplete record: {} of {total} bytes present", rest.len()));
    }
    let stored = u32::from_le_bytes(rest[4..8].try_into().unwrap());
    let computed = record_crc(&rest[0..4], &rest[8..total]);
    if stored != computed {
        return Err(format!("record checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"));
    }
    Ok(Decoded {
        lsn: u64::from_le_bytes(rest[8..16].try_into().unwrap()),
        record_type: rest[16],
        payload: &rest[RECORD_HEADER_LEN..total],
        next: off + total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_layout_matches_format_md() {
        let mut out = Vec::new();
        encode_record(5, 2, b"hi", &mut out);
        let covered = [2, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 2, b'h', b'i'];
        let crc = crc32fast::hash(&covered).to_le_bytes();
        let mut expect = vec![2, 0, 0, 0];
        expect.extend_from_slice(&crc);
        expect.extend_from_slice(&[5, 0, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']);
        assert_eq!(out, expect);
        let d = decode_record(&out, 0).unwrap();
        assert_eq!((d.lsn, d.record_type, d.payload, d.next), (5, 2, &b"hi"[..], 19));
    }

    #[test]
    fn header_layout_matches_format_md() {
        let mut out = Vec::new();
        encode_segment_header(417, &mut out);
        assert_eq!(&out[..8], b"STKDWAL\0");
        assert_eq!(&out[8..12], &1u32.to_le_bytes());
        assert_eq!(&out[12..20], &417u64.to_le_bytes());
        assert_eq!(&out[20..24], &crc32fast::hash(&out[..20]).to_le_bytes());
        let p = std::path::Path::new("x");
        assert_eq!(check_segment_header(&out, p, false).unwrap(), Header::Valid { first_lsn: 417 });
        assert_eq!(check_segment_header(&out[..10], p, true).unwrap(), Header::Torn);
        assert!(check_segment_header(&out[..10], p, false).is_err());
    }
}
