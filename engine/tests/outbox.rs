//! Outbox retention (issue 13, defect 3): WAL segments are kept back to the outbox
//! consumer's acknowledged LSN, not only to the oldest snapshot, so a publisher that
//! falls behind (a broker outage) loses nothing; past the ceiling the policy refuses
//! new writes (default) or drops the held records loudly.
//!
//! Retention passes run in the background after snapshots, so the tests write until
//! the expected state shows, with a bound on the number of writes (never a bound on
//! time): a test fails if it never shows.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use stockd_engine::offline::WalFollower;
use stockd_engine::*;
use stockd_engine::{OutboxConfig, OutboxFullPolicy};

mod common;
use common::{set_item, sku};

fn config() -> EngineConfig {
    EngineConfig {
        shards: 1,
        expiry_interval: None,
        clock: Arc::new(ManualClock::new(1_700_000_000_000)),
        ..Default::default()
    }
}

/// Small segments and a snapshot every 50 records, so a few thousand writes cross
/// many segments and snapshots.
fn storage(outbox: Option<OutboxConfig>) -> StorageConfig {
    StorageConfig {
        segment_size: 4096,
        snapshot_every_records: 50,
        snapshot_records_per_entry: 0,
        snapshot_every: Duration::from_secs(3600),
        snapshots_kept: 2,
        outbox,
        ..Default::default()
    }
}

fn set(e: &BlockingEngine, s: &str, on_hand: u64) -> Result<ItemChange, EngineError> {
    e.set_item(set_item(&sku(s), on_hand))
}

fn wal_dir(dir: &Path) -> PathBuf {
    DataDir::new(dir).shard_wal(0)
}

/// First LSNs of the shard's WAL segments, ascending.
fn segments(dir: &Path) -> Vec<u64> {
    let mut v: Vec<u64> = std::fs::read_dir(wal_dir(dir))
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str().and_then(stockd_wal::parse_segment_file_name))
        .collect();
    v.sort_unstable();
    v
}

fn durable_lsn(engine: &Engine) -> u64 {
    engine.shard_status()[0].durable_lsn.load(Ordering::Acquire)
}

/// Writes until `done` holds, at most `max` writes; panics naming `what` otherwise.
fn write_until(engine: &Engine, max: usize, what: &str, mut done: impl FnMut(&Engine) -> bool) {
    let e = engine.blocking();
    for i in 0..max {
        if done(engine) {
            return;
        }
        set(&e, &format!("sku-{}", i % 20), i as u64).unwrap();
    }
    assert!(done(engine), "{what}: not after {max} writes");
}

/// Every record a follower opened after `after` hands out, up to the durable LSN.
fn follow(dir: &Path, after: u64, up_to: u64) -> (Option<(u64, u64)>, Vec<u64>) {
    let mut f = WalFollower::open(&DataDir::new(dir).shard(0), 0, after).unwrap();
    let gap = f.gap();
    let mut lsns = Vec::new();
    loop {
        let batch = f.poll(up_to, 1_000).unwrap();
        if batch.is_empty() {
            break;
        }
        lsns.extend(batch.iter().map(|r| r.lsn));
    }
    (gap, lsns)
}

#[test]
fn without_an_outbox_snapshots_alone_decide_what_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = Engine::open(dir.path(), config(), storage(None)).unwrap();
    assert!(engine.outbox().is_none());
    write_until(&engine, 5_000, "segments removed", |_| segments(dir.path())[0] > 1);
}

#[test]
fn segments_are_kept_back_to_the_floor_and_removed_when_it_advances() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = Engine::open(dir.path(), config(), storage(Some(OutboxConfig::default()))).unwrap();
    let outbox = engine.outbox().expect("registered at open").clone();
    assert_eq!(outbox.floor(0), 0);
    // Well past several segments and snapshots: with the floor at 0 nothing goes, and
    // the bytes kept for the outbox are counted.
    write_until(&engine, 5_000, "bytes held counted", |_| outbox.held_bytes(0) > 4 * 4096);
    let e = engine.blocking();
    for i in 0..500 {
        set(&e, "more", i).unwrap();
    }
    assert!(segments(dir.path()).len() > 5, "{:?}", segments(dir.path()));
    assert_eq!(segments(dir.path())[0], 1, "nothing the outbox did not acknowledge is removed");
    let durable = durable_lsn(&engine);
    let (gap, lsns) = follow(dir.path(), 0, durable);
    assert_eq!(gap, None);
    assert_eq!(lsns, (1..=durable).collect::<Vec<_>>());

    // The consumer acknowledges up to `floor`: what is older may go, and a follower
    // opened at the floor still reads every record after it.
    let floor = durable - 100;
    outbox.advance(0, floor);
    outbox.advance(0, 5); // never moves back
    assert_eq!(outbox.floor(0), floor);
    write_until(&engine, 5_000, "segments removed after the floor moved", |_| segments(dir.path())[0] > 1);
    let durable = durable_lsn(&engine);
    let (gap, lsns) = follow(dir.path(), floor, durable);
    assert_eq!(gap, None, "the follower must not skip records after the floor");
    assert_eq!(lsns, (floor + 1..=durable).collect::<Vec<_>>());
    assert!(segments(dir.path())[0] <= floor + 1);
    assert_eq!(outbox.dropped_records(0), 0);

    // A restart opens from the newest snapshot as always, and the floor (not
    // persisted by the engine) starts at 0 again until the consumer advances it.
    engine.shutdown();
    drop(engine);
    let (engine, _) = Engine::open(dir.path(), config(), storage(Some(OutboxConfig::default()))).unwrap();
    engine.blocking().check_invariants().unwrap();
    assert_eq!(engine.outbox().unwrap().floor(0), 0);
}

