//! The one owner of directory-entry durability for files and directories the engine
//! relies on outside the `wal` and `snapshots` crates (which sync their own): the
//! data directory, `shard-NNN/` and its `wal/` and `snapshots/` subdirectories, the
//! manifest, and the Kafka outbox offsets file.
//!
//! A new or renamed entry survives a power cut only once its parent directory is
//! fsynced. Every create / rename / remove here syncs the parent:
//! - [`create_dir_durable`]: creates missing directories, syncing each new one's
//!   parent (an existing one is left alone);
//! - [`write_atomic`]: temp file → write → fsync → rename → fsync the directory;
//! - [`remove_file_durable`]: remove → fsync the directory.
//!
//! Every operation goes through the filesystem seam (`stockd_fs::Fs`, the
//! `StorageConfig::fs` of the engine): `RealFs` in production, `SimFs` in tests
//! that cut power (losing unsynced pages and directory entries) or inject faults.
//! [`dir_syncs`] counts directory syncs for tests.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use stockd_fs::Fs;

static DIR_SYNCS: AtomicU64 = AtomicU64::new(0);

/// Directory syncs done by this module since the process started (for tests).
pub fn dir_syncs() -> u64 {
    DIR_SYNCS.load(Ordering::Relaxed)
}

/// Syncs directory `dir` so the entries created, renamed or removed in it are durable.
pub fn sync_dir(fs: &dyn Fs, dir: &Path) -> std::io::Result<()> {
    fs.sync_dir(dir)?;
    DIR_SYNCS.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

use stockd_fs::parent_dir as parent_of;

/// Creates `dir` and any missing ancestors, and syncs the parent of each directory it
/// created (outermost first), so the whole path survives a power cut. Returns how many
/// directories it created.
pub fn create_dir_durable(fs: &dyn Fs, dir: &Path) -> std::io::Result<usize> {
    let mut missing = Vec::new();
    let mut at = dir;
    while !at.as_os_str().is_empty() && fs.metadata(at).is_err() {
        missing.push(at);
        match at.parent() {
            Some(p) => at = p,
            None => break,
        }
    }
    for d in missing.iter().rev() {
        // Idempotent: another thread (a shard recovering in parallel) may have made
        // it first; syncing its parent again is harmless.
        fs.create_dir_all(d)?;
        sync_dir(fs, parent_of(d))?;
    }
    Ok(missing.len())
}

/// Writes `bytes` to `path` atomically and durably: a temp file next to it
/// (`<name>.tmp`), fsync, rename over `path`, fsync the directory. A crash leaves
/// either the old file or the new one.
pub fn write_atomic(fs: &dyn Fs, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    stockd_fs::write_atomic(fs, path, bytes)?;
    DIR_SYNCS.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Removes file `path` and syncs its directory.
pub fn remove_file_durable(fs: &dyn Fs, path: &Path) -> std::io::Result<()> {
    fs.remove_file(path)?;
    sync_dir(fs, parent_of(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_nested_directories_and_writes_atomically() {
        let fs = stockd_fs::RealFs;
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b/c");
        assert_eq!(create_dir_durable(&fs, &deep).unwrap(), 3);
        assert!(deep.is_dir());
        assert_eq!(create_dir_durable(&fs, &deep).unwrap(), 0, "an existing directory is left alone");
        let file = deep.join("f.txt");
        write_atomic(&fs, &file, b"one").unwrap();
        write_atomic(&fs, &file, b"two").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"two");
        assert!(!deep.join("f.txt.tmp").exists(), "no temp file is left behind");
        remove_file_durable(&fs, &file).unwrap();
        assert!(!file.exists());
        // An error is an error, not a panic.
        assert!(write_atomic(&fs, &dir.path().join("missing/f"), b"x").is_err());
    }

    #[test]
    fn every_entry_it_creates_survives_a_power_cut_that_loses_everything_unsynced() {
        let fs = stockd_fs::SimFs::new();
        let deep = Path::new("/data/shard-000/wal");
        create_dir_durable(&fs, deep).unwrap();
        write_atomic(&fs, Path::new("/data/stockd.manifest"), b"shards 1\n").unwrap();
        fs.power_cut_lose_unsynced();
        assert!(fs.metadata(deep).is_ok_and(|m| m.is_dir), "a created directory was lost");
        assert_eq!(&*fs.read(Path::new("/data/stockd.manifest")).unwrap(), b"shards 1\n");
    }
}
