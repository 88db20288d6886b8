//! `WalFollower`: reads one shard's WAL as an outbox. It rebuilds the shard's state
//! from the newest snapshot at or below a starting LSN (or from the beginning), then
//! replays every record through [`ShardState::apply`] and hands back, for each record
//! after the starting LSN, the command, the time it was applied at and what applying it
//! did ([`Applied`]: the outcome and the stock alerts it raised). Called again, it
//! picks up where it stopped: each call opens the WAL again, so new records and new
//! segments appended by the live engine are seen.
//!
//! Read-only: it never writes to the shard directory. The caller bounds each call by
//! the shard's durable LSN, so only records that are on disk are handed out.

use super::data_dir::DataDir;
use super::log_record::decode_record;
use super::state_codec::decode_state;
use crate::command::{Applied, Command};
use crate::shard_state::ShardState;
use crate::Millis;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use stockd_wal::{WalError, WalReader};

/// One WAL record, replayed.
#[derive(Debug, Clone)]
pub struct FollowedRecord {
    pub lsn: u64,
    /// When the shard applied the command.
    pub now: Millis,
    pub command: Command,
    pub applied: Applied,
}

/// Follows one shard's WAL. See the module docs.
#[derive(Debug)]
pub struct WalFollower {
    shard: usize,
    wal_dir: PathBuf,
    snap_dir: PathBuf,
    state: ShardState,
    /// The last LSN applied to `state`.
    applied_lsn: u64,
    /// Records at or below this LSN are applied but not handed out.
    emit_after: u64,
    /// Set when the records after the requested LSN were no longer in the WAL (pruned
    /// after a snapshot): following resumed at this LSN instead, so the records in
    /// between are never handed out.
    gap: Option<(u64, u64)>,
}

/// Snapshot files of a shard (by name, unverified), LSN ascending: the snapshot
/// crate's own listing, read-only.
fn list_snapshots(dir: &Path) -> Result<Vec<(u64, PathBuf)>, String> {
    let infos = stockd_snapshots::list_snapshots(dir).map_err(|e| format!("cannot list: {e}"))?;
    Ok(infos.into_iter().map(|i| (i.lsn, i.path)).collect())
}

