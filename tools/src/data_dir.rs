//! Finding shards, WAL segments and snapshots in a data directory, and choosing the
//! point a shard's replay starts from. Read-only: nothing here writes (in particular
//! `SnapshotStore::open` is never called, because it deletes leftover temp files).

use std::path::{Path, PathBuf};
use stockd_engine::offline::decode_state;
use stockd_engine::DataDir as Layout;
use stockd_engine::ShardState;
use stockd_snapshots::{list_snapshots, read_snapshot_file, SnapshotInfo};
use stockd_wal::{SegmentInfo, WalReader};

use crate::Error;

use stockd_engine::offline::MANIFEST_FILE as MANIFEST;

#[derive(Debug)]
pub struct DataDir {
    pub root: PathBuf,
    pub shards: Vec<ShardDir>,
}

#[derive(Debug)]
pub struct ShardDir {
    pub shard: usize,
    pub dir: PathBuf,
    pub wal_dir: PathBuf,
    pub snap_dir: PathBuf,
    pub wal: WalReader,
}

/// A snapshot file found in a shard's snapshots dir.
#[derive(Debug, Clone)]
pub struct SnapFile {
    pub path: PathBuf,
    /// From the file name.
    pub name_lsn: u64,
    pub size: u64,
    /// `Ok(lsn from the header)` when the file verifies (and names the same LSN).
    pub valid: Result<u64, String>,
}

impl DataDir {
    pub fn open(root: &Path) -> Result<DataDir, Error> {
        let meta = std::fs::metadata(root).map_err(|e| Error::new(format!("cannot open {}: {e}", root.display())))?;
        if !meta.is_dir() {
            return Err(Error::new(format!("{} is not a directory", root.display())));
        }
        let layout = Layout::new(root);
        let manifest = layout.manifest();
        let text = std::fs::read_to_string(&manifest).map_err(|e| {
            Error::new(format!("{} is not a stockd data directory: cannot read {MANIFEST} ({e})", root.display()))
        })?;
        let parsed = Layout::parse_manifest(&text).map_err(|e| Error::new(format!("{}: {e}", manifest.display())));
        if let Some(Err(e)) = parsed.as_ref().ok().map(|m| m.check_format()) {
            return Err(Error::new(format!("{}: {e}", manifest.display())));
        }
        let n = parsed?.shards;
        let mut shards = Vec::with_capacity(n);
        for shard in 0..n {
            let dir = layout.shard(shard);
            if !dir.is_dir() {
                return Err(Error::new(format!(
                    "{} is not a complete stockd data directory: {} is missing (manifest says {n} shards)",
                    root.display(),
                    dir.display()
                )));
            }
            let wal_dir = layout.shard_wal(shard);
            let wal = open_wal(&wal_dir)
                .map_err(|e| Error::new(format!("shard {shard}: cannot list WAL {}: {e}", wal_dir.display())))?;
            shards.push(ShardDir { shard, snap_dir: layout.shard_snapshots(shard), dir, wal_dir, wal });
        }
        Ok(DataDir { root: root.to_path_buf(), shards })
    }

    /// Total bytes of all segments (for the progress bar).
    pub fn total_wal_bytes(&self) -> u64 {
        self.shards.iter().flat_map(|s| s.wal.segments()).map(|s| s.size).sum()
    }
}

/// Opens a `WalReader` whose segment list has no hole. A directory listing taken while
/// a writer creates segments can miss a segment created during the listing yet show a
/// later one (readdir order is not creation order), which iteration would then report
/// as an LSN gap. Every segment at or below the newest one a listing shows existed
/// before that listing ended, so a second listing shows them all: the first listing is
/// accepted once the second agrees with it up to its newest segment.
fn open_wal(dir: &Path) -> Result<WalReader, stockd_wal::WalError> {
    let firsts = |r: &WalReader, max: u64| -> Vec<u64> {
        r.segments().iter().map(|s| s.first_lsn).filter(|f| *f <= max).collect()
    };
    let mut first = WalReader::open(dir)?;
    for _ in 0..100 {
        let second = WalReader::open(dir)?;
        let max = first.segments().last().map_or(0, |s| s.first_lsn);
        if firsts(&first, max) == firsts(&second, max) {
            return Ok(first);
        }
        first = second;
    }
    Ok(first)
}

