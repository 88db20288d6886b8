//! Reading and verifying one snapshot file. Strictly read-only: nothing here creates,
//! modifies, renames or deletes a file.

use std::io;
use std::path::{Path, PathBuf};

use stockd_fs::{Fs, FsFile, RealFs};

use crate::error::{CorruptReason, SnapshotError};
use crate::format::{
    check_length, decode_at, parse_header, Header, HEADER_LEN, MAX_FILE_LEN, MIN_FILE_LEN, TRAILER_LEN,
};

/// A snapshot that verified, with the files `load_latest` skipped to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedSnapshot {
    /// LSN of the last WAL record the snapshot covers.
    pub lsn: u64,
    /// The opaque payload bytes, exactly as written.
    pub payload: Vec<u8>,
    /// The file it was read from.
    pub path: PathBuf,
    /// Newer snapshot files that failed verification, newest first, each with the
    /// reason. Always empty from [`read_snapshot_file`].
    pub skipped: Vec<(PathBuf, String)>,
}

/// Reads and fully verifies the snapshot at `path` (magic, version, length, CRC-32).
///
/// Strictly read-only, safe for offline inspection tools. It checks the file's
/// content only; it does not compare the LSN with the file name (the store does).
/// The header is validated against the real file size before the payload buffer is
/// allocated, so a corrupt length field never causes a large allocation.
pub fn read_snapshot_file(path: &Path) -> Result<LoadedSnapshot, SnapshotError> {
    read_snapshot_file_with(&RealFs, path)
}

/// [`read_snapshot_file`] through `fs`.
pub fn read_snapshot_file_with(fs: &dyn Fs, path: &Path) -> Result<LoadedSnapshot, SnapshotError> {
    let (mut file, file_len, header_bytes, _header) = open_and_check_header(fs, path)?;
    let capacity = usize::try_from(file_len + 1).map_err(|_| {
        SnapshotError::io(path, io::Error::new(io::ErrorKind::OutOfMemory, "snapshot exceeds address space"))
    })?;
    let mut buf = Vec::new();
    buf.try_reserve_exact(capacity)
        .map_err(|e| SnapshotError::io(path, io::Error::new(io::ErrorKind::OutOfMemory, e)))?;
    buf.extend_from_slice(&header_bytes);
    // Read at most one byte past the expected end: growth is detected, not followed.
    let limit = (file_len - HEADER_LEN as u64 + 1) as usize;
    buf.resize(HEADER_LEN + limit, 0);
    let got = file.read_up_to(&mut buf[HEADER_LEN..]).map_err(|e| SnapshotError::io(path, e))?;
    buf.truncate(HEADER_LEN + got);
    let (lsn, payload) = decode_at(&buf, path)?;
    let payload_len = payload.len();
    buf.truncate(HEADER_LEN + payload_len);
    buf.drain(..HEADER_LEN);
    Ok(LoadedSnapshot { lsn, payload: buf, path: path.to_path_buf(), skipped: Vec::new() })
}

/// Verifies the snapshot at `path` without holding its payload in memory (the CRC is
/// streamed in fixed-size chunks). Returns the LSN from its header.
pub(crate) fn verify_snapshot_file(fs: &dyn Fs, path: &Path) -> Result<u64, SnapshotError> {
    let (mut file, file_len, header_bytes, header) = open_and_check_header(fs, path)?;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&header_bytes);
    let mut remaining = header.payload_len;
    let mut chunk = vec![0u8; 64 * 1024];
    while remaining > 0 {
        let n = remaining.min(chunk.len() as u64) as usize;
        read_exact_or_truncated(&mut file, &mut chunk[..n], file_len, path)?;
        hasher.update(&chunk[..n]);
        remaining -= n as u64;
    }
    let mut trailer = [0u8; TRAILER_LEN];
    read_exact_or_truncated(&mut file, &mut trailer, file_len, path)?;
    let stored = u32::from_le_bytes(trailer);
    let computed = hasher.finalize();
    if stored != computed {
        return Err(SnapshotError::corrupt(path, CorruptReason::ChecksumMismatch { stored, computed }));
    }
    Ok(header.lsn)
}

/// Opens `path` read-only, checks its size bounds, reads and validates the header and
/// checks the declared payload length against the real file size.
fn open_and_check_header(fs: &dyn Fs, path: &Path) -> Result<(Cursor, u64, [u8; HEADER_LEN], Header), SnapshotError> {
    let file = fs.open_read(path).map_err(|e| SnapshotError::io(path, e))?;
    let len = file.len().map_err(|e| SnapshotError::io(path, e))?;
    let mut file = Cursor { file, pos: 0 };
    if len < MIN_FILE_LEN {
        return Err(SnapshotError::corrupt(path, CorruptReason::TooShort { len }));
    }
    if len > MAX_FILE_LEN {
        return Err(SnapshotError::corrupt(path, CorruptReason::FileTooLarge { len }));
    }
    let mut header_bytes = [0u8; HEADER_LEN];
    read_exact_or_truncated(&mut file, &mut header_bytes, len, path)?;
    let header = parse_header(&header_bytes, path)?;
    check_length(&header, len, path)?;
    Ok((file, len, header_bytes, header))
}

/// `read_exact`, except that a file which shrank after it was opened is reported as
/// corrupt (truncated) rather than as an I/O failure.
fn read_exact_or_truncated(
    file: &mut Cursor,
    buf: &mut [u8],
    expected_len: u64,
    path: &Path,
) -> Result<(), SnapshotError> {
    let got = file.read_up_to(buf).map_err(|e| SnapshotError::io(path, e))?;
    if got < buf.len() {
        return Err(SnapshotError::corrupt(path, CorruptReason::Truncated { expected_len }));
    }
    Ok(())
}

/// Sequential reads over an [`FsFile`].
struct Cursor {
    file: Box<dyn FsFile>,
    pos: u64,
}

impl Cursor {
    /// Fills `buf` as far as the file goes; returns how many bytes were read.
    fn read_up_to(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut got = 0;
        while got < buf.len() {
            match self.file.read_at(self.pos, &mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => {
                    got += n;
                    self.pos += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(got)
    }
}
