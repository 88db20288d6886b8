//! Locations through the engine's public API: allocation on worked examples (seed 004's
//! warehouses), commit and release touching exactly the allocated locations, partial
//! commits of a split line, transfers and receipts, a reservation spanning shards, and
//! a restart replaying to identical allocations even after the warehouses file changed.

use std::path::Path;
use std::sync::Arc;
use stockd_engine::*;

fn sku(s: &str) -> Sku {
    Sku::parse(s, "sku").unwrap()
}

fn loc(s: &str) -> LocationId {
    LocationId::parse(s, "location").unwrap()
}

fn key(o: &str) -> ReservationKey {
    ReservationKey::Order(OrderId::parse(o, "orderId").unwrap())
}

/// Seed 004's table: São Paulo and Rio in the southeast (priority 1, 2), Curitiba in
/// the south (priority 1).
fn seed_004() -> Vec<Warehouse> {
    [("wh-sp-001", "southeast", 1), ("wh-rj-001", "southeast", 2), ("wh-pr-001", "south", 1)]
        .iter()
        .map(|(id, region, priority)| Warehouse {
            id: loc(id),
            name: id.to_uppercase(),
            region: Some((*region).into()),
            priority: *priority,
        })
        .collect()
}

fn config(shards: usize, warehouses: Option<Vec<Warehouse>>) -> EngineConfig {
    EngineConfig {
        shards,
        expiry_interval: None,
        clock: Arc::new(ManualClock::new(1_700_000_000_000)),
        warehouses,
        ..Default::default()
    }
}

fn stock(e: &BlockingEngine, s: &str, at: &[(&str, u64)]) {
    for (l, n) in at {
        e.set_item(SetItem {
            sku: sku(s),
            on_hand: *n,
            low_stock_threshold: None,
            max_per_order: None,
            expected_version: None,
            location: Some(loc(l)),
            incoming: None,
        })
        .unwrap();
    }
}

fn reserve(
    e: &BlockingEngine,
    order: &str,
    lines: &[(&str, u64)],
    strategy: AllocationStrategy,
    region: Option<&str>,
    named: &[(&str, &str)],
) -> Result<Reservation, EngineError> {
    e.reserve(ReserveRequest {
        order_id: OrderId::parse(order, "orderId").unwrap(),
        lines: lines.iter().map(|(s, q)| (sku(s), *q)).collect(),
        ttl_secs: Some(600),
        metadata: None,
        placement: Placement {
            strategy,
            region: region.map(str::to_owned),
            locations: named.iter().map(|(s, l)| (sku(s), loc(l))).collect(),
        },
    })
    .map(|o| o.reservation)
}

/// (sku, location, quantity, committed) of each allocation.
fn allocs(r: &Reservation) -> Vec<(String, String, u64, u64)> {
    r.allocations().iter().map(|a| (a.sku.to_string(), a.location.to_string(), a.quantity, a.committed)).collect()
}

fn a(s: &str, l: &str, q: u64, c: u64) -> (String, String, u64, u64) {
    (s.into(), l.into(), q, c)
}

/// (onHand, reserved, sold, incoming) of `s` at `l`.
fn at(e: &BlockingEngine, s: &str, l: &str) -> (u64, u64, u64, u64) {
    let item = e.get_item(sku(s)).unwrap();
    let x = item.location(&loc(l)).unwrap_or_else(|| panic!("{s} not at {l}"));
    (x.on_hand, x.reserved, x.sold, x.incoming)
}

use AllocationStrategy::{MostAvailable, Priority, SingleLocationOnly};

