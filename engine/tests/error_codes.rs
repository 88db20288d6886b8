//! One test per error the engine can produce: the stable code, the detail fields, and
//! that the failed operation changed nothing. (A failed reserve whose holds on other
//! shards were rolled back may bump those items' versions, so for reserves the
//! figures onHand/reserved/sold are compared instead of whole items.)

use std::sync::Arc;
use stockd_engine::limits::*;
use stockd_engine::shard_of_sku;
use stockd_engine::*;

const START: Millis = 1_700_000_000_000;

fn engine() -> (Engine, ManualClock) {
    let clock = ManualClock::new(START);
    let e = Engine::in_memory(EngineConfig {
        shards: 4,
        retention_secs: 3_600,
        expiry_interval: None,
        clock: Arc::new(clock.clone()),
        warehouses: None,
        ..Default::default()
    })
    .unwrap();
    (e, clock)
}

fn sku(s: &str) -> Sku {
    Sku::parse(s, "sku").unwrap()
}

fn order(s: &str) -> OrderId {
    OrderId::parse(s, "orderId").unwrap()
}

fn stock(e: &Engine, s: &str, on_hand: u64) -> Item {
    e.blocking().set_item(SetItem::on_hand(sku(s), on_hand)).unwrap().item
}

fn item(e: &Engine, s: &str) -> Item {
    e.blocking().get_item(sku(s)).unwrap()
}

fn figures(e: &Engine, s: &str) -> (u64, u64, u64) {
    let i = item(e, s);
    (i.on_hand, i.reserved, i.sold)
}

fn request(o: &str, lines: &[(&str, u64)], ttl: Option<u64>) -> ReserveRequest {
    ReserveRequest {
        order_id: order(o),
        lines: lines.iter().map(|(s, q)| (sku(s), *q)).collect(),
        ttl_secs: ttl,
        metadata: None,
        placement: Default::default(),
    }
}

fn reserve(e: &Engine, o: &str, lines: &[(&str, u64)]) -> Result<ReserveOutcome, EngineError> {
    e.blocking().reserve(request(o, lines, None))
}

fn adjust_req(s: &str, delta: i64) -> Adjust {
    Adjust {
        sku: sku(s),
        delta,
        reason: AdjustReason::Restock,
        note: None,
        idempotency_key: None,
        expected_version: None,
        location: None,
    }
}

/// Asserts a VALIDATION_ERROR naming `field` whose message contains `needle`.
#[track_caller]
fn assert_validation<T: std::fmt::Debug>(r: Result<T, EngineError>, field: &str, needle: &str) {
    let err = r.unwrap_err();
    assert_eq!(err.code(), "VALIDATION_ERROR", "{err:?}");
    match &err {
        EngineError::Validation { field: f, message } => {
            assert_eq!(f, field, "{err:?}");
            assert!(message.contains(needle), "message {message:?} should contain {needle:?}");
            assert!(err.to_string().contains(field));
        }
        other => panic!("not a validation error: {other:?}"),
    }
}

fn no_reservation(e: &Engine, o: &str) {
    assert_eq!(
        e.blocking().get_reservation(ReservationKey::Order(order(o))).unwrap_err(),
        EngineError::ReservationNotFound { key: format!("orderId {o}") }
    );
}

// ---- VALIDATION_ERROR ----------------------------------------------------------------------

