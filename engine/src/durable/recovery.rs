//! `Engine::open`: recovery of every shard from snapshot + WAL (shards in parallel, one
//! thread per core), then settling what a crash left half-done, then the invariant
//! check, then requests.

use super::data_dir::{create_dir_durable, write_atomic, DataDir};
use super::log_record::{replay_records, ReplayError};
use super::outbox::OutboxRetention;
use super::state_codec::decode_state;
use super::wal_log::WalLog;
use super::StorageConfig;
use crate::command::Command;
use crate::command_log::CommandLog;
use crate::engine::{Engine, EngineConfig};
use crate::error::EngineError;
use crate::reservation::ReservationStatus;
use crate::shard_state::ShardState;
use crate::Millis;
use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stockd_snapshots::{SnapshotError, SnapshotStore};
use stockd_wal::{Durability, TruncatedTail, WalConfig, WalReader, WalWriter};

/// What recovery found and did on one shard.
#[derive(Debug, Clone)]
pub struct ShardRecovery {
    pub shard: usize,
    /// LSN of the snapshot recovery started from (None: from an empty state).
    pub snapshot_lsn: Option<u64>,
    /// Snapshots that failed to verify and were passed over, with the reason.
    pub skipped_snapshots: Vec<(PathBuf, String)>,
    pub records_replayed: u64,
    pub last_lsn: u64,
    pub truncated_tail: Option<TruncatedTail>,
}

/// What `Engine::open` did.
#[derive(Debug, Clone)]
pub struct RecoveryReport {
    pub shards: Vec<ShardRecovery>,
    /// Holds committed or released, and pending headers aborted, to finish
    /// reservations a crash interrupted.
    pub settled: usize,
    /// Reservations whose deadline passed while the engine was down.
    pub expired: usize,
    pub elapsed: Duration,
    pub records_per_sec: f64,
}

fn io_err(what: &str, path: &Path, e: impl std::fmt::Display) -> EngineError {
    EngineError::Unavailable { reason: format!("{what} {}: {e}", path.display()) }
}

/// Reads (or, for a new directory, writes) the shard count the data was made with.
fn shard_count(fs: &dyn stockd_fs::Fs, dir: &Path, wanted: usize) -> Result<usize, EngineError> {
    let path = DataDir::new(dir).manifest();
    match fs.read(&path).map(|b| String::from_utf8_lossy(&b).into_owned()) {
        Ok(text) => {
            let n = DataDir::parse_manifest(&text).map_err(|e| io_err("unreadable manifest", &path, e))?.shards;
            if n != wanted {
                tracing::warn!(stored = n, requested = wanted, "data directory was made with {n} shards; using {n}");
            }
            Ok(n)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            create_dir_durable(fs, dir).map_err(|e| io_err("cannot create", dir, e))?;
            write_atomic(fs, &path, DataDir::manifest_text(wanted).as_bytes())
                .map_err(|e| io_err("cannot write", &path, e))?;
            Ok(wanted)
        }
        Err(e) => Err(io_err("cannot read", &path, e)),
    }
}

/// Takes the data directory's exclusive lock (`DATA/stockd.lock`, an advisory file
/// lock the OS drops when the process dies), so two engines never write one WAL.
fn lock_dir(fs: &dyn stockd_fs::Fs, dir: &Path) -> Result<stockd_fs::FsLock, EngineError> {
    let path = DataDir::new(dir).lock_file();
    // A lock just released can linger for a moment: a child process forked by this
    // process (any `Command`) shares the descriptor until it execs. Wait briefly
    // before deciding that another engine really holds it.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match fs.try_lock(&path) {
            Ok(Some(lock)) => return Ok(lock),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                return Err(EngineError::Unavailable {
                    reason: format!("data directory {} is in use by another stockd process", dir.display()),
                })
            }
            Err(e) => return Err(io_err("cannot lock", &path, e)),
        }
    }
}

struct RecoveredShard {
    state: ShardState,
    log: WalLog,
    last_now: Millis,
    report: ShardRecovery,
}

