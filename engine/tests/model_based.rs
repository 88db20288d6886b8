//! Model-based property test: random sequences of every operation, applied to the
//! sharded engine (1–4 shards, manual clock) and to the plain reference model, must
//! give the same answers and the same final state; every invariant holds after every
//! step.

mod model;

use model::{obs_err, MStatus, Model, Obs};
use proptest::prelude::*;
use std::time::Duration;
use stockd_engine::*;

const SKUS: &[&str] = &["a", "b", "c", "d", "e", "f"];
const ORDERS: &[&str] = &["o1", "o2", "o3", "o4", "o5"];

#[derive(Debug, Clone)]
enum Op {
    Set { sku: usize, on_hand: u64, threshold: Option<u64>, mpo: Option<u64>, stale: bool },
    Adjust { sku: usize, delta: i64, key: Option<u8>, stale: bool },
    Delete { sku: usize },
    Block { sku: usize, blocked: bool },
    Reserve { order: usize, lines: Vec<(usize, u64)>, ttl: u64 },
    Commit { order: usize, qty: Option<Vec<(usize, u64)>> },
    Release { order: usize },
    Extend { order: usize, ttl: u64 },
    Expire { order: usize },
    Get { order: usize },
    Advance { secs: u64 },
    ExpireDue,
}

fn op() -> impl Strategy<Value = Op> {
    let sku = 0..SKUS.len();
    let order = 0..ORDERS.len();
    prop_oneof![
        3 => (sku.clone(), 0u64..20, proptest::option::of(0u64..5), proptest::option::of(0u64..4), proptest::bool::weighted(0.1))
            .prop_map(|(sku, on_hand, threshold, mpo, stale)| Op::Set { sku, on_hand, threshold, mpo, stale }),
        2 => (sku.clone(), -6i64..7, proptest::option::of(0u8..3), proptest::bool::weighted(0.1))
            .prop_map(|(sku, delta, key, stale)| Op::Adjust { sku, delta, key, stale }),
        1 => sku.clone().prop_map(|sku| Op::Delete { sku }),
        1 => (sku.clone(), proptest::bool::weighted(0.6)).prop_map(|(sku, blocked)| Op::Block { sku, blocked }),
        6 => (order.clone(), proptest::collection::vec((sku.clone(), 0u64..6), 0..4), prop_oneof![Just(0u64), 1u64..120, Just(86_400), Just(86_401)])
            .prop_map(|(order, lines, ttl)| Op::Reserve { order, lines, ttl }),
        3 => (order.clone(), proptest::option::of(proptest::collection::vec((sku.clone(), 0u64..4), 0..3)))
            .prop_map(|(order, qty)| Op::Commit { order, qty }),
        2 => order.clone().prop_map(|order| Op::Release { order }),
        1 => (order.clone(), prop_oneof![Just(0u64), 1u64..200, Just(86_400)]).prop_map(|(order, ttl)| Op::Extend { order, ttl }),
        1 => order.clone().prop_map(|order| Op::Expire { order }),
        1 => order.prop_map(|order| Op::Get { order }),
        2 => prop_oneof![1u64..100, Just(3_600), Just(90_000)].prop_map(|secs| Op::Advance { secs }),
        2 => Just(Op::ExpireDue),
    ]
}

fn sku(i: usize) -> Sku {
    Sku::parse(SKUS[i], "sku").unwrap()
}

fn key(o: usize) -> ReservationKey {
    ReservationKey::Order(OrderId::parse(ORDERS[o], "orderId").unwrap())
}

fn item_obs(r: Result<ItemChange, EngineError>) -> Obs {
    match r {
        Ok(c) => Obs::Item { on_hand: c.item.on_hand, reserved: c.item.reserved, sold: c.item.sold },
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
        expiry_interval: None,
        clock: std::sync::Arc::new(clock.clone()),
        warehouses: None,
    };
    let engine = Engine::in_memory(config).unwrap();
    let e = engine.blocking();
    let mut m = Model { retention_ms: retention_secs * 1000, ..Model::default() };
    let mut now = start;
    for (step, op) in ops.into_iter().enumerate() {
        let version_of = |s: usize| e.get_item(sku(s)).map_or(0, |i| i.version);
        let (got, want) = match &op {
            Op::Set { sku: s, on_hand, threshold, mpo, stale } => {
                let ev = stale.then(|| version_of(*s) + 1000);
                let got = item_obs(e.set_item(SetItem {
                    sku: sku(*s),
                    on_hand: *on_hand,
                    low_stock_threshold: *threshold,
                    max_per_order: *mpo,
                    expected_version: ev,
                    location: None,
                    incoming: None,
                }));
                (got, m.set(SKUS[*s], *on_hand, *threshold, *mpo, *stale))
            }
            Op::Adjust { sku: s, delta, key: k, stale } => {
                let ev = stale.then(|| version_of(*s) + 1000);
                let k = k.map(|k| format!("k{k}"));
                let got = item_obs(e.adjust(Adjust {
                    sku: sku(*s),
                    delta: *delta,
                    reason: AdjustReason::Correction,
                    note: None,
                    idempotency_key: k.clone(),
                    expected_version: ev,
                    location: None,
                }));
                (got, m.adjust(SKUS[*s], *delta, k.as_deref(), *stale, now))
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
            Op::Reserve { order, lines, ttl } => {
                let req = ReserveRequest {
                    order_id: OrderId::parse(ORDERS[*order], "orderId").unwrap(),
                    lines: lines.iter().map(|(s, q)| (sku(*s), *q)).collect(),
                    ttl_secs: Some(*ttl),
                    metadata: None,
                    placement: Default::default(),
                };
                let got = res_obs(e.reserve(req).map(|o| o.reservation));
                let lines: Vec<(String, u64)> = lines.iter().map(|(s, q)| (SKUS[*s].to_owned(), *q)).collect();
                (got, m.reserve(ORDERS[*order], &lines, *ttl, now))
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
        };
        prop_assert_eq!(&got, &want, "step {}: {:?}", step, op);
        if let Err(msg) = e.check_invariants() {
            return Err(TestCaseError::fail(format!("step {step} {op:?}: invariant broken: {msg}")));
        }
    }
    // Final state, item by item and reservation by reservation.
    let items = e.list_items(None, 1000).unwrap();
    let got: Vec<(String, u64, u64, u64)> =
        items.iter().map(|i| (i.sku.to_string(), i.on_hand, i.reserved, i.sold)).collect();
    let want: Vec<(String, u64, u64, u64)> =
        m.items.iter().map(|(s, i)| (s.clone(), i.on_hand, i.reserved, i.sold)).collect();
    prop_assert_eq!(got, want);
    for (o, _) in ORDERS.iter().enumerate() {
        prop_assert_eq!(res_obs(e.get_reservation(key(o))), m.get(ORDERS[o]));
    }
    engine.shutdown();
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

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
