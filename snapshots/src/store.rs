//! A directory of snapshot files: atomic writes, finding the newest snapshot that
//! verifies, listing and pruning.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use stockd_fs::Fs;

use crate::error::{CorruptReason, SnapshotError};
use crate::file::{read_snapshot_file_with, verify_snapshot_file, LoadedSnapshot};
use crate::format::{encode_header, MAX_PAYLOAD_LEN};

const PREFIX: &str = "snapshot-";
const SUFFIX: &str = ".snap";
const TMP_SUFFIX: &str = ".snap.tmp";
const LSN_DIGITS: usize = 20;

/// One snapshot file in the store's directory (found by name; not verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// LSN of the last WAL record the snapshot covers (from the file name).
    pub lsn: u64,
    /// Full path of the file.
    pub path: PathBuf,
    /// File size in bytes.
    pub size: u64,
}

/// The snapshots of one shard, kept in one directory.
///
/// One `SnapshotStore` should own a directory at a time (it is `Send + Sync`; `write`,
/// `prune` and `load_latest` are serialised internally). Every file operation goes
/// through its `stockd_fs::Fs` (the real filesystem unless opened with
/// [`SnapshotStore::open_with_fs`]).
pub struct SnapshotStore {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    lock: Mutex<()>,
}

impl fmt::Debug for SnapshotStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotStore").field("dir", &self.dir).field("fs", &self.fs).finish()
    }
}

/// `snapshot-{lsn:020}.snap`
pub fn snapshot_file_name(lsn: u64) -> String {
    format!("{PREFIX}{lsn:0LSN_DIGITS$}{SUFFIX}")
}

/// `snapshot-{lsn:020}.snap.tmp`
fn temp_file_name(lsn: u64) -> String {
    format!("{PREFIX}{lsn:0LSN_DIGITS$}{TMP_SUFFIX}")
}

/// Parses `snapshot-<exactly 20 digits><suffix>`; anything else is not ours.
fn parse_name(name: &str, suffix: &str) -> Option<u64> {
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(suffix)?;
    if digits.len() != LSN_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The snapshot files in `dir` (by name, unverified), sorted by LSN ascending; temp
/// files and unrelated names are ignored, and a missing directory has none. Read-only
/// (no temp-file clean-up, nothing created): for readers that do not own the
/// directory, such as a WAL follower or an inspection tool.
pub fn list_snapshots(dir: &Path) -> Result<Vec<SnapshotInfo>, SnapshotError> {
    list_snapshots_with(&*stockd_fs::real(), dir)
}

/// Like [`list_snapshots`], through `fs`.
pub fn list_snapshots_with(fs: &dyn Fs, dir: &Path) -> Result<Vec<SnapshotInfo>, SnapshotError> {
    let entries = match fs.read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(SnapshotError::io(dir, e)),
    };
    let mut infos = Vec::new();
    for entry in entries {
        let Some(lsn) = parse_name(&entry.name, SUFFIX) else {
            continue;
        };
        let meta = match fs.metadata(&entry.path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(SnapshotError::io(entry.path, e)),
        };
        if meta.is_file {
            infos.push(SnapshotInfo { lsn, path: entry.path, size: meta.len });
        }
    }
    infos.sort_by_key(|i| i.lsn);
    Ok(infos)
}

impl SnapshotStore {
    /// Opens (creating if absent, and syncing the parent of every directory it
    /// created) the snapshot directory `dir` on the real filesystem and deletes
    /// leftover temp files (`snapshot-*.snap.tmp`) from writes that never completed.
    pub fn open(dir: &Path) -> Result<SnapshotStore, SnapshotError> {
        SnapshotStore::open_with_fs(dir, stockd_fs::real())
    }