fn recover_shard(
    dir: &Path,
    shard: usize,
    storage: &StorageConfig,
    outbox: Option<&Arc<OutboxRetention>>,
) -> Result<RecoveredShard, EngineError> {
    let layout = DataDir::new(dir);
    let (snap_dir, wal_dir) = (layout.shard_snapshots(shard), layout.shard_wal(shard));
    // Their entries (shard-NNN in DATA, wal/ and snapshots/ in it) synced before
    // anything is written inside them.
    for d in [&snap_dir, &wal_dir] {
        create_dir_durable(&*storage.fs, d).map_err(|e| io_err("cannot create", d, e))?;
    }
    let store = SnapshotStore::open_with_fs(&snap_dir, storage.fs.clone())
        .map_err(|e| io_err("cannot open snapshots in", &snap_dir, e))?;
    let (mut state, snapshot_lsn, skipped) = match store.load_latest() {
        Ok(Some(s)) => {
            let state = decode_state(&s.payload).map_err(|e| io_err("bad snapshot", &s.path, e))?;
            (state, Some(s.lsn), s.skipped)
        }
        Ok(None) => (ShardState::new(shard), None, Vec::new()),
        // Every snapshot is bad: start empty and replay the whole WAL, if it is all there.
        Err(SnapshotError::NoValidSnapshot { skipped, .. }) => (ShardState::new(shard), None, skipped),
        Err(e) => return Err(io_err("cannot load snapshots from", &snap_dir, e)),
    };
    for (path, why) in &skipped {
        tracing::warn!(shard, path = %path.display(), reason = %why, "corrupt snapshot passed over");
    }
    if state.shard() != shard {
        return Err(io_err("snapshot of another shard in", &snap_dir, format!("it says shard {}", state.shard())));
    }
    let wal_config = WalConfig {
        segment_size: storage.segment_size,
        durability: storage.durability,
        preallocate: stockd_wal::DEFAULT_PREALLOCATE,
        faults: storage.faults.clone(),
        fs: storage.fs.clone(),
    };
    let (writer, open) = WalWriter::open(&wal_dir, wal_config).map_err(|e| io_err("cannot open WAL", &wal_dir, e))?;
    if let Some(t) = &open.truncated_tail {
        tracing::warn!(shard, segment = %t.segment.display(), offset = t.offset, bytes = t.bytes_dropped, "torn WAL tail truncated");
    }
    let from = snapshot_lsn.unwrap_or(0);
    if open.last_lsn < from {
        return Err(io_err(
            "WAL is behind its snapshot in",
            &wal_dir,
            format!("the log ends at LSN {} but the snapshot covers LSN {from}", open.last_lsn),
        ));
    }
    let reader =
        WalReader::open_with_fs(&wal_dir, storage.fs.clone()).map_err(|e| io_err("cannot read WAL", &wal_dir, e))?;
    let mut replayed = 0;
    // The clock floor: the snapshot's (state version 4), then every replayed record's.
    let mut last_now = state.clock_floor();
    replay_records(&mut state, reader.iter_from(from + 1).map(|r| r.map_err(ReplayError::Wal)), |_, now| {
        last_now = last_now.max(now);
        replayed += 1;
        Ok::<_, ReplayError>(std::ops::ControlFlow::Continue(()))
    })
    .map_err(|e| io_err("cannot replay WAL", &wal_dir, e))?;
    state.check_invariants().map_err(|e| io_err("invariant broken after replay in", &layout.shard(shard), e))?;
    let report = ShardRecovery {
        shard,
        snapshot_lsn,
        skipped_snapshots: skipped,
        records_replayed: replayed,
        last_lsn: open.last_lsn,
        truncated_tail: open.truncated_tail,
    };
    let log = WalLog::new(shard, writer, wal_dir, store, storage.clone(), outbox.cloned());
    Ok(RecoveredShard { state, log, last_now, report })
}

/// Recovers shards `0..shards` on up to one thread per core (shards share nothing, so
/// they replay independently), and returns the results in shard order.
fn recover_shards(
    dir: &Path,
    shards: usize,
    storage: &StorageConfig,
    outbox: Option<&Arc<OutboxRetention>>,
) -> Vec<Result<RecoveredShard, EngineError>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, shards.max(1));
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Result<RecoveredShard, EngineError>>>> =
        (0..shards).map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let shard = next.fetch_add(1, Ordering::Relaxed);
                if shard >= shards {
                    break;
                }
                *results[shard].lock() = Some(recover_shard(dir, shard, storage, outbox));
            });
        }
    });
    results.into_iter().map(|slot| slot.into_inner().expect("every shard was recovered by some thread")).collect()
}

/// The commands that finish reservations a crash interrupted: a hold follows its
/// header (COMMITTED → commit, RELEASED/EXPIRED/missing/PENDING → release), a
/// PENDING header, never acknowledged, is aborted, and a finished header waiting for
/// its holds to be settled is told they are. A header is only ever forgotten after
/// its holds were settled, so a missing header means an aborted (never acknowledged)
/// reservation, whose holds are rightly released.
fn settle_plan(states: &[ShardState]) -> Vec<(usize, Command)> {
    let mut plan = Vec::new();
    for s in states {
        for (id, _hold) in s.holds() {
            let reservation_id = *id;
            let header = states.get(id.shard()).and_then(|home| home.reservation_by_id(*id));
            match header {
                Some(r) if r.status == ReservationStatus::Active => {}
                Some(r) if r.status == ReservationStatus::Committed => {
                    let committed = r.lines.iter().map(|l| (l.sku.clone(), l.committed)).collect();
                    plan.push((s.shard(), Command::CommitHold { reservation_id, committed }));
                }
                _ => plan.push((s.shard(), Command::ReleaseHold { reservation_id })),
            }
        }
    }
    for s in states {
        for r in s.reservations().filter(|r| r.status == ReservationStatus::Pending) {
            plan.push((s.shard(), Command::AbortReservation { reservation_id: r.reservation_id }));
        }
    }
    // Every hold is settled by the commands above: finished headers still waiting for
    // theirs (a flow cut short by the crash) may now start their retention.
    for s in states {
        for r in s.reservations().filter(|r| r.status.is_finished() && s.is_unsettled(r.reservation_id)) {
            plan.push((s.shard(), Command::HoldsSettled { reservation_id: r.reservation_id }));
        }
    }
    plan
}

