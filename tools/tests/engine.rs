//! A data directory written by the real engine (`Engine::open`) reads back: verify
//! passes and replay ends in the engine's own figures, per location too (transfers,
//! receipts, split and named-location reservations).

mod common;

use common::*;
use std::sync::Arc;
use stockd_engine::{
    Adjust, AdjustReason, Engine, EngineConfig, ManualClock, OrderId, ReservationKey, ReserveRequest, SetItem, Sku,
    StorageConfig,
};

#[test]
fn reads_what_the_engine_wrote() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let clock = Arc::new(ManualClock::new(T0));
    let config = EngineConfig { shards: 2, expiry_interval: None, clock: clock.clone(), ..Default::default() };
    let (engine, _) = Engine::open(&dir, config, StorageConfig::default()).unwrap();
    let b = engine.blocking();
    let sku = |s: &str| Sku::parse(s, "sku").unwrap();
    for (i, s) in ["A-1", "B-2", "C-3"].iter().enumerate() {
        b.set_item(SetItem::on_hand(sku(s), 10 * (i as u64 + 1))).unwrap();
    }
    let order = |o: &str| OrderId::parse(o, "o").unwrap();
    let reserve = |o: &str, lines: Vec<(Sku, u64)>, ttl: u64| {
        b.reserve(ReserveRequest {
            order_id: order(o),
            lines,
            ttl_secs: Some(ttl),
            metadata: None,
            placement: Default::default(),
        })
        .unwrap()
    };
    reserve("o-1", vec![(sku("A-1"), 3), (sku("B-2"), 2)], 60);
    reserve("o-2", vec![(sku("C-3"), 5)], 60);
    reserve("o-3", vec![(sku("A-1"), 1)], 5);
    b.commit(ReservationKey::Order(order("o-1")), None).unwrap();
    b.release(ReservationKey::Order(order("o-2")), Some("changed mind".into())).unwrap();
    b.adjust(Adjust {
        sku: sku("B-2"),
        delta: -4,
        reason: AdjustReason::Damaged,
        note: None,
        idempotency_key: None,
        expected_version: None,
        location: None,
    })
    .unwrap();
    clock.advance_secs(10);
    b.expire_due().unwrap();
    let expected: Vec<_> = ["A-1", "B-2", "C-3"]
        .iter()
        .map(|s| {
            let i = b.get_item(sku(s)).unwrap();
            (s.to_string(), (i.on_hand, i.available(), i.reserved, i.sold))
        })
        .collect();
    engine.shutdown();
    drop(engine);

    let d = dir.to_str().unwrap();
    let o = run(&["verify", d, "--strict", "--check-every", "1"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let o = run(&["replay", d, "--format", "json"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let json: serde_json::Value = serde_json::from_str(&text(&o).0).unwrap();
    assert_eq!(items_of(&json, None).into_iter().collect::<Vec<_>>(), expected);
    let o = run(&["history", d, "--sku", "A-1", "--format", "csv"]);
    let (out, _) = text(&o);
    let types: Vec<&str> = out.lines().skip(1).map(|l| l.split(',').nth(3).unwrap()).collect();
    assert_eq!(types, ["SET", "RESERVE", "RESERVE", "CONFIRM", "EXPIRE"], "{out}");
    let o = run(&["stats", d, "--format", "csv"]);
    let (out, _) = text(&o);
    for line in ["reservations,committed,1", "reservations,released,1", "reservations,expired,1"] {
        assert!(out.contains(line), "{line} in {out}");
    }
}

#[test]
fn reads_the_locations_the_engine_wrote() {
    use stockd_engine::location::{AllocationStrategy, LocationId, Placement};
    use stockd_engine::Transfer;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let clock = Arc::new(ManualClock::new(T0));
    let config = EngineConfig {
        shards: 2,
        expiry_interval: None,
        clock: clock.clone(),
        warehouses: Some(stockd_tools::testgen::warehouses()),
        ..Default::default()
    };
    let (engine, _) = Engine::open(&dir, config, StorageConfig::default()).unwrap();
    let b = engine.blocking();
    let sku = |s: &str| Sku::parse(s, "sku").unwrap();
    let loc = |s: &str| LocationId::parse(s, "location").unwrap();
    for (s, l, on_hand) in [("A-1", "wh-n1", 3), ("A-1", "wh-s1", 4), ("B-2", "wh-n2", 5), ("B-2", "default", 2)] {
        b.set_item(SetItem {
            sku: sku(s),
            on_hand,
            low_stock_threshold: None,
            max_per_order: None,
            expected_version: None,
            location: Some(loc(l)),
            incoming: None,
        })
        .unwrap();
    }
    let transfer = |from: &str, to: &str, quantity, in_transit| Transfer {
        sku: sku("B-2"),
        from: loc(from),
        to: loc(to),
        quantity,
        in_transit,
        note: None,
        idempotency_key: Some(format!("t-{from}-{to}")),
    };
    stockd_engine::block_on(engine.transfer(transfer("wh-n2", "wh-s1", 3, true))).unwrap();
    stockd_engine::block_on(engine.transfer(transfer("default", "wh-n1", 1, false))).unwrap();
    stockd_engine::block_on(engine.receive(sku("B-2"), loc("wh-s1"), 2, Some("r-1".into()))).unwrap();
    let reserve = |o: &str, lines: Vec<(Sku, u64)>, placement: Placement| {
        let order_id = OrderId::parse(o, "o").unwrap();
        b.reserve(ReserveRequest { order_id, lines, ttl_secs: Some(600), metadata: None, placement }).unwrap()
    };
    // no warehouse holds 6, so it is split; B-2 from the one it names.
    let named = Placement { locations: vec![(sku("B-2"), loc("wh-s1"))], ..Default::default() };
    let split = reserve("o-1", vec![(sku("A-1"), 6), (sku("B-2"), 2)], named);
    assert!(split.reservation.allocations().iter().filter(|a| a.sku == sku("A-1")).count() > 1);
    let south =
        Placement { strategy: AllocationStrategy::MostAvailable, region: Some("south".into()), locations: vec![] };
    reserve("o-2", vec![(sku("B-2"), 1)], south);
    b.commit(ReservationKey::Order(OrderId::parse("o-2", "o").unwrap()), None).unwrap();
    let expected: Vec<_> = ["A-1", "B-2"]
        .iter()
        .map(|s| {
            let i = b.get_item(sku(s)).unwrap();
            let locations = i
                .locations()
                .iter()
                .map(|l| (l.location.to_string(), [l.on_hand, l.available(), l.reserved, l.sold, l.incoming]))
                .collect();
            (s.to_string(), (i.incoming, locations))
        })
        .collect();
    let o1 = b.get_reservation(ReservationKey::Order(OrderId::parse("o-1", "o").unwrap())).unwrap();
    engine.shutdown();
    drop(engine);

    let d = dir.to_str().unwrap();
    let o = run(&["verify", d, "--strict", "--check-every", "1"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let o = run(&["replay", d, "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&text(&o).0).unwrap();
    assert_eq!(locations_of(&json, None).into_iter().collect::<Vec<_>>(), expected);
    let shown = &json["reservations"][0];
    assert_eq!(shown["order_id"], "o-1");
    let allocations: Vec<(String, String, u64)> = shown["allocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (a["sku"].as_str().unwrap().into(), a["location"].as_str().unwrap().into(), a["quantity"].as_u64().unwrap())
        })
        .collect();
    let engine_allocations: Vec<(String, String, u64)> =
        o1.allocations().iter().map(|a| (a.sku.to_string(), a.location.to_string(), a.quantity)).collect();
    assert_eq!(allocations, engine_allocations);
}
