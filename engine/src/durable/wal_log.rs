//! `WalLog`: a shard's `CommandLog` over its WAL, plus its periodic snapshots and the
//! retention of old segments.
//!
//! The log is split in two (`WalWriter::into_parts`) for the pipelined group commit
//! (`shard.rs`): the shard thread appends to the `WalAppender` (in memory, under a
//! lock it shares with the syncer); `WalDisk`, the `LogSyncer` the shard's syncer
//! thread owns, takes everything appended so far as one batch, ships it to the
//! replicator (if any), writes and fsyncs it, and publishes the durable LSN that
//! `durable_lsn` (and so snapshots) read. With `Durability::None` and no replicator
//! there is nothing to wait for: the shard keeps the disk half and syncs inline.
//!
//! Snapshots never stall the shard thread: when one is due (after a sync, once enough
//! records, at least `snapshot_every_records` and at least as many as the state has
//! entries, or time have passed; the time trigger respects the same floor) the shard
//! only names the LSN it has synced. A short-lived thread builds the state at that LSN
//! by replay, exactly as recovery would (`state_at`: the newest good snapshot, then
//! every WAL record after it through `apply_logged`), encodes and writes it, and runs
//! the retention pass (`outbox::plan`: which snapshots to keep, the WAL bound, what the
//! outbox holds). So the shard thread's cost of a snapshot is O(1), whatever the size
//! of its state; the pass costs O(state) decode + encode and O(records) replay off the
//! thread, and holds one extra copy of the state while it runs. When it is done, WAL
//! segments wholly below the bound are deleted by whoever owns the disk half (the
//! syncer thread, after its next round; or the shard thread when it syncs inline). With an outbox consumer registered, the same pass (without a snapshot) also
//! runs when its floor moves, at most once a second.

use super::log_record::{encode_record_into, replay_records, ReplayError};
use super::outbox::{plan, starts_new_work, OnDisk, OutboxRetention};
use super::replication::{Confirmation, ShippedRecord};
use super::state_codec::decode_state;
use super::state_codec::encode_state;
use super::StorageConfig;
use crate::command::Command;
use crate::command_log::CommandLog;
use crate::command_log::LogSyncer;
use crate::error::EngineError;
use crate::shard_state::ShardState;
use crate::Millis;
use crossbeam_channel::{Receiver, TryRecvError};
use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stockd_snapshots::SnapshotStore;
use stockd_wal::{WalAppender, WalSyncer, WalWriter};

/// Least time between two retention passes started by the outbox floor moving.
const FLOOR_PASS_EVERY: Duration = Duration::from_secs(1);

pub(crate) struct WalLog {
    shard: usize,
    /// The appending half, shared with the disk half (which takes what it holds).
    staged: Arc<Mutex<Staged>>,
    /// The disk half, until a syncer thread takes it (`CommandLog::syncer`).
    disk: Option<WalDisk>,
    /// The LSN the disk half made durable.
    durable: Arc<AtomicU64>,
    /// A WAL bound a retention pass chose, for the disk half to apply (0: none).
    prune_before: Arc<AtomicU64>,
    wal_dir: PathBuf,
    snapshots: Arc<SnapshotStore>,
    config: StorageConfig,
    since_snapshot: u64,
    last_snapshot: Instant,
    in_flight: Option<Receiver<Result<PassDone, String>>>,
    /// One payload buffer for every record (the writer copies it into its own).
    scratch: Vec<u8>,
    outbox: Option<Arc<OutboxRetention>>,
    /// The outbox floor the last retention pass started with, and when.
    pass_floor: u64,
    last_pass: Instant,
}

/// What the shard thread appended and the disk half has not taken yet.
struct Staged {
    appender: WalAppender,
    /// Records appended since the last sync, for the replicator (leader only).
    unshipped: Vec<ShippedRecord>,
}

/// The disk half of a `WalLog`: the shard's `LogSyncer`.
pub(crate) struct WalDisk {
    shard: usize,
    syncer: WalSyncer,
    staged: Arc<Mutex<Staged>>,
    replicator: Option<Arc<dyn super::Replicator>>,
    /// The last LSN handed to the replicator (0: none yet), and the last it confirmed.
    shipped_lsn: u64,
    confirmed_lsn: u64,
    durable: Arc<AtomicU64>,
    prune_before: Arc<AtomicU64>,
}