#[test]
fn validation_item_count() {
    let (e, _) = engine();
    let names: Vec<String> = (0..=MAX_LINES).map(|i| format!("v-{i}")).collect();
    for n in &names {
        stock(&e, n, 5);
    }
    let before: Vec<Item> = names.iter().map(|n| item(&e, n)).collect();
    let lines: Vec<(&str, u64)> = names.iter().map(|n| (n.as_str(), 1)).collect();
    assert_eq!(lines.len(), 101);
    assert_validation(reserve(&e, "v-101", &lines), "items", "got 101");
    assert_validation(reserve(&e, "v-0", &[]), "items", "got 0");
    let check: Vec<(Sku, u64)> = names.iter().map(|n| (sku(n), 1)).collect();
    assert_validation(e.blocking().check_availability(check.clone()), "items", "got 101");
    assert_validation(e.blocking().check_availability(Vec::new()), "items", "got 0");
    let after: Vec<Item> = names.iter().map(|n| item(&e, n)).collect();
    assert_eq!(before, after);
    no_reservation(&e, "v-101");
    // Exactly 100 lines are fine.
    assert!(reserve(&e, "v-100", &lines[..MAX_LINES]).unwrap().created);
    assert_eq!(e.blocking().check_availability(check[..MAX_LINES].to_vec()).unwrap().len(), 100);
}

#[test]
fn validation_quantity_bounds() {
    let (e, _) = engine();
    let before = stock(&e, "VQ", 10);
    stock(&e, "VQ2", 10);
    assert_validation(reserve(&e, "vq-1", &[("VQ2", 1), ("VQ", 0)]), "items[1].quantity", "got 0");
    assert_validation(
        reserve(&e, "vq-1", &[("VQ", MAX_QUANTITY + 1)]),
        "items[0].quantity",
        &format!("got {}", MAX_QUANTITY + 1),
    );
    assert_validation(
        e.blocking().check_availability(vec![(sku("VQ"), 1_000_000_001)]),
        "items[0].quantity",
        "1000000001",
    );
    assert_eq!(item(&e, "VQ"), before);
    no_reservation(&e, "vq-1");
    // The largest quantity is valid: it is refused for stock, not for its size.
    assert_eq!(
        reserve(&e, "vq-1", &[("VQ", MAX_QUANTITY)]).unwrap_err(),
        EngineError::InsufficientInventory {
            items: vec![Shortfall { sku: "VQ".into(), requested: 1_000_000_000, available: 10 }]
        }
    );
}

#[test]
fn validation_ttl_bounds() {
    let (e, _) = engine();
    let max = DEFAULT_MAX_TTL_SECS;
    let before = stock(&e, "VT", 10);
    assert_validation(e.blocking().reserve(request("vt-1", &[("VT", 1)], Some(0))), "expiresIn", "got 0");
    let over = format!("got {}", max + 1);
    assert_validation(e.blocking().reserve(request("vt-1", &[("VT", 1)], Some(max + 1))), "expiresIn", &over);
    assert_eq!(item(&e, "VT"), before);
    no_reservation(&e, "vt-1");
    let r = e.blocking().reserve(request("vt-1", &[("VT", 1)], Some(max))).unwrap().reservation;
    assert_eq!(r.expires_at, START + max * 1000);
    let r2 = e.blocking().reserve(request("vt-2", &[("VT", 1)], Some(1))).unwrap().reservation;
    assert_eq!(r2.expires_at, START + 1_000);
    // Extend has the same bounds.
    let key = ReservationKey::Id(r.reservation_id.to_string());
    assert_validation(e.blocking().extend(key.clone(), 0), "expiresIn", "got 0");
    assert_validation(e.blocking().extend(key.clone(), max + 1), "expiresIn", &over);
    assert_eq!(e.blocking().get_reservation(key).unwrap(), r);
}

#[test]
fn validation_duplicate_sku() {
    let (e, _) = engine();
    let before = stock(&e, "VD", 10);
    assert_validation(reserve(&e, "vd-1", &[("VD", 1), ("VD", 2)]), "items[1].sku", "appears more than once");
    assert_validation(
        e.blocking().check_availability(vec![(sku("VD"), 1), (sku("VD"), 1)]),
        "items[1].sku",
        "appears more than once",
    );
    assert_eq!(item(&e, "VD"), before);
    no_reservation(&e, "vd-1");
    // And in a commit's quantities.
    let r = reserve(&e, "vd-2", &[("VD", 2)]).unwrap().reservation;
    let held = item(&e, "VD");
    assert_validation(
        e.blocking()
            .commit(ReservationKey::Id(r.reservation_id.to_string()), Some(vec![(sku("VD"), 1), (sku("VD"), 1)])),
        "items[1].sku",
        "appears more than once",
    );
    assert_eq!(item(&e, "VD"), held);
    assert_eq!(
        e.blocking().get_reservation(ReservationKey::Id(r.reservation_id.to_string())).unwrap().status,
        ReservationStatus::Active
    );
}

