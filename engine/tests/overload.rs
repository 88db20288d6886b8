//! Correctness under overload (issue 13): shard queues small enough to fill, many
//! concurrent clients, retention purges and restarts. Each test here failed on the
//! engine before the fix it names:
//! - a commit answered 429 after it took effect, and its hold on another shard was
//!   never committed; after the retention purge and a restart those sold units went
//!   back on sale (`overloaded_cross_shard_orders_never_oversell_after_purge_and_restart`);
//! - a finished header was purged while a hold of it was unsettled
//!   (`a_finished_header_is_kept_until_its_holds_are_settled`);
//! - a PENDING header with holds stayed forever
//!   (`a_pending_reservation_past_its_deadline_is_aborted_by_the_reconciler`);
//! - a reserve refused as OVERLOADED left its orderId in the index
//!   (`a_reserve_refused_as_overloaded_leaves_no_order_index_entry`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use stockd_engine::limits::PENDING_DEADLINE_MS;
use stockd_engine::*;

mod common;
use common::*;

const START: Millis = 1_700_000_000_000;
const SHARDS: usize = 2;
const RETENTION_SECS: u64 = 60;

fn config(clock: &ManualClock, queue_capacity: usize) -> EngineConfig {
    EngineConfig {
        shards: SHARDS,
        retention_secs: RETENTION_SECS,
        expiry_interval: None,
        clock: Arc::new(clock.clone()),
        queue_capacity,
        ..Default::default()
    }
}

fn storage() -> StorageConfig {
    // Fsync on: the flood must be slow enough per batch to fill a queue.
    StorageConfig::default()
}

fn request(o: &str, lines: &[(&Sku, u64)], ttl: u64) -> ReserveRequest {
    ReserveRequest {
        order_id: order(o),
        lines: lines.iter().map(|(s, q)| ((*s).clone(), *q)).collect(),
        ttl_secs: Some(ttl),
        metadata: None,
        placement: Default::default(),
    }
}

fn overloaded(e: &EngineError) -> bool {
    e.code() == "OVERLOADED"
}

/// What the clients were told, per order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Told {
    NotReserved,
    Active,
    Committed,
    /// A commit answered OVERLOADED: nothing happened, so it must still be ACTIVE.
    CommitRefused,
    Released,
}

