//! Segment files on disk: naming, listing, read-only mapping, and fault-aware
//! write/fsync helpers.

use std::fs::{self, File};
use std::io::Write;
use std::ops::Deref;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::{FaultInjector, Lsn, WalError};

const SUFFIX: &str = ".wal";
const DIGITS: usize = 20;

/// File name of the segment whose first record has `first_lsn`:
/// 20 zero-padded decimal digits + `.wal`, so name order is LSN order.
pub fn segment_file_name(first_lsn: Lsn) -> String {
    format!("{first_lsn:020}{SUFFIX}")
}

/// The first LSN encoded in a segment file name, or `None` if it is not one.
pub fn parse_segment_file_name(name: &str) -> Option<Lsn> {
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.len() != DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Segment files in `dir`, oldest first. Other files are ignored.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<(Lsn, PathBuf)>, WalError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| WalError::io(dir, e))? {
        let entry = entry.map_err(|e| WalError::io(dir, e))?;
        let Some(lsn) = entry.file_name().to_str().and_then(parse_segment_file_name) else {
            continue;
        };
        let ft = entry.file_type().map_err(|e| WalError::io(entry.path(), e))?;
        if ft.is_file() {
            out.push((lsn, entry.path()));
        }
    }
    out.sort_unstable_by_key(|&(lsn, _)| lsn);
    Ok(out)
}

/// A segment's bytes, mapped read-only (or empty, since empty files cannot be mapped).
pub(crate) enum SegmentBytes {
    Mapped(Mmap),
    Empty,
}

impl SegmentBytes {
    /// Maps `path` read-only. Opens the file read-only; never creates or changes it.
    pub(crate) fn open(path: &Path) -> Result<SegmentBytes, WalError> {
        let file = File::open(path).map_err(|e| WalError::io(path, e))?;
        let len = file.metadata().map_err(|e| WalError::io(path, e))?.len();
        if len == 0 {
            return Ok(SegmentBytes::Empty);
        }
        // SAFETY: the map is read-only and private to this process. Writers only ever
        // append to segment files while readers may have them mapped (bytes inside the
        // mapped length never change); the one exception, tail truncation in
        // `WalWriter::open`, must not run while a reader is iterating that directory.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| WalError::io(path, e))?;
        Ok(SegmentBytes::Mapped(map))
    }
}

impl Deref for SegmentBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            SegmentBytes::Mapped(m) => m,
            SegmentBytes::Empty => &[],
        }
    }
}

/// `write_all`, consulting the fault injector first.
pub(crate) fn write_all(
    file: &mut File,
    bytes: &[u8],
    path: &Path,
    faults: Option<&FaultInjector>,
) -> Result<(), WalError> {
    if let Some(cut) = faults.and_then(|f| f.write_cut(bytes.len())) {
        file.write_all(&bytes[..cut]).map_err(|e| WalError::io(path, e))?;
        return Err(WalError::io(path, crate::fault::injected("write (fail_writes)")));
    }
    file.write_all(bytes).map_err(|e| WalError::io(path, e))
}

/// `fdatasync` of a segment file, consulting the fault injector first.
pub(crate) fn sync_file(file: &File, path: &Path, faults: Option<&FaultInjector>) -> Result<(), WalError> {
    if let Some(f) = faults {
        f.before_sync().map_err(|e| WalError::io(path, e))?;
    }
    file.sync_data().map_err(|e| WalError::io(path, e))
}

/// fsync of the directory itself, so created/removed/renamed entries are durable.
pub(crate) fn sync_dir(dir: &Path, faults: Option<&FaultInjector>) -> Result<(), WalError> {
    if let Some(f) = faults {
        f.before_sync().map_err(|e| WalError::io(dir, e))?;
    }
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| WalError::io(dir, e))
}