#[test]
fn validation_sku_characters_and_length() {
    for bad in ["a b", "é", "a*b", "semi;colon", "tab\t", "ü-1"] {
        assert_validation(Sku::parse(bad, "items[0].sku"), "items[0].sku", "[A-Za-z0-9._:/-]");
    }
    assert_validation(Sku::parse("", "sku"), "sku", "got 0");
    let long = "a".repeat(MAX_SKU_LEN + 1);
    assert_eq!(long.len(), 129);
    assert_validation(Sku::parse(&long, "items[3].sku"), "items[3].sku", "got 129");
    assert!(Sku::parse(&"a".repeat(MAX_SKU_LEN), "sku").is_ok());
    assert!(Sku::parse("AZaz09._:/-", "sku").is_ok());
    // orderIds: printable ASCII without spaces, 1..=128 bytes.
    assert_validation(OrderId::parse("a b", "orderId"), "orderId", "printable ASCII");
    assert_validation(OrderId::parse("", "orderId"), "orderId", "got 0");
    assert_validation(OrderId::parse(&"o".repeat(129), "orderId"), "orderId", "got 129");
    assert!(OrderId::parse(&"o".repeat(128), "orderId").is_ok());
}

#[test]
fn validation_metadata_size() {
    let (e, _) = engine();
    let before = stock(&e, "VM", 10);
    let mut req = request("vm-1", &[("VM", 1)], None);
    req.metadata = Some("x".repeat(MAX_METADATA_LEN + 1));
    assert_validation(e.blocking().reserve(req.clone()), "metadata", "4096");
    assert_eq!(item(&e, "VM"), before);
    no_reservation(&e, "vm-1");
    req.metadata = Some("x".repeat(MAX_METADATA_LEN));
    let r = e.blocking().reserve(req).unwrap().reservation;
    assert_eq!(r.metadata.map(|m| m.len()), Some(4096));
}

#[test]
fn validation_list_limit() {
    let (e, _) = engine();
    stock(&e, "VL", 1);
    assert_validation(e.blocking().list_items(None, 0), "limit", "1 to 1000");
    assert_validation(e.blocking().list_items(None, MAX_PAGE + 1), "limit", "1 to 1000");
    assert_eq!(e.blocking().list_items(None, MAX_PAGE).unwrap().len(), 1);
    assert_eq!(e.blocking().list_items(None, 1).unwrap().len(), 1);
}

