//! The replication seam (issue 14, `durable::replication`), with an in-memory
//! replicated log standing in for Kafka: a standby that applies the leader's shipped
//! records holds the same state, record for record on disk too; nothing is answered
//! before the log confirms; a stalled log stops answers and they resume when it is
//! back; a fenced leader stops for good; a promoted standby settles what the old
//! leader left half done.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use stockd_engine::*;
use stockd_engine::{Confirmation, Replicator, ShippedRecord};

mod common;
use common::{key, order, sku_on, stock};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Confirm,
    Stall,
    Fence,
}

/// The "replicated log": what each shard shipped, and what `confirm` answers.
struct MemoryLog {
    shipped: Mutex<BTreeMap<usize, Vec<ShippedRecord>>>,
    mode: Mutex<Mode>,
    confirms: std::sync::atomic::AtomicU64,
}

impl MemoryLog {
    fn new() -> Arc<MemoryLog> {
        Arc::new(MemoryLog { shipped: Default::default(), mode: Mutex::new(Mode::Confirm), confirms: 0.into() })
    }
    fn set(&self, m: Mode) {
        *self.mode.lock() = m;
    }
    fn records(&self, shard: usize) -> Vec<ShippedRecord> {
        self.shipped.lock().get(&shard).cloned().unwrap_or_default()
    }
}

impl Replicator for MemoryLog {
    fn ship(&self, shard: usize, records: &[ShippedRecord]) {
        let mut all = self.shipped.lock();
        let v = all.entry(shard).or_default();
        for r in records {
            assert_eq!(r.lsn, v.last().map_or(1, |l| l.lsn + 1), "shipped LSNs are contiguous");
            v.push(r.clone());
        }
    }
    fn confirm(&self, _shard: usize, _lsn: u64, _timeout: Duration) -> Confirmation {
        self.confirms.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match *self.mode.lock() {
            Mode::Confirm => Confirmation::Confirmed,
            Mode::Stall => Confirmation::Pending("log unreachable (test)".into()),
            Mode::Fence => Confirmation::Fenced("node B leads epoch 2 (test)".into()),
        }
    }
}

const SHARDS: usize = 3;

fn config(standby: bool) -> EngineConfig {
    EngineConfig {
        shards: SHARDS,
        expiry_interval: None,
        clock: Arc::new(ManualClock::new(1_700_000_000_000)),
        standby,
        ..Default::default()
    }
}

fn leader(dir: &std::path::Path, log: &Arc<MemoryLog>) -> Engine {
    let storage = StorageConfig { replicator: Some(log.clone() as Arc<dyn Replicator>), ..Default::default() };
    Engine::open(dir, config(false), storage).unwrap().0
}

fn standby(dir: &std::path::Path) -> Engine {
    Engine::open(dir, config(true), StorageConfig::default()).unwrap().0
}

fn reserve(e: &Engine, id: &str, lines: &[(&Sku, u64)]) -> Result<ReserveOutcome, EngineError> {
    e.blocking().reserve(ReserveRequest {
        order_id: order(id),
        lines: lines.iter().map(|(s, q)| ((*s).clone(), *q)).collect(),
        ttl_secs: Some(600),
        metadata: None,
        placement: Placement::default(),
    })
}

/// Ships everything the leader's shards logged to the standby.
fn catch_up(log: &MemoryLog, standby: &Engine) {
    for shard in 0..SHARDS {
        let records = log.records(shard);
        let last = records.last().map_or(0, |r| r.lsn);
        let got = block_on(standby.apply_replicated(shard, records)).unwrap();
        assert_eq!(got, last);
    }
}

fn states(e: &Engine) -> Vec<ShardState> {
    block_on(e.shard_states()).unwrap()
}

/// A workload over one- and cross-shard orders: commit, release, adjust.
fn workload(e: &Engine) -> (Sku, Sku) {
    let a = sku_on(0, "a", SHARDS);
    let b = sku_on(1, "b", SHARDS);
    stock(e, &a, 100);
    stock(e, &b, 50);
    reserve(e, "o-1", &[(&a, 5)]).unwrap();
    reserve(e, "o-2", &[(&a, 3), (&b, 4)]).unwrap();
    reserve(e, "o-3", &[(&b, 2), (&a, 1)]).unwrap();
    e.blocking().commit(key("o-1"), None).unwrap();
    e.blocking().release(key("o-3"), None).unwrap();
    e.blocking().commit(key("o-2"), None).unwrap();
    reserve(e, "o-4", &[(&a, 7)]).unwrap();
    (a, b)
}

#[test]
fn a_standby_applying_the_shipped_records_holds_the_leaders_state_on_disk_too() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let log = MemoryLog::new();
    let l = leader(d1.path(), &log);
    let s = standby(d2.path());
    let (a, _b) = workload(&l);
    assert!(log.confirms.load(std::sync::atomic::Ordering::Relaxed) > 0, "every batch asked for confirmation");
    catch_up(&log, &s);
    assert_eq!(states(&l), states(&s), "the standby's state is the leader's");
    // Reads are served; writes refused with NOT_LEADER, changing nothing.
    assert_eq!(s.blocking().get_item(a.clone()).unwrap().reserved, 7);
    assert!(matches!(reserve(&s, "o-5", &[(&a, 1)]), Err(EngineError::NotLeader)));
    assert_eq!(states(&l), states(&s));
    // Applying the same records again changes nothing (a consumer re-reads after a
    // restart).
    catch_up(&log, &s);
    assert_eq!(states(&l), states(&s));
    // The standby's own WAL is a copy: reopened (as leader), it recovers the same state.
    let leader_states = states(&l);
    s.shutdown();
    drop(s);
    let reopened = Engine::open(d2.path(), config(false), StorageConfig::default()).unwrap().0;
    assert_eq!(states(&reopened), leader_states);
    block_on(reopened.check_invariants()).unwrap();
}

