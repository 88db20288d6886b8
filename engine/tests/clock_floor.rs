//! The shard clock's floor is durable (issue 13, defect 8): after a snapshot that
//! covers the whole WAL there is no record left to replay a time from, and a restart
//! with a wall clock set earlier must still never issue times, deadlines or
//! reservation-id seconds before the ones already issued. Also: a data directory
//! whose snapshot is state version 3 (no floor) still opens.

use std::path::Path;
use std::sync::Arc;
use stockd_engine::offline::decode_state;
use stockd_engine::*;

mod common;
use common::{set_item, sku, snapshot_each_batch};

const T1: u64 = 1_700_000_000_000 + 10 * 3_600_000;

fn config(clock: &ManualClock) -> EngineConfig {
    EngineConfig { shards: 1, expiry_interval: None, clock: Arc::new(clock.clone()), ..Default::default() }
}

fn set(e: &BlockingEngine, s: &str, on_hand: u64) {
    e.set_item(set_item(&sku(s), on_hand)).unwrap();
}

fn reserve(e: &BlockingEngine, o: &str) -> Reservation {
    e.reserve(ReserveRequest {
        order_id: OrderId::parse(o, "orderId").unwrap(),
        lines: vec![(sku("A"), 1)],
        ttl_secs: Some(600),
        metadata: None,
        placement: Default::default(),
    })
    .unwrap()
    .reservation
}

/// The seconds an id was made at: its first eight hex digits.
fn id_secs(r: &Reservation) -> u64 {
    u64::from_str_radix(&r.reservation_id.to_string()[..8], 16).unwrap()
}

/// Writes at T1, then makes a snapshot that covers the whole WAL: a session whose
/// only write is one record takes a snapshot after it, and shutdown waits for it.
fn history_at_t1(dir: &Path, clock: &ManualClock) -> Reservation {
    let (engine, _) = Engine::open(dir, config(clock), snapshot_each_batch()).unwrap();
    set(&engine.blocking(), "A", 100);
    let first = reserve(&engine.blocking(), "o-1");
    engine.shutdown();
    drop(engine);
    let (engine, _) = Engine::open(dir, config(clock), snapshot_each_batch()).unwrap();
    set(&engine.blocking(), "B", 1);
    engine.shutdown();
    drop(engine);
    first
}

#[test]
fn time_never_goes_back_across_a_restart_when_a_snapshot_covers_the_whole_log() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T1);
    let first = history_at_t1(dir.path(), &clock);
    assert_eq!(first.created_at, T1);

    // The wall clock is now an hour behind what the shard already issued.
    clock.set(T1 - 3_600_000);
    let (engine, report) = Engine::open(dir.path(), config(&clock), snapshot_each_batch()).unwrap();
    assert_eq!(report.shards[0].records_replayed, 0, "the snapshot covers the whole WAL: {report:?}");
    assert_eq!(report.shards[0].snapshot_lsn, Some(report.shards[0].last_lsn));
    let e = engine.blocking();
    let later = reserve(&e, "o-2");
    assert!(later.created_at >= T1, "created at {} before {T1}", later.created_at);
    assert!(later.expires_at >= first.expires_at, "deadline {} before {}", later.expires_at, first.expires_at);
    assert!(id_secs(&later) >= id_secs(&first), "id {} made before {}", later.reservation_id, first.reservation_id);
    assert!(e.get_item(sku("A")).unwrap().updated_at >= T1);
    e.check_invariants().unwrap();
}

#[test]
fn a_version_3_snapshot_without_a_floor_still_opens() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T1);
    history_at_t1(dir.path(), &clock);
    // Rewrite the newest snapshot as the previous encoder did: [3][bincode ShardState].
    let snaps = DataDir::new(dir.path()).shard_snapshots(0);
    let store = stockd_snapshots::SnapshotStore::open(&snaps).unwrap();
    let newest = store.load_latest().unwrap().expect("a snapshot");
    let state = decode_state(&newest.payload).unwrap();
    assert_eq!(state.clock_floor(), T1);
    let mut v3 = vec![3u8];
    bincode::serde::encode_into_std_write(&state, &mut v3, bincode::config::standard()).unwrap();
    std::fs::remove_file(&newest.path).unwrap();
    store.write(newest.lsn, &v3).unwrap();
    assert_eq!(decode_state(&store.load_latest().unwrap().unwrap().payload).unwrap().clock_floor(), 0);

    let (engine, report) = Engine::open(dir.path(), config(&clock), snapshot_each_batch()).unwrap();
    assert_eq!(report.shards[0].snapshot_lsn, Some(newest.lsn));
    let e = engine.blocking();
    assert_eq!(e.get_item(sku("A")).unwrap().reserved, 1);
    assert_eq!(e.get_item(sku("B")).unwrap().on_hand, 1);
    e.check_invariants().unwrap();
}
