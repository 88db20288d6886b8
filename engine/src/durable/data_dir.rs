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
//! Keeping them in one place lets them be routed through a filesystem seam (fault
//! injection) later without hunting for call sites. [`dir_syncs`] counts directory
//! syncs for tests.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

static DIR_SYNCS: AtomicU64 = AtomicU64::new(0);

/// Directory syncs done by this module since the process started (for tests).
pub fn dir_syncs() -> u64 {
    DIR_SYNCS.load(Ordering::Relaxed)
}

/// Fsyncs directory `dir` so the entries created, renamed or removed in it are durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()?;
    DIR_SYNCS.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// The directory an entry lives in (`.` for a bare name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Creates `dir` and any missing ancestors, and syncs the parent of each directory it
/// created (outermost first), so the whole path survives a power cut. Returns how many
/// directories it created.
pub fn create_dir_durable(dir: &Path) -> std::io::Result<usize> {
    let mut missing = Vec::new();
    let mut at = dir;
    while !at.as_os_str().is_empty() && !at.exists() {
        missing.push(at);
        match at.parent() {
            Some(p) => at = p,
            None => break,
        }
    }
    for d in missing.iter().rev() {
        match std::fs::create_dir(d) {
            Ok(()) => {}
            // Another thread (a shard recovering in parallel) made it first: it syncs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
        sync_dir(parent_of(d))?;
    }
    Ok(missing.len())
}

/// Writes `bytes` to `path` atomically and durably: a temp file next to it
/// (`<name>.tmp`), fsync, rename over `path`, fsync the directory. A crash leaves
/// either the old file or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp_name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    sync_dir(parent_of(path))
}

/// Removes file `path` and syncs its directory.
pub fn remove_file_durable(path: &Path) -> std::io::Result<()> {
    std::fs::remove_file(path)?;
    sync_dir(parent_of(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_nested_directories_and_writes_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b/c");
        assert_eq!(create_dir_durable(&deep).unwrap(), 3);
        assert!(deep.is_dir());
        assert_eq!(create_dir_durable(&deep).unwrap(), 0, "an existing directory is left alone");
        let file = deep.join("f.txt");
        write_atomic(&file, b"one").unwrap();
        write_atomic(&file, b"two").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"two");
        assert!(!deep.join("f.txt.tmp").exists(), "no temp file is left behind");
        remove_file_durable(&file).unwrap();
        assert!(!file.exists());
        // An error is an error, not a panic.
        assert!(write_atomic(&dir.path().join("missing/f"), b"x").is_err());
    }
}