#[test]
fn refuse_policy_refuses_new_writes_past_the_ceiling_and_resumes_when_the_consumer_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let policy = OutboxConfig { max_bytes: Some(8 * 4096), policy: OutboxFullPolicy::Refuse };
    let (engine, _) = Engine::open(dir.path(), config(), storage(Some(policy))).unwrap();
    let outbox = engine.outbox().unwrap().clone();
    let e = engine.blocking();
    set(&e, "held", 10).unwrap();
    let order = OrderId::parse("o-1", "orderId").unwrap();
    e.reserve(ReserveRequest {
        order_id: order.clone(),
        lines: vec![(sku("held"), 2)],
        ttl_secs: Some(600),
        metadata: None,
        placement: Default::default(),
    })
    .unwrap();
    let mut refused = None;
    for i in 0..20_000u64 {
        match set(&e, &format!("sku-{}", i % 20), i) {
            Ok(_) => {}
            Err(err) => {
                refused = Some(err);
                break;
            }
        }
    }
    let err = refused.expect("writes must be refused once the outbox holds more than its ceiling");
    assert_eq!(err.code(), "SERVICE_UNAVAILABLE");
    assert!(err.to_string().contains("outbox"), "{err}");
    assert!(outbox.is_refusing(0));
    assert!(outbox.held_bytes(0) > 8 * 4096);
    assert!(!engine.is_failed(), "a refusal is not a failure");
    // A refused write changed nothing; settling existing work still runs.
    let before = e.get_item(sku("held")).unwrap();
    assert!(set(&e, "held", 99).is_err());
    assert_eq!(e.get_item(sku("held")).unwrap(), before);
    let committed = e.commit(ReservationKey::Order(order), None).unwrap();
    assert_eq!(committed.status, ReservationStatus::Committed);
    assert_eq!(segments(dir.path())[0], 1, "nothing unpublished was removed");
    assert_eq!(outbox.dropped_records(0), 0);

    // The consumer catches up: writes resume.
    outbox.advance(0, durable_lsn(&engine));
    let mut resumed = false;
    for _ in 0..2_000 {
        if set(&e, "after", 1).is_ok() {
            resumed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(resumed, "writes must resume once the consumer acknowledged everything");
    assert!(!outbox.is_refusing(0));
    write_until(&engine, 5_000, "held segments removed", |_| segments(dir.path())[0] > 1);
    e.check_invariants().unwrap();
}

#[test]
fn drop_policy_removes_held_records_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let policy = OutboxConfig { max_bytes: Some(8 * 4096), policy: OutboxFullPolicy::Drop };
    let (engine, _) = Engine::open(dir.path(), config(), storage(Some(policy))).unwrap();
    let outbox = engine.outbox().unwrap().clone();
    // Writes are never refused; past the ceiling held records are given up.
    write_until(&engine, 10_000, "records dropped", |_| outbox.dropped_records(0) > 0);
    assert!(!outbox.is_refusing(0));
    write_until(&engine, 5_000, "segments removed", |_| segments(dir.path())[0] > 1);
    engine.blocking().check_invariants().unwrap();
    // Stopped first: a retention pass still under way would otherwise remove the
    // segment the follower below is about to read (a live publisher reopens then).
    let durable = durable_lsn(&engine);
    engine.shutdown();
    let dropped = outbox.dropped_records(0);
    // The floor moved past what was dropped; a follower from 0 reports the gap.
    assert!(outbox.floor(0) >= dropped);
    let (gap, _) = follow(dir.path(), 0, durable);
    let (first, last) = gap.expect("records were removed before they were published");
    assert_eq!(first, 1);
    assert!(last >= dropped);
}