/// The state in the snapshot at `path`, checked to belong to `shard`.
fn load_snapshot(path: &Path, shard: usize) -> Result<ShardState, String> {
    let snap = stockd_snapshots::read_snapshot_file(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let state = decode_state(&snap.payload).map_err(|e| format!("{}: {e}", path.display()))?;
    if state.shard() != shard {
        return Err(format!("{}: snapshot of shard {}, not {shard}", path.display(), state.shard()));
    }
    Ok(state)
}

impl WalFollower {
    /// A follower of shard `shard` whose files are in `shard_dir` (`DATA/shard-NNN`),
    /// that hands out the records after `after_lsn` (0: every record).
    ///
    /// Starts from the newest snapshot at or below `after_lsn` that verifies, or from
    /// an empty state. When the WAL no longer holds the records needed from there (its
    /// old segments are removed after a snapshot), it starts from the oldest snapshot
    /// it can use instead and reports the skipped range in [`WalFollower::gap`].
    pub fn open(shard_dir: &Path, shard: usize, after_lsn: u64) -> Result<WalFollower, String> {
        let wal_dir = DataDir::wal_in(shard_dir);
        let snap_dir = DataDir::snapshots_in(shard_dir);
        let snapshots = list_snapshots(&snap_dir)?;
        let oldest_wal = WalReader::open(&wal_dir)
            .map_err(|e| format!("cannot read WAL {}: {e}", wal_dir.display()))?
            .segments()
            .first()
            .map(|s| s.first_lsn);
        // Newest verified snapshot at or below after_lsn.
        let mut start: Option<(u64, ShardState)> = None;
        for (lsn, path) in snapshots.iter().rev().filter(|(lsn, _)| *lsn <= after_lsn) {
            match load_snapshot(path, shard) {
                Ok(state) => {
                    start = Some((*lsn, state));
                    break;
                }
                Err(e) => tracing::warn!(shard, error = %e, "follower: snapshot passed over"),
            }
        }
        let start_lsn = start.as_ref().map_or(0, |(l, _)| *l);
        let needs_wal_from = start_lsn + 1;
        let mut gap = None;
        if oldest_wal.is_some_and(|oldest| oldest > needs_wal_from) {
            // The WAL was pruned past our start: take the oldest snapshot that the WAL
            // continues from.
            let oldest = oldest_wal.unwrap_or(0);
            let mut found = None;
            for (lsn, path) in snapshots.iter().filter(|(lsn, _)| lsn + 1 >= oldest) {
                match load_snapshot(path, shard) {
                    Ok(state) => {
                        found = Some((*lsn, state));
                        break;
                    }
                    Err(e) => tracing::warn!(shard, error = %e, "follower: snapshot passed over"),
                }
            }
            let (lsn, state) = found.ok_or_else(|| {
                format!(
                    "shard {shard}: the WAL starts at LSN {oldest} and no snapshot continues into it; \
                     records after LSN {after_lsn} cannot be rebuilt"
                )
            })?;
            if lsn > after_lsn {
                gap = Some((after_lsn + 1, lsn));
            }
            start = Some((lsn, state));
        }
        let (applied_lsn, state) = start.unwrap_or_else(|| (0, ShardState::new(shard)));
        let emit_after = after_lsn.max(applied_lsn);
        Ok(WalFollower { shard, wal_dir, snap_dir, state, applied_lsn, emit_after, gap })
    }

    pub fn shard(&self) -> usize {
        self.shard
    }

    /// The last LSN applied (handed out or skipped as at or below the start).
    pub fn applied_lsn(&self) -> u64 {
        self.applied_lsn
    }

    /// The state after `applied_lsn`.
    pub fn state(&self) -> &ShardState {
        &self.state
    }

    /// `(first, last)` LSNs that could not be handed out because the WAL no longer
    /// held them when the follower opened.
    pub fn gap(&self) -> Option<(u64, u64)> {
        self.gap
    }

    /// The snapshot directory this follower reads.
    pub fn snapshot_dir(&self) -> &Path {
        &self.snap_dir
    }

    /// Applies the records after `applied_lsn` up to and including `up_to` (the
    /// shard's durable LSN), at most `max` of them, and returns those after the
    /// starting LSN. An empty answer means nothing new (yet).
    pub fn poll(&mut self, up_to: u64, max: usize) -> Result<Vec<FollowedRecord>, String> {
        let mut out = Vec::new();
        self.poll_with(
            up_to,
            max,
            |_, _, _| (),
            |(), record, _| {
                out.push(record);
                ControlFlow::Continue(())
            },
        )?;
        Ok(out)
    }

    /// Like [`WalFollower::poll`], but hands each record after the starting LSN to
    /// `visit` instead of collecting them, together with what `before` took from the
    /// state just before the record was applied (called with the record's time, its
    /// command and that state) and the state just after. `visit` stops the walk by
    /// answering `Break`; the record it was given stays applied.
    pub fn poll_with<B>(
        &mut self,
        up_to: u64,
        max: usize,
        mut before: impl FnMut(Millis, &Command, &ShardState) -> B,
        mut visit: impl FnMut(B, FollowedRecord, &ShardState) -> ControlFlow<()>,
    ) -> Result<(), String> {
        if up_to <= self.applied_lsn || max == 0 {
            return Ok(());
        }
        let dir = &self.wal_dir;
        let reader = WalReader::open(dir).map_err(|e| format!("cannot read WAL {}: {e}", dir.display()))?;
        let mut steps = 0usize;
        for record in reader.iter_from(self.applied_lsn + 1) {
            let record = record.map_err(|e| match e {
                WalError::LsnUnavailable { .. } => format!("shard {}: {e} (the follower fell behind)", self.shard),
                e => format!("cannot read WAL {}: {e}", dir.display()),
            })?;
            if record.lsn <= self.applied_lsn {
                continue;
            }
            if record.lsn > up_to {
                break;
            }
            if record.lsn != self.applied_lsn + 1 {
                return Err(format!("shard {}: WAL jumps from LSN {} to {}", self.shard, self.applied_lsn, record.lsn));
            }
            let logged = decode_record(record.record_type, &record.payload)
                .map_err(|e| format!("shard {} LSN {}: {e}", self.shard, record.lsn))?;
            let emit = record.lsn > self.emit_after;
            let taken = emit.then(|| before(logged.now, &logged.command, &self.state));
            let applied = logged.apply_to(&mut self.state).map_err(|e| {
                format!("shard {} LSN {}: {} failed on replay: {e}", self.shard, record.lsn, logged.command.kind())
            })?;
            self.applied_lsn = record.lsn;
            if let Some(taken) = taken {
                let followed = FollowedRecord { lsn: record.lsn, now: logged.now, command: logged.command, applied };
                if visit(taken, followed, &self.state).is_break() {
                    break;
                }
            }
            steps += 1;
            if steps >= max {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Outcome;
    use crate::{Engine, EngineConfig, ReserveRequest, SetItem, Sku, StorageConfig};

    fn config() -> EngineConfig {
        EngineConfig { shards: 1, expiry_interval: None, ..EngineConfig::default() }
    }

    fn durable(engine: &Engine) -> u64 {
        engine.shard_status()[0].durable_lsn.load(std::sync::atomic::Ordering::Acquire)
    }

    #[test]
    fn follows_from_the_start_then_tails_new_records() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, _) = Engine::open(dir.path(), config(), StorageConfig::default()).unwrap();
        let sku = Sku::parse("p:1", "sku").unwrap();
        crate::block_on(engine.set_item(SetItem {
            sku: sku.clone(),
            on_hand: 10,
            low_stock_threshold: Some(5),
            max_per_order: None,
            expected_version: None,
            location: None,
            incoming: None,
        }))
        .unwrap();
        let shard_dir = DataDir::new(dir.path()).shard(0);
        let mut f = WalFollower::open(&shard_dir, 0, 0).unwrap();
        let first = f.poll(durable(&engine), 100).unwrap();
        assert_eq!(first.len(), 1);
        assert!(matches!(first[0].applied.outcome, Outcome::Item { created: true, .. }));
        let order = crate::OrderId::parse("o-1", "orderId").unwrap();
        crate::block_on(engine.reserve(ReserveRequest {
            order_id: order,
            lines: vec![(sku.clone(), 6)],
            ttl_secs: None,
            metadata: None,
            placement: Default::default(),
        }))
        .unwrap();
        let next = f.poll(durable(&engine), 100).unwrap();
        assert!(!next.is_empty());
        assert!(next.iter().all(|r| r.lsn > first[0].lsn));
        assert!(next.iter().any(|r| !r.applied.alerts.is_empty()), "crossing the threshold raises an alert");
        assert_eq!(f.state().item(&sku).unwrap().reserved, 6);
        // A second follower that starts after the first record hands out only the rest.
        let mut g = WalFollower::open(&shard_dir, 0, first[0].lsn).unwrap();
        let rest = g.poll(u64::MAX, 100).unwrap();
        assert_eq!(rest.iter().map(|r| r.lsn).collect::<Vec<_>>(), next.iter().map(|r| r.lsn).collect::<Vec<_>>());
        assert_eq!(g.gap(), None);
        // Bounded by up_to and max.
        let mut h = WalFollower::open(&shard_dir, 0, 0).unwrap();
        assert_eq!(h.poll(1, 100).unwrap().len(), 1);
        assert_eq!(h.applied_lsn(), 1);
        assert!(h.poll(u64::MAX, 1).unwrap().len() == 1);
        engine.shutdown();
    }
}