impl WalDisk {
    fn remove_before(&mut self, bound: u64) {
        match self.syncer.remove_segments_before(bound) {
            Ok(n) if n > 0 => {
                tracing::info!(shard = self.shard, segments = n, "WAL segments no longer needed removed")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(shard = self.shard, error = %e, "could not remove covered WAL segments"),
        }
    }
}

impl LogSyncer for WalDisk {
    fn sync(&mut self) -> Result<u64, EngineError> {
        let (batch, shipped) = {
            let mut staged = self.staged.lock();
            let shipped = if staged.unshipped.is_empty() { Vec::new() } else { std::mem::take(&mut staged.unshipped) };
            (staged.appender.take(), shipped)
        };
        // Shipped before the local sync, so the two overlap; nothing is answered
        // before both the sync and the replicator's confirmation.
        if let (Some(r), Some(last)) = (&self.replicator, shipped.last()) {
            self.shipped_lsn = last.lsn;
            r.ship(self.shard, &shipped);
        }
        let lsn = self.syncer.write(batch).map_err(failed)?;
        self.durable.store(lsn, Ordering::Release);
        Ok(lsn)
    }

    fn confirm(&mut self, timeout: Duration) -> Confirmation {
        match &self.replicator {
            // Nothing shipped since the last confirmation (a sync that found the
            // records already taken by the one before): nothing new to wait for.
            Some(r) if self.shipped_lsn > self.confirmed_lsn => {
                let confirmation = r.confirm(self.shard, self.shipped_lsn, timeout);
                if confirmation == Confirmation::Confirmed {
                    self.confirmed_lsn = self.shipped_lsn;
                }
                confirmation
            }
            _ => Confirmation::Confirmed,
        }
    }

