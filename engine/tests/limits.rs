//! Every write path at its limits, on a durable engine, then a restart: each total an
//! item keeps (onHand, incoming, reserved, sold; per location and summed over its
//! locations) is bounded by a checked error before anything changes, so no accepted
//! request can leave a state that recovery's full invariant check refuses to open.
//! (Issue 13, defect 4: a receipt took onHand past `MAX_ON_HAND` and every later
//! start failed with "invariant broken after replay".)

use std::sync::Arc;
use stockd_engine::limits::{MAX_ON_HAND, MAX_QUANTITY};
use stockd_engine::*;

const M: u64 = MAX_ON_HAND;

fn sku(s: &str) -> Sku {
    Sku::parse(s, "sku").unwrap()
}

fn loc(s: &str) -> LocationId {
    LocationId::parse(s, "location").unwrap()
}

fn order(s: &str) -> ReservationKey {
    ReservationKey::Order(OrderId::parse(s, "orderId").unwrap())
}

fn config() -> EngineConfig {
    EngineConfig {
        shards: 2,
        expiry_interval: None,
        clock: Arc::new(ManualClock::new(1_700_000_000_000)),
        ..Default::default()
    }
}

/// What an operation answered: Ok, or the error code and (for a validation error) the
/// field it names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Ok,
    Refused(&'static str, Option<String>),
}

fn answer<T>(r: Result<T, EngineError>) -> Answer {
    match r {
        Ok(_) => Answer::Ok,
        Err(EngineError::Validation { field, .. }) => Answer::Refused("VALIDATION_ERROR", Some(field)),
        Err(e) => Answer::Refused(e.code(), None),
    }
}

fn refused(field: &str) -> Answer {
    Answer::Refused("VALIDATION_ERROR", Some(field.to_owned()))
}

struct Driver<'a> {
    e: BlockingEngine<'a>,
    log: Vec<(String, Answer)>,
}

impl Driver<'_> {
    fn expect(&mut self, what: &str, got: Answer, want: Answer) {
        assert_eq!(got, want, "{what}");
        self.log.push((what.to_owned(), got));
    }

    fn set(&mut self, s: &str, at: &str, on_hand: u64, incoming: Option<u64>, want: Answer) {
        let got = answer(self.e.set_item(SetItem {
            sku: sku(s),
            on_hand,
            low_stock_threshold: None,
            max_per_order: None,
            expected_version: None,
            location: Some(loc(at)),
            incoming,
        }));
        self.expect(&format!("set {s}@{at} onHand {on_hand} incoming {incoming:?}"), got, want);
    }

    fn adjust(&mut self, s: &str, at: &str, delta: i64, want: Answer) {
        let got = answer(self.e.adjust(Adjust {
            sku: sku(s),
            delta,
            reason: AdjustReason::Correction,
            note: None,
            idempotency_key: None,
            expected_version: None,
            location: Some(loc(at)),
        }));
        self.expect(&format!("adjust {s}@{at} by {delta}"), got, want);
    }

    fn transfer(&mut self, s: &str, from: &str, to: &str, quantity: u64, in_transit: bool, want: Answer) {
        let got = answer(self.e.transfer(Transfer {
            sku: sku(s),
            from: loc(from),
            to: loc(to),
            quantity,
            in_transit,
            note: None,
            idempotency_key: None,
        }));
        self.expect(&format!("transfer {quantity} of {s} {from}->{to} in transit {in_transit}"), got, want);
    }

    fn receive(&mut self, s: &str, at: &str, quantity: u64, want: Answer) {
        let got = answer(self.e.receive(sku(s), loc(at), quantity, None));
        self.expect(&format!("receive {quantity} of {s}@{at}"), got, want);
    }

    fn reserve(&mut self, o: &str, lines: &[(&str, u64)], want: Answer) {
        let got = answer(self.e.reserve(ReserveRequest {
            order_id: OrderId::parse(o, "orderId").unwrap(),
            lines: lines.iter().map(|(s, q)| (sku(s), *q)).collect(),
            ttl_secs: Some(600),
            metadata: None,
            placement: Default::default(),
        }));
        self.expect(&format!("reserve {o} {lines:?}"), got, want);
    }
}

fn figures(i: &Item) -> (u64, u64, u64, u64) {
    (i.on_hand, i.reserved, i.sold, i.incoming)
}