#[test]
fn a_gap_in_the_replicated_log_stops_the_standby() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let log = MemoryLog::new();
    let l = leader(d1.path(), &log);
    let s = standby(d2.path());
    workload(&l);
    let mut records = log.records(0);
    assert!(records.len() > 2);
    records.remove(1);
    assert!(block_on(s.apply_replicated(0, records)).is_err());
    assert!(s.is_failed(), "a standby that diverged stops");
}

#[test]
fn a_stalled_log_answers_nothing_and_answers_resume_when_it_is_back() {
    let d1 = tempfile::tempdir().unwrap();
    let log = MemoryLog::new();
    let l = leader(d1.path(), &log);
    let a = sku_on(0, "a", SHARDS);
    stock(&l, &a, 10);
    log.set(Mode::Stall);
    // The reserve is applied and shipped, but not confirmed: not acknowledged.
    match reserve(&l, "o-1", &[(&a, 4)]) {
        Err(EngineError::Unavailable { reason }) => assert!(reason.contains("replication"), "{reason}"),
        other => panic!("acknowledged without confirmation: {other:?}"),
    }
    // While stalled, neither reads nor writes are answered (a read could show state a
    // failover takes back), and nothing new is applied.
    assert!(matches!(l.blocking().get_item(a.clone()), Err(EngineError::Unavailable { .. })));
    assert!(matches!(reserve(&l, "o-2", &[(&a, 1)]), Err(EngineError::Unavailable { .. })));
    let shipped = log.records(0).len();
    log.set(Mode::Confirm);
    // Back: answers resume, the stalled reserve took effect (its repeat is
    // idempotent), the refused one did not.
    assert_eq!(l.blocking().get_item(a.clone()).unwrap().reserved, 4);
    let again = reserve(&l, "o-1", &[(&a, 4)]).unwrap();
    assert!(!again.created, "the stalled reserve was applied; its repeat answers it");
    assert_eq!(log.records(0).len(), shipped, "the refused write shipped nothing");
    assert!(!l.is_failed());
    reserve(&l, "o-3", &[(&a, 6)]).unwrap();
}

#[test]
fn a_fenced_leader_stops_for_good() {
    let d1 = tempfile::tempdir().unwrap();
    let log = MemoryLog::new();
    let l = leader(d1.path(), &log);
    let a = sku_on(0, "a", SHARDS);
    stock(&l, &a, 10);
    log.set(Mode::Fence);
    assert!(matches!(reserve(&l, "o-1", &[(&a, 1)]), Err(EngineError::Unavailable { .. })));
    assert!(l.is_failed());
    log.set(Mode::Confirm);
    assert!(matches!(reserve(&l, "o-2", &[(&a, 1)]), Err(EngineError::Unavailable { .. })));
}

#[test]
fn a_promoted_standby_settles_what_the_old_leader_left_half_done() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let log = MemoryLog::new();
    let l = leader(d1.path(), &log);
    let s = standby(d2.path());
    let (a, b) = workload(&l);
    let b_reserved_before = l.blocking().get_item(b.clone()).unwrap().reserved;
    // The old leader dies in the middle of a cross-shard reserve: its PENDING header
    // and the hold on b's shard are in the log, the activation is not.
    let opened = block_on(l.apply_on_shard(
        0,
        Command::OpenReservation {
            order_id: order("o-9"),
            lines: vec![(a.clone(), 2), (b.clone(), 3)],
            ttl_secs: 600,
            metadata: None,
        },
    ))
    .unwrap();
    let reservation_id = match opened.outcome {
        Outcome::Opened(r) => r.reservation_id,
        other => panic!("{other:?}"),
    };
    block_on(l.apply_on_shard(
        1,
        Command::PlaceHold {
            reservation_id,
            order_id: order("o-9"),
            lines: vec![(b.clone(), 3)],
            placement: Placement::default(),
        },
    ))
    .unwrap();
    catch_up(&log, &s);
    assert_eq!(s.blocking().get_item(b.clone()).unwrap().reserved, b_reserved_before + 3, "the hold was replicated");
    l.shutdown();
    let settled = block_on(s.promote()).unwrap();
    assert!(!s.is_standby());
    let _ = settled;
    block_on(s.check_invariants()).unwrap();
    assert_eq!(s.blocking().get_item(b.clone()).unwrap().reserved, b_reserved_before, "the orphan hold was released");
    assert!(matches!(s.blocking().get_reservation(key("o-9")), Err(EngineError::ReservationNotFound { .. })));
    // It takes writes now.
    reserve(&s, "o-10", &[(&a, 1)]).unwrap();
    assert!(block_on(s.apply_replicated(0, Vec::new())).is_err(), "a leader refuses replicated records");
}
