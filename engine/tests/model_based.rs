//! Model-based property test: random sequences of every operation, applied to the
//! sharded engine (1–4 shards, manual clock) and to the plain reference model, must
//! give the same answers and the same final state; every invariant holds after every
//! step. Locations are part of it: a warehouse table (with regions and priorities),
//! stock set, adjusted, transferred and received per location, reservations naming a
//! location or allocated by each strategy, with or without a delivery region; the
//! answers include every location's figures and every reservation's allocations.

mod model;

use model::{loc_obs, obs_err, MPlacement, MSet, MStatus, MWarehouse, Model, Obs};
use proptest::prelude::*;
use std::time::Duration;

use stockd_engine::*;

const SKUS: &[&str] = &["a", "b", "c", "d", "e", "f"];
const ORDERS: &[&str] = &["o1", "o2", "o3", "o4", "o5"];
/// "wx" is not in the warehouse table: opening it is refused.
const LOCS: &[&str] = &["default", "w1", "w2", "w3", "wx"];
const WAREHOUSES: &[MWarehouse] = &[("w1", "r1", 2), ("w2", "r2", 1), ("w3", "r1", 1)];
const REGIONS: &[&str] = &["r1", "r2"];

#[derive(Debug, Clone)]
enum Op {
    Set {
        sku: usize,
        loc: Option<usize>,
        on_hand: u64,
        incoming: Option<u64>,
        threshold: Option<u64>,
        mpo: Option<u64>,
        stale: bool,
    },
    Adjust {
        sku: usize,
        loc: Option<usize>,
        delta: i64,
        key: Option<u8>,
        stale: bool,
    },
    Transfer {
        sku: usize,
        from: usize,
        to: usize,
        quantity: u64,
        in_transit: bool,
        key: Option<u8>,
    },
    Receive {
        sku: usize,
        loc: usize,
        quantity: u64,
        key: Option<u8>,
    },
    Delete {
        sku: usize,
    },
    Block {
        sku: usize,
        blocked: bool,
    },
    Reserve {
        order: usize,
        lines: Vec<(usize, u64)>,
        ttl: u64,
        strategy: u8,
        region: Option<usize>,
        named: Vec<(usize, usize)>,
    },
    Commit {
        order: usize,
        qty: Option<Vec<(usize, u64)>>,
    },
    Release {
        order: usize,
    },
    Extend {
        order: usize,
        ttl: u64,
    },
    Expire {
        order: usize,
    },
    Get {
        order: usize,
    },
    Advance {
        secs: u64,
    },
    ExpireDue,
    /// The op before it, sent again (expanded before the run).
    Retry,
}

