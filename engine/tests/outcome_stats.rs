//! The engine's outcome counters (issue 15, "metrics are blind to Kafka"): every call
//! counts, whoever makes it, once: an embedder's calls move them with no server in
//! sight; repeats, refusals and cross-shard flows are counted once each; reserve
//! latency goes to the origin the caller names. And the server-wide default
//! low-stock threshold (`EngineConfig::default_low_stock_threshold`).

use std::sync::Arc;
use stockd_engine::*;

mod common;
use common::*;

const START: Millis = 1_700_000_000_000;

fn engine(clock: &ManualClock, shards: usize) -> Engine {
    Engine::in_memory(EngineConfig {
        shards,
        expiry_interval: None,
        clock: Arc::new(clock.clone()),
        ..Default::default()
    })
    .unwrap()
}

fn request(o: &str, lines: &[(&Sku, u64)]) -> ReserveRequest {
    ReserveRequest {
        order_id: order(o),
        lines: lines.iter().map(|(s, q)| ((*s).clone(), *q)).collect(),
        ttl_secs: Some(60),
        metadata: None,
        placement: Default::default(),
    }
}

fn with_threshold(s: &Sku, on_hand: u64, threshold: u64) -> SetItem {
    SetItem { low_stock_threshold: Some(threshold), ..set_item(s, on_hand) }
}

#[test]
fn embedded_calls_move_every_counter_once() {
    let clock = ManualClock::new(START);
    let e = engine(&clock, 4);
    let b = e.blocking();
    let before = e.outcome_stats();
    assert_eq!((before.created, before.committed, before.released, before.expired), (0, 0, 0, 0));
    assert_eq!(before.latency_all().count, 0);

    let s = sku("S");
    b.set_item(with_threshold(&s, 10, 3)).unwrap();
    b.reserve(request("c1", &[(&s, 2)])).unwrap();
    // A repeat answers the same reservation and counts nothing new.
    assert!(!b.reserve(request("c1", &[(&s, 2)])).unwrap().created);
    b.reserve(request("r1", &[(&s, 2)])).unwrap();
    b.reserve(request("x1", &[(&s, 1)])).unwrap();
    b.commit(key("c1"), None).unwrap();
    b.commit(key("c1"), None).unwrap(); // repeat
    b.release(key("r1"), None).unwrap();
    b.release(key("r1"), None).unwrap(); // repeat
    b.expire(key("x1")).unwrap();
    // Refusals, by operation and code.
    b.reserve(request("big", &[(&s, 100)])).unwrap_err();
    b.reserve(request("nope", &[(&sku("MISSING"), 1)])).unwrap_err();
    b.reserve(request("zero", &[(&s, 0)])).unwrap_err();
    b.commit(key("r1"), None).unwrap_err(); // released already
    b.release(key("ghost"), None).unwrap_err();

    let st = e.outcome_stats();
    assert_eq!(st.created, 3, "{st:?}");
    assert_eq!(st.committed, 1, "{st:?}");
    assert_eq!(st.released, 1, "{st:?}");
    assert_eq!(st.expired, 1, "{st:?}");
    assert_eq!(st.rejected_with(ReservationOp::Reserve, "INSUFFICIENT_INVENTORY"), 1, "{st:?}");
    assert_eq!(st.rejected_with(ReservationOp::Reserve, "ITEM_NOT_FOUND"), 1, "{st:?}");
    assert_eq!(st.rejected_with(ReservationOp::Reserve, "VALIDATION_ERROR"), 1, "{st:?}");
    assert_eq!(st.rejected(ReservationOp::Reserve), 3, "{st:?}");
    assert_eq!(st.rejected_with(ReservationOp::Commit, "RESERVATION_RELEASED"), 1, "{st:?}");
    assert_eq!(st.rejected_with(ReservationOp::Release, "RESERVATION_NOT_FOUND"), 1, "{st:?}");
    assert_eq!(st.rejected(ReservationOp::Extend) + st.rejected(ReservationOp::Expire), 0, "{st:?}");
    // Every reserve answer (7: four that answered a reservation, three refusals) is
    // timed, as an embedder's.
    assert_eq!(st.latency(Origin::Embedded).count, 7, "{st:?}");
    assert_eq!(st.latency(Origin::Api).count + st.latency(Origin::Events).count, 0);
    assert_eq!(st.latency_all().count, 7);
    // 10 on hand, threshold 3: 2 + 2 + 1 reserved → available 5; nothing crossed yet.
    assert_eq!((st.low_stock_alerts, st.out_of_stock_alerts), (0, 0), "{st:?}");
}

#[test]
fn the_origin_a_caller_names_gets_the_latency() {
    let clock = ManualClock::new(START);
    let e = engine(&clock, 2);
    let s = sku("S");
    stock(&e, &s, 10);
    block_on(e.reserve_from(Origin::Events, request("k1", &[(&s, 1)]))).unwrap();
    block_on(e.reserve_from(Origin::Events, request("k2", &[(&s, 1)]))).unwrap();
    block_on(e.reserve_from(Origin::Api, request("h1", &[(&s, 1)]))).unwrap();
    let st = e.outcome_stats();
    assert_eq!(st.created, 3);
    assert_eq!(st.latency(Origin::Events).count, 2);
    assert_eq!(st.latency(Origin::Api).count, 1);
    assert_eq!(st.latency(Origin::Embedded).count, 0);
    let h = st.latency(Origin::Events);
    assert_eq!(h.buckets.iter().sum::<u64>(), 2, "in memory a reserve takes well under 2.5 s: {h:?}");
}