#[test]
fn validation_adjust_fields() {
    let (e, _) = engine();
    let before = stock(&e, "VA", 10);
    assert_validation(e.blocking().adjust(adjust_req("VA", 0)), "delta", "non-zero");
    // delta 0 is refused even for a missing item: validation comes first.
    assert_validation(e.blocking().adjust(adjust_req("VA-missing", 0)), "delta", "non-zero");
    assert_validation(e.blocking().adjust(adjust_req("VA", MAX_ADJUST_DELTA + 1)), "delta", "1000000000");
    assert_validation(e.blocking().adjust(adjust_req("VA", -MAX_ADJUST_DELTA - 1)), "delta", "1000000000");
    let mut note = adjust_req("VA", 1);
    note.note = Some("n".repeat(MAX_REASON_LEN + 1));
    assert_validation(e.blocking().adjust(note), "note", "256");
    for key in [String::new(), "k".repeat(MAX_IDEMPOTENCY_KEY_LEN + 1)] {
        let mut k = adjust_req("VA", 1);
        k.idempotency_key = Some(key);
        assert_validation(e.blocking().adjust(k), "idempotencyKey", "1 to 128");
    }
    assert_eq!(item(&e, "VA"), before);
    // onHand may not pass its bound, by set or by adjust.
    let big = e.blocking().set_item(SetItem::on_hand(sku("VA"), MAX_ON_HAND + 1));
    assert_validation(big, "onHand", "1000000000000");
    let big = e.blocking().set_item(SetItem {
        sku: sku("VA"),
        on_hand: 1,
        low_stock_threshold: Some(MAX_ON_HAND + 1),
        max_per_order: None,
        expected_version: None,
        location: None,
        incoming: None,
    });
    assert_validation(big, "lowStockThreshold", "1000000000000");
    stock(&e, "VA-BIG", MAX_ON_HAND - 5);
    assert_validation(e.blocking().adjust(adjust_req("VA-BIG", 6)), "delta", "exceed");
    assert_eq!(item(&e, "VA-BIG").on_hand, MAX_ON_HAND - 5);
    assert_eq!(item(&e, "VA"), before);
    e.blocking().adjust(adjust_req("VA-BIG", 5)).unwrap();
}

#[test]
fn validation_release_reason_and_commit_quantities() {
    let (e, _) = engine();
    stock(&e, "VR", 10);
    stock(&e, "VR-OTHER", 10);
    let r = reserve(&e, "vr-1", &[("VR", 4)]).unwrap().reservation;
    let key = ReservationKey::Id(r.reservation_id.to_string());
    let held = item(&e, "VR");
    assert_validation(e.blocking().release(key.clone(), Some(String::new())), "reason", "1 to 256");
    assert_validation(e.blocking().release(key.clone(), Some("r".repeat(257))), "reason", "1 to 256");
    assert_validation(e.blocking().commit(key.clone(), Some(vec![(sku("VR"), 5)])), "items[0].quantity", "exceeds");
    assert_validation(
        e.blocking().commit(key.clone(), Some(vec![(sku("VR-OTHER"), 1)])),
        "items[0]",
        "not in this reservation",
    );
    assert_eq!(item(&e, "VR"), held);
    assert_eq!(e.blocking().get_reservation(key).unwrap(), r, "still ACTIVE and unchanged");
}

#[test]
fn validation_engine_config() {
    for shards in [0, MAX_SHARDS + 1] {
        let err = Engine::in_memory(EngineConfig { shards, expiry_interval: None, ..EngineConfig::default() })
            .err()
            .expect("refused");
        assert_eq!(err.code(), "VALIDATION_ERROR");
        assert!(matches!(&err, EngineError::Validation { field, .. } if field == "shards"), "{err:?}");
    }
}

// ---- ITEM_NOT_FOUND --------------------------------------------------------------------------

#[test]
fn item_not_found() {
    let (e, _) = engine();
    let want = EngineError::ItemNotFound { sku: "NF".into() };
    assert_eq!(e.blocking().get_item(sku("NF")).unwrap_err(), want);
    assert_eq!(e.blocking().adjust(adjust_req("NF", 3)).unwrap_err(), want);
    assert_eq!(e.blocking().delete_item(sku("NF"), None).unwrap_err(), want);
    assert_eq!(reserve(&e, "nf-1", &[("NF", 1)]).unwrap_err(), want);
    assert_eq!(want.code(), "ITEM_NOT_FOUND");
    assert_eq!(want.to_string(), "item NF not found");
    no_reservation(&e, "nf-1");
    assert_eq!(e.blocking().get_item(sku("NF")).unwrap_err(), want, "adjust did not create it");
}

