//! `WalLog`: a shard's `CommandLog` over its WAL, plus its periodic snapshots.
//!
//! Snapshots are taken off the shard thread: after a sync, when enough records (at
//! least `snapshot_every_records`, and at least as many as the state has entries, so
//! the clone's O(state) cost stays amortized) or time have passed, the shard hands a clone of its state to a short-lived thread that
//! encodes and writes it; when that snapshot is durable, WAL segments wholly covered
//! by every retained snapshot are deleted (on the shard thread, which owns the writer).

use super::log_record::encode_record_into;
use super::state_codec::encode_state;
use super::StorageConfig;
use crate::command::Command;
use crate::command_log::CommandLog;
use crate::error::EngineError;
use crate::shard_state::ShardState;
use crate::Millis;
use crossbeam_channel::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stockd_snapshots::SnapshotStore;
use stockd_wal::WalWriter;

pub(crate) struct WalLog {
    shard: usize,
    writer: WalWriter,
    snapshots: Arc<SnapshotStore>,
    config: StorageConfig,
    since_snapshot: u64,
    last_snapshot: Instant,
    in_flight: Option<Receiver<Result<u64, String>>>,
    /// One payload buffer for every record (the writer copies it into its own).
    scratch: Vec<u8>,
}

fn failed(e: impl std::fmt::Display) -> EngineError {
    EngineError::Unavailable { reason: format!("write-ahead log failed: {e}") }
}

impl WalLog {
    pub(crate) fn new(shard: usize, writer: WalWriter, snapshots: SnapshotStore, config: StorageConfig) -> WalLog {
        WalLog {
            shard,
            writer,
            snapshots: Arc::new(snapshots),
            config,
            since_snapshot: 0,
            last_snapshot: Instant::now(),
            in_flight: None,
            scratch: Vec::with_capacity(256),
        }
    }

    /// Collects a finished background snapshot; then drops covered WAL segments.
    fn collect_snapshot(&mut self) -> bool {
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
                    Ok(lsn) => {
                        tracing::info!(shard = self.shard, lsn, "snapshot written");
                        match self.snapshots.oldest_retained_lsn() {
                            Ok(Some(oldest)) => match self.writer.remove_segments_before(oldest + 1) {
                                Ok(n) if n > 0 => tracing::info!(
                                    shard = self.shard,
                                    segments = n,
                                    "WAL segments covered by snapshots removed"
                                ),
                                Ok(_) => {}
                                Err(e) => {
                                    tracing::warn!(shard = self.shard, error = %e, "could not remove covered WAL segments")
                                }
                            },
                            Ok(None) => {}
                            Err(e) => tracing::warn!(shard = self.shard, error = %e, "could not list snapshots"),
                        }
                    }
                    Err(e) => tracing::error!(shard = self.shard, error = %e, "snapshot failed; the WAL is kept"),
                }
                true
            }
        }
    }
}

/// The snapshot policy: `since` records were logged since the last snapshot,
/// `elapsed` ago, and the state holds `entries` entries.
fn snapshot_due(config: &StorageConfig, since: u64, entries: usize, elapsed: Duration) -> bool {
    let floor = (entries as u64).saturating_mul(config.snapshot_records_per_entry);
    since >= config.snapshot_every_records.max(floor) || (since > 0 && elapsed >= config.snapshot_every)
}

impl CommandLog for WalLog {
    fn append(&mut self, now: Millis, command: &Command) -> Result<(), EngineError> {
        let record_type = encode_record_into(&mut self.scratch, now, command);
        self.writer.append(record_type, &self.scratch).map_err(failed)?;
        self.since_snapshot += 1;
        Ok(())
    }

    fn sync(&mut self) -> Result<(), EngineError> {
        self.writer.sync().map(|_| ()).map_err(failed)
    }

    fn durable_lsn(&self) -> u64 {
        self.writer.durable_lsn()
    }

    fn after_sync(&mut self, state: &ShardState) {
        if !self.collect_snapshot() {
            return; // one snapshot at a time
        }
        let due = snapshot_due(&self.config, self.since_snapshot, state.entry_count(), self.last_snapshot.elapsed());
        if !due {
            return;
        }
        // Everything appended is synced (we are called right after a sync), so the
        // state covers exactly the records up to the durable LSN.
        let lsn = self.writer.durable_lsn();
        let state = state.clone();
        let store = self.snapshots.clone();
        let keep = self.config.snapshots_kept.max(2);
        let (tx, rx) = crossbeam_channel::bounded(1);
        let spawned = std::thread::Builder::new().name(format!("stockd-snapshot-{}", self.shard)).spawn(move || {
            let result = store
                .write(lsn, &encode_state(&state))
                .and_then(|_| store.prune(keep))
                .map(|_| lsn)
                .map_err(|e| e.to_string());
            let _ = tx.send(result);
        });
        match spawned {
            Ok(_) => {
                self.in_flight = Some(rx);
                self.since_snapshot = 0;
                self.last_snapshot = Instant::now();
            }
            Err(e) => tracing::warn!(shard = self.shard, error = %e, "could not start a snapshot thread"),
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
        // Time still forces one, if anything was logged.
        assert!(snapshot_due(&config, 1, 1_000, Duration::from_secs(300)));
        assert!(!snapshot_due(&config, 0, 1_000, Duration::from_secs(300)));
        // The floor can be turned off.
        let off = StorageConfig { snapshot_records_per_entry: 0, ..config.clone() };
        assert!(snapshot_due(&off, 100, 1_000, soon));
        // A huge state cannot overflow the floor.
        let many = StorageConfig { snapshot_records_per_entry: u64::MAX, ..config };
        assert!(!snapshot_due(&many, u64::MAX - 1, usize::MAX, soon));
    }
}
