//! Scenario tests of the engine's documented behaviour, driven through the blocking
//! API with a manual clock: expiry, idempotency, partial commit, state transitions,
//! extension, cross-shard all-or-nothing, lookups, alerts, maxPerOrder, versions,
//! adjustment keys and deletion.

use std::sync::Arc;
use std::time::{Duration, Instant};
use stockd_engine::shard_of_sku;
use stockd_engine::*;

const START: Millis = 1_700_000_000_000;
const RETENTION_SECS: u64 = 3_600;

fn engine_with(shards: usize) -> (Engine, ManualClock) {
    let clock = ManualClock::new(START);
    let engine = Engine::in_memory(EngineConfig {
        shards,
        retention_secs: RETENTION_SECS,
        expiry_interval: None,
        clock: Arc::new(clock.clone()),
        warehouses: None,
        ..Default::default()
    })
    .unwrap();
    (engine, clock)
}

fn engine() -> (Engine, ManualClock) {
    engine_with(4)
}

fn sku(s: &str) -> Sku {
    Sku::parse(s, "sku").unwrap()
}

fn order(s: &str) -> OrderId {
    OrderId::parse(s, "orderId").unwrap()
}

fn by_order(s: &str) -> ReservationKey {
    ReservationKey::Order(order(s))
}

fn by_id(r: &Reservation) -> ReservationKey {
    ReservationKey::Id(r.reservation_id.to_string())
}

fn set(e: &Engine, s: &str, on_hand: u64) -> ItemChange {
    set_full(e, s, on_hand, None, None, None).unwrap()
}

fn set_full(
    e: &Engine,
    s: &str,
    on_hand: u64,
    low_stock_threshold: Option<u64>,
    max_per_order: Option<u64>,
    expected_version: Option<u64>,
) -> Result<ItemChange, EngineError> {
    e.blocking().set_item(SetItem {
        sku: sku(s),
        on_hand,
        low_stock_threshold,
        max_per_order,
        expected_version,
        location: None,
        incoming: None,
    })
}

fn adjust(
    e: &Engine,
    s: &str,
    delta: i64,
    key: Option<&str>,
    expected_version: Option<u64>,
) -> Result<ItemChange, EngineError> {
    e.blocking().adjust(Adjust {
        sku: sku(s),
        delta,
        reason: AdjustReason::Correction,
        note: None,
        idempotency_key: key.map(str::to_owned),
        expected_version,
        location: None,
    })
}

fn item(e: &Engine, s: &str) -> Item {
    e.blocking().get_item(sku(s)).unwrap()
}

/// (onHand, reserved, sold) of an item.
fn figures(e: &Engine, s: &str) -> (u64, u64, u64) {
    let i = item(e, s);
    (i.on_hand, i.reserved, i.sold)
}

fn reserve(e: &Engine, o: &str, lines: &[(&str, u64)], ttl: Option<u64>) -> Result<ReserveOutcome, EngineError> {
    e.blocking().reserve(ReserveRequest {
        order_id: order(o),
        lines: lines.iter().map(|(s, q)| (sku(s), *q)).collect(),
        ttl_secs: ttl,
        metadata: None,
        placement: Default::default(),
    })
}

fn ok_reserve(e: &Engine, o: &str, lines: &[(&str, u64)], ttl: Option<u64>) -> Reservation {
    let out = reserve(e, o, lines, ttl).unwrap();
    assert!(out.created);
    assert_eq!(out.reservation.status, ReservationStatus::Active);
    out.reservation
}

fn invariants(e: &Engine) {
    e.blocking().check_invariants().unwrap();
}

// ---- expiry -------------------------------------------------------------------------

#[test]
fn expiry_happens_exactly_at_the_deadline() {
    let (e, clock) = engine();
    set(&e, "EXP", 10);
    let r = ok_reserve(&e, "exp-1", &[("EXP", 4)], Some(60));
    assert_eq!(r.created_at, START);
    assert_eq!(r.expires_at, START + 60_000);
    assert_eq!(figures(&e, "EXP"), (10, 4, 0));

    clock.advance_secs(59);
    assert!(e.blocking().expire_due().unwrap().is_empty(), "nothing is due 1 s before the deadline");
    assert_eq!(figures(&e, "EXP"), (10, 4, 0));
    assert_eq!(e.blocking().get_reservation(by_id(&r)).unwrap().status, ReservationStatus::Active);

    clock.advance_secs(1);
    let expired = e.blocking().expire_due().unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].reservation_id, r.reservation_id);
    assert_eq!(expired[0].status, ReservationStatus::Expired);
    assert_eq!(expired[0].finished_at, Some(START + 60_000));
    assert_eq!(figures(&e, "EXP"), (10, 0, 0), "the stock is back");
    assert_eq!(item(&e, "EXP").available(), 10);
    assert!(e.blocking().expire_due().unwrap().is_empty(), "a second sweep expires nothing");

    let got = e.blocking().get_reservation(by_order("exp-1")).unwrap();
    assert_eq!(got.status, ReservationStatus::Expired);
    assert_eq!(
        e.blocking().commit(by_id(&r), None).unwrap_err(),
        EngineError::ReservationExpired { reservation_id: r.reservation_id.to_string() }
    );
    assert_eq!(
        e.blocking().extend(by_id(&r), 60).unwrap_err(),
        EngineError::ReservationExpired { reservation_id: r.reservation_id.to_string() }
    );
    // Releasing an expired reservation answers it as it is.
    let rel = e.blocking().release(by_id(&r), None).unwrap();
    assert_eq!(rel.status, ReservationStatus::Expired);
    assert_eq!(figures(&e, "EXP"), (10, 0, 0));
    invariants(&e);
}