#[test]
fn overloaded_cross_shard_orders_never_oversell_after_purge_and_restart() {
    const ORDERS: usize = 2_000;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START);
    // 16 client slots per shard (and 4 reserved): a flood of 48 writers fills it.
    let (engine, _) = Engine::open(dir.path(), config(&clock, 16), storage()).unwrap();
    let a = sku_on(0, "A", SHARDS);
    let b = sku_on(1, "B", SHARDS);
    let flood_sku = sku_on(1, "F", SHARDS);
    stock(&engine, &a, 1_000_000);
    stock(&engine, &b, 1_000_000);
    stock(&engine, &flood_sku, 0);

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flood_overloaded = Arc::new(AtomicU64::new(0));
    // The flood: 48 concurrent writers on B's shard (each write is one fsync batch).
    let flood: Vec<_> = (0..48)
        .map(|i| {
            let (engine, stop, hits, s) = (engine.clone(), stop.clone(), flood_overloaded.clone(), flood_sku.clone());
            rt.spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let adjust = Adjust {
                        sku: s.clone(),
                        delta: 1,
                        reason: AdjustReason::Restock,
                        note: None,
                        idempotency_key: Some(format!("flood-{i}-{n}")),
                        expected_version: None,
                        location: None,
                    };
                    match engine.adjust(adjust).await {
                        Err(e) if overloaded(&e) => {
                            hits.fetch_add(1, Ordering::Relaxed);
                            tokio::task::yield_now().await;
                        }
                        Err(e) => panic!("flood: {e}"),
                        Ok(_) => {}
                    }
                }
            })
        })
        .collect();

    // 32 clients run the orders: reserve (retrying a 429), then commit, release or
    // leave to expire. Every answer is recorded as the client saw it.
    let orders_overloaded = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..32)
        .map(|c| {
            let (engine, a, b, hits) = (engine.clone(), a.clone(), b.clone(), orders_overloaded.clone());
            rt.spawn(async move {
                let mut told = HashMap::new();
                for i in (c..ORDERS).step_by(32) {
                    let o = format!("o-{i}");
                    let mut reserved = false;
                    for _ in 0..1_000 {
                        match engine.reserve(request(&o, &[(&a, 1), (&b, 1)], 600)).await {
                            Ok(_) => {
                                reserved = true;
                                break;
                            }
                            Err(e) if overloaded(&e) => {
                                hits.fetch_add(1, Ordering::Relaxed);
                                tokio::task::yield_now().await;
                            }
                            Err(e) => panic!("reserve {o}: {e}"),
                        }
                    }
                    if !reserved {
                        told.insert(o, Told::NotReserved);
                        continue;
                    }
                    let t = match i % 4 {
                        0 | 1 => match engine.commit(key(&o), None).await {
                            Ok(r) => {
                                assert_eq!(r.status, ReservationStatus::Committed);
                                Told::Committed
                            }
                            Err(e) if overloaded(&e) => {
                                hits.fetch_add(1, Ordering::Relaxed);
                                Told::CommitRefused
                            }
                            Err(e) => panic!("commit {o}: {e}"),
                        },
                        2 => match engine.release(key(&o), None).await {
                            Ok(_) => Told::Released,
                            Err(e) if overloaded(&e) => {
                                hits.fetch_add(1, Ordering::Relaxed);
                                Told::Active
                            }
                            Err(e) => panic!("release {o}: {e}"),
                        },
                        _ => Told::Active,
                    };
                    told.insert(o, t);
                }
                told
            })
        })
        .collect();
    let mut told: HashMap<String, Told> = HashMap::new();
    for c in clients {
        told.extend(rt.block_on(c).unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    for f in flood {
        rt.block_on(f).unwrap();
    }
    // The overload must have happened, or this test proves nothing.
    assert!(flood_overloaded.load(Ordering::Relaxed) > 0, "the flood never filled B's queue");
    assert!(orders_overloaded.load(Ordering::Relaxed) > 0, "no order request was ever refused as OVERLOADED");

    // Every answer was the truth: a refused commit left the reservation ACTIVE.
    let e = engine.blocking();
    let committed = told.values().filter(|t| **t == Told::Committed).count() as u64;
    for (o, t) in &told {
        let status = e.get_reservation(key(o)).map(|r| r.status);
        let want = match t {
            Told::NotReserved => continue,
            Told::Active | Told::CommitRefused => ReservationStatus::Active,
            Told::Committed => ReservationStatus::Committed,
            Told::Released => ReservationStatus::Released,
        };
        assert_eq!(status, Ok(want), "{o}: the client was told {t:?}");
    }
    assert!(committed > 0);

    // Expire the rest, purge every finished header, restart.
    clock.advance_secs(601);
    e.expire_due().unwrap();
    e.reconcile().unwrap();
    clock.advance_secs(RETENTION_SECS + 1);
    e.expire_due().unwrap();
    e.check_invariants().unwrap();
    engine.shutdown();
    drop(rt);
    let (engine, _) = Engine::open(dir.path(), config(&clock, 16), storage()).unwrap();
    let e = engine.blocking();
    e.check_invariants().unwrap();
    for s in [&a, &b] {
        let item = e.get_item(s.clone()).unwrap();
        assert_eq!(item.sold, committed, "{s}: sold must equal the commits acknowledged");
        assert_eq!(item.reserved, 0, "{s}: every hold settled");
        assert_eq!(item.on_hand, 1_000_000 - committed, "{s}");
    }
    // The purge ran: no finished header is left (all were settled, then forgotten).
    for o in told.keys() {
        assert_eq!(e.get_reservation(key(o)).unwrap_err().code(), "RESERVATION_NOT_FOUND", "{o} not purged");
    }
    engine.shutdown();
}

/// The state a commit cut short leaves: the header is COMMITTED (durable, answered)
/// but the hold on the other shard was never committed. The header must not be
/// forgotten before that hold is settled, or recovery would release sold units.
#[test]
fn a_finished_header_is_kept_until_its_holds_are_settled() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START);
    let (engine, _) = Engine::open(dir.path(), config(&clock, 64), storage()).unwrap();
    let a = sku_on(0, "A", SHARDS);
    let b = sku_on(1, "B", SHARDS);
    stock(&engine, &a, 10);
    stock(&engine, &b, 10);
    let e = engine.blocking();
    let r = e.reserve(request("cut", &[(&a, 2), (&b, 3)], 600)).unwrap().reservation;
    let home = r.reservation_id.shard();
    assert_eq!(home, 0);
    // The header's transition alone, as if every later step had been lost.
    block_on(engine.apply_on_shard(home, Command::CommitReservation { key: key("cut"), quantities: None })).unwrap();
    let err = e.check_invariants().unwrap_err();
    assert!(err.contains("outlived its Committed reservation"), "{err}");
    // Long past retention: the header stays while B's hold is unsettled.
    clock.advance_secs(RETENTION_SECS * 10);
    e.expire_due().unwrap();
    assert_eq!(e.get_reservation(key("cut")).unwrap().status, ReservationStatus::Committed);
    // A restart settles it (recovery commits the hold, not releases it)...
    engine.shutdown();
    let (engine, report) = Engine::open(dir.path(), config(&clock, 64), storage()).unwrap();
    assert!(report.settled >= 2, "the hold and the header's settlement: {report:?}");
    let e = engine.blocking();
    e.check_invariants().unwrap();
    assert_eq!(e.get_item(b.clone()).unwrap().sold, 3);
    assert_eq!(e.get_item(b.clone()).unwrap().reserved, 0);
    // ... and only then may the header be forgotten.
    clock.advance_secs(RETENTION_SECS + 1);
    e.expire_due().unwrap();
    assert_eq!(e.get_reservation(key("cut")).unwrap_err().code(), "RESERVATION_NOT_FOUND");
    engine.shutdown();
    let (engine, _) = Engine::open(dir.path(), config(&clock, 64), storage()).unwrap();
    let e = engine.blocking();
    assert_eq!((e.get_item(a.clone()).unwrap().sold, e.get_item(b.clone()).unwrap().sold), (2, 3));
    assert_eq!(e.get_item(b).unwrap().on_hand, 7, "sold units never go back on sale");
    engine.shutdown();
}

