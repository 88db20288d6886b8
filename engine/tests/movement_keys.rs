//! Idempotency keys of transfers and receipts (payload version 4, state version 6): a
//! retry with the key of a movement already applied answers the first result, moves
//! nothing and logs nothing; the same key for another request (or for an adjustment:
//! one key space per SKU) is IDEMPOTENCY_KEY_REUSED. Keys survive a restart, replayed
//! from the WAL or carried by a snapshot, and are forgotten after the retention.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use stockd_engine::location::LocationId;
use stockd_engine::*;

mod common;
use common::*;

fn loc(s: &str) -> LocationId {
    LocationId::parse(s, "location").unwrap()
}

fn transfer(s: &Sku, quantity: u64, key: &str) -> Transfer {
    Transfer {
        sku: s.clone(),
        from: LocationId::DEFAULT,
        to: loc("wh-2"),
        quantity,
        in_transit: true,
        note: None,
        idempotency_key: Some(key.into()),
    }
}

/// (onHand at default, incoming at wh-2) of the item.
fn figures(e: &BlockingEngine, s: &Sku) -> (u64, u64) {
    let item = e.get_item(s.clone()).unwrap();
    let at = |l: &LocationId| item.locations().iter().find(|x| &x.location == l).map(|x| (x.on_hand, x.incoming));
    (at(&LocationId::DEFAULT).unwrap().0, at(&loc("wh-2")).map_or(0, |x| x.1))
}

fn durable(engine: &Engine) -> u64 {
    engine.shard_status().iter().map(|s| s.durable_lsn.load(Ordering::Acquire)).sum()
}

#[test]
fn a_retried_transfer_or_receipt_moves_nothing_again_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let config = || EngineConfig { shards: 2, expiry_interval: None, ..Default::default() };
    let a = sku("MOVE-A");
    let (engine, _) = Engine::open(dir.path(), config(), Default::default()).unwrap();
    let e = engine.blocking();
    stock(&engine, &a, 10);
    let first = e.transfer(transfer(&a, 3, "t-1")).unwrap().item;
    assert_eq!(figures(&e, &a), (7, 3));
    let logged = durable(&engine);
    let again = e.transfer(transfer(&a, 3, "t-1")).unwrap().item;
    assert_eq!(again, first, "the first answer");
    assert_eq!(figures(&e, &a), (7, 3), "nothing moved twice");
    assert_eq!(durable(&engine), logged, "a repeat is not logged");
    // The same key for another request, or for an adjustment of the SKU: refused.
    assert_eq!(e.transfer(transfer(&a, 2, "t-1")).unwrap_err().code(), "IDEMPOTENCY_KEY_REUSED");
    let adjust = Adjust {
        sku: a.clone(),
        delta: 1,
        reason: AdjustReason::Restock,
        note: None,
        idempotency_key: Some("t-1".into()),
        expected_version: None,
        location: None,
    };
    assert_eq!(e.adjust(adjust.clone()).unwrap_err().code(), "IDEMPOTENCY_KEY_REUSED");
    // A receipt keyed like the adjustment made first: refused the other way round.
    e.adjust(Adjust { idempotency_key: Some("adj-1".into()), ..adjust }).unwrap();
    let receipt = |key: &str, q: u64| e.receive(a.clone(), loc("wh-2"), q, Some(key.into()));
    assert_eq!(receipt("adj-1", 1).unwrap_err().code(), "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(figures(&e, &a), (8, 3));
    receipt("r-1", 2).unwrap();
    receipt("r-1", 2).unwrap();
    assert_eq!(e.get_item(a.clone()).unwrap().incoming, 1, "received once");
    assert_eq!(receipt("r-1", 1).unwrap_err().code(), "IDEMPOTENCY_KEY_REUSED");
    // The key is per SKU: another SKU may use it.
    let b = sku("MOVE-B");
    stock(&engine, &b, 5);
    e.transfer(transfer(&b, 1, "t-1")).unwrap();
    engine.shutdown();

    // Replayed from the WAL: the keys are remembered.
    let (engine, _) = Engine::open(dir.path(), config(), Default::default()).unwrap();
    let e = engine.blocking();
    e.transfer(transfer(&a, 3, "t-1")).unwrap();
    e.receive(a.clone(), loc("wh-2"), 2, Some("r-1".into())).unwrap();
    let item = e.get_item(a.clone()).unwrap();
    assert_eq!((item.on_hand, item.incoming), (10, 1), "nothing moved again after a restart");
    engine.shutdown();

    // With a snapshot after every batch, the last open restores the keys from a
    // snapshot (state version 6) and replays nothing.
    let (engine, _) = Engine::open(dir.path(), config(), snapshot_each_batch()).unwrap();
    engine.blocking().transfer(transfer(&a, 1, "t-2")).unwrap();
    engine.shutdown();
    let (engine, report) = Engine::open(dir.path(), config(), snapshot_each_batch()).unwrap();
    let home = shard_of_sku(&a, 2);
    assert_eq!(report.shards[home].records_replayed, 0, "all from the snapshot: {report:?}");
    let e = engine.blocking();
    for key in ["t-1", "t-2"] {
        let q = if key == "t-1" { 3 } else { 1 };
        e.transfer(transfer(&a, q, key)).unwrap();
    }
    e.receive(a.clone(), loc("wh-2"), 2, Some("r-1".into())).unwrap();
    assert_eq!(e.transfer(transfer(&a, 9, "t-2")).unwrap_err().code(), "IDEMPOTENCY_KEY_REUSED");
    let item = e.get_item(a.clone()).unwrap();
    assert_eq!((item.on_hand, item.incoming), (9, 2), "each movement once (t-2 moved one more into transit)");
    e.check_invariants().unwrap();
    engine.shutdown();
}

#[test]
fn keys_are_forgotten_after_the_retention() {
    let clock = ManualClock::new(1_700_000_000_000);
    let config = EngineConfig {
        shards: 1,
        expiry_interval: None,
        retention_secs: 60,
        clock: Arc::new(clock.clone()),
        ..Default::default()
    };
    let engine = Engine::in_memory(config).unwrap();
    let e = engine.blocking();
    let a = sku("MOVE-R");
    stock(&engine, &a, 10);
    e.transfer(transfer(&a, 2, "t-1")).unwrap();
    e.expire_due().unwrap();
    e.transfer(transfer(&a, 2, "t-1")).unwrap();
    assert_eq!(figures(&e, &a), (8, 2), "within the retention: a repeat");
    clock.advance_secs(61);
    e.expire_due().unwrap();
    e.transfer(transfer(&a, 2, "t-1")).unwrap();
    assert_eq!(figures(&e, &a), (6, 4), "after it the key is new again");
    let bad = Transfer { idempotency_key: Some(String::new()), ..transfer(&a, 1, "") };
    assert_eq!(e.transfer(bad).unwrap_err(), EngineError::validation("idempotencyKey", "must be 1 to 128 bytes"));
    e.check_invariants().unwrap();
}