#[test]
fn every_write_path_is_bounded_and_a_restart_opens_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = Engine::open(dir.path(), config(), StorageConfig::default()).unwrap();
    let mut d = Driver { e: engine.blocking(), log: Vec::new() };

    // The reported case first: onHand MAX and incoming MAX, then a receipt of 1,000.
    d.set("D", "wh-1", M, Some(M), Answer::Ok);
    d.receive("D", "wh-1", 1_000, refused("onHand"));

    // Set: at MAX, MAX+1, and sums over locations crossing MAX.
    d.set("A", "default", M, None, Answer::Ok);
    d.set("A", "default", M + 1, None, refused("onHand"));
    d.set("B", "wh-1", M - 10, None, Answer::Ok);
    d.set("B", "wh-2", 11, None, refused("onHand"));
    d.set("B", "wh-2", 10, None, Answer::Ok);
    d.set("C", "wh-1", 0, Some(M), Answer::Ok);
    d.set("C", "wh-1", 0, Some(M + 1), refused("incoming"));
    d.set("C", "wh-2", 0, Some(1), refused("incoming"));
    d.set("C", "wh-2", 5, Some(0), Answer::Ok);

    // Adjust: one unit past MAX at either location of a full item.
    d.adjust("A", "default", 1, refused("delta"));
    d.adjust("B", "wh-2", 1, refused("delta"));
    d.adjust("B", "wh-3", 1, refused("delta"));
    d.adjust("A", "default", -5, Answer::Ok);
    d.adjust("A", "default", 5, Answer::Ok);

    // Receive: exactly up to MAX, and the sum over locations crossing MAX.
    d.set("E", "wh-1", M - 1_000, Some(1_000), Answer::Ok);
    d.receive("E", "wh-1", 1_000, Answer::Ok);
    d.set("F", "wh-1", M - 5, None, Answer::Ok);
    d.set("F", "wh-2", 0, Some(10), Answer::Ok);
    d.receive("F", "wh-2", 6, refused("onHand"));
    d.receive("F", "wh-2", 5, Answer::Ok);

    // Transfer in transit: the destination's incoming and the item's sum of incoming.
    d.set("G", "wh-1", MAX_QUANTITY, Some(M - 50), Answer::Ok);
    d.transfer("G", "wh-1", "wh-2", 51, true, refused("incoming"));
    d.transfer("G", "wh-1", "wh-2", 50, true, Answer::Ok);
    d.transfer("G", "wh-1", "wh-2", 1, true, refused("incoming"));
    d.receive("G", "wh-2", 50, Answer::Ok);
    // Not in transit, a full item moves between locations freely (its sum is unchanged).
    d.transfer("A", "default", "wh-9", MAX_QUANTITY, false, Answer::Ok);
    d.transfer("B", "wh-1", "wh-2", MAX_QUANTITY, false, Answer::Ok);
    // A full incoming cannot take one more unit in transit from anywhere.
    d.transfer("D", "wh-1", "wh-2", 1, true, refused("incoming"));

    // Reserve, commit and release on full items: reserved stays <= onHand, sold grows.
    d.reserve("o-1", &[("A", MAX_QUANTITY), ("B", MAX_QUANTITY)], Answer::Ok);
    d.reserve("o-2", &[("A", MAX_QUANTITY), ("D", MAX_QUANTITY)], Answer::Ok);
    d.reserve("o-3", &[("E", MAX_QUANTITY + 1)], refused("items[0].quantity"));
    let committed = answer(d.e.commit(order("o-1"), None));
    d.expect("commit o-1", committed, Answer::Ok);
    let released = answer(d.e.release(order("o-2"), None));
    d.expect("release o-2", released, Answer::Ok);
    // Sold units left onHand: the item may be restocked to MAX again, not past it.
    d.adjust("A", "wh-9", MAX_QUANTITY as i64, Answer::Ok);
    d.adjust("A", "wh-9", 1, refused("delta"));
    d.receive("D", "wh-1", 1, refused("onHand"));

    let before: Vec<Item> = d.e.list_items(None, 100).unwrap();
    assert_eq!(figures(&d.e.get_item(sku("A")).unwrap()), (M, 0, MAX_QUANTITY, 0));
    assert_eq!(figures(&d.e.get_item(sku("D")).unwrap()), (M, 0, 0, M));
    assert_eq!(figures(&d.e.get_item(sku("F")).unwrap()), (M, 0, 0, 5));
    assert_eq!(figures(&d.e.get_item(sku("G")).unwrap()).3, M - 50);
    d.e.check_invariants().unwrap();
    let log = std::mem::take(&mut d.log);
    drop(d);
    engine.shutdown();
    drop(engine);

    // The restart opens (recovery's full check agrees with what was accepted), and
    // every accepted change is there, every refused one is not.
    let (engine, report) = Engine::open(dir.path(), config(), StorageConfig::default())
        .unwrap_or_else(|e| panic!("the engine must reopen after {} limit operations: {e}", log.len()));
    assert!(report.shards.iter().map(|s| s.records_replayed).sum::<u64>() > 0);
    let e = engine.blocking();
    e.check_invariants().unwrap();
    assert_eq!(e.list_items(None, 100).unwrap(), before);
    assert_eq!(e.get_reservation(order("o-1")).unwrap().status, ReservationStatus::Committed);
    assert_eq!(e.get_reservation(order("o-2")).unwrap().status, ReservationStatus::Released);
    assert!(matches!(e.get_reservation(order("o-3")), Err(EngineError::ReservationNotFound { .. })));
    for item in &before {
        item.check().unwrap();
    }
}
