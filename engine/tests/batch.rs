//! `reserve_many`: batch submission keeps every per-order guarantee.

use std::sync::Arc;
use stockd_engine::*;

fn engine(shards: usize) -> Engine {
    let clock = ManualClock::new(1_700_000_000_000);
    Engine::in_memory(EngineConfig { shards, expiry_interval: None, clock: Arc::new(clock), ..Default::default() })
        .unwrap()
}

fn sku(s: &str) -> Sku {
    Sku::parse(s, "sku").unwrap()
}

fn req(order: &str, lines: &[(&str, u64)]) -> ReserveRequest {
    ReserveRequest {
        order_id: OrderId::parse(order, "orderId").unwrap(),
        lines: lines.iter().map(|(s, q)| (sku(s), *q)).collect(),
        ttl_secs: None,
        metadata: None,
        placement: Default::default(),
    }
}

fn stock(e: &Engine, s: &str, on_hand: u64) {
    e.blocking().set_item(SetItem::on_hand(sku(s), on_hand)).unwrap();
}

#[test]
fn batches_of_a_hot_sku_never_oversell() {
    let e = engine(3);
    stock(&e, "hot", 1000);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let e = e.clone();
            std::thread::spawn(move || {
                let mut ok = 0;
                for b in 0..10 {
                    let batch: Vec<_> = (0..50).map(|i| req(&format!("t{t}-b{b}-{i}"), &[("hot", 1)])).collect();
                    for r in e.blocking().reserve_many(batch) {
                        match r {
                            Ok(o) => {
                                assert!(o.created);
                                ok += 1;
                            }
                            Err(err) => assert_eq!(err.code(), "INSUFFICIENT_INVENTORY"),
                        }
                    }
                }
                ok
            })
        })
        .collect();
    let ok: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(ok, 1000, "4000 attempts on 1000 units");
    let item = e.blocking().get_item(sku("hot")).unwrap();
    assert_eq!((item.reserved, item.available()), (1000, 0));
    e.blocking().check_invariants().unwrap();
}

#[test]
fn a_batch_mixes_fast_cross_shard_invalid_and_repeated_orders() {
    let e = engine(4);
    for i in 0..8 {
        stock(&e, &format!("s{i}"), 10);
    }
    // Find two SKUs on different shards for a cross-shard order.
    let (a, b) = (0..8)
        .flat_map(|i| (0..8).map(move |j| (i, j)))
        .map(|(i, j)| (format!("s{i}"), format!("s{j}")))
        .find(|(a, b)| stockd_engine::shard_of_sku(&sku(a), 4) != stockd_engine::shard_of_sku(&sku(b), 4))
        .unwrap();
    let batch = vec![
        req("o1", &[(&a, 2)]),
        req("o2", &[(&a, 1), (&b, 1)]),
        req("o1", &[(&a, 2)]),  // same order, same lines: the first answer again
        req("o3", &[(&a, 0)]),  // invalid
        req("o4", &[(&b, 11)]), // more than there is
        req("o1", &[(&b, 1)]),  // same order, other lines
    ];
    let r = e.blocking().reserve_many(batch);
    let first = r[0].as_ref().unwrap();
    assert!(first.created);
    assert_eq!(r[1].as_ref().unwrap().reservation.lines.len(), 2);
    let again = r[2].as_ref().unwrap();
    assert!(!again.created);
    assert_eq!(again.reservation.reservation_id, first.reservation.reservation_id);
    assert_eq!(r[3].as_ref().unwrap_err().code(), "VALIDATION_ERROR");
    assert_eq!(r[4].as_ref().unwrap_err().code(), "INSUFFICIENT_INVENTORY");
    assert_eq!(r[5].as_ref().unwrap_err().code(), "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(e.blocking().get_item(sku(&a)).unwrap().reserved, 3);
    assert_eq!(e.blocking().get_item(sku(&b)).unwrap().reserved, 1);
    e.blocking().check_invariants().unwrap();
}