#[test]
fn allocation_strategies_on_worked_examples() {
    let engine = Engine::in_memory(config(2, Some(seed_004()))).unwrap();
    let e = engine.blocking();
    stock(&e, "TV", &[("wh-sp-001", 5), ("wh-rj-001", 50), ("wh-pr-001", 10)]);

    // Priority: the first location (priority 1: wh-pr-001, wh-sp-001 by id; then
    // wh-rj-001) that can fill the whole line.
    let r = reserve(&e, "p1", &[("TV", 8)], Priority, None, &[]).unwrap();
    assert_eq!(allocs(&r), [a("TV", "wh-pr-001", 8, 0)]);
    let r = reserve(&e, "p2", &[("TV", 20)], Priority, None, &[]).unwrap();
    assert_eq!(allocs(&r), [a("TV", "wh-rj-001", 20, 0)]);
    // Nobody can fill 34 (2 + 5 + 30 left): split in priority order.
    let r = reserve(&e, "p3", &[("TV", 34)], Priority, None, &[]).unwrap();
    assert_eq!(allocs(&r), [a("TV", "wh-pr-001", 2, 0), a("TV", "wh-sp-001", 5, 0), a("TV", "wh-rj-001", 27, 0)]);
    assert_eq!(e.get_item(sku("TV")).unwrap().available(), 3);
    let err = reserve(&e, "p4", &[("TV", 4)], Priority, None, &[]).unwrap_err();
    assert_eq!(
        err,
        EngineError::InsufficientInventory { items: vec![Shortfall { sku: "TV".into(), requested: 4, available: 3 }] }
    );
    for o in ["p1", "p2", "p3"] {
        e.release(key(o), None).unwrap();
    }

    // Region first: a southeast delivery takes São Paulo, then Rio, before Curitiba.
    let r = reserve(&e, "r1", &[("TV", 5)], Priority, Some("southeast"), &[]).unwrap();
    assert_eq!(allocs(&r), [a("TV", "wh-sp-001", 5, 0)]);
    let r = reserve(&e, "r2", &[("TV", 6)], Priority, Some("southeast"), &[]).unwrap();
    assert_eq!(allocs(&r), [a("TV", "wh-rj-001", 6, 0)]);
    let r = reserve(&e, "r3", &[("TV", 10)], Priority, Some("south"), &[]).unwrap();
    assert_eq!(allocs(&r), [a("TV", "wh-pr-001", 10, 0)]);
    for o in ["r1", "r2", "r3"] {
        e.release(key(o), None).unwrap();
    }

    // Most available: Rio (50) first; split from the most available down.
    let r = reserve(&e, "m1", &[("TV", 3)], MostAvailable, None, &[]).unwrap();
    assert_eq!(allocs(&r), [a("TV", "wh-rj-001", 3, 0)]);
    let r = reserve(&e, "m2", &[("TV", 55)], MostAvailable, None, &[]).unwrap();
    assert_eq!(allocs(&r), [a("TV", "wh-rj-001", 47, 0), a("TV", "wh-pr-001", 8, 0)]);
    for o in ["m1", "m2"] {
        e.release(key(o), None).unwrap();
    }

    // Single location only: one location must fill the line.
    let r = reserve(&e, "s1", &[("TV", 50)], SingleLocationOnly, None, &[]).unwrap();
    assert_eq!(allocs(&r), [a("TV", "wh-rj-001", 50, 0)]);
    let err = reserve(&e, "s2", &[("TV", 11)], SingleLocationOnly, None, &[]).unwrap_err();
    assert_eq!(
        err,
        EngineError::InsufficientInventory {
            items: vec![Shortfall { sku: "TV".into(), requested: 11, available: 10 }]
        }
    );
    e.release(key("s1"), None).unwrap();

    // A named location is the only one used, whatever the strategy.
    let r = reserve(&e, "n1", &[("TV", 5)], MostAvailable, None, &[("TV", "wh-sp-001")]).unwrap();
    assert_eq!(allocs(&r), [a("TV", "wh-sp-001", 5, 0)]);
    let err = reserve(&e, "n2", &[("TV", 1)], Priority, None, &[("TV", "wh-sp-001")]).unwrap_err();
    assert_eq!(err.code(), "INSUFFICIENT_INVENTORY");
    // A location outside the warehouse table is a bad request.
    let err = reserve(&e, "n3", &[("TV", 1)], Priority, None, &[("TV", "wh-xx-999")]).unwrap_err();
    assert_eq!(err.code(), "VALIDATION_ERROR");
    engine.blocking().check_invariants().unwrap();
}

