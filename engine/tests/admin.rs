//! Operator levers: blocking sales of a SKU.

use std::sync::Arc;
use stockd_engine::*;

fn sku(s: &str) -> Sku {
    Sku::parse(s, "sku").unwrap()
}

fn key(o: &str) -> ReservationKey {
    ReservationKey::Order(OrderId::parse(o, "orderId").unwrap())
}

fn reserve(e: &BlockingEngine, order: &str, lines: &[(&str, u64)]) -> Result<ReserveOutcome, EngineError> {
    e.reserve(ReserveRequest {
        order_id: OrderId::parse(order, "orderId").unwrap(),
        lines: lines.iter().map(|(s, q)| (sku(s), *q)).collect(),
        ttl_secs: None,
        metadata: None,
        placement: Default::default(),
    })
}

#[test]
fn blocked_sales_refuse_new_reservations_but_let_existing_ones_finish() {
    let clock = ManualClock::new(1_700_000_000_000);
    let engine = Engine::in_memory(EngineConfig {
        shards: 3,
        expiry_interval: None,
        clock: Arc::new(clock),
        ..Default::default()
    })
    .unwrap();
    let e = engine.blocking();
    for s in ["a", "b"] {
        e.set_item(SetItem::on_hand(sku(s), 10)).unwrap();
    }
    reserve(&e, "before", &[("a", 2)]).unwrap();
    reserve(&e, "before-2", &[("a", 1)]).unwrap();
    let blocked = e.set_sales_blocked(sku("a"), true).unwrap();
    assert!(blocked.item.sales_blocked);

    // Refused whatever the stock, naming the SKU; nothing held on the other SKU either.
    let err = reserve(&e, "after", &[("b", 1), ("a", 1)]).unwrap_err();
    assert_eq!(err.code(), "SALES_BLOCKED");
    assert_eq!(err, EngineError::SalesBlocked { sku: "a".into() });
    assert_eq!(e.get_item(sku("b")).unwrap().reserved, 0);
    // Blocked outranks a shortfall on another SKU of the same order.
    assert_eq!(reserve(&e, "after-2", &[("b", 99), ("a", 1)]).unwrap_err().code(), "SALES_BLOCKED");

    // Existing reservations still commit and release.
    assert_eq!(e.commit(key("before"), None).unwrap().status, ReservationStatus::Committed);
    assert_eq!(e.release(key("before-2"), None).unwrap().status, ReservationStatus::Released);
    let a = e.get_item(sku("a")).unwrap();
    assert_eq!((a.on_hand, a.reserved, a.sold), (8, 0, 2));

    e.set_sales_blocked(sku("a"), false).unwrap();
    assert!(reserve(&e, "after", &[("b", 1), ("a", 1)]).unwrap().created);
    assert_eq!(e.set_sales_blocked(sku("nope"), true).unwrap_err().code(), "ITEM_NOT_FOUND");
    e.check_invariants().unwrap();
}

#[test]
fn a_block_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = || EngineConfig { shards: 2, expiry_interval: None, ..Default::default() };
    let (engine, _) = Engine::open(dir.path(), config(), StorageConfig::default()).unwrap();
    engine.blocking().set_item(SetItem::on_hand(sku("a"), 5)).unwrap();
    engine.blocking().set_sales_blocked(sku("a"), true).unwrap();
    engine.shutdown();
    let (engine, _) = Engine::open(dir.path(), config(), StorageConfig::default()).unwrap();
    assert!(engine.blocking().get_item(sku("a")).unwrap().sales_blocked);
    assert_eq!(reserve(&engine.blocking(), "o", &[("a", 1)]).unwrap_err().code(), "SALES_BLOCKED");
    engine.shutdown();
}
