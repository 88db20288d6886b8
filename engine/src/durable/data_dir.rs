//! The one owner of the data directory: its layout (every file and directory name,
//! [`DataDir`]), the manifest's text, and directory-entry durability for the files and
//! directories the engine relies on outside the `wal` and `snapshots` crates (which
//! sync their own). Everyone else (recovery, the follower, history, the server's
//! Kafka publisher and replication state, `stockd-wal`, test generators) asks it:
//!
//! ```text
//! DATA/stockd.manifest          "stockd-data 1\nshards N\n"  (DataDir::manifest)
//! DATA/stockd.lock              advisory lock of the running engine
//! DATA/kafka-outbox.offsets     the Kafka publisher's acknowledged LSN per shard
//! DATA/replication.state        where the changelog reader resumes
//! DATA/shard-NNN/wal/           WAL segments (wal crate)
//! DATA/shard-NNN/snapshots/     snapshot files (snapshots crate)
//! ```
//!
//! A new or renamed entry survives a power cut only once its parent directory is
//! fsynced. Every create / rename / remove here syncs the parent:
//! - [`create_dir_durable`]: creates missing directories, syncing each new one's
//!   parent (an existing one is left alone);
//! - [`write_atomic`]: temp file → write → fsync → rename → fsync the directory
//!   (`stockd_fs::write_atomic`, counted);
//! - [`remove_file_durable`]: remove → fsync the directory.
//!
//! Every operation goes through the filesystem seam (`stockd_fs::Fs`, the
//! `StorageConfig::fs` of the engine): `RealFs` in production, `SimFs` in tests
//! that cut power (losing unsynced pages and directory entries) or inject faults.
//! [`dir_syncs`] counts directory syncs for tests.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use stockd_fs::Fs;

/// `DATA/stockd.manifest`: the data-directory format and the shard count.
pub const MANIFEST_FILE: &str = "stockd.manifest";
/// `DATA/stockd.lock`: the running engine's exclusive advisory lock.
pub const LOCK_FILE: &str = "stockd.lock";
/// `DATA/kafka-outbox.offsets`: the Kafka publisher's acknowledged LSN per shard.
pub const OUTBOX_OFFSETS_FILE: &str = "kafka-outbox.offsets";
/// `DATA/replication.state`: where this node's changelog reader resumes.
pub const REPLICATION_STATE_FILE: &str = "replication.state";
/// `DATA/shard-NNN/wal/`: a shard's WAL segments.
pub const WAL_DIR: &str = "wal";
/// `DATA/shard-NNN/snapshots/`: a shard's snapshot files.
pub const SNAPSHOTS_DIR: &str = "snapshots";
/// The data-directory format this build writes and reads (`stockd-data 1`).
pub const DATA_FORMAT: u32 = 1;
/// Every shard directory's name starts with this (`shard-NNN`).
pub const SHARD_DIR_PREFIX: &str = "shard-";

/// The layout of a data directory rooted at `root`: where each file is. Pure path
/// arithmetic; nothing is read or created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

/// What a manifest says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The version in the `stockd-data N` line, as written (None: no such line).
    pub format: Option<String>,
    /// The `shards N` line.
    pub shards: usize,
}

impl Manifest {
    /// Err when the manifest names a format this build does not read.
    pub fn check_format(&self) -> Result<(), String> {
        match &self.format {
            Some(v) if v.parse::<u32>().ok() != Some(DATA_FORMAT) => {
                Err(format!("unknown data directory format version `{v}` (this build reads {DATA_FORMAT})"))
            }
            _ => Ok(()),
        }
    }
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        DataDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The name of shard `shard`'s directory: `shard-NNN`.
    pub fn shard_dir_name(shard: usize) -> String {
        let name = format!("shard-{shard:03}");
        debug_assert!(name.starts_with(SHARD_DIR_PREFIX));
        name
    }

    /// `DATA/shard-NNN`.
    pub fn shard(&self, shard: usize) -> PathBuf {
        self.root.join(Self::shard_dir_name(shard))
    }

    /// `DATA/shard-NNN/wal`.
    pub fn shard_wal(&self, shard: usize) -> PathBuf {
        Self::wal_in(&self.shard(shard))
    }