#[test]
fn commit_and_release_touch_exactly_the_allocated_locations() {
    let engine = Engine::in_memory(config(3, Some(seed_004()))).unwrap();
    let e = engine.blocking();
    stock(&e, "PHONE", &[("wh-sp-001", 4), ("wh-rj-001", 5), ("wh-pr-001", 3)]);
    stock(&e, "CASE", &[("wh-rj-001", 10)]);

    // Nobody has 9 phones: Curitiba 3, São Paulo 4, Rio 2 (priority order); cases from Rio.
    let r = reserve(&e, "o1", &[("PHONE", 9), ("CASE", 2)], Priority, None, &[]).unwrap();
    assert_eq!(
        allocs(&r),
        [
            a("PHONE", "wh-pr-001", 3, 0),
            a("PHONE", "wh-sp-001", 4, 0),
            a("PHONE", "wh-rj-001", 2, 0),
            a("CASE", "wh-rj-001", 2, 0)
        ]
    );
    // Commit 5 of the 9 phones: first-allocated units first (Curitiba 3, São Paulo 2).
    let c = e.commit(key("o1"), Some(vec![(sku("PHONE"), 5)])).unwrap();
    assert_eq!(
        allocs(&c),
        [
            a("PHONE", "wh-pr-001", 3, 3),
            a("PHONE", "wh-sp-001", 4, 2),
            a("PHONE", "wh-rj-001", 2, 0),
            a("CASE", "wh-rj-001", 2, 2)
        ]
    );
    assert_eq!(at(&e, "PHONE", "wh-pr-001"), (0, 0, 3, 0));
    assert_eq!(at(&e, "PHONE", "wh-sp-001"), (2, 0, 2, 0));
    assert_eq!(at(&e, "PHONE", "wh-rj-001"), (5, 0, 0, 0));
    assert_eq!(at(&e, "CASE", "wh-rj-001"), (8, 0, 2, 0));

    // A release gives back exactly what was held where it was held.
    let r = reserve(&e, "o2", &[("PHONE", 6)], Priority, Some("southeast"), &[]).unwrap();
    assert_eq!(allocs(&r), [a("PHONE", "wh-sp-001", 2, 0), a("PHONE", "wh-rj-001", 4, 0)]);
    assert_eq!(at(&e, "PHONE", "wh-sp-001"), (2, 2, 2, 0));
    assert_eq!(at(&e, "PHONE", "wh-rj-001"), (5, 4, 0, 0));
    e.release(key("o2"), None).unwrap();
    assert_eq!(at(&e, "PHONE", "wh-sp-001"), (2, 0, 2, 0));
    assert_eq!(at(&e, "PHONE", "wh-rj-001"), (5, 0, 0, 0));
    let item = e.get_item(sku("PHONE")).unwrap();
    assert_eq!((item.on_hand, item.reserved, item.sold), (7, 0, 5));
    engine.blocking().check_invariants().unwrap();
}

#[test]
fn transfers_and_receipts_move_stock_between_locations() {
    let engine = Engine::in_memory(config(2, Some(seed_004()))).unwrap();
    let e = engine.blocking();
    stock(&e, "DESK", &[("wh-sp-001", 10)]);
    reserve(&e, "held", &[("DESK", 6)], Priority, None, &[]).unwrap();
    let t = |from: &str, to: &str, quantity, in_transit| {
        e.transfer(Transfer {
            sku: sku("DESK"),
            from: loc(from),
            to: loc(to),
            quantity,
            in_transit,
            note: None,
            idempotency_key: None,
        })
    };
    // Only available units move: 4 of the 10 are free.
    let err = t("wh-sp-001", "wh-rj-001", 5, false).unwrap_err();
    assert_eq!(
        err,
        EngineError::InsufficientInventory {
            items: vec![Shortfall { sku: "DESK".into(), requested: 5, available: 4 }]
        }
    );
    t("wh-sp-001", "wh-rj-001", 1, false).unwrap();
    assert_eq!(at(&e, "DESK", "wh-rj-001"), (1, 0, 0, 0));
    // In transit: off São Paulo's shelves, into Curitiba's incoming, not sellable.
    let moved = t("wh-sp-001", "wh-pr-001", 3, true).unwrap().item;
    assert_eq!((moved.on_hand, moved.reserved, moved.incoming, moved.available()), (7, 6, 3, 1));
    assert_eq!(at(&e, "DESK", "wh-sp-001"), (6, 6, 0, 0));
    assert_eq!(at(&e, "DESK", "wh-pr-001"), (0, 0, 0, 3));
    assert_eq!(e.receive(sku("DESK"), loc("wh-pr-001"), 4, None).unwrap_err().code(), "VALIDATION_ERROR");
    let got = e.receive(sku("DESK"), loc("wh-pr-001"), 2, None).unwrap().item;
    assert_eq!((got.on_hand, got.incoming, got.available()), (9, 1, 3));
    assert_eq!(at(&e, "DESK", "wh-pr-001"), (2, 0, 0, 1));
    // Refusals: same location, a location not in the table, nothing to move.
    assert_eq!(t("wh-sp-001", "wh-sp-001", 1, false).unwrap_err().code(), "VALIDATION_ERROR");
    assert_eq!(t("wh-rj-001", "wh-zz-001", 1, false).unwrap_err().code(), "VALIDATION_ERROR");
    assert_eq!(t("wh-rj-001", "wh-pr-001", 0, false).unwrap_err().code(), "VALIDATION_ERROR");
    // No location named on an item stocked only at named locations: ambiguous.
    let err = e
        .adjust(Adjust {
            sku: sku("DESK"),
            delta: 1,
            reason: AdjustReason::Restock,
            note: None,
            idempotency_key: None,
            expected_version: None,
            location: None,
        })
        .unwrap_err();
    assert_eq!(err, EngineError::validation("location", "DESK is stocked at named locations only; name one"));
    engine.blocking().check_invariants().unwrap();
}

