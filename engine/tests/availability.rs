//! The availability query tells the truth per line: a line that a reserve would refuse
//! now carries the error that reserve answers (`reason`), decided by the hold rule
//! itself (`plan_hold`), in its precedence. Each case also reserves the same line and
//! checks reserve answers exactly that reason.

use std::sync::Arc;
use stockd_engine::*;

mod common;
use common::{set_item, sku};

const START: Millis = 1_700_000_000_000;

fn engine() -> Engine {
    Engine::in_memory(EngineConfig {
        shards: 4,
        retention_secs: 3_600,
        expiry_interval: None,
        clock: Arc::new(ManualClock::new(START)),
        warehouses: None,
        ..Default::default()
    })
    .unwrap()
}

fn set(e: &Engine, s: &str, on_hand: u64, max_per_order: Option<u64>) {
    e.blocking().set_item(SetItem { max_per_order, ..set_item(&sku(s), on_hand) }).unwrap();
}

fn reserve_err(e: &Engine, order: &str, lines: &[(&str, u64)]) -> EngineError {
    e.blocking()
        .reserve(ReserveRequest {
            order_id: OrderId::parse(order, "orderId").unwrap(),
            lines: lines.iter().map(|(s, q)| (sku(s), *q)).collect(),
            ttl_secs: None,
            metadata: None,
            placement: Placement::default(),
        })
        .unwrap_err()
}

/// The one line's availability, and (when refused) that reserve refuses it the same way.
fn check(e: &Engine, s: &str, q: u64) -> LineAvailability {
    let mut av = e.blocking().check_availability(vec![(sku(s), q)]).unwrap();
    assert_eq!(av.len(), 1);
    let a = av.remove(0);
    if let Some(reason) = &a.reason {
        assert_eq!(&reserve_err(e, &format!("o-{s}-{q}"), &[(s, q)]), reason, "reserve answers the reported reason");
    }
    a
}

#[test]
fn an_unknown_item_is_item_not_found() {
    let e = engine();
    let a = check(&e, "nope", 1);
    assert!(!a.exists && !a.is_available());
    assert_eq!(a.reason, Some(EngineError::ItemNotFound { sku: "nope".into() }));
}

#[test]
fn a_blocked_item_is_sales_blocked_even_with_stock() {
    let e = engine();
    set(&e, "blk", 10, None);
    assert_eq!(check(&e, "blk", 1).reason, None);
    e.blocking().set_sales_blocked(sku("blk"), true).unwrap();
    let a = check(&e, "blk", 1);
    assert_eq!(a.available, 10, "the units are there");
    assert_eq!(a.reason.as_ref().map(EngineError::code), Some("SALES_BLOCKED"));
    assert!(!a.is_available());
}

#[test]
fn over_max_per_order_is_refused_with_the_max() {
    let e = engine();
    set(&e, "mpo", 10, Some(3));
    assert_eq!(check(&e, "mpo", 3).reason, None, "at the max is fine");
    let a = check(&e, "mpo", 4);
    assert_eq!(a.reason, Some(EngineError::MaxPerOrderExceeded { sku: "mpo".into(), requested: 4, max_per_order: 3 }));
}

#[test]
fn too_few_units_is_insufficient_inventory() {
    let e = engine();
    set(&e, "few", 2, None);
    assert_eq!(check(&e, "few", 2).reason, None);
    let a = check(&e, "few", 3);
    assert_eq!(
        a.reason,
        Some(EngineError::InsufficientInventory {
            items: vec![Shortfall { sku: "few".into(), requested: 3, available: 2 }]
        })
    );
}

#[test]
fn reasons_follow_the_precedence_of_a_hold() {
    let e = engine();
    // Blocked, over the max and short at once: blocked wins.
    set(&e, "all", 1, Some(2));
    e.blocking().set_sales_blocked(sku("all"), true).unwrap();
    assert_eq!(check(&e, "all", 5).reason.map(|r| r.code()), Some("SALES_BLOCKED"));
    // Over the max and short: the max wins.
    set(&e, "two", 1, Some(2));
    assert_eq!(check(&e, "two", 5).reason.map(|r| r.code()), Some("MAX_PER_ORDER_EXCEEDED"));
}

#[test]
fn each_line_has_its_own_reason_in_a_mixed_request() {
    let e = engine();
    set(&e, "ok", 5, None);
    set(&e, "b", 5, None);
    e.blocking().set_sales_blocked(sku("b"), true).unwrap();
    set(&e, "m", 5, Some(1));
    set(&e, "s", 1, None);
    let lines = vec![(sku("ok"), 1), (sku("b"), 1), (sku("m"), 2), (sku("s"), 2), (sku("gone"), 1)];
    let av = e.blocking().check_availability(lines).unwrap();
    let codes: Vec<Option<&str>> = av.iter().map(|a| a.reason.as_ref().map(EngineError::code)).collect();
    assert_eq!(
        codes,
        [
            None,
            Some("SALES_BLOCKED"),
            Some("MAX_PER_ORDER_EXCEEDED"),
            Some("INSUFFICIENT_INVENTORY"),
            Some("ITEM_NOT_FOUND")
        ]
    );
    // The whole request, reserved, is refused by the highest-ranked of them.
    let all = [("ok", 1), ("b", 1), ("m", 2), ("s", 2), ("gone", 1)];
    assert_eq!(reserve_err(&e, "whole", &all).code(), "ITEM_NOT_FOUND");
}

#[test]
fn a_named_location_is_checked_there() {
    let e = engine();
    set(&e, "loc", 5, None);
    let at = LocationId::parse("elsewhere", "location").unwrap();
    let placement = Placement { locations: vec![(sku("loc"), at)], ..Default::default() };
    let av = e.blocking().check_availability_with(vec![(sku("loc"), 1)], placement).unwrap();
    assert_eq!(av[0].reason.as_ref().map(EngineError::code), Some("INSUFFICIENT_INVENTORY"), "{av:?}");
}