#[test]
fn item_not_found_inside_a_reserve_holds_nothing() {
    let (e, _) = engine();
    // Present SKUs on several shards plus two missing ones: the earliest missing line
    // (in request order) is reported, whatever shard it is on.
    let present: Vec<String> = (0..6).map(|i| format!("inr-{i}")).collect();
    for p in &present {
        stock(&e, p, 5);
    }
    let mut lines: Vec<(&str, u64)> = present.iter().map(|p| (p.as_str(), 2)).collect();
    lines.insert(2, ("missing-b", 1));
    lines.push(("missing-a", 1));
    assert_eq!(reserve(&e, "inr-1", &lines).unwrap_err(), EngineError::ItemNotFound { sku: "missing-b".into() });
    lines.reverse();
    assert_eq!(reserve(&e, "inr-1", &lines).unwrap_err(), EngineError::ItemNotFound { sku: "missing-a".into() });
    for p in &present {
        assert_eq!(figures(&e, p), (5, 0, 0), "{p}");
    }
    no_reservation(&e, "inr-1");
    e.blocking().check_invariants().unwrap();
}

// ---- RESERVATION_NOT_FOUND ----------------------------------------------------------------------

#[test]
fn reservation_not_found() {
    let (e, _) = engine();
    let before = stock(&e, "RNF", 3);
    let keys = [
        (ReservationKey::Order(order("no-such-order")), "orderId no-such-order"),
        (ReservationKey::Id("not-an-id".into()), "reservationId not-an-id"),
        (
            ReservationKey::Id("6553f100-0001-0000-0000-000000000063".into()),
            "reservationId 6553f100-0001-0000-0000-000000000063",
        ),
    ];
    for (key, text) in keys {
        let want = EngineError::ReservationNotFound { key: text.into() };
        assert_eq!(e.blocking().get_reservation(key.clone()).unwrap_err(), want);
        assert_eq!(e.blocking().commit(key.clone(), None).unwrap_err(), want);
        assert_eq!(e.blocking().release(key.clone(), None).unwrap_err(), want);
        assert_eq!(e.blocking().extend(key.clone(), 60).unwrap_err(), want);
        assert_eq!(e.blocking().expire(key.clone()).unwrap_err(), want);
        assert_eq!(want.code(), "RESERVATION_NOT_FOUND");
        assert!(want.to_string().contains(text));
    }
    assert_eq!(item(&e, "RNF"), before);
}

// ---- INSUFFICIENT_INVENTORY ------------------------------------------------------------------------

#[test]
fn insufficient_inventory_reports_each_short_line() {
    let (e, _) = engine();
    stock(&e, "II-A", 5);
    stock(&e, "II-B", 2);
    stock(&e, "II-C", 9);
    reserve(&e, "ii-0", &[("II-A", 3)]).unwrap();
    let before: Vec<(u64, u64, u64)> = ["II-A", "II-B", "II-C"].iter().map(|s| figures(&e, s)).collect();
    let err = reserve(&e, "ii-1", &[("II-A", 4), ("II-C", 9), ("II-B", 3)]).unwrap_err();
    assert_eq!(err.code(), "INSUFFICIENT_INVENTORY");
    assert_eq!(
        err,
        EngineError::InsufficientInventory {
            items: vec![
                Shortfall { sku: "II-A".into(), requested: 4, available: 2 },
                Shortfall { sku: "II-B".into(), requested: 3, available: 2 },
            ]
        }
    );
    assert_eq!(err.to_string(), "insufficient inventory for 2 item(s)");
    let after: Vec<(u64, u64, u64)> = ["II-A", "II-B", "II-C"].iter().map(|s| figures(&e, s)).collect();
    assert_eq!(before, after, "II-C's hold was rolled back");
    no_reservation(&e, "ii-1");
    e.blocking().check_invariants().unwrap();
}

// ---- reservation state errors --------------------------------------------------------------------