fn open(dir: &Path, warehouses: Option<Vec<Warehouse>>) -> Engine {
    Engine::open(dir, config(3, warehouses), StorageConfig::default()).unwrap().0
}

#[test]
fn a_restart_replays_to_the_same_allocations_even_after_the_table_changed() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), Some(seed_004()));
    let e = engine.blocking();
    stock(&e, "LAMP", &[("wh-sp-001", 3), ("wh-rj-001", 3), ("wh-pr-001", 3)]);
    stock(&e, "BULB", &[("wh-rj-001", 20)]);
    let mut made = Vec::new();
    for (i, (q, region)) in [(2, None), (4, Some("south")), (1, Some("southeast"))].into_iter().enumerate() {
        let o = format!("order-{i}");
        made.push(reserve(&e, &o, &[("LAMP", q), ("BULB", 1)], Priority, region, &[]).unwrap());
    }
    e.transfer(Transfer {
        sku: sku("BULB"),
        from: loc("wh-rj-001"),
        to: loc("wh-sp-001"),
        quantity: 5,
        in_transit: true,
        note: None,
        idempotency_key: None,
    })
    .unwrap();
    let items = e.list_items(None, 10).unwrap();
    engine.shutdown();
    drop(engine);

    // The operator reorders priorities. Replay must still give the logged choices (the
    // old table is in the log), and only new reservations use the new table.
    let mut changed = seed_004();
    changed[1].priority = 0;
    let engine = open(dir.path(), Some(changed.clone()));
    let e = engine.blocking();
    assert_eq!(e.list_items(None, 10).unwrap(), items);
    for r in &made {
        assert_eq!(&e.get_reservation(ReservationKey::Id(r.reservation_id.to_string())).unwrap(), r);
    }
    assert_eq!(e.warehouses().unwrap(), changed);
    let r = reserve(&e, "after", &[("LAMP", 1)], Priority, None, &[]).unwrap();
    assert_eq!(allocs(&r), [a("LAMP", "wh-rj-001", 1, 0)], "Rio now comes first");
    engine.blocking().check_invariants().unwrap();
    engine.shutdown();
    drop(engine);

    // Without a warehouses file the recovered table stays.
    let engine = open(dir.path(), None);
    assert_eq!(engine.blocking().warehouses().unwrap(), changed);
    assert_eq!(engine.blocking().get_reservation(key("after")).unwrap(), r);
    engine.shutdown();
}

#[test]
fn items_without_locations_live_at_the_default_one() {
    let engine = Engine::in_memory(config(1, Some(seed_004()))).unwrap();
    let e = engine.blocking();
    e.set_item(SetItem::on_hand(sku("PLAIN"), 5)).unwrap();
    let item = e.get_item(sku("PLAIN")).unwrap();
    assert_eq!(item.location_count(), 1);
    assert!(item.locations()[0].location.is_default());
    assert_eq!(item.locations()[0].location.to_string(), "default");
    let r = reserve(&e, "plain", &[("PLAIN", 2)], Priority, Some("south"), &[]).unwrap();
    assert_eq!(allocs(&r), [a("PLAIN", "default", 2, 0)]);
    // Restocking a warehouse adds a location; the default one stays and, being outside
    // the table, comes last when the line must be split.
    stock(&e, "PLAIN", &[("wh-pr-001", 1)]);
    let r = reserve(&e, "plain-2", &[("PLAIN", 2)], Priority, None, &[]).unwrap();
    assert_eq!(allocs(&r), [a("PLAIN", "default", 2, 0)], "the only location that fills the line");
    let r = reserve(&e, "plain-3", &[("PLAIN", 2)], Priority, None, &[]).unwrap();
    assert_eq!(allocs(&r), [a("PLAIN", "wh-pr-001", 1, 0), a("PLAIN", "default", 1, 0)]);
    engine.blocking().check_invariants().unwrap();
}

