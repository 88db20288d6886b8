//! `Engine::item_history`: an item's stock history read back from the WAL, row by
//! row, with balances, across shards, restarts, purged headers and pruned segments.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use stockd_engine::shard_of_sku;
use stockd_engine::*;
use stockd_engine::{HistoryEntry, HistoryPage, HistoryQuery};

const T0: Millis = 1_700_000_000_000;

fn sku(s: &str) -> Sku {
    Sku::parse(s, "sku").unwrap()
}

fn key(o: &str) -> ReservationKey {
    ReservationKey::Order(OrderId::parse(o, "orderId").unwrap())
}

fn open(dir: &Path, clock: &ManualClock, shards: usize, retention_secs: u64, storage: StorageConfig) -> Engine {
    let config = EngineConfig {
        shards,
        retention_secs,
        expiry_interval: None,
        clock: Arc::new(clock.clone()),
        warehouses: None,
        ..Default::default()
    };
    Engine::open(dir, config, storage).unwrap().0
}

fn set(e: &BlockingEngine, s: &str, on_hand: u64) {
    e.set_item(SetItem::on_hand(sku(s), on_hand)).unwrap();
}

fn adjust(e: &BlockingEngine, s: &str, delta: i64, reason: AdjustReason, note: Option<&str>) {
    let note = note.map(str::to_owned);
    e.adjust(Adjust {
        sku: sku(s),
        delta,
        reason,
        note,
        idempotency_key: None,
        expected_version: None,
        location: None,
    })
    .unwrap();
}

fn reserve(e: &BlockingEngine, order: &str, lines: &[(&str, u64)], ttl: u64) -> Result<ReserveOutcome, EngineError> {
    e.reserve(ReserveRequest {
        order_id: OrderId::parse(order, "orderId").unwrap(),
        lines: lines.iter().map(|(s, q)| (sku(s), *q)).collect(),
        ttl_secs: Some(ttl),
        metadata: None,
        placement: Default::default(),
    })
}

fn history(engine: &Engine, s: &str, query: HistoryQuery) -> Result<HistoryPage, EngineError> {
    block_on(engine.item_history(sku(s), query))
}

fn all(engine: &Engine, s: &str) -> Vec<HistoryEntry> {
    let page = history(engine, s, HistoryQuery { limit: 1000, ..Default::default() }).unwrap();
    assert_eq!(page.next_cursor, None);
    page.entries
}

