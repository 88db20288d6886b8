//! The on-disk byte layout of one snapshot (see `snapshots/FORMAT.md`): pure encode and
//! decode, no I/O.

use std::path::Path;

use crate::error::{CorruptReason, SnapshotError};

/// First 8 bytes of every snapshot file.
pub const MAGIC: [u8; 8] = *b"STKDSNAP";
/// The only format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes before the payload: magic (8) + version (4) + lsn (8) + payload length (8).
pub const HEADER_LEN: usize = 28;
/// Bytes after the payload: CRC-32 (4).
pub const TRAILER_LEN: usize = 4;
/// Size of a snapshot with an empty payload; nothing shorter can be valid.
pub const MIN_FILE_LEN: u64 = (HEADER_LEN + TRAILER_LEN) as u64;
/// Largest payload accepted by the writer and the reader: 4 GiB.
pub const MAX_PAYLOAD_LEN: u64 = 4 * 1024 * 1024 * 1024;
/// Largest file the reader will consider: a maximal payload plus framing.
pub const MAX_FILE_LEN: u64 = MAX_PAYLOAD_LEN + MIN_FILE_LEN;

/// The fixed-size header fields, validated as far as they can be without the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub lsn: u64,
    pub payload_len: u64,
}

/// Builds the 28 header bytes. Caller guarantees `payload_len <= MAX_PAYLOAD_LEN`.
pub(crate) fn encode_header(lsn: u64, payload_len: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&lsn.to_le_bytes());
    h[20..28].copy_from_slice(&payload_len.to_le_bytes());
    h
}

/// Checks magic, version and the payload-length bound. `header` must be at least
/// `HEADER_LEN` bytes. Does not check the length against the data present.
pub(crate) fn parse_header(header: &[u8], path: &Path) -> Result<Header, SnapshotError> {
    debug_assert!(header.len() >= HEADER_LEN);
    if header[0..8] != MAGIC {
        return Err(SnapshotError::corrupt(path, CorruptReason::BadMagic));
    }
    let version = u32::from_le_bytes(le_array(&header[8..12]));
    if version != FORMAT_VERSION {
        return Err(SnapshotError::BadVersion { path: path.to_path_buf(), found: version });
    }
    let lsn = u64::from_le_bytes(le_array(&header[12..20]));
    let payload_len = u64::from_le_bytes(le_array(&header[20..28]));
    if payload_len > MAX_PAYLOAD_LEN {
        return Err(SnapshotError::corrupt(path, CorruptReason::PayloadTooLarge { declared: payload_len }));
    }
    Ok(Header { lsn, payload_len })
}

/// Checks that a file of `file_len` bytes is consistent with `header`.
pub(crate) fn check_length(header: &Header, file_len: u64, path: &Path) -> Result<(), SnapshotError> {
    let actual = file_len.saturating_sub(MIN_FILE_LEN);
    if header.payload_len != actual {
        return Err(SnapshotError::corrupt(
            path,
            CorruptReason::LengthMismatch { declared: header.payload_len, actual },
        ));
    }
    Ok(())
}

/// Encodes a complete snapshot (header, payload, CRC-32) into memory.
///
/// Fails only with [`SnapshotError::PayloadTooLarge`].
pub fn encode_snapshot(lsn: u64, payload: &[u8]) -> Result<Vec<u8>, SnapshotError> {
    let len = payload.len() as u64;
    if len > MAX_PAYLOAD_LEN {
        return Err(SnapshotError::PayloadTooLarge { len });
    }
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len() + TRAILER_LEN);
    out.extend_from_slice(&encode_header(lsn, len));
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Decodes and fully verifies one snapshot held in memory, returning its LSN and a
/// borrow of its payload. Pure: never panics, never allocates from a declared length.
///
/// Errors are [`SnapshotError::Corrupt`] or [`SnapshotError::BadVersion`], with an
/// empty `path`.
pub fn decode_snapshot(bytes: &[u8]) -> Result<(u64, &[u8]), SnapshotError> {
    decode_at(bytes, Path::new(""))
}

/// [`decode_snapshot`], attributing errors to `path`.
pub(crate) fn decode_at<'a>(bytes: &'a [u8], path: &Path) -> Result<(u64, &'a [u8]), SnapshotError> {
    let len = bytes.len() as u64;
    if len < MIN_FILE_LEN {
        return Err(SnapshotError::corrupt(path, CorruptReason::TooShort { len }));
    }
    let header = parse_header(&bytes[..HEADER_LEN], path)?;
    check_length(&header, len, path)?;
    let body_end = bytes.len() - TRAILER_LEN;
    let stored = u32::from_le_bytes(le_array(&bytes[body_end..]));
    let computed = crc32fast::hash(&bytes[..body_end]);
    if stored != computed {
        return Err(SnapshotError::corrupt(path, CorruptReason::ChecksumMismatch { stored, computed }));
    }
    Ok((header.lsn, &bytes[HEADER_LEN..body_end]))
}

/// Copies an exactly-`N`-byte slice into an array (callers slice with constant bounds).
fn le_array<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(s);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_len_matches_fields() {
        assert_eq!(HEADER_LEN, MAGIC.len() + 4 + 8 + 8);
        assert_eq!(encode_header(7, 3).len(), HEADER_LEN);
    }

    #[test]
    fn round_trip_empty_payload() {
        let bytes = encode_snapshot(42, b"").unwrap();
        assert_eq!(bytes.len() as u64, MIN_FILE_LEN);
        assert_eq!(decode_snapshot(&bytes).unwrap(), (42, &b""[..]));
    }
}