#[test]
fn reservation_expired() {
    let (e, clock) = engine();
    stock(&e, "RE", 5);
    let r = e.blocking().reserve(request("re-1", &[("RE", 2)], Some(5))).unwrap().reservation;
    clock.advance_secs(5);
    let want = EngineError::ReservationExpired { reservation_id: r.reservation_id.to_string() };
    assert_eq!(e.blocking().commit(ReservationKey::Order(order("re-1")), None).unwrap_err(), want);
    assert_eq!(want.code(), "RESERVATION_EXPIRED");
    assert!(want.to_string().contains(&r.reservation_id.to_string()));
    assert_eq!(figures(&e, "RE"), (5, 0, 0));
    let after = item(&e, "RE");
    assert_eq!(e.blocking().commit(ReservationKey::Id(r.reservation_id.to_string()), None).unwrap_err(), want);
    assert_eq!(e.blocking().extend(ReservationKey::Id(r.reservation_id.to_string()), 10).unwrap_err(), want);
    assert_eq!(item(&e, "RE"), after, "errors on a finished reservation change nothing");
}

#[test]
fn reservation_released() {
    let (e, _) = engine();
    stock(&e, "RR", 5);
    let r = reserve(&e, "rr-1", &[("RR", 2)]).unwrap().reservation;
    e.blocking().release(ReservationKey::Id(r.reservation_id.to_string()), Some("gone".into())).unwrap();
    let after = item(&e, "RR");
    let want = EngineError::ReservationReleased { reservation_id: r.reservation_id.to_string() };
    assert_eq!(e.blocking().commit(ReservationKey::Order(order("rr-1")), None).unwrap_err(), want);
    assert_eq!(e.blocking().expire(ReservationKey::Order(order("rr-1"))).unwrap_err(), want);
    assert_eq!(want.code(), "RESERVATION_RELEASED");
    assert_eq!(item(&e, "RR"), after);
    assert_eq!(figures(&e, "RR"), (5, 0, 0));
}

#[test]
fn reservation_committed() {
    let (e, _) = engine();
    stock(&e, "RC", 5);
    let r = reserve(&e, "rc-1", &[("RC", 2)]).unwrap().reservation;
    e.blocking().commit(ReservationKey::Id(r.reservation_id.to_string()), None).unwrap();
    let after = item(&e, "RC");
    let want = EngineError::ReservationCommitted { reservation_id: r.reservation_id.to_string() };
    assert_eq!(e.blocking().release(ReservationKey::Order(order("rc-1")), None).unwrap_err(), want);
    assert_eq!(want.code(), "RESERVATION_COMMITTED");
    assert_eq!(item(&e, "RC"), after);
    assert_eq!(figures(&e, "RC"), (3, 0, 2));
}

// ---- item errors ----------------------------------------------------------------------------------

#[test]
fn version_conflict() {
    let (e, _) = engine();
    let it = stock(&e, "VC", 5);
    let stale = it.version;
    stock(&e, "VC", 6);
    let now = item(&e, "VC");
    let want = EngineError::VersionConflict { sku: "VC".into(), expected: stale, actual: now.version };
    let set = e.blocking().set_item(SetItem {
        sku: sku("VC"),
        on_hand: 1,
        low_stock_threshold: None,
        max_per_order: None,
        expected_version: Some(stale),
        location: None,
        incoming: None,
    });
    assert_eq!(set.unwrap_err(), want);
    let mut adj = adjust_req("VC", 1);
    adj.expected_version = Some(stale);
    assert_eq!(e.blocking().adjust(adj).unwrap_err(), want);
    assert_eq!(e.blocking().delete_item(sku("VC"), Some(stale)).unwrap_err(), want);
    assert_eq!(want.code(), "VERSION_CONFLICT");
    assert_eq!(want.to_string(), format!("item VC is at version {}, not {stale}", now.version));
    assert_eq!(item(&e, "VC"), now);
}

#[test]
fn item_has_reservations() {
    let (e, _) = engine();
    stock(&e, "IHR", 10);
    reserve(&e, "ihr-1", &[("IHR", 7)]).unwrap();
    let before = item(&e, "IHR");
    let want = EngineError::ItemHasReservations { sku: "IHR".into(), reserved: 7 };
    assert_eq!(e.blocking().delete_item(sku("IHR"), None).unwrap_err(), want);
    let set = e.blocking().set_item(SetItem::on_hand(sku("IHR"), 6));
    assert_eq!(set.unwrap_err(), want);
    assert_eq!(want.code(), "ITEM_HAS_RESERVATIONS");
    assert_eq!(item(&e, "IHR"), before);
}