fn op() -> impl Strategy<Value = Op> {
    let sku = 0..SKUS.len();
    let order = 0..ORDERS.len();
    prop_oneof![
        4 => (sku.clone(), proptest::option::weighted(0.6, 0..LOCS.len()), 0u64..20, proptest::option::weighted(0.2, 0u64..5), proptest::option::of(0u64..5), proptest::option::of(0u64..4), proptest::bool::weighted(0.1))
            .prop_map(|(sku, loc, on_hand, incoming, threshold, mpo, stale)| Op::Set { sku, loc, on_hand, incoming, threshold, mpo, stale }),
        2 => (sku.clone(), proptest::option::weighted(0.5, 0..LOCS.len()), -6i64..7, proptest::option::of(0u8..3), proptest::bool::weighted(0.1))
            .prop_map(|(sku, loc, delta, key, stale)| Op::Adjust { sku, loc, delta, key, stale }),
        2 => (sku.clone(), 0..LOCS.len(), 0..LOCS.len(), 0u64..6, proptest::bool::ANY, proptest::option::of(0u8..3))
            .prop_map(|(sku, from, to, quantity, in_transit, key)| Op::Transfer { sku, from, to, quantity, in_transit, key }),
        1 => (sku.clone(), 0..LOCS.len(), 0u64..6, proptest::option::of(0u8..3))
            .prop_map(|(sku, loc, quantity, key)| Op::Receive { sku, loc, quantity, key }),
        1 => sku.clone().prop_map(|sku| Op::Delete { sku }),
        1 => (sku.clone(), proptest::bool::weighted(0.6)).prop_map(|(sku, blocked)| Op::Block { sku, blocked }),
        6 => (order.clone(), proptest::collection::vec((sku.clone(), 0u64..6), 0..4), prop_oneof![1 => Just(0u64), 8 => 1u64..120, 1 => Just(86_400), 1 => Just(86_401)],
              0u8..3, proptest::option::of(0..REGIONS.len()), proptest::option::weighted(0.2, (sku.clone(), 0..LOCS.len())).prop_map(|n| n.into_iter().collect::<Vec<_>>()))
            .prop_map(|(order, lines, ttl, strategy, region, named)| Op::Reserve { order, lines, ttl, strategy, region, named }),
        3 => (order.clone(), proptest::option::of(proptest::collection::vec((sku.clone(), 0u64..4), 0..3)))
            .prop_map(|(order, qty)| Op::Commit { order, qty }),
        2 => order.clone().prop_map(|order| Op::Release { order }),
        1 => (order.clone(), prop_oneof![Just(0u64), 1u64..200, Just(86_400)]).prop_map(|(order, ttl)| Op::Extend { order, ttl }),
        1 => order.clone().prop_map(|order| Op::Expire { order }),
        1 => order.prop_map(|order| Op::Get { order }),
        2 => prop_oneof![1u64..100, Just(3_600), Just(90_000)].prop_map(|secs| Op::Advance { secs }),
        2 => Just(Op::ExpireDue),
        3 => Just(Op::Retry),
    ]
}

fn sku(i: usize) -> Sku {
    Sku::parse(SKUS[i], "sku").unwrap()
}

fn key(o: usize) -> ReservationKey {
    ReservationKey::Order(OrderId::parse(ORDERS[o], "orderId").unwrap())
}

fn loc(i: usize) -> LocationId {
    LocationId::parse(LOCS[i], "location").unwrap()
}

fn locs_of(item: &Item) -> Vec<(String, u64, u64, u64, u64)> {
    let mut v: Vec<_> =
        item.locations().iter().map(|l| (l.location.to_string(), l.on_hand, l.reserved, l.sold, l.incoming)).collect();
    v.sort();
    v
}

fn item_obs(r: Result<ItemChange, EngineError>) -> Obs {
    match r {
        Ok(c) => {
            Obs::Item { on_hand: c.item.on_hand, reserved: c.item.reserved, sold: c.item.sold, locs: locs_of(&c.item) }
        }
        Err(e) => obs_err(&e),
    }
}

fn res_obs(r: Result<Reservation, EngineError>) -> Obs {
    match r {
        Ok(r) => Obs::Res {
            status: match r.status {
                ReservationStatus::Active => MStatus::Active,
                ReservationStatus::Committed => MStatus::Committed,
                ReservationStatus::Released => MStatus::Released,
                ReservationStatus::Expired => MStatus::Expired,
                ReservationStatus::Pending => panic!("a client saw a PENDING reservation"),
            },
            lines: r.lines.iter().map(|l| (l.sku.to_string(), l.quantity, l.committed)).collect(),
            allocations: r
                .allocations()
                .iter()
                .map(|a| (a.sku.to_string(), a.location.to_string(), a.quantity, a.committed))
                .collect(),
            expires_at: r.expires_at,
        },
        Err(e) => obs_err(&e),
    }
}