/// (type, quantity, [onHand, available, reserved] after, sold after, reason, orderId)
type Row = (&'static str, i64, Option<[u64; 3]>, Option<u64>, Option<String>, Option<String>);

fn rows(entries: &[HistoryEntry]) -> Vec<Row> {
    entries
        .iter()
        .map(|e| {
            let after = e.after.map(|f| [f.on_hand, f.available(), f.reserved]);
            (e.kind, e.quantity, after, e.after.map(|f| f.sold), e.reason.clone(), e.order_id.clone())
        })
        .collect()
}

fn row(
    kind: &'static str,
    q: i64,
    after: Option<[u64; 3]>,
    sold: u64,
    reason: Option<&str>,
    order: Option<&str>,
) -> Row {
    (kind, q, after, after.map(|_| sold), reason.map(Into::into), order.map(Into::into))
}

/// Each row's "before" is the previous row's "after"; LSNs rise; times never fall.
fn assert_chained(entries: &[HistoryEntry]) {
    for w in entries.windows(2) {
        assert_eq!(w[1].before, w[0].after, "{:?} then {:?}", w[0], w[1]);
        assert!(w[1].lsn > w[0].lsn && w[1].at >= w[0].at);
    }
}

#[test]
fn one_shard_history_matches_every_step_with_balances() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let engine = open(dir.path(), &clock, 1, 86_400, StorageConfig::default());
    let e = engine.blocking();
    let tick = || clock.advance_secs(1);
    set(&e, "A", 10);
    tick();
    set(&e, "B", 5);
    adjust(&e, "A", 5, AdjustReason::Restock, Some("truck 7"));
    tick();
    let o1 = reserve(&e, "o1", &[("A", 3)], 60).unwrap().reservation;
    tick();
    e.commit(key("o1"), Some(vec![(sku("A"), 2)])).unwrap();
    tick();
    reserve(&e, "o2", &[("A", 4)], 60).unwrap();
    reserve(&e, "b1", &[("B", 1)], 60).unwrap();
    e.release(key("o2"), Some("CUSTOMER_CANCELLED".into())).unwrap();
    reserve(&e, "o3", &[("A", 1)], 5).unwrap();
    clock.advance_secs(10);
    let expired_at = clock.now();
    assert_eq!(e.expire_due().unwrap().len(), 1);
    tick();
    reserve(&e, "o4", &[("A", 2)], 60).unwrap();
    e.expire(key("o4")).unwrap();
    e.set_sales_blocked(sku("A"), true).unwrap();
    e.set_sales_blocked(sku("A"), false).unwrap();
    adjust(&e, "A", -3, AdjustReason::Damaged, None);
    reserve(&e, "o5", &[("A", 1)], 5).unwrap();
    clock.advance_secs(10);
    assert_eq!(e.commit(key("o5"), None).unwrap_err().code(), "RESERVATION_EXPIRED");
    reserve(&e, "o6", &[("A", 1)], 5).unwrap();
    reserve(&e, "b2", &[("B", 1)], 5).unwrap();
    clock.advance_secs(10);
    assert_eq!(e.expire_due().unwrap().len(), 2);
    set(&e, "A", 7);
    e.delete_item(sku("A"), None).unwrap();

    let got = all(&engine, "A");
    let expected = vec![
        row("SET", 10, Some([10, 10, 0]), 0, None, None),
        row("ADJUST", 5, Some([15, 15, 0]), 0, Some("RESTOCK (truck 7)"), None),
        row("RESERVE", 3, Some([15, 12, 3]), 0, None, Some("o1")),
        row("CONFIRM", 2, Some([13, 13, 0]), 2, Some("2 of 3 committed, 1 released"), Some("o1")),
        row("RESERVE", 4, Some([13, 9, 4]), 2, None, Some("o2")),
        row("RELEASE", 4, Some([13, 13, 0]), 2, Some("CUSTOMER_CANCELLED"), Some("o2")),
        row("RESERVE", 1, Some([13, 12, 1]), 2, None, Some("o3")),
        row("EXPIRE", 1, Some([13, 13, 0]), 2, Some("EXPIRED"), Some("o3")),
        row("RESERVE", 2, Some([13, 11, 2]), 2, None, Some("o4")),
        row("EXPIRE", 2, Some([13, 13, 0]), 2, Some("EXPIRED"), Some("o4")),
        row("BLOCK_SALES", 0, Some([13, 13, 0]), 2, None, None),
        row("UNBLOCK_SALES", 0, Some([13, 13, 0]), 2, None, None),
        row("ADJUST", -3, Some([10, 10, 0]), 2, Some("DAMAGED"), None),
        row("RESERVE", 1, Some([10, 9, 1]), 2, None, Some("o5")),
        // The commit found the deadline passed: the stock went back as an expiry.
        row("EXPIRE", 1, Some([10, 10, 0]), 2, Some("EXPIRED"), Some("o5")),
        row("RESERVE", 1, Some([10, 9, 1]), 2, None, Some("o6")),
        // Two reservations expired in one sweep: which one held A is not told.
        row("EXPIRE", 1, Some([10, 10, 0]), 2, Some("EXPIRED"), None),
        row("SET", -3, Some([7, 7, 0]), 2, None, None),
        row("DELETE", -7, None, 0, None, None),
    ];
    assert_eq!(rows(&got), expected);
    assert_chained(&got);
    assert_eq!(got[0].before, None);
    assert_eq!(got[0].at, T0);
    assert_eq!(got[2].reservation_id.as_deref(), Some(o1.reservation_id.to_string().as_str()));
    assert!(got.iter().all(|r| r.shard == 0));
    let b = all(&engine, "B");
    assert_eq!(b.iter().map(|r| r.kind).collect::<Vec<_>>(), ["SET", "RESERVE", "RESERVE", "EXPIRE"]);

    // Pages of 3 walk every row once, in order; the last page has no cursor.
    let mut walked = Vec::new();
    let mut after = None;
    loop {
        let page = history(&engine, "A", HistoryQuery { limit: 3, after, ..Default::default() }).unwrap();
        assert!(page.entries.len() <= 3);
        walked.extend(page.entries);
        match page.next_cursor {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    assert_eq!(walked, got);
    // A time window: from the first sweep's expiry to just before the second.
    let window = HistoryQuery { from: Some(expired_at), to: Some(expired_at + 1000), ..Default::default() };
    let w = history(&engine, "A", window).unwrap();
    assert_eq!(rows(&w.entries), expected[7..14].to_vec());

    // Bad queries name their field; unknown SKUs are 404; a deleted SKU keeps its rows.
    for (q, field) in [
        (HistoryQuery { limit: 0, ..Default::default() }, "limit"),
        (HistoryQuery { limit: 1001, ..Default::default() }, "limit"),
        (HistoryQuery { from: Some(T0 + 1), to: Some(T0), ..Default::default() }, "to"),
    ] {
        match history(&engine, "A", q) {
            Err(EngineError::Validation { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(history(&engine, "NOPE", HistoryQuery::default()).unwrap_err().code(), "ITEM_NOT_FOUND");
    // An item that exists but has no rows in the window is not a 404.
    let empty = history(&engine, "B", HistoryQuery { to: Some(T0 - 1), ..Default::default() }).unwrap();
    assert!(empty.entries.is_empty());

    // The same history after a restart.
    engine.shutdown();
    drop(engine);
    let engine = open(dir.path(), &clock, 1, 86_400, StorageConfig::default());
    assert_eq!(all(&engine, "A"), got);
    engine.shutdown();

    let mem = Engine::in_memory(EngineConfig { shards: 1, expiry_interval: None, ..Default::default() }).unwrap();
    assert_eq!(history(&mem, "A", HistoryQuery::default()).unwrap_err().code(), "SERVICE_UNAVAILABLE");
}

/// Two SKUs on different shards, the order's first SKU on `home`'s shard.
fn split_skus(shards: usize) -> (String, String) {
    let names: Vec<String> = (0..100).map(|i| format!("S-{i}")).collect();
    let home = &names[0];
    let target = names.iter().find(|n| shard_of_sku(&sku(n), shards) != shard_of_sku(&sku(home), shards)).unwrap();
    (home.clone(), target.clone())
}

#[test]
fn holds_of_reservations_homed_on_another_shard() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let engine = open(dir.path(), &clock, 4, 86_400, StorageConfig::default());
    let e = engine.blocking();
    let (h, t) = split_skus(4);
    let (h, t) = (h.as_str(), t.as_str());
    set(&e, h, 100);
    set(&e, t, 10);
    reserve(&e, "x1", &[(h, 1), (t, 2)], 60).unwrap();
    e.release(key("x1"), Some("PAYMENT_FAILED".into())).unwrap();
    reserve(&e, "x2", &[(h, 1), (t, 3)], 5).unwrap();
    clock.advance_secs(10);
    e.expire_due().unwrap();
    reserve(&e, "x3", &[(h, 1), (t, 1)], 60).unwrap();
    e.commit(key("x3"), None).unwrap();
    // Fails on the home shard's SKU: the hold placed on t is rolled back.
    assert_eq!(reserve(&e, "x4", &[(h, 1000), (t, 1)], 60).unwrap_err().code(), "INSUFFICIENT_INVENTORY");
    let expected = vec![
        row("SET", 10, Some([10, 10, 0]), 0, None, None),
        row("RESERVE", 2, Some([10, 8, 2]), 0, None, Some("x1")),
        row("RELEASE", 2, Some([10, 10, 0]), 0, Some("PAYMENT_FAILED"), Some("x1")),
        row("RESERVE", 3, Some([10, 7, 3]), 0, None, Some("x2")),
        row("EXPIRE", 3, Some([10, 10, 0]), 0, Some("EXPIRED"), Some("x2")),
        row("RESERVE", 1, Some([10, 9, 1]), 0, None, Some("x3")),
        row("CONFIRM", 1, Some([9, 9, 0]), 1, None, Some("x3")),
        row("RESERVE", 1, Some([9, 8, 1]), 1, None, Some("x4")),
        row("RELEASE", 1, Some([9, 9, 0]), 1, Some("ABORTED"), Some("x4")),
    ];
    let live = all(&engine, t);
    assert_eq!(rows(&live), expected);
    assert_chained(&live);
    assert!(live.iter().all(|r| r.reservation_id.is_some() || r.kind == "SET"));
    engine.shutdown();
    drop(engine);

    // Reopen with a 1 s retention, a minute later: the finished headers are forgotten,
    // so RELEASE vs EXPIRE now comes from replaying the home shard.
    clock.advance_secs(60);
    let engine = open(dir.path(), &clock, 4, 1, StorageConfig::default());
    assert_eq!(engine.blocking().get_reservation(key("x2")).unwrap_err().code(), "RESERVATION_NOT_FOUND");
    assert_eq!(all(&engine, t), live);
    engine.shutdown();
}

#[test]
fn pruned_wal_is_reported_and_pages_start_from_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let storage = StorageConfig { segment_size: 4096, snapshot_every_records: 20, ..StorageConfig::default() };
    let engine = open(dir.path(), &clock, 1, 86_400, storage);
    let e = engine.blocking();
    set(&e, "P", 0);
    for round in 0..6 {
        for _ in 0..30 {
            clock.advance_millis(10);
            adjust(&e, "P", 1, AdjustReason::Restock, None);
        }
        // Let the background snapshot finish; the next append collects it and prunes.
        std::thread::sleep(Duration::from_millis(100 + 50 * round));
    }
    adjust(&e, "P", 1, AdjustReason::Restock, None);
    let page = history(&engine, "P", HistoryQuery { limit: 1000, ..Default::default() }).unwrap();
    let (first, last) = page.pruned.expect("the WAL was pruned after snapshots");
    assert_eq!(first, 1);
    assert_eq!(page.entries[0].lsn, last + 1);
    assert_eq!(page.entries.last().unwrap().after.unwrap().on_hand, 181);
    assert!(page.entries.iter().all(|r| r.kind == "ADJUST" && r.quantity == 1));
    assert_chained(&page.entries);
    // Pages after a cursor start from a snapshot and still chain up exactly.
    let mut walked = Vec::new();
    let mut after = None;
    loop {
        let p = history(&engine, "P", HistoryQuery { limit: 7, after, ..Default::default() }).unwrap();
        walked.extend(p.entries);
        match p.next_cursor {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    assert_eq!(walked, page.entries);
    engine.shutdown();
}

#[test]
fn locations_show_in_history_rows() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let engine = open(dir.path(), &clock, 2, 3600, StorageConfig::default());
    let e = engine.blocking();
    let loc = |s: &str| LocationId::parse(s, "location").unwrap();
    for (l, n) in [("wh-a", 5), ("wh-b", 2)] {
        e.set_item(SetItem {
            sku: sku("RUG"),
            on_hand: n,
            low_stock_threshold: None,
            max_per_order: None,
            expected_version: None,
            location: Some(loc(l)),
            incoming: None,
        })
        .unwrap();
    }
    e.transfer(Transfer {
        sku: sku("RUG"),
        from: loc("wh-a"),
        to: loc("wh-b"),
        quantity: 3,
        in_transit: true,
        note: Some("rebalance".into()),
        idempotency_key: None,
    })
    .unwrap();
    e.receive(sku("RUG"), loc("wh-b"), 3, None).unwrap();
    // wh-a 2, wh-b 5: 4 units come from wh-b (ids tie on priority: wh-a first, but it
    // cannot fill the line).
    reserve(&e, "rug-1", &[("RUG", 4)], 60).unwrap();
    let entries = all(&engine, "RUG");
    type Moves = Vec<(String, (u64, u64), (u64, u64), (u64, u64))>;
    let summary: Vec<(&str, i64, Moves)> = entries
        .iter()
        .map(|x| {
            let locs =
                x.locations.iter().map(|l| (l.location.to_string(), l.on_hand, l.reserved, l.incoming)).collect();
            (x.kind, x.quantity, locs)
        })
        .collect();
    let l = |id: &str, on_hand, reserved, incoming| (id.to_owned(), on_hand, reserved, incoming);
    assert_eq!(
        summary,
        vec![
            ("SET", 5, vec![l("wh-a", (0, 5), (0, 0), (0, 0))]),
            ("SET", 2, vec![l("wh-b", (0, 2), (0, 0), (0, 0))]),
            ("TRANSFER", 3, vec![l("wh-a", (5, 2), (0, 0), (0, 0)), l("wh-b", (2, 2), (0, 0), (0, 3))]),
            ("RECEIVE", 3, vec![l("wh-b", (2, 5), (0, 0), (3, 0))]),
            ("RESERVE", 4, vec![l("wh-b", (5, 5), (0, 4), (0, 0))]),
        ]
    );
    assert_eq!(entries[2].reason.as_deref(), Some("rebalance"));
    assert_eq!(entries[2].after.map(|f| (f.on_hand, f.incoming)), Some((4, 3)));
    assert_chained(&entries);
    engine.shutdown();
}
