//! Segment files: naming, listing, reading, and fault-aware write/fsync helpers. Every
//! file operation goes through the configured [`Fs`].

use std::path::{Path, PathBuf};

use stockd_fs::{FileBytes, Fs, FsFile};

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
pub(crate) fn list_segments(fs: &dyn Fs, dir: &Path) -> Result<Vec<(Lsn, PathBuf)>, WalError> {
    let mut out: Vec<(Lsn, PathBuf)> = fs
        .read_dir(dir)
        .map_err(|e| WalError::io(dir, e))?
        .into_iter()
        .filter(|e| e.is_file)
        .filter_map(|e| Some((parse_segment_file_name(&e.name)?, e.path)))
        .collect();
    out.sort_unstable_by_key(|&(lsn, _)| lsn);
    Ok(out)
}

/// A segment's bytes (memory-mapped on the real filesystem). Never changes the file.
pub(crate) fn read_segment(fs: &dyn Fs, path: &Path) -> Result<FileBytes, WalError> {
    fs.read(path).map_err(|e| WalError::io(path, e))
}

/// `write_all`, consulting the fault injector first.
pub(crate) fn write_all(
    file: &mut dyn FsFile,
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

/// `write_at` (positional), consulting the fault injector first.
pub(crate) fn write_at(
    file: &mut dyn FsFile,
    offset: u64,
    bytes: &[u8],
    path: &Path,
    faults: Option<&FaultInjector>,
) -> Result<(), WalError> {
    if let Some(cut) = faults.and_then(|f| f.write_cut(bytes.len())) {
        file.write_at(offset, &bytes[..cut]).map_err(|e| WalError::io(path, e))?;
        return Err(WalError::io(path, crate::fault::injected("write (fail_writes)")));
    }
    file.write_at(offset, bytes).map_err(|e| WalError::io(path, e))
}

/// Largest buffer of zeros written at once when extending or cleaning a segment.
const ZEROS_AT_ONCE: u64 = 1024 * 1024;

/// Writes zeros over `from .. to` of a segment file (positional writes of at most
/// 1 MiB each), consulting the fault injector for each.
pub(crate) fn write_zeros(
    file: &mut dyn FsFile,
    from: u64,
    to: u64,
    path: &Path,
    faults: Option<&FaultInjector>,
) -> Result<(), WalError> {
    if to <= from {
        return Ok(());
    }
    let zeros = vec![0u8; (to - from).min(ZEROS_AT_ONCE) as usize];
    let mut at = from;
    while at < to {
        let n = (to - at).min(zeros.len() as u64);
        write_at(file, at, &zeros[..n as usize], path, faults)?;
        at += n;
    }
    Ok(())
}

/// `fdatasync` of a segment file, consulting the fault injector first.
pub(crate) fn sync_file(file: &mut dyn FsFile, path: &Path, faults: Option<&FaultInjector>) -> Result<(), WalError> {
    if let Some(f) = faults {
        f.before_sync().map_err(|e| WalError::io(path, e))?;
    }
    file.sync_data().map_err(|e| WalError::io(path, e))
}

/// fsync of the directory itself, so created/removed/renamed entries are durable.
pub(crate) fn sync_dir(fs: &dyn Fs, dir: &Path, faults: Option<&FaultInjector>) -> Result<(), WalError> {
    if let Some(f) = faults {
        f.before_sync().map_err(|e| WalError::io(dir, e))?;
    }
    fs.sync_dir(dir).map_err(|e| WalError::io(dir, e))
}

/// Creates `dir` and any missing parents, syncing the parent of each directory it
/// created so the new entries survive a power cut.
pub(crate) fn create_dir_durably(fs: &dyn Fs, dir: &Path, faults: Option<&FaultInjector>) -> Result<(), WalError> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur.filter(|d| !d.as_os_str().is_empty()) {
        if fs.metadata(d).is_ok_and(|m| m.is_dir) {
            break;
        }
        missing.push(d.to_path_buf());
        cur = d.parent();
    }
    fs.create_dir_all(dir).map_err(|e| WalError::io(dir, e))?;
    for d in missing.iter().rev() {
        sync_dir(fs, stockd_fs::parent_dir(d), faults)?;
    }
    Ok(())
}
