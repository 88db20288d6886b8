//! The operator's reservation listing (issue 15): headers across shards in id order,
//! filtered by status, SKU and age, paged by cursor; each shard looks at a bounded
//! number of headers per page, and paging through short scans still visits every
//! match exactly once.

use std::sync::Arc;
use stockd_engine::*;

mod common;
use common::{set_item, sku};

const START: Millis = 1_700_000_000_000;

fn engine(shards: usize) -> (Engine, ManualClock) {
    let clock = ManualClock::new(START);
    let e = Engine::in_memory(EngineConfig {
        shards,
        retention_secs: 3_600,
        expiry_interval: None,
        clock: Arc::new(clock.clone()),
        warehouses: None,
        ..Default::default()
    })
    .unwrap();
    (e, clock)
}

fn set(e: &Engine, s: &str, on_hand: u64) {
    e.blocking().set_item(set_item(&sku(s), on_hand)).unwrap();
}

fn reserve(e: &Engine, order: &str, lines: &[(&str, u64)]) -> Reservation {
    e.blocking()
        .reserve(ReserveRequest {
            order_id: OrderId::parse(order, "orderId").unwrap(),
            lines: lines.iter().map(|(s, q)| (sku(s), *q)).collect(),
            ttl_secs: Some(60),
            metadata: None,
            placement: Placement::default(),
        })
        .unwrap()
        .reservation
}

fn key(order: &str) -> ReservationKey {
    ReservationKey::Order(OrderId::parse(order, "orderId").unwrap())
}

/// Every page of a listing, with each shard scanning at most `budget` headers per page.
fn all_pages(e: &Engine, req: ReservationListing, budget: usize) -> (Vec<String>, usize) {
    let mut orders = Vec::new();
    let mut pages = 0;
    let mut after = None;
    loop {
        let page =
            e.blocking().list_reservations_scanning(ReservationListing { after, ..req.clone() }, budget).unwrap();
        pages += 1;
        assert!(page.reservations.len() <= req.limit);
        let ids: Vec<ReservationId> = page.reservations.iter().map(|r| r.reservation_id).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "a page is in id order");
        if let (Some(prev), Some(first)) = (after, ids.first()) {
            assert!(prev < *first, "pages never go back");
        }
        orders.extend(page.reservations.iter().map(|r| r.order_id.to_string()));
        match page.next_after {
            Some(n) => after = Some(n),
            None => break,
        }
        assert!(pages < 1_000, "the listing moves forward");
    }
    (orders, pages)
}

/// 3 shards; 30 reservations made a second apart, so some shards home several.
/// Status mix: o00..o09 committed, o10..o14 released, the rest ACTIVE.
/// Lines: i % 3 == 0 names A and B, 1 names A, 2 names B; A and B live on different
/// shards, so one-shard reservations are homed on both.
fn populated() -> (Engine, ManualClock, Vec<Reservation>) {
    let (e, clock) = engine(3);
    let (a, b) = two_shards();
    set(&e, &a, 1_000);
    set(&e, &b, 1_000);
    let mut made = Vec::new();
    for i in 0..30 {
        let lines: Vec<(&str, u64)> = match i % 3 {
            0 => vec![(&a, 1), (&b, 1)],
            1 => vec![(&a, 1)],
            _ => vec![(&b, 1)],
        };
        made.push(reserve(&e, &format!("o{i:02}"), &lines));
        clock.advance_secs(1);
    }
    for i in 0..10 {
        e.blocking().commit(key(&format!("o{i:02}")), None).unwrap();
    }
    for i in 10..15 {
        e.blocking().release(key(&format!("o{i:02}")), None).unwrap();
    }
    (e, clock, made)
}

/// SKU names for A and B on different shards of 3.
fn two_shards() -> (String, String) {
    let shard = |s: &str| stockd_engine::shard_of_sku(&sku(s), 3);
    let b = (0..100).map(|i| format!("B{i}")).find(|b| shard(b) != shard("A")).unwrap();
    ("A".into(), b)
}