impl Engine {
    /// What recovery does once the shards run, before the first request: the steps
    /// of flows a crash cut short (`plan`), the configured warehouse table, the expiry
    /// of what fell due, the invariant check; then the sweep starts. Answers how many
    /// reservations expired.
    async fn finish_recovery(&self, plan: Vec<(usize, Command)>) -> Result<usize, EngineError> {
        // Steps of flows the crash cut short: the reserved queue slots, retried.
        for (shard, command) in plan {
            self.step(shard, command).await?;
        }
        if let Some(w) = self.config().warehouses.clone() {
            self.set_warehouses(w).await?;
        }
        let expired = self.expire_due().await?.len();
        self.check_invariants()
            .await
            .map_err(|e| EngineError::Unavailable { reason: format!("invariant broken after recovery: {e}") })?;
        self.start_sweep();
        Ok(expired)
    }

    /// Makes a standby the leader (`durable::replication`): from now on it takes
    /// commands (shipped through `StorageConfig::replicator`) and refuses replicated
    /// records; then it does what recovery does before serving (settle the flows the
    /// old leader left half done, the warehouse table, expiry, the invariant check)
    /// and starts the sweep. The caller has applied the whole replicated log first.
    pub async fn promote(&self) -> Result<usize, EngineError> {
        if !self.inner_standby().swap(false, std::sync::atomic::Ordering::AcqRel) {
            return Err(EngineError::Unavailable { reason: "this engine is not a standby".into() });
        }
        let states = self.shard_states().await?;
        let plan = settle_plan(&states);
        drop(states);
        tracing::info!(steps = plan.len(), "promoted to leader; settling what the old leader left");
        self.finish_recovery(plan).await
    }

    /// Opens (or creates) a durable engine on `dir`: recovers every shard, settles
    /// interrupted reservations, expires what fell due while down, checks every
    /// invariant, and only then returns.
    pub fn open(
        dir: &Path,
        mut config: EngineConfig,
        storage: StorageConfig,
    ) -> Result<(Engine, RecoveryReport), EngineError> {
        config.validate()?;
        let started = Instant::now();
        if storage.durability == Durability::None {
            tracing::warn!(
                "DURABILITY IS OFF (--durability none): acknowledged changes can be lost on a crash. Benchmarks only."
            );
        }
        config.shards = shard_count(&*storage.fs, dir, config.shards)?;
        let lock = lock_dir(&*storage.fs, dir)?;
        let mut states = Vec::new();
        let mut logs: Vec<Box<dyn CommandLog>> = Vec::new();
        let mut last_nows = Vec::new();
        let mut reports = Vec::new();
        let outbox = storage.outbox.map(|c| Arc::new(OutboxRetention::new(c, config.shards)));
        for r in recover_shards(dir, config.shards, &storage, outbox.as_ref()) {
            let r = r?;
            states.push(r.state);
            logs.push(Box::new(r.log));
            last_nows.push(r.last_now);
            reports.push(r.report);
        }
        let standby = config.standby;
        let plan = if standby { Vec::new() } else { settle_plan(&states) };
        let settled = plan.len();
        let engine = Engine::start(states, logs, last_nows, config, Some(lock), Some(dir.to_path_buf()));
        if let Some(outbox) = outbox {
            engine.set_outbox(outbox);
        }
        engine.set_fs(storage.fs.clone());
        // A standby writes nothing of its own: the leader's log settles for it.
        let expired = if standby {
            0
        } else {
            match crate::block_on(engine.finish_recovery(plan)) {
                Ok(n) => n,
                Err(e) => {
                    engine.shutdown();
                    return Err(e);
                }
            }
        };
        let elapsed = started.elapsed();
        let replayed: u64 = reports.iter().map(|r| r.records_replayed).sum();
        let records_per_sec = replayed as f64 / elapsed.as_secs_f64().max(1e-9);
        tracing::info!(
            dir = %dir.display(),
            shards = reports.len(),
            records_replayed = replayed,
            settled,
            expired,
            elapsed_ms = elapsed.as_millis() as u64,
            records_per_sec = records_per_sec as u64,
            "recovery complete"
        );
        Ok((engine, RecoveryReport { shards: reports, settled, expired, elapsed, records_per_sec }))
    }
}
