//! Contention tests: many threads hammering a few hot SKUs through the blocking API.
//! Whatever the interleaving, a hot SKU is never oversold, a multi-SKU reservation
//! is all or nothing, and the stock accounting matches the operations that succeeded.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use stockd_engine::shard_of_sku;
use stockd_engine::*;

const START: Millis = 1_700_000_000_000;

fn engine(shards: usize) -> Engine {
    Engine::in_memory(EngineConfig {
        shards,
        retention_secs: 3_600,
        expiry_interval: None,
        clock: Arc::new(ManualClock::new(START)),
        warehouses: None,
        ..Default::default()
    })
    .unwrap()
}

fn sku(s: &str) -> Sku {
    Sku::parse(s, "sku").unwrap()
}

fn order(s: &str) -> OrderId {
    OrderId::parse(s, "orderId").unwrap()
}

fn stock(e: &Engine, s: &str, on_hand: u64) {
    e.blocking().set_item(SetItem::on_hand(sku(s), on_hand)).unwrap();
}

fn item(e: &Engine, s: &str) -> Item {
    e.blocking().get_item(sku(s)).unwrap()
}

fn reserve(e: &Engine, order_id: &str, lines: &[(&str, u64)]) -> Result<ReserveOutcome, EngineError> {
    e.blocking().reserve(ReserveRequest {
        order_id: order(order_id),
        lines: lines.iter().map(|(s, q)| (sku(s), *q)).collect(),
        ttl_secs: None,
        metadata: None,
        placement: Default::default(),
    })
}

/// Two SKU names (prefix-i) owned by different shards of an `n`-shard engine.
fn skus_on_distinct_shards(prefix: &str, count: usize, n: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut used = HashSet::new();
    for i in 0.. {
        let name = format!("{prefix}-{i}");
        if used.insert(shard_of_sku(&sku(&name), n)) {
            out.push(name);
        }
        if out.len() == count {
            return out;
        }
    }
    unreachable!()
}

/// A small deterministic PRNG (xorshift64*), so the mixed test needs no extra crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn hot_sku_is_sold_exactly_once_per_unit() {
    const STOCK: u64 = 500;
    const ATTEMPTS: usize = 2_000;
    const THREADS: usize = 32;
    let e = engine(4);
    stock(&e, "HOT-1", STOCK);

    let next = AtomicUsize::new(0);
    let ids = Mutex::new(Vec::new());
    let insufficient = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= ATTEMPTS {
                    return;
                }
                match reserve(&e, &format!("hot-order-{i}"), &[("HOT-1", 1)]) {
                    Ok(r) => {
                        assert!(r.created, "a fresh orderId must create a reservation");
                        assert_eq!(r.reservation.status, ReservationStatus::Active);
                        ids.lock().unwrap().push(r.reservation.reservation_id);
                    }
                    Err(EngineError::InsufficientInventory { items }) => {
                        assert_eq!(
                            items,
                            vec![Shortfall { sku: "HOT-1".into(), requested: 1, available: 0 }],
                            "a shortfall names the line with its requested and available"
                        );
                        insufficient.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(other) => panic!("unexpected error {}: {other}", other.code()),
                }
            });
        }
    });

    let ids = ids.into_inner().unwrap();
    assert_eq!(ids.len() as u64, STOCK, "exactly S reservations succeed");
    assert_eq!(insufficient.load(Ordering::Relaxed), ATTEMPTS - STOCK as usize);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len(), "reservation ids are unique");
    let hot = item(&e, "HOT-1");
    assert_eq!((hot.on_hand, hot.reserved, hot.available(), hot.sold), (STOCK, STOCK, 0, 0));
    e.blocking().check_invariants().unwrap();
}

#[test]
fn multi_sku_orders_across_shards_are_all_or_nothing() {
    const THREADS: usize = 32;
    const ATTEMPTS: usize = 1_000;
    let e = engine(4);
    let names = skus_on_distinct_shards("hot", 2, 4);
    let (a, b) = (names[0].as_str(), names[1].as_str());
    assert_ne!(shard_of_sku(&sku(a), 4), shard_of_sku(&sku(b), 4));
    stock(&e, a, 300);
    stock(&e, b, 200);

    let next = AtomicUsize::new(0);
    let successes = AtomicUsize::new(0);
    let failures = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= ATTEMPTS {
                    return;
                }
                // Half the orders name the SKUs the other way round.
                let lines = if i & 1 == 0 { [(a, 1), (b, 1)] } else { [(b, 1), (a, 1)] };
                match reserve(&e, &format!("pair-{i}"), &lines) {
                    Ok(r) => {
                        assert_eq!(r.reservation.lines.len(), 2);
                        successes.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(EngineError::InsufficientInventory { items }) => {
                        // A never runs short (300 units, at most 200 + 32 in flight): only B.
                        assert_eq!(items, vec![Shortfall { sku: b.into(), requested: 1, available: 0 }]);
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(other) => panic!("unexpected error {}: {other}", other.code()),
                }
            });
        }
    });

    assert_eq!(successes.load(Ordering::Relaxed), 200);
    assert_eq!(failures.load(Ordering::Relaxed), ATTEMPTS - 200);
    let (ia, ib) = (item(&e, a), item(&e, b));
    assert_eq!(ia.reserved, 200, "no partial hold of A may survive a failed order");
    assert_eq!(ia.available(), 100);
    assert_eq!(ib.reserved, 200);
    assert_eq!(ib.available(), 0);
    e.blocking().check_invariants().unwrap();
}