#[test]
fn stock_alerts_of_item_writes_and_reserves_are_counted() {
    let clock = ManualClock::new(START);
    let e = engine(&clock, 2);
    let b = e.blocking();
    let s = sku("A");
    b.set_item(with_threshold(&s, 10, 3)).unwrap();
    b.reserve(request("a1", &[(&s, 7)])).unwrap(); // 10 → 3: low stock
    b.reserve(request("a2", &[(&s, 3)])).unwrap(); // 3 → 0: out of stock
    b.release(key("a2"), None).unwrap(); // back to 3: no alert going up
    b.adjust(Adjust {
        sku: s.clone(),
        delta: -3,
        reason: AdjustReason::Damaged,
        note: None,
        idempotency_key: None,
        expected_version: None,
        location: None,
    })
    .unwrap(); // 3 → 0: out of stock
    let st = e.outcome_stats();
    assert_eq!((st.low_stock_alerts, st.out_of_stock_alerts), (1, 2), "{st:?}");
}

#[test]
fn a_cross_shard_reserve_and_a_batch_count_once_per_order() {
    let clock = ManualClock::new(START);
    let shards = 4;
    let e = engine(&clock, shards);
    let b = e.blocking();
    let (s0, s1) = (sku_on(0, "x", shards), sku_on(1, "x", shards));
    stock(&e, &s0, 10);
    stock(&e, &s1, 10);
    b.reserve(request("multi", &[(&s0, 1), (&s1, 1)])).unwrap();
    b.reserve(request("multi-short", &[(&s0, 1), (&s1, 50)])).unwrap_err();
    b.commit(key("multi"), None).unwrap();
    let answers = b.reserve_many(vec![
        request("m1", &[(&s0, 1)]),
        request("m2", &[(&s1, 1)]),
        request("m3", &[(&s0, 1), (&s1, 1)]),
        request("m4", &[(&s0, 99)]),
    ]);
    assert_eq!(answers.iter().filter(|a| a.is_ok()).count(), 3);
    let st = e.outcome_stats();
    assert_eq!(st.created, 4, "{st:?}");
    assert_eq!(st.committed, 1, "{st:?}");
    assert_eq!(st.rejected_with(ReservationOp::Reserve, "INSUFFICIENT_INVENTORY"), 2, "{st:?}");
    assert_eq!(st.latency(Origin::Embedded).count, 6, "{st:?}");
}

#[test]
fn timed_expiry_is_counted_as_expired() {
    let clock = ManualClock::new(START);
    let e = engine(&clock, 2);
    let b = e.blocking();
    let s = sku("T");
    stock(&e, &s, 10);
    b.reserve(request("t1", &[(&s, 1)])).unwrap();
    b.reserve(request("t2", &[(&s, 1)])).unwrap();
    clock.advance_secs(61);
    assert_eq!(b.expire_due().unwrap().len(), 2);
    let st = e.outcome_stats();
    assert_eq!((st.created, st.expired, st.released), (2, 2, 0), "{st:?}");
}

#[test]
fn a_default_low_stock_threshold_applies_to_items_created_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        || EngineConfig { shards: 2, expiry_interval: None, default_low_stock_threshold: 5, ..Default::default() };
    let (e, _) = Engine::open(dir.path(), config(), StorageConfig::default()).unwrap();
    let b = e.blocking();
    let (plain, own, later) = (sku("PLAIN"), sku("OWN"), sku("LATER"));
    let created = b.set_item(set_item(&plain, 20)).unwrap();
    assert!(created.created);
    assert_eq!(created.item.low_stock_threshold, 5, "created without one: the default");
    assert_eq!(b.set_item(with_threshold(&own, 20, 2)).unwrap().item.low_stock_threshold, 2, "its own wins");
    // An existing item keeps its threshold when a write names none.
    let updated = b.set_item(set_item(&own, 30)).unwrap();
    assert!(!updated.created);
    assert_eq!(updated.item.low_stock_threshold, 2);
    assert_eq!(updated.item.on_hand, 30);
    // A create-only write (expected version 0) of an existing item is still refused.
    let err = b.set_item(SetItem { expected_version: Some(0), ..set_item(&own, 1) }).unwrap_err();
    assert_eq!(err.code(), "VERSION_CONFLICT");
    // A write that expects a version is an update: never given the default.
    b.set_item(SetItem { low_stock_threshold: Some(0), ..set_item(&later, 20) }).unwrap();
    let v = b.get_item(later.clone()).unwrap().version;
    let kept = b.set_item(SetItem { expected_version: Some(v), ..set_item(&later, 21) }).unwrap();
    assert_eq!(kept.item.low_stock_threshold, 0);
    // The default raises alerts: 20 → 5 is low stock.
    b.reserve(request("p1", &[(&plain, 15)])).unwrap();
    assert_eq!(e.outcome_stats().low_stock_alerts, 1);
    e.shutdown();
    drop(e);

    // Replay gives the same thresholds whatever the configuration says now.
    let (e, _) =
        Engine::open(dir.path(), EngineConfig { default_low_stock_threshold: 0, ..config() }, StorageConfig::default())
            .unwrap();
    let b = e.blocking();
    assert_eq!(b.get_item(plain).unwrap().low_stock_threshold, 5);
    assert_eq!(b.get_item(own).unwrap().low_stock_threshold, 2);
    assert_eq!(b.get_item(later).unwrap().low_stock_threshold, 0);
    // Counters start again with the process.
    assert_eq!(e.outcome_stats().created, 0);
}

#[test]
fn a_default_threshold_over_the_on_hand_ceiling_is_refused() {
    let err = Engine::in_memory(EngineConfig {
        shards: 1,
        expiry_interval: None,
        default_low_stock_threshold: limits::MAX_ON_HAND + 1,
        ..Default::default()
    })
    .err()
    .expect("refused");
    assert_eq!(err.code(), "VALIDATION_ERROR");
    assert!(err.to_string().contains("default_low_stock_threshold"), "{err}");
}