#[test]
fn snapshots_keep_locations_and_allocations_exactly() {
    use stockd_engine::offline::{decode_state, encode_state};
    let t = 1_700_000_000_000;
    let mut state = ShardState::new(0);
    let apply = |s: &mut ShardState, c: Command| s.apply(&c, t).unwrap();
    apply(&mut state, Command::SetWarehouses { warehouses: seed_004() });
    for (s, l, n) in
        [("A", None, 5), ("B", Some("wh-sp-001"), 2), ("B", Some("wh-rj-001"), 9), ("B", Some("default"), 1)]
    {
        let set = Command::SetItem(SetItem {
            sku: sku(s),
            on_hand: n,
            low_stock_threshold: None,
            max_per_order: None,
            expected_version: None,
            location: l.map(loc),
            incoming: Some(n / 2),
        });
        apply(&mut state, set);
    }
    for (o, lines) in [("o-1", vec![(sku("A"), 2)]), ("o-2", vec![(sku("B"), 10), (sku("A"), 1)])] {
        let reserve = Command::ReserveLocal(ReserveLocal {
            order_id: OrderId::parse(o, "orderId").unwrap(),
            lines,
            ttl_secs: 60,
            metadata: None,
            placement: Placement::default(),
        });
        apply(&mut state, reserve);
    }
    let r = state.reservation(&key("o-2")).unwrap().clone();
    assert_eq!(r.allocations().len(), 3, "B split over two warehouses, A from default: {r:?}");
    let back = decode_state(&encode_state(&state)).unwrap();
    assert_eq!(back, state);
    back.check_invariants().unwrap();
    assert_eq!(back.item(&sku("A")).unwrap().locations().len(), 1);
    assert_eq!(back.item(&sku("B")).unwrap().locations().len(), 3);
}

/// The field of a validation error, or the error's code.
fn field_of(e: EngineError) -> String {
    match e {
        EngineError::Validation { field, .. } => field,
        other => other.code().to_owned(),
    }
}

/// Engine errors name the request field they concern, so a front end has nothing to
/// work out again: a line naming a warehouse the table does not list is
/// `items[i].location`, `i` its place in the caller's request (not among the lines
/// of the shard that refused it), and a transfer's unknown destination is `to`.
#[test]
fn validation_errors_name_the_request_field_even_across_shards() {
    let shards = 4;
    let engine = Engine::in_memory(config(shards, Some(seed_004()))).unwrap();
    let e = engine.blocking();
    // skus[s] lives on shard s.
    let skus: Vec<String> = (0..shards)
        .map(|s| (0..).map(|n| format!("L-{n}")).find(|x| shard_of_sku(&sku(x), shards) == s).unwrap())
        .collect();
    for s in &skus {
        stock(&e, s, &[("wh-sp-001", 5)]);
    }
    // Request order: shard 3's SKU, shard 1's, shard 0's, shard 2's; the bad line is
    // request line 2 but line 0 of shard 0's lines.
    let order = [&skus[3], &skus[1], &skus[0], &skus[2]];
    let lines: Vec<(&str, u64)> = order.iter().map(|s| (s.as_str(), 1)).collect();
    let named = [(skus[0].as_str(), "wh-zz-404")];
    let err = reserve(&e, "o-bad-loc", &lines, Priority, None, &named).unwrap_err();
    assert_eq!(field_of(err), "items[2].location");
    // One shard (the fast path): the same rule, the same name.
    let err = reserve(&e, "o-bad-one", &[(skus[1].as_str(), 1), (skus[1].as_str(), 0)], Priority, None, &[]);
    assert_eq!(field_of(err.unwrap_err()), "items[1].quantity");
    let err = reserve(&e, "o-bad-one", &[(skus[0].as_str(), 1)], Priority, None, &[(skus[0].as_str(), "wh-zz-404")]);
    assert_eq!(field_of(err.unwrap_err()), "items[0].location");
    // Two bad lines on two shards: the first in request order is named.
    let named = [(skus[0].as_str(), "wh-zz-404"), (skus[1].as_str(), "wh-zz-404")];
    let err = reserve(&e, "o-two-bad", &lines, Priority, None, &named).unwrap_err();
    assert_eq!(field_of(err), "items[1].location");
    assert_eq!(at(&e, &skus[0], "wh-sp-001"), (5, 0, 0, 0), "nothing was held");

    let to = |to: &str| {
        e.transfer(Transfer {
            sku: sku(&skus[0]),
            from: loc("wh-sp-001"),
            to: loc(to),
            quantity: 1,
            in_transit: false,
            note: None,
            idempotency_key: None,
        })
    };
    assert_eq!(field_of(to("wh-zz-404").unwrap_err()), "to");
    assert_eq!(field_of(to("wh-sp-001").unwrap_err()), "to");
    let set = |location: &str| {
        e.set_item(SetItem {
            sku: sku(&skus[0]),
            on_hand: 1,
            low_stock_threshold: None,
            max_per_order: None,
            expected_version: None,
            location: Some(loc(location)),
            incoming: None,
        })
    };
    assert_eq!(field_of(set("wh-zz-404").unwrap_err()), "location");
}