#[test]
fn overlapping_multi_sku_orders_hold_exactly_what_succeeded() {
    // Three scarce SKUs on distinct shards; each order takes a random pair, so any of
    // them may be the short one. The reserved figure of each SKU must equal the sum of
    // the successful reservations that name it: a rolled-back order holds nothing.
    const THREADS: usize = 16;
    const PER_THREAD: usize = 60;
    let e = engine(4);
    let names = skus_on_distinct_shards("tri", 3, 4);
    for n in &names {
        stock(&e, n, 150);
    }
    let won: Mutex<Vec<Reservation>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (e, names, won) = (&e, &names, &won);
            s.spawn(move || {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (t as u64 + 1));
                for i in 0..PER_THREAD {
                    let x = rng.below(3) as usize;
                    let y = (x + 1 + rng.below(2) as usize) % 3;
                    let lines = [(names[x].as_str(), 1 + rng.below(3)), (names[y].as_str(), 1 + rng.below(3))];
                    match reserve(e, &format!("tri-{t}-{i}"), &lines) {
                        Ok(r) => won.lock().unwrap().push(r.reservation),
                        Err(EngineError::InsufficientInventory { items }) => {
                            assert!(!items.is_empty() && items.len() <= 2, "{items:?}");
                            for short in items {
                                let (_, q) = lines.iter().find(|(s, _)| *s == short.sku).expect("a requested line");
                                assert_eq!(short.requested, *q);
                                assert!(short.available < short.requested, "{short:?}");
                            }
                        }
                        Err(other) => panic!("unexpected error {}: {other}", other.code()),
                    }
                }
            });
        }
    });
    let won = won.into_inner().unwrap();
    assert!(!won.is_empty());
    let mut held: HashMap<String, u64> = HashMap::new();
    for r in &won {
        for l in &r.lines {
            *held.entry(l.sku.to_string()).or_default() += l.quantity;
        }
    }
    for n in &names {
        let it = item(&e, n);
        assert_eq!(it.reserved, held.get(n).copied().unwrap_or(0), "{n}: reserved vs successful reservations");
        assert_eq!(it.on_hand, 150);
    }
    e.blocking().check_invariants().unwrap();
}

#[test]
fn mixed_reserve_commit_release_keeps_the_books() {
    // Threads reserve random lines, then commit fully, commit partially, release or
    // leave the reservation active. Afterwards each SKU's sold, reserved and onHand
    // must match the sum of what the successful operations did.
    const THREADS: usize = 16;
    const PER_THREAD: usize = 120;
    const STOCK: u64 = 400;
    let e = engine(4);
    let names: Vec<String> = (0..4).map(|i| format!("mix-{i}")).collect();
    for n in &names {
        stock(&e, n, STOCK);
    }
    // Per SKU: (sold, still reserved by ACTIVE reservations).
    let books: Mutex<HashMap<String, (u64, u64)>> = Mutex::new(HashMap::new());
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (e, names, books) = (&e, &names, &books);
            s.spawn(move || {
                let mut rng = Rng(0xdead_beef_cafe_f00d ^ ((t as u64 + 1) << 17));
                for i in 0..PER_THREAD {
                    let first = rng.below(4) as usize;
                    let mut lines = vec![(names[first].as_str(), 1 + rng.below(4))];
                    if rng.below(2) == 0 {
                        lines.push((names[(first + 1 + rng.below(3) as usize) % 4].as_str(), 1 + rng.below(4)));
                    }
                    let order_id = format!("mix-{t}-{i}");
                    let r = match reserve(e, &order_id, &lines) {
                        Ok(r) => r.reservation,
                        Err(EngineError::InsufficientInventory { .. }) => continue,
                        Err(other) => panic!("unexpected error {}: {other}", other.code()),
                    };
                    let key = if rng.below(2) == 0 {
                        ReservationKey::Order(order(&order_id))
                    } else {
                        ReservationKey::Id(r.reservation_id.to_string())
                    };
                    let (sold, active): (Vec<u64>, Vec<u64>) = match rng.below(4) {
                        0 => {
                            let c = e.blocking().commit(key, None).unwrap();
                            assert_eq!(c.status, ReservationStatus::Committed);
                            (c.lines.iter().map(|l| l.committed).collect(), vec![0; lines.len()])
                        }
                        1 => {
                            let qty: Vec<(Sku, u64)> = lines.iter().map(|(s, q)| (sku(s), rng.below(q + 1))).collect();
                            let c = e.blocking().commit(key, Some(qty.clone())).unwrap();
                            for (l, (_, q)) in c.lines.iter().zip(&qty) {
                                assert_eq!(l.committed, *q);
                            }
                            (qty.iter().map(|(_, q)| *q).collect(), vec![0; lines.len()])
                        }
                        2 => {
                            let rel = e.blocking().release(key, Some("changed mind".into())).unwrap();
                            assert_eq!(rel.status, ReservationStatus::Released);
                            (vec![0; lines.len()], vec![0; lines.len()])
                        }
                        _ => (vec![0; lines.len()], lines.iter().map(|(_, q)| *q).collect()),
                    };
                    let mut b = books.lock().unwrap();
                    for (j, (s, _)) in lines.iter().enumerate() {
                        let entry = b.entry(s.to_string()).or_default();
                        entry.0 += sold[j];
                        entry.1 += active[j];
                    }
                }
            });
        }
    });
    let books = books.into_inner().unwrap();
    let mut total_sold = 0;
    for n in &names {
        let it = item(&e, n);
        let (sold, active) = books.get(n).copied().unwrap_or((0, 0));
        assert_eq!(it.sold, sold, "{n}: sold");
        assert_eq!(it.reserved, active, "{n}: reserved");
        assert_eq!(it.on_hand, STOCK - sold, "{n}: onHand");
        assert_eq!(it.available() + it.reserved + it.sold, STOCK, "{n}: sold + available + reserved");
        total_sold += sold;
    }
    assert!(total_sold > 0);
    e.blocking().check_invariants().unwrap();
}