/// The same cut, settled live by the reconciler (no restart).
#[test]
fn the_reconciler_settles_holds_a_finished_flow_left() {
    let clock = ManualClock::new(START);
    let engine = Engine::in_memory(config(&clock, 64)).unwrap();
    let a = sku_on(0, "A", SHARDS);
    let b = sku_on(1, "B", SHARDS);
    stock(&engine, &a, 10);
    stock(&engine, &b, 10);
    let e = engine.blocking();
    e.reserve(request("rel", &[(&a, 1), (&b, 4)], 600)).unwrap();
    block_on(engine.apply_on_shard(0, Command::ReleaseReservation { key: key("rel"), reason: "CANCELLED".into() }))
        .unwrap();
    assert_eq!(e.get_item(b.clone()).unwrap().reserved, 4, "B's hold was left behind");
    // Within the grace period the reconciler leaves it to the flow...
    assert_eq!(e.reconcile().unwrap(), ReconcileReport::default());
    clock.advance_secs(2);
    assert_eq!(e.reconcile().unwrap(), ReconcileReport { settled: 1, aborted: 0 });
    assert_eq!(e.get_item(b.clone()).unwrap().reserved, 0);
    e.check_invariants().unwrap();
    // Idempotent: nothing left to do.
    assert_eq!(e.reconcile().unwrap(), ReconcileReport::default());
    clock.advance_secs(RETENTION_SECS + 1);
    e.expire_due().unwrap();
    assert_eq!(e.get_reservation(key("rel")).unwrap_err().code(), "RESERVATION_NOT_FOUND");
}