#[test]
fn commit_at_the_deadline_before_any_sweep_is_expired_and_gives_stock_back() {
    let (e, clock) = engine();
    set(&e, "LATE", 5);
    let early = ok_reserve(&e, "late-ok", &[("LATE", 1)], Some(30));
    let late = ok_reserve(&e, "late-1", &[("LATE", 2)], Some(30));
    assert_eq!(figures(&e, "LATE"), (5, 3, 0));

    // One millisecond before the deadline a commit still succeeds.
    clock.advance_millis(29_999);
    assert_eq!(e.blocking().commit(by_id(&early), None).unwrap().status, ReservationStatus::Committed);
    assert_eq!(figures(&e, "LATE"), (4, 2, 1));

    // At the deadline, with no sweep run, the commit is refused and the hold released.
    clock.advance_millis(1);
    assert_eq!(
        e.blocking().commit(by_order("late-1"), None).unwrap_err(),
        EngineError::ReservationExpired { reservation_id: late.reservation_id.to_string() }
    );
    assert_eq!(figures(&e, "LATE"), (4, 0, 1), "the expired hold went back to available");
    let got = e.blocking().get_reservation(by_id(&late)).unwrap();
    assert_eq!(got.status, ReservationStatus::Expired);
    assert_eq!(got.finished_at, Some(START + 30_000));
    assert!(e.blocking().expire_due().unwrap().is_empty(), "already expired on access");
    // Still expired on a retry.
    assert_eq!(e.blocking().commit(by_id(&late), None).unwrap_err().code(), "RESERVATION_EXPIRED");
    invariants(&e);
}

#[test]
fn release_after_the_deadline_before_a_sweep_expires_it() {
    let (e, clock) = engine();
    set(&e, "REL-LATE", 5);
    let r = ok_reserve(&e, "rel-late", &[("REL-LATE", 5)], Some(10));
    clock.advance_secs(11);
    let rel = e.blocking().release(by_id(&r), Some("too late".into())).unwrap();
    assert_eq!(rel.status, ReservationStatus::Expired);
    assert_eq!(figures(&e, "REL-LATE"), (5, 0, 0));
    invariants(&e);
}