#[test]
fn racing_commit_and_release_of_the_same_reservation_have_one_winner() {
    const N: usize = 300;
    let e = engine(4);
    stock(&e, "RACE", N as u64);
    let ids: Vec<String> = (0..N)
        .map(|i| reserve(&e, &format!("race-{i}"), &[("RACE", 1)]).unwrap().reservation.reservation_id.to_string())
        .collect();

    let (commits, releases) = std::thread::scope(|s| {
        let c = s.spawn(|| {
            ids.iter()
                .map(|id| e.blocking().commit(ReservationKey::Id(id.clone()), None).map(|r| r.status))
                .collect::<Vec<_>>()
        });
        let r = s.spawn(|| {
            ids.iter()
                .rev()
                .map(|id| e.blocking().release(ReservationKey::Id(id.clone()), None).map(|r| r.status))
                .collect::<Vec<_>>()
        });
        (c.join().unwrap(), r.join().unwrap().into_iter().rev().collect::<Vec<_>>())
    });

    let mut committed = 0;
    for (i, id) in ids.iter().enumerate() {
        let final_status = e.blocking().get_reservation(ReservationKey::Id(id.clone())).unwrap().status;
        match (&commits[i], &releases[i]) {
            (Ok(ReservationStatus::Committed), Err(EngineError::ReservationCommitted { reservation_id })) => {
                assert_eq!(reservation_id, id);
                assert_eq!(final_status, ReservationStatus::Committed);
                committed += 1;
            }
            (Err(EngineError::ReservationReleased { reservation_id }), Ok(ReservationStatus::Released)) => {
                assert_eq!(reservation_id, id);
                assert_eq!(final_status, ReservationStatus::Released);
            }
            other => panic!("{id}: commit and release both or neither won: {other:?}"),
        }
    }
    let it = item(&e, "RACE");
    assert_eq!(it.sold, committed);
    assert_eq!(it.on_hand, N as u64 - committed);
    assert_eq!(it.reserved, 0);
    e.blocking().check_invariants().unwrap();
}

#[test]
fn same_order_id_from_many_threads_reserves_once() {
    const THREADS: usize = 16;
    let e = engine(4);
    stock(&e, "DUP-A", 100);
    stock(&e, "DUP-B", 100);
    let barrier = std::sync::Barrier::new(THREADS);
    let results: Vec<Result<ReserveOutcome, EngineError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    reserve(&e, "the-one-order", &[("DUP-A", 3), ("DUP-B", 2)])
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let created: Vec<&ReserveOutcome> = results.iter().filter_map(|r| r.as_ref().ok()).filter(|r| r.created).collect();
    assert_eq!(created.len(), 1, "exactly one call creates the reservation");
    let id = &created[0].reservation.reservation_id;
    for r in &results {
        match r {
            Ok(o) => {
                assert_eq!(&o.reservation.reservation_id, id);
                assert_eq!(o.reservation.expires_at, created[0].reservation.expires_at);
            }
            // A repeat that arrives while the first is still placing its holds.
            Err(EngineError::ReservationPending { reservation_id }) => assert_eq!(reservation_id, id),
            Err(other) => panic!("unexpected error {}: {other}", other.code()),
        }
    }
    assert_eq!(item(&e, "DUP-A").reserved, 3);
    assert_eq!(item(&e, "DUP-B").reserved, 2);
    e.blocking().check_invariants().unwrap();
}
