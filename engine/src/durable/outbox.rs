//! Outbox retention: WAL kept for a consumer that follows it (the Kafka publisher).
//!
//! Without it, a shard removes WAL segments (and snapshots) as soon as newer snapshots
//! cover them. An outbox consumer registers at open (`StorageConfig::outbox`) and
//! advances its acknowledged LSN per shard ([`OutboxRetention::advance`]); until then
//! its floor is 0 (keep everything). A shard then keeps, besides what recovery needs:
//! the newest snapshot at or below the floor (the *base* a `WalFollower` opened at the
//! floor starts from) and every snapshot after it, and the WAL from the base on (from
//! LSN 1 when no snapshot is at or below the floor). So a consumer that restarts at its
//! floor rebuilds the state there and misses nothing.
//!
//! What this costs is measured per shard ([`OutboxRetention::held_bytes`]: WAL
//! segments and snapshots kept only for the outbox) and bounded by a ceiling
//! (`OutboxConfig::max_bytes`). Past it, the policy decides:
//! - [`OutboxFullPolicy::Refuse`] (the default): the shard refuses new work (commands
//!   that start something: item writes, new reservations, holds) with
//!   SERVICE_UNAVAILABLE naming the reason, until the consumer catches up. Steps that
//!   settle what exists (commit, release, expiry, activate, abort) still run.
//! - [`OutboxFullPolicy::Drop`]: what is held is removed anyway; the records lost are
//!   counted ([`OutboxRetention::dropped_records`]) and logged at error level.
//!
//! The bookkeeping runs off the shard thread, in the same background job that writes
//! snapshots (`wal_log.rs`); only the segment removal itself runs on the shard thread,
//! which owns the WAL writer.

use crate::command::Command;
use crate::error::EngineError;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// What happens when the WAL held for the outbox passes `OutboxConfig::max_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutboxFullPolicy {
    /// Refuse new writes (SERVICE_UNAVAILABLE) until the consumer catches up. Never
    /// loses an event.
    #[default]
    Refuse,
    /// Remove the held WAL anyway; count and log the records whose events are lost.
    Drop,
}

/// Registers an outbox consumer at open (`StorageConfig::outbox`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxConfig {
    /// Most bytes (WAL segments and snapshots) a shard keeps for the outbox beyond what
    /// recovery needs; `None`: no ceiling.
    pub max_bytes: Option<u64>,
    pub policy: OutboxFullPolicy,
}

#[derive(Debug, Default)]
struct ShardOutbox {
    floor: AtomicU64,
    held_bytes: AtomicU64,
    dropped: AtomicU64,
    refusing: AtomicBool,
}

/// The retention floors of an outbox consumer, one per shard, and the figures of what
/// they hold. Shared by the engine's shards and the consumer (`Engine::outbox`).
#[derive(Debug)]
pub struct OutboxRetention {
    config: OutboxConfig,
    shards: Vec<ShardOutbox>,
}

impl OutboxRetention {
    pub(crate) fn new(config: OutboxConfig, shards: usize) -> OutboxRetention {
        OutboxRetention { config, shards: (0..shards).map(|_| ShardOutbox::default()).collect() }
    }