    fn housekeeping(&mut self) {
        let bound = self.prune_before.swap(0, Ordering::AcqRel);
        if bound > 0 {
            self.remove_before(bound);
        }
    }
}

/// What a background pass did: the snapshot it wrote, and the WAL bound it chose.
struct PassDone {
    snapshot_lsn: Option<u64>,
    wal_bound: Option<u64>,
}

fn failed(e: impl std::fmt::Display) -> EngineError {
    EngineError::Unavailable { reason: format!("write-ahead log failed: {e}") }
}

/// WAL segments `(first_lsn, bytes)` in `dir`, ascending. `bytes` is the file's size:
/// the disk space the segment holds, which is what the outbox's ceiling bounds (a
/// format version 3 segment's preallocated zeros included; a rotated segment holds
/// about `segment_size`).
fn list_segments(fs: &dyn stockd_fs::Fs, dir: &Path) -> Result<Vec<(u64, u64)>, String> {
    let mut out = Vec::new();
    for entry in fs.read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))? {
        if let Some(lsn) = stockd_wal::parse_segment_file_name(&entry.name) {
            let len = fs.metadata(&entry.path).map_err(|e| format!("{}: {e}", entry.path.display()))?.len;
            out.push((lsn, len));
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// The background pass: writes the snapshot (if any), plans retention, prunes
/// snapshots, publishes the outbox figures, and returns the WAL bound for the shard
/// thread to apply.
fn retention_pass(
    store: &SnapshotStore,
    fs: &Arc<dyn stockd_fs::Fs>,
    wal_dir: &Path,
    shard: usize,
    keep: usize,
    outbox: Option<&OutboxRetention>,
    write: Option<u64>,
) -> Result<PassDone, String> {
    let mut snapshot_lsn = None;
    if let Some(lsn) = write {
        if let Some(state) = state_at(store, fs, wal_dir, shard, lsn)? {
            store.write(lsn, &encode_state(&state)).map_err(|e| e.to_string())?;
            snapshot_lsn = Some(lsn);
        }
    }
    let fs = &**fs;
    let listed = store.list().map_err(|e| e.to_string())?;
    let disk =
        OnDisk { snapshots: listed.iter().map(|i| (i.lsn, i.size)).collect(), segments: list_segments(fs, wal_dir)? };
    let floor = outbox.map(|o| o.floor(shard));
    let p = plan(&disk, keep, floor, outbox.map(|o| o.config()).unwrap_or_default());
    if let (Some(o), Some((lost, new_floor))) = (outbox, p.dropped) {
        o.record_dropped(shard, lost, new_floor);
        tracing::error!(
            shard,
            records = lost,
            first_lsn = new_floor - lost + 1,
            last_lsn = new_floor,
            "outbox over its ceiling (policy drop): WAL records removed before they were published; their events \
             are lost"
        );
    }
    store.prune(p.keep_snapshots).map_err(|e| e.to_string())?;
    if let Some(o) = outbox {
        o.set_held(shard, p.held, p.refusing);
        if p.refusing {
            tracing::warn!(shard, held_bytes = p.held, "outbox over its ceiling (policy refuse): new writes refused");
        }
    }
    // Every retained snapshot (a corrupt one prune kept too) and the outbox's base
    // must find the WAL after it.
    let oldest = store.oldest_retained_lsn().map_err(|e| e.to_string())?;
    let wal_bound = oldest.map(|l| (l + 1).min(p.wal_bound));
    Ok(PassDone { snapshot_lsn, wal_bound })
}

/// The shard's state as of WAL record `lsn`, built as recovery builds it: the newest
/// snapshot that verifies, then every record after it up to `lsn`, replayed through
/// `apply_logged` (replay is deterministic, so this is the state the shard had when
/// it synced `lsn`). `None` when the newest snapshot already is at `lsn`.
fn state_at(
    store: &SnapshotStore,
    fs: &Arc<dyn stockd_fs::Fs>,
    wal_dir: &Path,
    shard: usize,
    lsn: u64,
) -> Result<Option<ShardState>, String> {
    let (mut state, from) = match store.load_latest() {
        Ok(Some(s)) => (decode_state(&s.payload).map_err(|e| format!("{}: {e}", s.path.display()))?, s.lsn),
        Ok(None) | Err(stockd_snapshots::SnapshotError::NoValidSnapshot { .. }) => (ShardState::new(shard), 0),
        Err(e) => return Err(e.to_string()),
    };
    if from >= lsn {
        return Ok(None);
    }
    let reader = stockd_wal::WalReader::open_with_fs(wal_dir, fs.clone()).map_err(|e| e.to_string())?;
    let mut next = from + 1;
    let mut reached = false;
    // A jump is found before its record is applied (the state is dropped on error).
    let records = reader.iter_from(from + 1).map(|r| {
        let r = r.map_err(ReplayError::Wal)?;
        if r.lsn != next {
            let jump = format!("WAL jumps from LSN {} to {} after snapshot {from}", next - 1, r.lsn);
            return Err(ReplayError::Other(jump));
        }
        next += 1;
        Ok(r)
    });
    replay_records(&mut state, records, |at, _| {
        reached = at == lsn;
        Ok(if reached { std::ops::ControlFlow::Break(()) } else { std::ops::ControlFlow::Continue(()) })
    })
    .map_err(|e| e.to_string())?;
    if reached {
        return Ok(Some(state));
    }
    Err(format!("the WAL ends at LSN {} before the snapshot's LSN {lsn}", next - 1))
}

impl WalLog {
    pub(crate) fn new(
        shard: usize,
        writer: WalWriter,
        wal_dir: PathBuf,
        snapshots: SnapshotStore,
        config: StorageConfig,
        outbox: Option<Arc<OutboxRetention>>,
    ) -> WalLog {
        let (appender, syncer) = writer.into_parts();
        let durable = Arc::new(AtomicU64::new(syncer.durable_lsn()));
        let prune_before = Arc::new(AtomicU64::new(0));
        let staged = Arc::new(Mutex::new(Staged { appender, unshipped: Vec::new() }));
        let disk = WalDisk {
            shard,
            syncer,
            staged: staged.clone(),
            replicator: config.replicator.clone(),
            shipped_lsn: 0,
            confirmed_lsn: 0,
            durable: durable.clone(),
            prune_before: prune_before.clone(),
        };
        WalLog {
            shard,
            staged,
            disk: Some(disk),
            durable,
            prune_before,
            wal_dir,
            snapshots: Arc::new(snapshots),
            config,
            since_snapshot: 0,
            last_snapshot: Instant::now(),
            in_flight: None,
            scratch: Vec::with_capacity(256),
            outbox,
            pass_floor: 0,
            last_pass: Instant::now(),
        }
    }

    /// Collects a finished background pass; then drops WAL segments below its bound.
    /// False while one is still running.
    fn collect_pass(&mut self) -> bool {
        let Some(rx) = &self.in_flight else { return true };
        match rx.try_recv() {
            Err(TryRecvError::Empty) => false,
            Err(TryRecvError::Disconnected) => {
                self.in_flight = None;
                true
            }
            Ok(result) => {
                self.in_flight = None;
                match result {
                    Ok(done) => {
                        if let Some(lsn) = done.snapshot_lsn {
                            tracing::info!(shard = self.shard, lsn, "snapshot written");
                        }
                        if let Some(bound) = done.wal_bound {
                            match &mut self.disk {
                                Some(disk) => disk.remove_before(bound),
                                // The syncer thread applies it after its next round.
                                None => {
                                    self.prune_before.fetch_max(bound, Ordering::AcqRel);
                                }
                            }
                        }
                    }
                    Err(e) => {
                        tracing::error!(shard = self.shard, error = %e, "snapshot or retention pass failed; the WAL is kept")
                    }
                }
                true
            }
        }
    }

    /// Starts a background pass (with a snapshot at LSN `write`, if given).
    fn start_pass(&mut self, write: Option<u64>) -> bool {
        let store = self.snapshots.clone();
        let keep = self.config.snapshots_kept.max(2);
        let (shard, wal_dir, outbox) = (self.shard, self.wal_dir.clone(), self.outbox.clone());
        let fs = self.config.fs.clone();
        self.pass_floor = outbox.as_ref().map_or(0, |o| o.floor(shard));
        self.last_pass = Instant::now();
        let (tx, rx) = crossbeam_channel::bounded(1);
        let spawned = std::thread::Builder::new().name(format!("stockd-snapshot-{shard}")).spawn(move || {
            let _ = tx.send(retention_pass(&store, &fs, &wal_dir, shard, keep, outbox.as_deref(), write));
        });
        match spawned {
            Ok(_) => {
                self.in_flight = Some(rx);
                true
            }
            Err(e) => {
                tracing::warn!(shard = self.shard, error = %e, "could not start a snapshot thread");
                false
            }
        }
    }

    /// Whether the outbox floor moved since the last pass and a pass could release
    /// something (what it holds, or a refusal).
    fn floor_pass_due(&self, every: Duration) -> bool {
        self.outbox.as_ref().is_some_and(|o| {
            o.floor(self.shard) != self.pass_floor
                && (o.held_bytes(self.shard) > 0 || o.is_refusing(self.shard))
                && self.last_pass.elapsed() >= every
        })
    }
}

/// The snapshot policy: `since` records were logged since the last snapshot,
/// `elapsed` ago, and the state holds `entries` entries. Both triggers (records and
/// time) respect the per-entry floor: a snapshot pass decodes and encodes the whole
/// state (off the shard thread), so a large state is not rewritten more often than
/// once per about as many records as it has entries, whatever the clock says.
fn snapshot_due(config: &StorageConfig, since: u64, entries: usize, elapsed: Duration) -> bool {
    let floor = (entries as u64).saturating_mul(config.snapshot_records_per_entry);
    since >= config.snapshot_every_records.max(floor)
        || (since > 0 && since >= floor && elapsed >= config.snapshot_every)
}

impl CommandLog for WalLog {
    fn append(&mut self, now: Millis, command: &Command) -> Result<(), EngineError> {
        let record_type = encode_record_into(&mut self.scratch, now, command);
        let mut staged = self.staged.lock();
        let lsn = staged.appender.append(record_type, &self.scratch).map_err(failed)?;
        if self.config.replicator.is_some() {
            staged.unshipped.push(ShippedRecord { lsn, record_type, payload: self.scratch.clone() });
        }
        drop(staged);
        self.since_snapshot += 1;
        Ok(())
    }

    fn append_replica(&mut self, lsn: u64, now: Millis, command: &Command) -> Result<(), EngineError> {
        let record_type = encode_record_into(&mut self.scratch, now, command);
        let got = self.staged.lock().appender.append(record_type, &self.scratch).map_err(failed)?;
        self.since_snapshot += 1;
        if got != lsn {
            return Err(EngineError::Unavailable {
                reason: format!("replica out of step: the leader's record {lsn} landed at local LSN {got}"),
            });
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), EngineError> {
        match &mut self.disk {
            Some(disk) => disk.sync().map(|_| ()),
            None => Err(failed("the log is synced by its syncer thread, not the shard's")),
        }
    }

    fn confirm(&mut self, timeout: Duration) -> Confirmation {
        match &mut self.disk {
            Some(disk) => disk.confirm(timeout),
            None => Confirmation::Confirmed,
        }
    }

    fn durable_lsn(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    fn syncer(&mut self) -> Option<Box<dyn LogSyncer>> {
        // Nothing to wait for (no fsync, no replicated log): a syncer thread would only
        // add a hand-off per batch.
        if self.config.durability == super::Durability::None && self.config.replicator.is_none() {
            return None;
        }
        self.disk.take().map(|d| Box::new(d) as Box<dyn LogSyncer>)
    }

    fn admit(&mut self, command: &Command) -> Result<(), EngineError> {
        let Some(outbox) = self.outbox.clone() else { return Ok(()) };
        if !outbox.is_refusing(self.shard) || !starts_new_work(command) {
            return Ok(());
        }
        // Refusing: nothing is synced, so `after_sync` does not run; look here for a
        // finished pass and start one when the publisher moved on.
        if self.collect_pass() && self.floor_pass_due(Duration::from_millis(100)) {
            self.start_pass(None);
        }
        if outbox.is_refusing(self.shard) {
            return Err(outbox.refusal(self.shard));
        }
        Ok(())
    }

    fn after_sync(&mut self, state: &ShardState) {
        if !self.collect_pass() {
            return; // one pass at a time
        }
        let due = snapshot_due(&self.config, self.since_snapshot, state.entry_count(), self.last_snapshot.elapsed());
        if due {
            // The pass rebuilds the state at the durable LSN by replay (the records up
            // to it are on disk, whatever is being appended after it); nothing is
            // copied here.
            let lsn = self.durable_lsn();
            if self.start_pass(Some(lsn)) {
                self.since_snapshot = 0;
                self.last_snapshot = Instant::now();
            }
        } else if self.floor_pass_due(FLOOR_PASS_EVERY) {
            self.start_pass(None);
        }
    }

    fn finish(&mut self) {
        // Let a snapshot in progress complete so shutdown leaves no temp file behind.
        if let Some(rx) = self.in_flight.take() {
            let _ = rx.recv();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_policy_counts_records_and_amortizes_over_the_state() {
        let config = StorageConfig {
            snapshot_every_records: 100,
            snapshot_every: Duration::from_secs(300),
            ..Default::default()
        };
        let soon = Duration::from_secs(1);
        // A small state: the record count decides.
        assert!(!snapshot_due(&config, 99, 10, soon));
        assert!(snapshot_due(&config, 100, 10, soon));
        // A state of 1,000 entries is not cloned every 100 records, only every 1,000.
        assert!(!snapshot_due(&config, 100, 1_000, soon));
        assert!(!snapshot_due(&config, 999, 1_000, soon));
        assert!(snapshot_due(&config, 1_000, 1_000, soon));
        // Time forces one, if anything was logged, on a small state...
        assert!(snapshot_due(&config, 1, 1, Duration::from_secs(300)));
        assert!(snapshot_due(&config, 10, 10, Duration::from_secs(300)));
        assert!(!snapshot_due(&config, 0, 10, Duration::from_secs(300)));
        // ...but never on a large one before the per-entry floor (issue 13, defect 7:
        // the time trigger cloned a million-entry state every 5 minutes).
        assert!(!snapshot_due(&config, 1, 1_000, Duration::from_secs(300)));
        assert!(!snapshot_due(&config, 999, 1_000, Duration::from_secs(3_000)));
        assert!(snapshot_due(&config, 1_000, 1_000, Duration::from_secs(300)));
        // The floor can be turned off.
        let off = StorageConfig { snapshot_records_per_entry: 0, ..config.clone() };
        assert!(snapshot_due(&off, 100, 1_000, soon));
        // A huge state cannot overflow the floor.
        let many = StorageConfig { snapshot_records_per_entry: u64::MAX, ..config };
        assert!(!snapshot_due(&many, u64::MAX - 1, usize::MAX, soon));
    }
}