fn run(shards: usize, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let start = 1_700_000_000_000;
    let clock = ManualClock::new(start);
    let retention_secs = 7_200;
    let config = EngineConfig {
        shards,
        retention_secs,
        max_ttl_secs: model::MAX_TTL_SECS,
        expiry_interval: None,
        clock: std::sync::Arc::new(clock.clone()),
        warehouses: Some(
            WAREHOUSES
                .iter()
                .map(|(id, region, priority)| Warehouse {
                    id: LocationId::parse(id, "id").unwrap(),
                    name: id.to_uppercase(),
                    region: Some((*region).to_owned()),
                    priority: *priority,
                })
                .collect(),
        ),
        ..Default::default()
    };
    let engine = Engine::in_memory(config).unwrap();
    let e = engine.blocking();
    let mut m = Model { retention_ms: retention_secs * 1000, warehouses: WAREHOUSES.to_vec(), ..Model::default() };
    let mut now = start;
    // A retry is the request before it again, exactly (a client that timed out).
    let mut sent: Vec<Op> = Vec::with_capacity(ops.len());
    for op in ops {
        match op {
            Op::Retry => sent.extend(sent.last().cloned()),
            op => sent.push(op),
        }
    }
    for (step, op) in sent.into_iter().enumerate() {
        let version_of = |s: usize| e.get_item(sku(s)).map_or(0, |i| i.version);
        let (got, want) = match &op {
            Op::Set { sku: s, loc: l, on_hand, incoming, threshold, mpo, stale } => {
                let ev = stale.then(|| version_of(*s) + 1000);
                let got = item_obs(e.set_item(SetItem {
                    sku: sku(*s),
                    on_hand: *on_hand,
                    low_stock_threshold: *threshold,
                    max_per_order: *mpo,
                    expected_version: ev,
                    location: l.map(loc),
                    incoming: *incoming,
                }));
                let want = m.set(MSet {
                    sku: SKUS[*s],
                    loc: l.map(|l| LOCS[l]),
                    on_hand: *on_hand,
                    incoming: *incoming,
                    threshold: *threshold,
                    mpo: *mpo,
                    stale: *stale,
                });
                (got, want)
            }
            Op::Transfer { sku: s, from, to, quantity, in_transit, key: k } => {
                // Keys k0..k2, the same space as adjustments' (one per SKU).
                let k = k.map(|k| format!("k{k}"));
                let got = item_obs(e.transfer(Transfer {
                    sku: sku(*s),
                    from: loc(*from),
                    to: loc(*to),
                    quantity: *quantity,
                    in_transit: *in_transit,
                    note: None,
                    idempotency_key: k.clone(),
                }));
                (got, m.transfer(SKUS[*s], LOCS[*from], LOCS[*to], *quantity, *in_transit, k.as_deref(), now))
            }
            Op::Receive { sku: s, loc: l, quantity, key: k } => {
                let k = k.map(|k| format!("k{k}"));
                let got = item_obs(e.receive(sku(*s), loc(*l), *quantity, k.clone()));
                (got, m.receive(SKUS[*s], LOCS[*l], *quantity, k.as_deref(), now))
            }
            Op::Adjust { sku: s, loc: l, delta, key: k, stale } => {
                let ev = stale.then(|| version_of(*s) + 1000);
                let k = k.map(|k| format!("k{k}"));
                let got = item_obs(e.adjust(Adjust {
                    sku: sku(*s),
                    delta: *delta,
                    reason: AdjustReason::Correction,
                    note: None,
                    idempotency_key: k.clone(),
                    expected_version: ev,
                    location: l.map(loc),
                }));
                (got, m.adjust(SKUS[*s], l.map(|l| LOCS[l]), *delta, k.as_deref(), *stale, now))
            }
            Op::Delete { sku: s } => {
                let got = match e.delete_item(sku(*s), None) {
                    Ok(()) => Obs::Unit,
                    Err(err) => obs_err(&err),
                };
                (got, m.delete(SKUS[*s]))
            }
            Op::Block { sku: s, blocked } => {
                (item_obs(e.set_sales_blocked(sku(*s), *blocked)), m.block(SKUS[*s], *blocked))
            }
            Op::Reserve { order, lines, ttl, strategy, region, named } => {
                let placement = Placement {
                    strategy: AllocationStrategy::ALL[*strategy as usize],
                    region: region.map(|r| REGIONS[r].to_owned()),
                    locations: named.iter().map(|(s, l)| (sku(*s), loc(*l))).collect(),
                };
                let req = ReserveRequest {
                    order_id: OrderId::parse(ORDERS[*order], "orderId").unwrap(),
                    lines: lines.iter().map(|(s, q)| (sku(*s), *q)).collect(),
                    ttl_secs: Some(*ttl),
                    metadata: None,
                    placement,
                };
                let got = res_obs(e.reserve(req).map(|o| o.reservation));
                let lines: Vec<(String, u64)> = lines.iter().map(|(s, q)| (SKUS[*s].to_owned(), *q)).collect();
                let p = MPlacement {
                    strategy: *strategy,
                    region: region.map(|r| REGIONS[r].to_owned()),
                    named: named.iter().map(|(s, l)| (SKUS[*s].to_owned(), LOCS[*l].to_owned())).collect(),
                };
                (got, m.reserve(ORDERS[*order], &lines, *ttl, &p, now))
            }
            Op::Commit { order, qty } => {
                let q = qty.as_ref().map(|q| q.iter().map(|(s, n)| (sku(*s), *n)).collect());
                let got = res_obs(e.commit(key(*order), q));
                let mq: Option<Vec<(String, u64)>> =
                    qty.as_ref().map(|q| q.iter().map(|(s, n)| (SKUS[*s].to_owned(), *n)).collect());
                (got, m.commit(ORDERS[*order], mq.as_deref(), now))
            }
            Op::Release { order } => (res_obs(e.release(key(*order), None)), m.release(ORDERS[*order], now)),
            Op::Extend { order, ttl } => (res_obs(e.extend(key(*order), *ttl)), m.extend(ORDERS[*order], *ttl, now)),
            Op::Expire { order } => (res_obs(e.expire(key(*order))), m.expire(ORDERS[*order], now)),
            Op::Get { order } => (res_obs(e.get_reservation(key(*order))), m.get(ORDERS[*order])),
            Op::Advance { secs } => {
                clock.advance_secs(*secs);
                now += secs * 1000;
                (Obs::Unit, Obs::Unit)
            }
            Op::ExpireDue => {
                let n = e.expire_due().map_err(|e| TestCaseError::fail(e.to_string()))?.len();
                let want = m.expire_due(now);
                prop_assert_eq!(n, want, "step {}: expired count", step);
                (Obs::Unit, Obs::Unit)
            }
            Op::Retry => unreachable!("expanded into the op it repeats above"),
        };
        prop_assert_eq!(&got, &want, "step {}: {:?}", step, op);
        if let Err(msg) = e.check_invariants() {
            return Err(TestCaseError::fail(format!("step {step} {op:?}: invariant broken: {msg}")));
        }
    }
    // Final state, item by item and reservation by reservation.
    let items = e.list_items(None, 1000).unwrap();
    let got: Vec<_> = items.iter().map(|i| (i.sku.to_string(), i.on_hand, i.reserved, i.sold, locs_of(i))).collect();
    let want: Vec<_> = m
        .items
        .iter()
        .map(|(s, i)| {
            let (on_hand, reserved, sold) = i.sums();
            (s.clone(), on_hand, reserved, sold, loc_obs(i))
        })
        .collect();
    prop_assert_eq!(got, want);
    for (o, _) in ORDERS.iter().enumerate() {
        prop_assert_eq!(res_obs(e.get_reservation(key(o))), m.get(ORDERS[o]));
    }
    engine.shutdown();
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_reference_model(shards in 1usize..5, ops in proptest::collection::vec(op(), 1..60)) {
        run(shards, ops)?;
    }
}

#[test]
fn shutdown_stops_answering() {
    let engine = Engine::in_memory(EngineConfig {
        shards: 2,
        expiry_interval: Some(Duration::from_millis(5)),
        ..Default::default()
    })
    .unwrap();
    engine.shutdown();
    let err = engine.blocking().get_item(sku(0)).unwrap_err();
    assert_eq!(err.code(), "SERVICE_UNAVAILABLE");
}