impl ShardDir {
    pub fn segments(&self) -> &[SegmentInfo] {
        self.wal.segments()
    }

    pub fn first_wal_lsn(&self) -> Option<u64> {
        self.segments().first().map(|s| s.first_lsn)
    }

    /// Snapshot files, oldest first, each verified (read-only).
    pub fn snapshots(&self) -> Result<Vec<SnapFile>, Error> {
        let listed = list_snapshots(&self.snap_dir)
            .map_err(|e| Error::new(format!("cannot list {}: {e}", self.snap_dir.display())))?;
        let mut out = Vec::new();
        for SnapshotInfo { lsn: name_lsn, path, size } in listed {
            let valid = match read_snapshot_file(&path) {
                Ok(s) if s.lsn == name_lsn => Ok(s.lsn),
                Ok(s) => Err(format!("header says LSN {} but the name says {name_lsn}", s.lsn)),
                Err(e) => Err(e.to_string()),
            };
            out.push(SnapFile { path, name_lsn, size, valid });
        }
        out.sort_by_key(|s| s.name_lsn);
        Ok(out)
    }
}

/// Where a shard's replay starts: an empty state at LSN 0, or a snapshot.
#[derive(Debug)]
pub struct Start {
    pub state: ShardState,
    /// Last LSN the start state covers (0 = empty).
    pub lsn: u64,
    pub snapshot: Option<PathBuf>,
}

/// Which start point to choose.
#[derive(Debug, Clone, Copy)]
pub enum StartAt {
    /// The oldest possible (empty if the WAL still starts at LSN 1): replays the most.
    Earliest,
    /// The newest possible start covering at most this LSN (fastest replay to it).
    LatestAtOrBefore(u64),
}

/// Chooses the start state. A snapshot is usable when it verifies, decodes, is this
/// shard's, and the WAL continues right after it (its oldest segment starts at or
/// before `snapshot LSN + 1`). An empty state is usable when the WAL starts at LSN 1
/// (or there is no WAL and no snapshot).
pub fn choose_start(shard: &ShardDir, at: StartAt) -> Result<Start, Error> {
    let first = shard.first_wal_lsn();
    let snaps = shard.snapshots()?;
    let empty_ok = first.is_none_or(|f| f <= 1) && (first.is_some() || snaps.is_empty());
    let mut candidates: Vec<u64> = snaps
        .iter()
        .filter_map(|s| s.valid.as_ref().ok().copied())
        .filter(|lsn| first.is_none_or(|f| f <= lsn + 1))
        .collect();
    if empty_ok || candidates.is_empty() && snaps.is_empty() {
        candidates.insert(0, 0);
    }
    let order: Vec<u64> = match at {
        StartAt::Earliest => candidates.clone(),
        StartAt::LatestAtOrBefore(until) => candidates.iter().rev().copied().filter(|l| *l <= until).collect(),
    };
    let mut problems = Vec::new();
    for lsn in order {
        if lsn == 0 {
            return Ok(Start { state: ShardState::new(shard.shard), lsn: 0, snapshot: None });
        }
        let snap = snaps.iter().find(|s| s.valid.as_ref().ok() == Some(&lsn)).expect("candidate comes from snaps");
        match read_snapshot_file(&snap.path).map_err(|e| e.to_string()).and_then(|s| decode_state(&s.payload)) {
            Ok(state) if state.shard() == shard.shard => {
                return Ok(Start { state, lsn, snapshot: Some(snap.path.clone()) })
            }
            Ok(state) => problems.push(format!("{} holds shard {}", snap.path.display(), state.shard())),
            Err(e) => problems.push(format!("{}: {e}", snap.path.display())),
        }
    }
    let what = match at {
        StartAt::Earliest => "any point".to_string(),
        StartAt::LatestAtOrBefore(l) => format!("LSN {l}"),
    };
    Err(Error::new(format!(
        "shard {}: cannot rebuild the state at {what}: the WAL starts at LSN {} and no usable snapshot covers the \
         records before it (usable start points: {candidates:?}){}",
        shard.shard,
        first.map_or("-".into(), |f| f.to_string()),
        if problems.is_empty() { String::new() } else { format!("; {}", problems.join("; ")) }
    )))
}