#[test]
fn background_expiry_thread_expires_on_its_own() {
    let e = Engine::in_memory(EngineConfig {
        shards: 2,
        retention_secs: RETENTION_SECS,
        expiry_interval: Some(Duration::from_millis(10)),
        clock: Arc::new(SystemClock),
        warehouses: None,
        ..Default::default()
    })
    .unwrap();
    set(&e, "BG", 3);
    let r = ok_reserve(&e, "bg-1", &[("BG", 2)], Some(1));
    assert_eq!(r.expires_at - r.created_at, 1_000);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = e.blocking().get_reservation(by_id(&r)).unwrap();
        if got.status == ReservationStatus::Expired && item(&e, "BG").reserved == 0 {
            break;
        }
        assert_eq!(got.status, ReservationStatus::Active, "nothing but expiry may touch it");
        assert!(Instant::now() < deadline, "the background sweep did not expire the reservation within 5 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(figures(&e, "BG"), (3, 0, 0));
    invariants(&e);
    e.shutdown();
}

// ---- idempotency ----------------------------------------------------------------------

#[test]
fn repeated_reserve_answers_the_original_and_changes_nothing() {
    let (e, clock) = engine();
    set(&e, "IA", 10);
    set(&e, "IB", 10);
    let first = ok_reserve(&e, "idem-1", &[("IA", 2), ("IB", 1)], Some(120));
    let (va, vb) = (item(&e, "IA").version, item(&e, "IB").version);

    clock.advance_secs(10);
    // Same lines, other order, other ttl: the same reservation, not a new one.
    let again = reserve(&e, "idem-1", &[("IB", 1), ("IA", 2)], Some(900)).unwrap();
    assert!(!again.created);
    assert!(again.alerts.is_empty());
    assert_eq!(again.reservation, first, "same reservationId, expiresAt and lines");
    assert_eq!(figures(&e, "IA"), (10, 2, 0));
    assert_eq!(figures(&e, "IB"), (10, 1, 0));
    assert_eq!((item(&e, "IA").version, item(&e, "IB").version), (va, vb), "a repeat is no mutation");

    // Same orderId, different items.
    for lines in [&[("IA", 3), ("IB", 1)][..], &[("IA", 2)][..], &[("IA", 2), ("IB", 1), ("IC", 1)][..]] {
        assert_eq!(
            reserve(&e, "idem-1", lines, Some(120)).unwrap_err(),
            EngineError::IdempotencyKeyReused { key: "idem-1".into() }
        );
    }
    assert_eq!(figures(&e, "IA"), (10, 2, 0));
    assert_eq!(figures(&e, "IB"), (10, 1, 0));
    invariants(&e);
}

#[test]
fn finished_reservations_are_remembered_for_the_retention_window() {
    let (e, clock) = engine();
    set(&e, "RET", 10);
    let first = ok_reserve(&e, "ret-1", &[("RET", 2)], None);
    assert_eq!(first.expires_at, START + 900_000, "default ttl is 900 s");
    let released = e.blocking().release(by_order("ret-1"), Some("customer left".into())).unwrap();
    assert_eq!(released.status, ReservationStatus::Released);
    assert_eq!(released.release_reason.as_deref(), Some("customer left"));
    assert_eq!(figures(&e, "RET"), (10, 0, 0));

    // After release, the same orderId and items answer the RELEASED reservation.
    let again = reserve(&e, "ret-1", &[("RET", 2)], None).unwrap();
    assert!(!again.created);
    assert_eq!(again.reservation.reservation_id, first.reservation_id);
    assert_eq!(again.reservation.status, ReservationStatus::Released);
    assert_eq!(figures(&e, "RET"), (10, 0, 0), "a repeat does not reserve again");

    // Just inside the retention window it is still remembered.
    clock.advance_secs(RETENTION_SECS - 1);
    e.blocking().expire_due().unwrap();
    let again = reserve(&e, "ret-1", &[("RET", 2)], None).unwrap();
    assert!(!again.created);
    assert_eq!(again.reservation.status, ReservationStatus::Released);

    // Once retention has passed and a sweep ran, the orderId is free again.
    clock.advance_secs(1);
    e.blocking().expire_due().unwrap();
    assert_eq!(
        e.blocking().get_reservation(by_id(&first)).unwrap_err(),
        EngineError::ReservationNotFound { key: format!("reservationId {}", first.reservation_id) }
    );
    assert_eq!(
        e.blocking().get_reservation(by_order("ret-1")).unwrap_err(),
        EngineError::ReservationNotFound { key: "orderId ret-1".into() }
    );
    let fresh = reserve(&e, "ret-1", &[("RET", 2)], None).unwrap();
    assert!(fresh.created);
    assert_ne!(fresh.reservation.reservation_id, first.reservation_id);
    assert_eq!(fresh.reservation.status, ReservationStatus::Active);
    assert_eq!(figures(&e, "RET"), (10, 2, 0));
    invariants(&e);
}

// ---- commit / release -----------------------------------------------------------------

#[test]
fn partial_commit_sells_part_and_returns_the_rest() {
    let (e, _clock) = engine();
    set(&e, "PA", 10);
    set(&e, "PB", 10);
    set(&e, "PC", 10);
    let r = ok_reserve(&e, "part-1", &[("PA", 5), ("PB", 2), ("PC", 4)], None);
    assert_eq!(figures(&e, "PA"), (10, 5, 0));

    // Commit 3 of PA, none of PC; PB is not named so it commits in full.
    let c = e.blocking().commit(by_id(&r), Some(vec![(sku("PA"), 3), (sku("PC"), 0)])).unwrap();
    assert_eq!(c.status, ReservationStatus::Committed);
    let lines: Vec<(String, u64, u64)> = c.lines.iter().map(|l| (l.sku.to_string(), l.quantity, l.committed)).collect();
    assert_eq!(lines, vec![("PA".into(), 5, 3), ("PB".into(), 2, 2), ("PC".into(), 4, 0)]);
    assert_eq!(figures(&e, "PA"), (7, 0, 3), "sold 3, onHand -3, the other 2 back to available");
    assert_eq!(item(&e, "PA").available(), 7);
    assert_eq!(figures(&e, "PB"), (8, 0, 2));
    assert_eq!(figures(&e, "PC"), (10, 0, 0));
    assert_eq!(e.blocking().get_reservation(by_order("part-1")).unwrap(), c);

    // Commit repeated, even with other quantities, answers the first commit.
    let again = e.blocking().commit(by_id(&r), None).unwrap();
    assert_eq!(again, c);
    assert_eq!(figures(&e, "PA"), (7, 0, 3));
    assert_eq!(figures(&e, "PB"), (8, 0, 2));
    invariants(&e);
}

#[test]
fn invalid_commit_quantities_change_nothing() {
    let (e, _clock) = engine();
    set(&e, "QA", 10);
    set(&e, "QB", 10);
    let r = ok_reserve(&e, "q-1", &[("QA", 5)], None);
    let before = item(&e, "QA");
    let err = e.blocking().commit(by_id(&r), Some(vec![(sku("QA"), 6)])).unwrap_err();
    assert_eq!(err.code(), "VALIDATION_ERROR");
    assert!(matches!(&err, EngineError::Validation { field, .. } if field == "items[0].quantity"), "{err:?}");
    let err = e.blocking().commit(by_id(&r), Some(vec![(sku("QB"), 1)])).unwrap_err();
    assert!(matches!(&err, EngineError::Validation { field, .. } if field == "items[0]"), "{err:?}");
    assert_eq!(item(&e, "QA"), before);
    assert_eq!(e.blocking().get_reservation(by_id(&r)).unwrap().status, ReservationStatus::Active);
    let c = e.blocking().commit(by_id(&r), Some(vec![(sku("QA"), 5)])).unwrap();
    assert_eq!(c.lines[0].committed, 5);
    assert_eq!(figures(&e, "QA"), (5, 0, 5));
    invariants(&e);
}

#[test]
fn release_is_idempotent_and_commit_after_release_fails() {
    let (e, _clock) = engine();
    set(&e, "RL", 4);
    let r = ok_reserve(&e, "rl-1", &[("RL", 3)], None);
    let rel = e.blocking().release(by_id(&r), Some("cart abandoned".into())).unwrap();
    assert_eq!(rel.status, ReservationStatus::Released);
    assert_eq!(figures(&e, "RL"), (4, 0, 0));
    let version = item(&e, "RL").version;
    let again = e.blocking().release(by_order("rl-1"), Some("other reason".into())).unwrap();
    assert_eq!(again, rel, "a repeated release answers the first one");
    assert_eq!(item(&e, "RL").version, version);

    let want = EngineError::ReservationReleased { reservation_id: r.reservation_id.to_string() };
    assert_eq!(e.blocking().commit(by_id(&r), None).unwrap_err(), want);
    assert_eq!(e.blocking().extend(by_id(&r), 60).unwrap_err(), want);
    assert_eq!(figures(&e, "RL"), (4, 0, 0));
    invariants(&e);
}

#[test]
fn release_after_commit_fails() {
    let (e, _clock) = engine();
    set(&e, "CM", 4);
    let r = ok_reserve(&e, "cm-1", &[("CM", 3)], None);
    e.blocking().commit(by_order("cm-1"), None).unwrap();
    assert_eq!(figures(&e, "CM"), (1, 0, 3));
    let want = EngineError::ReservationCommitted { reservation_id: r.reservation_id.to_string() };
    assert_eq!(e.blocking().release(by_id(&r), None).unwrap_err(), want);
    assert_eq!(e.blocking().extend(by_id(&r), 60).unwrap_err(), want);
    assert_eq!(e.blocking().expire(by_id(&r)).unwrap_err(), want);
    assert_eq!(figures(&e, "CM"), (1, 0, 3));
    invariants(&e);
}

// ---- extend ---------------------------------------------------------------------------

#[test]
fn extend_moves_the_deadline() {
    let (e, clock) = engine();
    set(&e, "EXT", 5);
    let r = ok_reserve(&e, "ext-1", &[("EXT", 1)], Some(60));
    clock.advance_secs(30);
    let x = e.blocking().extend(by_id(&r), 120).unwrap();
    assert_eq!(x.status, ReservationStatus::Active);
    assert_eq!(x.expires_at, START + 150_000);
    assert_eq!(x.created_at, r.created_at);
    assert_eq!(e.blocking().get_reservation(by_order("ext-1")).unwrap().expires_at, START + 150_000);

    // The old deadline passes: nothing expires.
    clock.advance_secs(100);
    assert!(e.blocking().expire_due().unwrap().is_empty());
    assert_eq!(figures(&e, "EXT"), (5, 1, 0));
    // The new one does.
    clock.advance_secs(20);
    let expired = e.blocking().expire_due().unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(figures(&e, "EXT"), (5, 0, 0));
    invariants(&e);
}

#[test]
fn extend_is_capped_at_max_ttl_after_creation() {
    // Max TTL one day (the engine's fixed cap before it was configurable).
    let clock = ManualClock::new(START);
    let config = EngineConfig {
        shards: 4,
        expiry_interval: None,
        clock: Arc::new(clock.clone()),
        max_ttl_secs: 86_400,
        ..Default::default()
    };
    let e = Engine::in_memory(config).unwrap();
    set(&e, "CAP", 5);
    let r = ok_reserve(&e, "cap-1", &[("CAP", 1)], Some(3_600));
    clock.advance_secs(1_000);
    let err = e.blocking().extend(by_id(&r), 86_400).unwrap_err();
    assert_eq!(err.code(), "VALIDATION_ERROR");
    match &err {
        EngineError::Validation { field, message } => {
            assert_eq!(field, "expiresIn");
            assert!(message.contains("85400"), "says how much remains: {message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(e.blocking().get_reservation(by_id(&r)).unwrap().expires_at, START + 3_600_000, "unchanged");
    // Exactly up to the cap is allowed.
    let x = e.blocking().extend(by_id(&r), 85_400).unwrap();
    assert_eq!(x.expires_at, r.created_at + 86_400_000);
    let err = e.blocking().extend(by_id(&r), 86_400).unwrap_err();
    assert!(matches!(&err, EngineError::Validation { field, .. } if field == "expiresIn"));
    // A committed reservation cannot be extended.
    e.blocking().commit(by_id(&r), None).unwrap();
    assert_eq!(
        e.blocking().extend(by_id(&r), 60).unwrap_err(),
        EngineError::ReservationCommitted { reservation_id: r.reservation_id.to_string() }
    );
    invariants(&e);
}

// ---- cross-shard all-or-nothing --------------------------------------------------------

/// Ten SKUs whose stock lives on at least three of four shards.
fn ten_skus() -> Vec<String> {
    let names: Vec<String> = (0..10).map(|i| format!("cx-{i}")).collect();
    let shards: std::collections::HashSet<usize> = names.iter().map(|n| shard_of_sku(&sku(n), 4)).collect();
    assert!(shards.len() >= 3, "the SKUs must spread over shards: {shards:?}");
    names
}

#[test]
fn cross_shard_reserve_is_all_or_nothing() {
    let (e, _clock) = engine();
    let names = ten_skus();
    for (i, n) in names.iter().enumerate() {
        set(&e, n, if i == 9 { 1 } else { 5 });
    }
    let lines: Vec<(&str, u64)> = names.iter().map(|n| (n.as_str(), 2)).collect();
    let err = reserve(&e, "cx-order", &lines, None).unwrap_err();
    assert_eq!(err.code(), "INSUFFICIENT_INVENTORY");
    assert_eq!(
        err,
        EngineError::InsufficientInventory {
            items: vec![Shortfall { sku: "cx-9".into(), requested: 2, available: 1 }]
        }
    );
    for (i, n) in names.iter().enumerate() {
        assert_eq!(figures(&e, n), (if i == 9 { 1 } else { 5 }, 0, 0), "{n} must hold nothing");
    }
    assert_eq!(e.blocking().get_reservation(by_order("cx-order")).unwrap_err().code(), "RESERVATION_NOT_FOUND");
    invariants(&e);

    // Two short lines on different shards: both reported, in request order.
    set(&e, "cx-3", 1);
    assert_ne!(shard_of_sku(&sku("cx-3"), 4), shard_of_sku(&sku("cx-9"), 4), "test layout");
    let err = reserve(&e, "cx-order", &lines, None).unwrap_err();
    assert_eq!(
        err,
        EngineError::InsufficientInventory {
            items: vec![
                Shortfall { sku: "cx-3".into(), requested: 2, available: 1 },
                Shortfall { sku: "cx-9".into(), requested: 2, available: 1 },
            ]
        }
    );
    for n in &names {
        assert_eq!(item(&e, n).reserved, 0, "{n}");
    }

    // A missing SKU outranks a shortfall, whatever shard it is on.
    let mut with_missing = lines.clone();
    with_missing.push(("cx-missing", 1));
    assert_eq!(
        reserve(&e, "cx-order", &with_missing, None).unwrap_err(),
        EngineError::ItemNotFound { sku: "cx-missing".into() }
    );
    for n in &names {
        assert_eq!(item(&e, n).reserved, 0, "{n}");
    }
    invariants(&e);

    // The failed orderId was not consumed: once stocked, the same order succeeds.
    set(&e, "cx-3", 5);
    set(&e, "cx-9", 5);
    let ok = reserve(&e, "cx-order", &lines, None).unwrap();
    assert!(ok.created);
    for n in &names {
        assert_eq!(figures(&e, n), (5, 2, 0), "{n}");
    }
    invariants(&e);
}

// ---- lookups ---------------------------------------------------------------------------

#[test]
fn lookups_by_order_and_by_id_agree() {
    let (e, _clock) = engine();
    set(&e, "LK-A", 5);
    set(&e, "LK-B", 5);
    let r = e
        .blocking()
        .reserve(ReserveRequest {
            order_id: order("lk-1"),
            lines: vec![(sku("LK-A"), 1), (sku("LK-B"), 2)],
            ttl_secs: Some(300),
            metadata: Some("{\"cart\":42}".into()),
            placement: Default::default(),
        })
        .unwrap()
        .reservation;
    let a = e.blocking().get_reservation(by_order("lk-1")).unwrap();
    let b = e.blocking().get_reservation(by_id(&r)).unwrap();
    assert_eq!(a, b);
    assert_eq!(a, r);
    assert_eq!(a.metadata.as_deref(), Some("{\"cart\":42}"));
    assert_eq!(a.order_id, order("lk-1"));
    assert_eq!(a.reservation_id.to_string().len(), 36);

    for bad in ["nope", "", "zzzzzzzz-zzzz-0000-0000-000000000000", "00000000-0000-0000-0000-00000000000"] {
        assert_eq!(
            e.blocking().get_reservation(ReservationKey::Id(bad.into())).unwrap_err(),
            EngineError::ReservationNotFound { key: format!("reservationId {bad}") }
        );
        assert_eq!(
            e.blocking().commit(ReservationKey::Id(bad.into()), None).unwrap_err().code(),
            "RESERVATION_NOT_FOUND"
        );
    }
    // Well formed, but naming a shard this engine does not have, or an unknown sequence.
    let mut other_shard = r.reservation_id.to_string();
    other_shard.replace_range(9..13, "00ff");
    let mut unknown_seq = r.reservation_id.to_string();
    unknown_seq.replace_range(24..36, "0000000fffff");
    for id in [other_shard, unknown_seq] {
        assert_eq!(
            e.blocking().get_reservation(ReservationKey::Id(id.clone())).unwrap_err(),
            EngineError::ReservationNotFound { key: format!("reservationId {id}") }
        );
    }
    assert_eq!(figures(&e, "LK-B"), (5, 2, 0));
}

// ---- alerts ----------------------------------------------------------------------------

#[test]
fn stock_alerts_come_from_the_operation_that_crosses_the_line() {
    let (e, _clock) = engine();
    let created = set_full(&e, "AL", 10, Some(5), None, None).unwrap();
    assert!(created.created);
    assert!(created.alerts.is_empty());

    assert!(reserve(&e, "al-1", &[("AL", 4)], None).unwrap().alerts.is_empty(), "10 → 6 stays above 5");
    let low = reserve(&e, "al-2", &[("AL", 1)], None).unwrap().alerts;
    assert_eq!(low, vec![StockAlert { sku: sku("AL"), kind: AlertKind::LowStock, available: 5, threshold: 5 }]);
    assert!(reserve(&e, "al-3", &[("AL", 1)], None).unwrap().alerts.is_empty(), "already low: no new alert");
    let out = reserve(&e, "al-4", &[("AL", 4)], None).unwrap().alerts;
    assert_eq!(out, vec![StockAlert { sku: sku("AL"), kind: AlertKind::OutOfStock, available: 0, threshold: 5 }]);
    // A repeat of the reserve that crossed does not raise it again.
    assert!(reserve(&e, "al-4", &[("AL", 4)], None).unwrap().alerts.is_empty());

    // Adjustments: up raises nothing, down across the threshold raises LowStock, to 0 OutOfStock.
    assert!(adjust(&e, "AL", 20, None, None).unwrap().alerts.is_empty()); // onHand 30, reserved 10
    assert!(adjust(&e, "AL", -10, None, None).unwrap().alerts.is_empty()); // available 10
    let a = adjust(&e, "AL", -6, None, None).unwrap().alerts;
    assert_eq!(a, vec![StockAlert { sku: sku("AL"), kind: AlertKind::LowStock, available: 4, threshold: 5 }]);
    let a = adjust(&e, "AL", -4, None, None).unwrap().alerts;
    assert_eq!(a, vec![StockAlert { sku: sku("AL"), kind: AlertKind::OutOfStock, available: 0, threshold: 5 }]);

    // A set that crosses raises too; one that does not, not.
    assert!(set_full(&e, "AL", 30, None, None, None).unwrap().alerts.is_empty());
    let s = set_full(&e, "AL", 12, None, None, None).unwrap().alerts;
    assert_eq!(s, vec![StockAlert { sku: sku("AL"), kind: AlertKind::LowStock, available: 2, threshold: 5 }]);
    let s = set_full(&e, "AL", 10, None, None, None).unwrap().alerts;
    assert_eq!(s, vec![StockAlert { sku: sku("AL"), kind: AlertKind::OutOfStock, available: 0, threshold: 5 }]);

    // Several SKUs of one reserve each report their own crossing.
    set_full(&e, "AL-X", 3, Some(1), None, None).unwrap();
    set_full(&e, "AL-Y", 3, Some(1), None, None).unwrap();
    let mut multi = reserve(&e, "al-5", &[("AL-X", 2), ("AL-Y", 3)], None).unwrap().alerts;
    multi.sort_by(|a, b| a.sku.cmp(&b.sku));
    assert_eq!(
        multi,
        vec![
            StockAlert { sku: sku("AL-X"), kind: AlertKind::LowStock, available: 1, threshold: 1 },
            StockAlert { sku: sku("AL-Y"), kind: AlertKind::OutOfStock, available: 0, threshold: 1 },
        ]
    );
    invariants(&e);
}

// ---- maxPerOrder -----------------------------------------------------------------------

#[test]
fn max_per_order_limits_a_reservation_whatever_the_stock() {
    let (e, _clock) = engine();
    let c = set_full(&e, "MPO", 100, None, Some(2), None).unwrap();
    assert_eq!(c.item.max_per_order, Some(2));
    assert_eq!(
        reserve(&e, "mpo-1", &[("MPO", 3)], None).unwrap_err(),
        EngineError::MaxPerOrderExceeded { sku: "MPO".into(), requested: 3, max_per_order: 2 }
    );
    assert_eq!(figures(&e, "MPO"), (100, 0, 0));
    ok_reserve(&e, "mpo-2", &[("MPO", 2)], None);
    // None keeps the limit.
    assert_eq!(set_full(&e, "MPO", 100, None, None, None).unwrap().item.max_per_order, Some(2));
    assert_eq!(reserve(&e, "mpo-1", &[("MPO", 3)], None).unwrap_err().code(), "MAX_PER_ORDER_EXCEEDED");
    // 0 clears it.
    assert_eq!(set_full(&e, "MPO", 100, None, Some(0), None).unwrap().item.max_per_order, None);
    ok_reserve(&e, "mpo-1", &[("MPO", 3)], None);
    assert_eq!(figures(&e, "MPO"), (100, 5, 0));
    invariants(&e);
}

// ---- versions ---------------------------------------------------------------------------

#[test]
fn every_mutation_bumps_the_version_and_stale_writes_conflict() {
    let (e, clock) = engine();
    let mut v = set(&e, "VER", 10).item.version;
    assert_eq!(v, 1);
    let mut expect_bump = |e: &Engine, what: &str| {
        let now = item(e, "VER").version;
        assert!(now > v, "{what} must bump the version ({v} → {now})");
        v = now;
    };
    set(&e, "VER", 12);
    expect_bump(&e, "set");
    adjust(&e, "VER", 3, None, None).unwrap();
    expect_bump(&e, "adjust");
    let r = ok_reserve(&e, "ver-1", &[("VER", 2)], Some(60));
    expect_bump(&e, "reserve");
    e.blocking().commit(by_id(&r), Some(vec![(sku("VER"), 1)])).unwrap();
    expect_bump(&e, "commit");
    ok_reserve(&e, "ver-2", &[("VER", 2)], Some(60));
    expect_bump(&e, "reserve");
    e.blocking().release(by_order("ver-2"), None).unwrap();
    expect_bump(&e, "release");
    ok_reserve(&e, "ver-3", &[("VER", 1)], Some(60));
    expect_bump(&e, "reserve");
    clock.advance_secs(60);
    assert_eq!(e.blocking().expire_due().unwrap().len(), 1);
    expect_bump(&e, "expire");

    let current = item(&e, "VER");
    assert_eq!(
        set_full(&e, "VER", 1, None, None, Some(current.version - 1)).unwrap_err(),
        EngineError::VersionConflict { sku: "VER".into(), expected: current.version - 1, actual: current.version }
    );
    assert_eq!(
        adjust(&e, "VER", 1, None, Some(current.version + 7)).unwrap_err(),
        EngineError::VersionConflict { sku: "VER".into(), expected: current.version + 7, actual: current.version }
    );
    assert_eq!(
        e.blocking().delete_item(sku("VER"), Some(1)).unwrap_err(),
        EngineError::VersionConflict { sku: "VER".into(), expected: 1, actual: current.version }
    );
    assert_eq!(item(&e, "VER"), current, "failed writes change nothing");

    // With the right version they go through.
    let s = set_full(&e, "VER", 20, None, None, Some(current.version)).unwrap();
    assert_eq!(s.item.version, current.version + 1);
    let a = adjust(&e, "VER", -1, None, Some(s.item.version)).unwrap();
    assert_eq!(a.item.version, current.version + 2);
    assert_eq!(a.item.on_hand, 19);
    // Creating with expectedVersion 0 works; with another it conflicts.
    assert_eq!(
        set_full(&e, "VER-NEW", 1, None, None, Some(3)).unwrap_err(),
        EngineError::VersionConflict { sku: "VER-NEW".into(), expected: 3, actual: 0 }
    );
    assert!(set_full(&e, "VER-NEW", 1, None, None, Some(0)).unwrap().created);
    invariants(&e);
}

// ---- adjustments --------------------------------------------------------------------------

#[test]
fn adjust_with_a_repeated_idempotency_key_applies_once() {
    let (e, clock) = engine();
    set(&e, "ADJ", 10);
    set(&e, "ADJ-2", 10);
    let first = adjust(&e, "ADJ", 5, Some("restock-1"), None).unwrap();
    assert_eq!(first.item.on_hand, 15);
    // Something else changes the item in between.
    ok_reserve(&e, "adj-o", &[("ADJ", 1)], None);
    let after_reserve = item(&e, "ADJ");
    let logged = || e.shard_status().iter().map(|s| s.logged.load(std::sync::atomic::Ordering::Relaxed)).sum::<u64>();
    let logged_before = logged();
    let again = adjust(&e, "ADJ", 5, Some("restock-1"), None).unwrap();
    assert_eq!(again.item, first.item, "a repeat answers the first result");
    assert!(!again.created);
    assert_eq!(item(&e, "ADJ"), after_reserve, "and applies nothing");
    assert_eq!(logged(), logged_before, "nor logs (so publishes) anything");

    assert_eq!(
        adjust(&e, "ADJ", 6, Some("restock-1"), None).unwrap_err(),
        EngineError::IdempotencyKeyReused { key: "restock-1".into() }
    );
    assert_eq!(item(&e, "ADJ"), after_reserve);
    // Keys are scoped to their SKU.
    assert_eq!(adjust(&e, "ADJ-2", 7, Some("restock-1"), None).unwrap().item.on_hand, 17);

    // After the retention window the key is forgotten and applies again.
    clock.advance_secs(RETENTION_SECS);
    e.blocking().expire_due().unwrap();
    assert_eq!(adjust(&e, "ADJ", 5, Some("restock-1"), None).unwrap().item.on_hand, 20);
    invariants(&e);
}

// ---- delete / set below reserved ------------------------------------------------------------

#[test]
fn delete_is_refused_while_reserved_and_allowed_after_release() {
    let (e, _clock) = engine();
    set(&e, "DEL", 5);
    let r = ok_reserve(&e, "del-1", &[("DEL", 2)], None);
    let before = item(&e, "DEL");
    assert_eq!(
        e.blocking().delete_item(sku("DEL"), None).unwrap_err(),
        EngineError::ItemHasReservations { sku: "DEL".into(), reserved: 2 }
    );
    assert_eq!(item(&e, "DEL"), before);
    e.blocking().release(by_id(&r), None).unwrap();
    e.blocking().delete_item(sku("DEL"), None).unwrap();
    assert_eq!(e.blocking().get_item(sku("DEL")).unwrap_err(), EngineError::ItemNotFound { sku: "DEL".into() });
    assert_eq!(
        e.blocking().delete_item(sku("DEL"), None).unwrap_err(),
        EngineError::ItemNotFound { sku: "DEL".into() }
    );
    // The finished reservation is still readable.
    assert_eq!(e.blocking().get_reservation(by_id(&r)).unwrap().status, ReservationStatus::Released);
    invariants(&e);
}

#[test]
fn set_on_hand_below_reserved_is_refused() {
    let (e, _clock) = engine();
    set(&e, "SB", 10);
    ok_reserve(&e, "sb-1", &[("SB", 6)], None);
    let before = item(&e, "SB");
    assert_eq!(
        set_full(&e, "SB", 5, Some(1), Some(3), None).unwrap_err(),
        EngineError::ItemHasReservations { sku: "SB".into(), reserved: 6 }
    );
    assert_eq!(item(&e, "SB"), before, "not even the threshold or limit changed");
    let s = set(&e, "SB", 6);
    assert_eq!((s.item.on_hand, s.item.reserved, s.item.available()), (6, 6, 0));
    invariants(&e);
}

// ---- reads ------------------------------------------------------------------------------

#[test]
fn listing_and_availability_span_shards() {
    let (e, _clock) = engine();
    let names: Vec<String> = (0..12).map(|i| format!("ls-{i:02}")).collect();
    for (i, n) in names.iter().enumerate() {
        set(&e, n, i as u64);
    }
    let page1 = e.blocking().list_items(None, 5).unwrap();
    let got: Vec<String> = page1.iter().map(|i| i.sku.to_string()).collect();
    assert_eq!(got, names[..5]);
    let page2 = e.blocking().list_items(Some(page1[4].sku.clone()), 1_000).unwrap();
    let got: Vec<String> = page2.iter().map(|i| i.sku.to_string()).collect();
    assert_eq!(got, names[5..]);

    ok_reserve(&e, "ls-o", &[("ls-07", 3)], None);
    let av = e.blocking().check_availability(vec![(sku("ls-07"), 5), (sku("ls-nope"), 1), (sku("ls-11"), 2)]).unwrap();
    let got: Vec<(String, u64, u64, bool)> =
        av.iter().map(|a| (a.sku.to_string(), a.requested, a.available, a.exists)).collect();
    assert_eq!(got, vec![("ls-07".into(), 5, 4, true), ("ls-nope".into(), 1, 0, false), ("ls-11".into(), 2, 11, true)]);
    assert_eq!(figures(&e, "ls-07"), (7, 3, 0), "a check holds nothing");
}

// ---- cancellation of the async API ------------------------------------------------------------
//
// An async caller may drop a future half-way (a tokio timeout, an HTTP client that
// disconnects). A reservation must still never be left half placed or half settled:
// the engine runs these flows on its coordinator, which the caller cannot cancel.

/// Polls `fut` once with a no-op waker.
fn poll_once<F: std::future::Future>(fut: std::pin::Pin<&mut F>) -> bool {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    fut.poll(&mut cx).is_ready()
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_dropped_reserve_future_leaves_no_stock_held() {
    let (e, clock) = engine();
    // Two SKUs on different shards, so the reserve runs the multi-step protocol.
    let other = (0..64)
        .map(|i| format!("CANCEL-{i}"))
        .find(|s| stockd_engine::shard_of_sku(&sku(s), 4) != stockd_engine::shard_of_sku(&sku("CANCEL"), 4))
        .unwrap();
    set(&e, "CANCEL", 5);
    set(&e, &other, 5);
    let lines = vec![(sku("CANCEL"), 2), (sku(&other), 1)];
    let mut fut = Box::pin(e.reserve(ReserveRequest {
        order_id: order("cancel-1"),
        lines: lines.clone(),
        ttl_secs: Some(60),
        metadata: None,
        placement: Default::default(),
    }));
    // The first poll starts the flow; once its header exists, the caller goes away.
    let _ = poll_once(fut.as_mut());
    wait_until("the header", || e.blocking().get_reservation(by_order("cancel-1")).is_ok());
    drop(fut);
    std::thread::sleep(Duration::from_millis(50));

    // Long after the reservation's ttl, a sweep must have given the stock back, and
    // the orderId must be usable again (or answer a finished reservation).
    clock.advance_secs(120);
    e.blocking().expire_due().unwrap();
    assert_eq!(figures(&e, "CANCEL"), (5, 0, 0), "stock held by a reservation no client ever saw succeed");
    assert_eq!(figures(&e, &other), (5, 0, 0), "stock held by a reservation no client ever saw succeed");
    invariants(&e);
    match e.blocking().reserve(ReserveRequest {
        order_id: order("cancel-1"),
        lines,
        ttl_secs: Some(60),
        metadata: None,
        placement: Default::default(),
    }) {
        Ok(_) => {}
        Err(err) => panic!("the orderId is stuck: {err:?}"),
    }
}

#[test]
fn a_dropped_commit_future_still_settles_its_holds() {
    let (e, _clock) = engine();
    set(&e, "CANCEL-C", 5);
    let r = ok_reserve(&e, "cancel-c", &[("CANCEL-C", 2)], Some(60));
    let mut fut = Box::pin(e.commit(by_id(&r), None));
    // Usually still in flight after one poll; on a loaded machine the coordinator may
    // finish first (this thread preempted between spawn and poll). Either way the
    // checks below hold: a dropped future must not change the result.
    let _ = poll_once(fut.as_mut());
    wait_until("the COMMITTED header", || {
        e.blocking().get_reservation(by_id(&r)).unwrap().status == ReservationStatus::Committed
    });
    drop(fut);
    std::thread::sleep(Duration::from_millis(50));
    e.blocking().expire_due().unwrap();
    assert_eq!(figures(&e, "CANCEL-C"), (3, 0, 2), "a COMMITTED reservation's stock must be sold");
    invariants(&e);
}