#[test]
fn negative_inventory() {
    let (e, _) = engine();
    stock(&e, "NEG", 10);
    reserve(&e, "neg-1", &[("NEG", 4)]).unwrap();
    let before = item(&e, "NEG");
    let err = e.blocking().adjust(adjust_req("NEG", -7)).unwrap_err();
    assert_eq!(err, EngineError::NegativeInventory { sku: "NEG".into(), delta: -7, available: 6 });
    assert_eq!(err.code(), "NEGATIVE_INVENTORY");
    assert_eq!(item(&e, "NEG"), before);
    // Down to exactly zero available is allowed.
    let ok = e.blocking().adjust(adjust_req("NEG", -6)).unwrap().item;
    assert_eq!((ok.on_hand, ok.reserved, ok.available()), (4, 4, 0));
    assert_eq!(
        e.blocking().adjust(adjust_req("NEG", -1)).unwrap_err(),
        EngineError::NegativeInventory { sku: "NEG".into(), delta: -1, available: 0 }
    );
}

#[test]
fn max_per_order_exceeded() {
    let (e, _) = engine();
    e.blocking()
        .set_item(SetItem {
            sku: sku("MPO"),
            on_hand: 100,
            low_stock_threshold: None,
            max_per_order: Some(2),
            expected_version: None,
            location: None,
            incoming: None,
        })
        .unwrap();
    // A short SKU on another shard: the per-order limit still wins, whatever the layout.
    let short = (0..)
        .map(|i| format!("mpo-short-{i}"))
        .find(|s| shard_of_sku(&sku(s), 4) != shard_of_sku(&sku("MPO"), 4))
        .unwrap();
    stock(&e, &short, 0);
    let before = figures(&e, "MPO");
    let want = EngineError::MaxPerOrderExceeded { sku: "MPO".into(), requested: 3, max_per_order: 2 };
    assert_eq!(reserve(&e, "mpo-1", &[("MPO", 3)]).unwrap_err(), want);
    assert_eq!(reserve(&e, "mpo-1", &[(short.as_str(), 1), ("MPO", 3)]).unwrap_err(), want);
    assert_eq!(want.code(), "MAX_PER_ORDER_EXCEEDED");
    assert_eq!(figures(&e, "MPO"), before);
    no_reservation(&e, "mpo-1");
}