    pub fn config(&self) -> OutboxConfig {
        self.config
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Records that the consumer has everything of `shard` up to `lsn` (its events
    /// are acknowledged): what is older may go. Never moves the floor back.
    pub fn advance(&self, shard: usize, lsn: u64) {
        if let Some(s) = self.shards.get(shard) {
            s.floor.fetch_max(lsn, Ordering::AcqRel);
        }
    }

    /// The LSN up to which `shard`'s records may be removed (what was acknowledged,
    /// or what the `Drop` policy gave up).
    pub fn floor(&self, shard: usize) -> u64 {
        self.shards.get(shard).map_or(0, |s| s.floor.load(Ordering::Acquire))
    }

    /// Bytes `shard` keeps only for the outbox (WAL segments and snapshots recovery
    /// no longer needs), as of its last retention pass.
    pub fn held_bytes(&self, shard: usize) -> u64 {
        self.shards.get(shard).map_or(0, |s| s.held_bytes.load(Ordering::Acquire))
    }

    /// WAL records of `shard` removed before the consumer acknowledged them (policy
    /// `Drop` only): their events are lost.
    pub fn dropped_records(&self, shard: usize) -> u64 {
        self.shards.get(shard).map_or(0, |s| s.dropped.load(Ordering::Acquire))
    }

    /// Whether `shard` refuses new work because it holds more than the ceiling.
    pub fn is_refusing(&self, shard: usize) -> bool {
        self.shards.get(shard).is_some_and(|s| s.refusing.load(Ordering::Acquire))
    }

    pub(crate) fn set_held(&self, shard: usize, bytes: u64, refusing: bool) {
        if let Some(s) = self.shards.get(shard) {
            s.held_bytes.store(bytes, Ordering::Release);
            s.refusing.store(refusing, Ordering::Release);
        }
    }

    pub(crate) fn record_dropped(&self, shard: usize, records: u64, new_floor: u64) {
        if let Some(s) = self.shards.get(shard) {
            s.dropped.fetch_add(records, Ordering::AcqRel);
            s.floor.fetch_max(new_floor, Ordering::AcqRel);
        }
    }

    /// The refusal a shard over its ceiling answers to new work.
    pub(crate) fn refusal(&self, shard: usize) -> EngineError {
        EngineError::Unavailable {
            reason: format!(
                "shard {shard}: the outbox holds {} bytes of WAL not yet published, over its ceiling of {} \
                 (outbox-full policy refuse); writes resume when the publisher catches up",
                self.held_bytes(shard),
                self.config.max_bytes.unwrap_or(0)
            ),
        }
    }
}

/// Whether `command` starts new work (refused while the outbox is full) rather than
/// settling work already accepted (never refused: commit, release, expiry and the
/// internal steps of a flow must always run).
pub(crate) fn starts_new_work(command: &Command) -> bool {
    match command {
        Command::SetItem(_)
        | Command::AdjustItem(_)
        | Command::Transfer(_)
        | Command::ReceiveIncoming { .. }
        | Command::DeleteItem { .. }
        | Command::SetSalesBlocked { .. }
        | Command::OpenReservation { .. }
        | Command::ReserveLocal(_)
        | Command::PlaceHold { .. }
        | Command::ExtendReservation { .. }
        | Command::ExtendReservationWithin { .. }
        | Command::ReturnSold(_) => true,
        Command::SetWarehouses { .. }
        | Command::ActivateReservation { .. }
        | Command::AbortReservation { .. }
        | Command::ReleaseHold { .. }
        | Command::CommitHold { .. }
        | Command::CommitReservation { .. }
        | Command::ReleaseReservation { .. }
        | Command::ExpireReservation { .. }
        | Command::ExpireDue { .. }
        | Command::HoldsSettled { .. } => false,
    }
}

/// One retention pass's inputs, as listed on disk: snapshots `(lsn, bytes)` and WAL
/// segments `(first_lsn, bytes)`, both ascending.
#[derive(Debug, Clone, Default)]
pub(crate) struct OnDisk {
    pub snapshots: Vec<(u64, u64)>,
    pub segments: Vec<(u64, u64)>,
}

/// What one retention pass decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Snapshots to keep (newest first counted): passed to `SnapshotStore::prune`.
    pub keep_snapshots: usize,
    /// Remove WAL segments whose records are all below this LSN.
    pub wal_bound: u64,
    /// Bytes kept only for the outbox.
    pub held: u64,
    pub refusing: bool,
    /// Records given up (policy `Drop`) and the floor that gives them up.
    pub dropped: Option<(u64, u64)>,
}

/// Bytes of the segments removed by `normal` but kept by `kept` (`kept <= normal`).
fn wal_bytes_between(segments: &[(u64, u64)], kept: u64, normal: u64) -> u64 {
    (0..segments.len().saturating_sub(1))
        .filter(|&i| segments[i + 1].0 <= normal && segments[i + 1].0 > kept)
        .map(|i| segments[i].1)
        .sum()
}

/// Decides a retention pass (pure). `keep`: snapshots recovery keeps; `floor`: the
/// outbox floor (None: no outbox).
pub(crate) fn plan(disk: &OnDisk, keep: usize, floor: Option<u64>, config: OutboxConfig) -> Plan {
    let keep = keep.max(1);
    let snaps = &disk.snapshots;
    // Recovery alone: the newest `keep` snapshots, and the WAL after the oldest of them.
    let normal_oldest = snaps.len().checked_sub(keep).map_or(snaps.first(), |i| snaps.get(i)).map(|s| s.0);
    let normal_bound = normal_oldest.map_or(0, |l| l + 1);
    let normal = Plan { keep_snapshots: keep, wal_bound: normal_bound, held: 0, refusing: false, dropped: None };
    let Some(floor) = floor else { return normal };
    // The outbox: the newest snapshot at or below the floor (none: the empty state
    // at LSN 0), the WAL after it, and every snapshot after it (so that when the floor
    // passes one, it becomes the base and what is older can go).
    let base = snaps.iter().rposition(|s| s.0 <= floor);
    let outbox_bound = base.map_or(1, |i| snaps[i].0 + 1);
    let keep_snapshots = keep.max(snaps.len() - base.unwrap_or(0));
    let held_snapshots: u64 =
        snaps[base.unwrap_or(0)..snaps.len().saturating_sub(keep).max(base.unwrap_or(0))].iter().map(|s| s.1).sum();
    let held = wal_bytes_between(&disk.segments, outbox_bound.min(normal_bound), normal_bound) + held_snapshots;
    let over = config.max_bytes.is_some_and(|max| held > max);
    match (over, config.policy) {
        (true, OutboxFullPolicy::Drop) => {
            // Give up what is held. A follower then restarts from the oldest snapshot
            // the WAL continues from (the oldest one recovery keeps): every record
            // after the floor up to it is lost.
            let new_floor = normal_oldest.unwrap_or(0).max(floor);
            let lost = new_floor - floor;
            Plan { dropped: (lost > 0).then_some((lost, new_floor)), ..normal }
        }
        (over, _) => {
            Plan { keep_snapshots, wal_bound: outbox_bound.min(normal_bound), held, refusing: over, dropped: None }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk() -> OnDisk {
        // Segments of 100 bytes starting at LSN 1, 11, 21, ..., 91; snapshots at 25,
        // 45, 65, 85 of 1,000 bytes.
        OnDisk {
            snapshots: vec![(25, 1_000), (45, 1_000), (65, 1_000), (85, 1_000)],
            segments: (0..10).map(|i| (1 + 10 * i, 100)).collect(),
        }
    }

    #[test]
    fn without_an_outbox_recovery_decides() {
        let p = plan(&disk(), 2, None, OutboxConfig::default());
        assert_eq!(p, Plan { keep_snapshots: 2, wal_bound: 66, held: 0, refusing: false, dropped: None });
    }

    #[test]
    fn the_floor_keeps_its_base_snapshot_and_the_wal_after_it() {
        let p = plan(&disk(), 2, Some(50), OutboxConfig::default());
        // Base: snapshot 45; WAL from 46 (the segment starting at 41 stays).
        assert_eq!(p.wal_bound, 46);
        assert_eq!(p.keep_snapshots, 3);
        // Segments 41 and 51 (kept for the outbox only) and snapshot 45.
        assert_eq!(p.held, 200 + 1_000);
        assert!(!p.refusing);
        // No snapshot at or below the floor: the whole WAL and every snapshot stay.
        let p = plan(&disk(), 2, Some(10), OutboxConfig::default());
        assert_eq!((p.wal_bound, p.keep_snapshots), (1, 4));
        assert_eq!(p.held, 600 + 2_000);
        // A floor past the recovery bound holds nothing.
        let p = plan(&disk(), 2, Some(90), OutboxConfig::default());
        assert_eq!((p.wal_bound, p.held), (66, 0));
    }

    #[test]
    fn past_the_ceiling_refuse_keeps_everything_and_drop_gives_it_up() {
        let refuse = OutboxConfig { max_bytes: Some(1_000), policy: OutboxFullPolicy::Refuse };
        let p = plan(&disk(), 2, Some(50), refuse);
        assert!(p.refusing);
        assert_eq!(p.wal_bound, 46);
        let drop = OutboxConfig { max_bytes: Some(1_000), policy: OutboxFullPolicy::Drop };
        let p = plan(&disk(), 2, Some(50), drop);
        assert_eq!((p.wal_bound, p.keep_snapshots, p.held, p.refusing), (66, 2, 0, false));
        // A follower restarts from snapshot 65: records 51..=65 are lost.
        assert_eq!(p.dropped, Some((15, 65)));
        // Under the ceiling nothing is refused or dropped.
        let roomy = OutboxConfig { max_bytes: Some(10_000), policy: OutboxFullPolicy::Drop };
        assert!(plan(&disk(), 2, Some(50), roomy).dropped.is_none());
    }
}