    /// Like [`SnapshotStore::open`], with every file operation going through `fs`.
    pub fn open_with_fs(dir: &Path, fs: Arc<dyn Fs>) -> Result<SnapshotStore, SnapshotError> {
        stockd_fs::create_dir_all_durable(&*fs, dir).map_err(|e| SnapshotError::io(dir, e))?;
        let store = SnapshotStore { fs, dir: dir.to_path_buf(), lock: Mutex::new(()) };
        let mut removed = 0usize;
        for (name, path) in store.entries()? {
            if parse_name(&name, TMP_SUFFIX).is_some() {
                match store.fs.remove_file(&path) {
                    Ok(()) => {
                        removed += 1;
                        tracing::info!(path = %path.display(), "removed leftover snapshot temp file");
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(SnapshotError::io(path, e)),
                }
            }
        }
        if removed > 0 {
            store.sync_dir()?;
        }
        Ok(store)
    }

    /// The directory this store manages.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Durably writes a snapshot covering the WAL up to and including `lsn`.
    ///
    /// Writes `snapshot-{lsn:020}.snap.tmp`, fsyncs it, renames it to
    /// `snapshot-{lsn:020}.snap` and fsyncs the directory, so after a crash the final
    /// name holds either nothing or the complete snapshot. An existing snapshot with
    /// the same LSN is replaced atomically. On error the temp file is removed.
    pub fn write(&self, lsn: u64, payload: &[u8]) -> Result<SnapshotInfo, SnapshotError> {
        let len = payload.len() as u64;
        if len > MAX_PAYLOAD_LEN {
            return Err(SnapshotError::PayloadTooLarge { len });
        }
        let _guard = self.guard();
        let path = self.dir.join(snapshot_file_name(lsn));
        // `stockd_fs::write_atomic`'s temp name is this store's temp name.
        let tmp = stockd_fs::atomic_temp_path(&path);
        debug_assert_eq!(tmp, self.dir.join(temp_file_name(lsn)));
        let result = write_file(&*self.fs, &path, lsn, payload);
        match result {
            Ok(size) => {
                tracing::debug!(lsn, size, path = %path.display(), "snapshot written");
                Ok(SnapshotInfo { lsn, path, size })
            }
            Err(e) => {
                // Best effort; a leftover temp file is also removed by the next `open`.
                let _ = self.fs.remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Loads the newest snapshot that verifies.
    ///
    /// * `Ok(None)`: the directory holds no snapshot files at all (fresh start).
    /// * `Ok(Some(s))`: `s` is the newest valid snapshot; every newer file that failed
    ///   verification is logged with `tracing::warn!` and listed in `s.skipped`.
    /// * `Err(NoValidSnapshot { skipped, .. })`: snapshot files exist but none
    ///   verifies. The caller must not silently start from an empty state.
    ///
    /// I/O errors other than corruption (e.g. permission denied) are returned as-is.
    /// Temp files are never considered.
    pub fn load_latest(&self) -> Result<Option<LoadedSnapshot>, SnapshotError> {
        let _guard = self.guard();
        let infos = self.list()?;
        if infos.is_empty() {
            return Ok(None);
        }
        let mut skipped = Vec::new();
        for info in infos.iter().rev() {
            let result = read_snapshot_file_with(&*self.fs, &info.path).and_then(|s| check_name_lsn(info, s));
            match result {
                Ok(mut snapshot) => {
                    snapshot.skipped = skipped;
                    return Ok(Some(snapshot));
                }
                Err(e) if e.is_content_error() => {
                    tracing::warn!(
                        path = %info.path.display(),
                        reason = %e,
                        "skipping snapshot that failed verification"
                    );
                    skipped.push((info.path.clone(), e.to_string()));
                }
                Err(e) => return Err(e),
            }
        }
        Err(SnapshotError::NoValidSnapshot { dir: self.dir.clone(), skipped })
    }

    /// All snapshot files (by name, unverified), sorted by LSN ascending. Temp files
    /// and unrelated names are ignored.
    pub fn list(&self) -> Result<Vec<SnapshotInfo>, SnapshotError> {
        list_snapshots_with(&*self.fs, &self.dir)
    }

    /// Deletes old snapshots, keeping the newest `keep` that **verify** (`keep >= 1`)
    /// and every file newer than the oldest of those. Returns how many were deleted.
    ///
    /// Counting only verified snapshots means a corrupt newest file can never cause the
    /// last good snapshot to be deleted. Corrupt files newer than the cut-off are left
    /// in place (for inspection; `load_latest` skips them). If fewer than `keep`
    /// snapshots verify, nothing is deleted. Verification streams each candidate's
    /// checksum without loading its payload.
    pub fn prune(&self, keep: usize) -> Result<usize, SnapshotError> {
        if keep == 0 {
            return Err(SnapshotError::InvalidKeep);
        }
        let _guard = self.guard();
        let infos = self.list()?;
        let mut valid = 0usize;
        let mut cut = None;
        for (i, info) in infos.iter().enumerate().rev() {
            match verify_snapshot_file(&*self.fs, &info.path).and_then(|lsn| name_matches(info, lsn)) {
                Ok(()) => {
                    valid += 1;
                    if valid == keep {
                        cut = Some(i);
                        break;
                    }
                }
                Err(e) if e.is_content_error() => {
                    tracing::warn!(
                        path = %info.path.display(),
                        reason = %e,
                        "prune: retaining snapshot that failed verification; not counted"
                    );
                }
                Err(e) => return Err(e),
            }
        }
        let Some(cut) = cut else {
            return Ok(0);
        };
        let mut deleted = 0usize;
        for info in &infos[..cut] {
            match self.fs.remove_file(&info.path) {
                Ok(()) => {
                    deleted += 1;
                    tracing::debug!(lsn = info.lsn, path = %info.path.display(), "pruned snapshot");
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(SnapshotError::io(&info.path, e)),
            }
        }
        if deleted > 0 {
            self.sync_dir()?;
        }
        Ok(deleted)
    }

    /// The smallest LSN among all snapshot files still present (valid or not), or
    /// `None` if there are none. WAL records with LSN <= this value are covered by
    /// every retained snapshot; only those may be deleted.
    pub fn oldest_retained_lsn(&self) -> Result<Option<u64>, SnapshotError> {
        Ok(self.list()?.first().map(|i| i.lsn))
    }

    fn guard(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// (file name, full path) of every directory entry with a UTF-8 name.
    fn entries(&self) -> Result<Vec<(String, PathBuf)>, SnapshotError> {
        let entries = self.fs.read_dir(&self.dir).map_err(|e| SnapshotError::io(&self.dir, e))?;
        Ok(entries.into_iter().map(|e| (e.name, e.path)).collect())
    }

    /// Makes renames and deletions in the directory durable.
    fn sync_dir(&self) -> Result<(), SnapshotError> {
        self.fs.sync_dir(&self.dir).map_err(|e| SnapshotError::io(&self.dir, e))
    }
}

/// Writes header, payload and CRC to `path` atomically (`stockd_fs::write_atomic`:
/// temp file, fsync, rename, fsync the directory). Returns the size.
fn write_file(fs: &dyn Fs, path: &Path, lsn: u64, payload: &[u8]) -> Result<u64, SnapshotError> {
    let header = encode_header(lsn, payload.len() as u64);
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&header);
    hasher.update(payload);
    let crc = hasher.finalize().to_le_bytes();
    stockd_fs::write_atomic_parts(fs, path, &[&header, payload, &crc]).map_err(|e| SnapshotError::io(path, e))?;
    Ok((header.len() + payload.len() + crc.len()) as u64)
}

fn name_matches(info: &SnapshotInfo, header_lsn: u64) -> Result<(), SnapshotError> {
    if header_lsn == info.lsn {
        Ok(())
    } else {
        Err(SnapshotError::corrupt(&info.path, CorruptReason::LsnMismatch { name: info.lsn, header: header_lsn }))
    }
}

fn check_name_lsn(info: &SnapshotInfo, snapshot: LoadedSnapshot) -> Result<LoadedSnapshot, SnapshotError> {
    name_matches(info, snapshot.lsn).map(|()| snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(snapshot_file_name(7), "snapshot-00000000000000000007.snap");
        assert_eq!(temp_file_name(7), "snapshot-00000000000000000007.snap.tmp");
        for lsn in [0, 1, 42, u64::MAX] {
            assert_eq!(parse_name(&snapshot_file_name(lsn), SUFFIX), Some(lsn));
            assert_eq!(parse_name(&temp_file_name(lsn), TMP_SUFFIX), Some(lsn));
            assert_eq!(parse_name(&temp_file_name(lsn), SUFFIX), None);
        }
    }

    #[test]
    fn foreign_names_are_ignored() {
        for name in [
            "snapshot-1.snap",
            "snapshot-+0000000000000000007.snap",
            "snapshot-99999999999999999999.snap", // > u64::MAX
            "snapshot-0000000000000000000a.snap",
            "xsnapshot-00000000000000000007.snap",
            "snapshot-00000000000000000007.snapx",
        ] {
            assert_eq!(parse_name(name, SUFFIX), None, "{name}");
        }
    }
}