    /// `DATA/shard-NNN/snapshots`.
    pub fn shard_snapshots(&self, shard: usize) -> PathBuf {
        Self::snapshots_in(&self.shard(shard))
    }

    /// The WAL directory inside a shard directory.
    pub fn wal_in(shard_dir: &Path) -> PathBuf {
        shard_dir.join(WAL_DIR)
    }

    /// The snapshots directory inside a shard directory.
    pub fn snapshots_in(shard_dir: &Path) -> PathBuf {
        shard_dir.join(SNAPSHOTS_DIR)
    }

    /// `DATA/stockd.manifest`.
    pub fn manifest(&self) -> PathBuf {
        self.root.join(MANIFEST_FILE)
    }

    /// `DATA/stockd.lock`.
    pub fn lock_file(&self) -> PathBuf {
        self.root.join(LOCK_FILE)
    }

    /// `DATA/kafka-outbox.offsets`.
    pub fn outbox_offsets(&self) -> PathBuf {
        self.root.join(OUTBOX_OFFSETS_FILE)
    }

    /// `DATA/replication.state`.
    pub fn replication_state(&self) -> PathBuf {
        self.root.join(REPLICATION_STATE_FILE)
    }

    /// Whether `name`, an entry of the data directory's root, belongs to the data
    /// (shard directories, the manifest, the outbox offsets, the replication state):
    /// what moving a data directory aside must move.
    pub fn is_data_entry(name: &str) -> bool {
        name.starts_with(SHARD_DIR_PREFIX)
            || name == MANIFEST_FILE
            || name == REPLICATION_STATE_FILE
            || name == OUTBOX_OFFSETS_FILE
    }

    /// The manifest of a new data directory with `shards` shards.
    pub fn manifest_text(shards: usize) -> String {
        format!("stockd-data {DATA_FORMAT}\nshards {shards}\n")
    }

    /// Parses a manifest's text. Err: no valid `shards N` line (N in
    /// 1..=`MAX_SHARDS`). The format version is only reported
    /// ([`Manifest::check_format`]).
    pub fn parse_manifest(text: &str) -> Result<Manifest, String> {
        let format = text.lines().find_map(|l| l.strip_prefix("stockd-data ")).map(|v| v.trim().to_string());
        let shards = text
            .lines()
            .find_map(|l| l.strip_prefix("shards "))
            .and_then(|n| n.trim().parse::<usize>().ok())
            .filter(|n| (1..=crate::limits::MAX_SHARDS).contains(n))
            .ok_or_else(|| "no valid `shards N` line".to_string())?;
        Ok(Manifest { format, shards })
    }
}

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
    fn the_layout_names_every_file_once() {
        let d = DataDir::new("/data");
        assert_eq!(d.shard(7), Path::new("/data/shard-007"));
        assert_eq!(d.shard_wal(12), Path::new("/data/shard-012/wal"));
        assert_eq!(d.shard_snapshots(0), Path::new("/data/shard-000/snapshots"));
        assert_eq!(d.manifest(), Path::new("/data/stockd.manifest"));
        assert_eq!(d.lock_file(), Path::new("/data/stockd.lock"));
        assert_eq!(d.outbox_offsets(), Path::new("/data/kafka-outbox.offsets"));
        assert_eq!(d.replication_state(), Path::new("/data/replication.state"));
        assert!(DataDir::is_data_entry("shard-003") && !DataDir::is_data_entry("stockd.lock"));
    }

    #[test]
    fn manifests_round_trip_and_bad_ones_are_errors() {
        let m = DataDir::parse_manifest(&DataDir::manifest_text(4)).unwrap();
        assert_eq!(m, Manifest { format: Some(DATA_FORMAT.to_string()), shards: 4 });
        assert!(m.check_format().is_ok());
        assert_eq!(DataDir::parse_manifest("shards 2\n").unwrap().format, None);
        assert!(DataDir::parse_manifest("stockd-data 1\n").is_err());
        assert!(DataDir::parse_manifest("shards 0\n").is_err());
        let future = DataDir::parse_manifest("stockd-data 9\nshards 2\n").unwrap();
        assert!(future.check_format().unwrap_err().contains("unknown data directory format version `9`"));
    }

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