#[test]
fn idempotency_key_reused() {
    let (e, _) = engine();
    stock(&e, "IKR", 10);
    reserve(&e, "ikr-1", &[("IKR", 2)]).unwrap();
    let before = item(&e, "IKR");
    let want = EngineError::IdempotencyKeyReused { key: "ikr-1".into() };
    assert_eq!(reserve(&e, "ikr-1", &[("IKR", 3)]).unwrap_err(), want);
    assert_eq!(want.code(), "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(item(&e, "IKR"), before);

    let mut first = adjust_req("IKR", 4);
    first.idempotency_key = Some("adj-key".into());
    e.blocking().adjust(first).unwrap();
    let before = item(&e, "IKR");
    let mut other = adjust_req("IKR", 5);
    other.idempotency_key = Some("adj-key".into());
    assert_eq!(e.blocking().adjust(other).unwrap_err(), EngineError::IdempotencyKeyReused { key: "adj-key".into() });
    assert_eq!(item(&e, "IKR"), before);
}

// ---- SERVICE_UNAVAILABLE ------------------------------------------------------------------------

#[test]
fn service_unavailable_after_shutdown() {
    let (e, _) = engine();
    stock(&e, "SU", 5);
    let r = reserve(&e, "su-1", &[("SU", 1)]).unwrap().reservation;
    e.shutdown();
    e.shutdown(); // twice is harmless
    let b = e.blocking();
    let key = ReservationKey::Id(r.reservation_id.to_string());
    let results: Vec<(&str, EngineError)> = vec![
        ("reserve", b.reserve(request("su-2", &[("SU", 1)], None)).unwrap_err()),
        ("commit", b.commit(key.clone(), None).unwrap_err()),
        ("release", b.release(key.clone(), None).unwrap_err()),
        ("extend", b.extend(key.clone(), 60).unwrap_err()),
        ("expire", b.expire(key.clone()).unwrap_err()),
        ("get_reservation", b.get_reservation(key).unwrap_err()),
        ("get_item", b.get_item(sku("SU")).unwrap_err()),
        ("list_items", b.list_items(None, 10).unwrap_err()),
        ("check_availability", b.check_availability(vec![(sku("SU"), 1)]).unwrap_err()),
        ("adjust", b.adjust(adjust_req("SU", 1)).unwrap_err()),
        ("delete_item", b.delete_item(sku("SU"), None).unwrap_err()),
        ("expire_due", b.expire_due().unwrap_err()),
        ("set_item", b.set_item(SetItem::on_hand(sku("SU"), 1)).unwrap_err()),
    ];
    for (what, err) in results {
        assert_eq!(err.code(), "SERVICE_UNAVAILABLE", "{what}: {err:?}");
        assert!(matches!(err, EngineError::Unavailable { .. }), "{what}");
    }
    assert!(b.check_invariants().is_err(), "no state can be read after shutdown");
}

// ---- the code table ------------------------------------------------------------------------------

#[test]
fn codes_are_stable() {
    let id = || "r".to_string();
    let table = [
        (EngineError::validation("f", "m"), "VALIDATION_ERROR"),
        (EngineError::ItemNotFound { sku: "s".into() }, "ITEM_NOT_FOUND"),
        (EngineError::ItemExists { sku: "s".into() }, "ITEM_EXISTS"),
        (EngineError::ReservationNotFound { key: "k".into() }, "RESERVATION_NOT_FOUND"),
        (EngineError::InsufficientInventory { items: Vec::new() }, "INSUFFICIENT_INVENTORY"),
        (EngineError::ReservationExpired { reservation_id: id() }, "RESERVATION_EXPIRED"),
        (EngineError::ReservationReleased { reservation_id: id() }, "RESERVATION_RELEASED"),
        (EngineError::ReservationCommitted { reservation_id: id() }, "RESERVATION_COMMITTED"),
        (EngineError::ReservationPending { reservation_id: id() }, "RESERVATION_PENDING"),
        (EngineError::VersionConflict { sku: "s".into(), expected: 1, actual: 2 }, "VERSION_CONFLICT"),
        (EngineError::ItemHasReservations { sku: "s".into(), reserved: 1 }, "ITEM_HAS_RESERVATIONS"),
        (EngineError::NegativeInventory { sku: "s".into(), delta: -1, available: 0 }, "NEGATIVE_INVENTORY"),
        (
            EngineError::MaxPerOrderExceeded { sku: "s".into(), requested: 2, max_per_order: 1 },
            "MAX_PER_ORDER_EXCEEDED",
        ),
        (EngineError::IdempotencyKeyReused { key: "k".into() }, "IDEMPOTENCY_KEY_REUSED"),
        (EngineError::LimitExceeded { what: "w".into(), limit: 1 }, "LIMIT_EXCEEDED"),
        (EngineError::Overloaded { shard: 0 }, "OVERLOADED"),
        (EngineError::Unavailable { reason: "r".into() }, "SERVICE_UNAVAILABLE"),
    ];
    let codes: std::collections::HashSet<&str> = table.iter().map(|(e, _)| e.code()).collect();
    assert_eq!(codes.len(), table.len(), "codes are distinct");
    for (err, code) in table {
        assert_eq!(err.code(), code, "{err:?}");
    }
}