fn ordered(made: &[Reservation], keep: impl Fn(usize) -> bool) -> Vec<String> {
    let mut v: Vec<&Reservation> = made.iter().enumerate().filter(|(i, _)| keep(*i)).map(|(_, r)| r).collect();
    v.sort_by_key(|r| r.reservation_id);
    v.iter().map(|r| r.order_id.to_string()).collect()
}

#[test]
fn the_listing_spans_every_shard_in_id_order() {
    let (e, _clock, made) = populated();
    let homes: std::collections::BTreeSet<usize> = made.iter().map(|r| r.reservation_id.shard()).collect();
    assert!(homes.len() >= 2, "reservations on 2+ shards: {homes:?}");
    let all = ReservationListing { limit: 1_000, ..Default::default() };
    let (orders, pages) = all_pages(&e, all.clone(), 65_536);
    assert_eq!(orders, ordered(&made, |_| true));
    assert_eq!(pages, 1);
    // Small pages (limit) and short scans (budget) visit the same headers once each.
    for (limit, budget) in [(7, 65_536), (1, 1), (4, 2), (1_000, 3)] {
        let (paged, _) = all_pages(&e, ReservationListing { limit, ..Default::default() }, budget);
        assert_eq!(paged, orders, "limit {limit}, budget {budget}");
    }
}

#[test]
fn filters_by_status_sku_and_age_combine() {
    let (e, clock, made) = populated();
    let by = |status, sku_: Option<&str>, older| {
        let req =
            ReservationListing { limit: 4, status, sku: sku_.map(sku), older_than_secs: older, ..Default::default() };
        // A budget of 2 headers per shard per page: filters hold across scan stops.
        all_pages(&e, req, 2).0
    };
    assert_eq!(by(Some(ReservationStatus::Committed), None, None), ordered(&made, |i| i < 10));
    assert_eq!(by(Some(ReservationStatus::Released), None, None), ordered(&made, |i| (10..15).contains(&i)));
    assert_eq!(by(Some(ReservationStatus::Active), None, None), ordered(&made, |i| i >= 15));
    assert!(by(Some(ReservationStatus::Expired), None, None).is_empty());
    // SKU: any line. A is on lines of i % 3 in {0, 1}.
    let (a, b) = two_shards();
    assert_eq!(by(None, Some(&a), None), ordered(&made, |i| i % 3 != 2));
    assert_eq!(by(None, Some(&b), None), ordered(&made, |i| i % 3 != 1));
    assert!(by(None, Some("C"), None).is_empty());
    // Age: now is START + 30 s; o{i} was made at START + i s. Older than 25 s: i < 5.
    assert_eq!(by(None, None, Some(25)), ordered(&made, |i| i < 5));
    assert_eq!(
        by(Some(ReservationStatus::Active), Some(&b), Some(5)),
        ordered(&made, |i| (15..25).contains(&i) && i % 3 != 1)
    );
    // Time passes: expiry shows up under EXPIRED.
    clock.advance_secs(120);
    let expired = e.blocking().expire_due().unwrap();
    assert_eq!(expired.len(), 15);
    assert_eq!(by(Some(ReservationStatus::Expired), None, None), ordered(&made, |i| i >= 15));
    assert!(by(Some(ReservationStatus::Active), None, None).is_empty());
}

#[test]
fn bad_limits_are_refused_naming_the_field() {
    let (e, _clock) = engine(2);
    for limit in [0, 1_001] {
        match e.blocking().list_reservations(ReservationListing { limit, ..Default::default() }) {
            Err(EngineError::Validation { field, .. }) => assert_eq!(field, "limit"),
            other => panic!("limit {limit}: {other:?}"),
        }
    }
    let page = e.blocking().list_reservations(ReservationListing { limit: 1, ..Default::default() }).unwrap();
    assert!(page.reservations.is_empty() && page.next_after.is_none());
}