/// A reserve flow that stopped between its holds and its activation leaves a
/// PENDING header with holds. Past the deadline the reconciler gives the units back
/// and frees the orderId.
#[test]
fn a_pending_reservation_past_its_deadline_is_aborted_by_the_reconciler() {
    let clock = ManualClock::new(START);
    let engine = Engine::in_memory(config(&clock, 64)).unwrap();
    let a = sku_on(0, "A", SHARDS);
    let b = sku_on(1, "B", SHARDS);
    stock(&engine, &a, 10);
    stock(&engine, &b, 10);
    let e = engine.blocking();
    let lines = vec![(a.clone(), 2), (b.clone(), 5)];
    let open = Command::OpenReservation { order_id: order("stuck"), lines, ttl_secs: 600, metadata: None };
    let id = match block_on(engine.apply_on_shard(0, open)).unwrap().outcome {
        Outcome::Opened(r) => r.reservation_id,
        other => panic!("{other:?}"),
    };
    for (shard, s, q) in [(0, &a, 2), (1, &b, 5)] {
        let hold = Command::PlaceHold {
            reservation_id: id,
            order_id: order("stuck"),
            lines: vec![(s.clone(), q)],
            placement: Default::default(),
        };
        block_on(engine.apply_on_shard(shard, hold)).unwrap();
    }
    let err = e.check_invariants().unwrap_err();
    assert!(err.contains("still PENDING"), "{err}");
    assert_eq!(e.get_reservation(key("stuck")).unwrap().status, ReservationStatus::Pending);
    // Before the deadline it may still be a live flow's: left alone.
    clock.advance_millis(PENDING_DEADLINE_MS - 1);
    assert_eq!(e.reconcile().unwrap(), ReconcileReport::default());
    clock.advance_millis(2);
    assert_eq!(e.reconcile().unwrap(), ReconcileReport { settled: 0, aborted: 1 });
    e.check_invariants().unwrap();
    assert_eq!(e.get_item(a.clone()).unwrap().reserved, 0);
    assert_eq!(e.get_item(b.clone()).unwrap().reserved, 0);
    // The orderId is free again.
    let r = e.reserve(request("stuck", &[(&a, 2), (&b, 5)], 600)).unwrap();
    assert!(r.created);
    e.check_invariants().unwrap();
}

/// Many concurrent reserves into a queue of one slot: most are refused as
/// OVERLOADED. None of those may leave an orderId → shard entry behind.
#[test]
fn a_reserve_refused_as_overloaded_leaves_no_order_index_entry() {
    let clock = ManualClock::new(START);
    let engine = Engine::in_memory(config(&clock, 1)).unwrap();
    let a = sku_on(0, "A", SHARDS);
    stock(&engine, &a, 1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let tasks: Vec<_> = (0..64)
        .map(|c| {
            let (engine, a) = (engine.clone(), a.clone());
            rt.spawn(async move {
                let (mut ok, mut refused) = (0usize, 0usize);
                for i in 0..50 {
                    match engine.reserve(request(&format!("o-{c}-{i}"), &[(&a, 1)], 600)).await {
                        Ok(_) => ok += 1,
                        Err(e) if overloaded(&e) => refused += 1,
                        Err(e) => panic!("{e}"),
                    }
                }
                (ok, refused)
            })
        })
        .collect();
    let (mut ok, mut refused) = (0, 0);
    for t in tasks {
        let (o, r) = rt.block_on(t).unwrap();
        ok += o;
        refused += r;
    }
    assert!(refused > 0, "the queue never filled; the test proves nothing");
    // Every refusal's forget request is queued before its answer: one read behind
    // them sees them applied.
    engine.blocking().get_item(a).unwrap();
    assert_eq!(engine.order_index_len(), ok, "{refused} refused reserves; the index must hold only the {ok} made");
    engine.blocking().check_invariants().unwrap();
}
