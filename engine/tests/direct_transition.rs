//! Commit and release run on the caller's own task (issue 17: no hop through the
//! coordinator): the transition goes straight to the home shard. A caller that goes
//! away once the command is queued must not lose what follows the answer: the change
//! is still counted (`outcome_stats`) and the holds on other shards still settled
//! (the wait and the rest are handed to the coordinator).

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use stockd_engine::*;

mod common;
use common::*;

const SHARDS: usize = 4;

fn engine() -> Engine {
    Engine::in_memory(EngineConfig {
        shards: SHARDS,
        expiry_interval: None,
        clock: Arc::new(ManualClock::new(1_700_000_000_000)),
        ..Default::default()
    })
    .unwrap()
}

/// One SKU on each shard, 10 units each, and order `o` holding 1 of each: its home
/// shard holds one line, the other shards the rest.
fn cross_shard_order(e: &Engine, o: &str) -> Vec<Sku> {
    let skus: Vec<Sku> = (0..SHARDS).map(|s| sku_on(s, &format!("{o}-"), SHARDS)).collect();
    let b = e.blocking();
    for s in &skus {
        b.set_item(set_item(s, 10)).unwrap();
    }
    let req = ReserveRequest {
        order_id: order(o),
        lines: skus.iter().map(|s| (s.clone(), 1)).collect(),
        ttl_secs: Some(60),
        metadata: None,
        placement: Default::default(),
    };
    b.reserve(req).unwrap();
    skus
}

/// Polls `fut` once (the command is queued on the home shard then), then drops it.
fn poll_once_and_drop<F: Future>(fut: F) -> bool {
    let mut fut = Box::pin(fut);
    let mut cx = Context::from_waker(Waker::noop());
    matches!(fut.as_mut().poll(&mut cx), Poll::Ready(_))
}

/// Waits, bounded (the handed-off work runs on the coordinator), until `done`.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..4000 {
        if done() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    panic!("{what}: not done after 20 s");
}

fn figures(e: &Engine, s: &Sku) -> (u64, u64, u64) {
    let i = e.blocking().get_item(s.clone()).unwrap();
    (i.on_hand, i.reserved, i.sold)
}

#[test]
fn a_commit_whose_caller_goes_away_is_counted_and_its_holds_settled() {
    let e = engine();
    let skus = cross_shard_order(&e, "gone-commit");
    poll_once_and_drop(e.commit(key("gone-commit"), None));
    eventually("the commit's count", || e.outcome_stats().committed == 1);
    eventually("every line sold", || skus.iter().all(|s| figures(&e, s) == (9, 0, 1)));
    let r = e.blocking().get_reservation(key("gone-commit")).unwrap();
    assert_eq!(r.status, ReservationStatus::Committed);
    e.blocking().check_invariants().unwrap();
    // A repeat answers the same and counts nothing new.
    assert_eq!(e.blocking().commit(key("gone-commit"), None).unwrap().status, ReservationStatus::Committed);
    assert_eq!(e.outcome_stats().committed, 1);
}

#[test]
fn a_release_whose_caller_goes_away_is_counted_and_its_holds_settled() {
    let e = engine();
    let skus = cross_shard_order(&e, "gone-release");
    poll_once_and_drop(e.release(key("gone-release"), None));
    eventually("the release's count", || e.outcome_stats().released == 1);
    eventually("every line back to available", || skus.iter().all(|s| figures(&e, s) == (10, 0, 0)));
    let r = e.blocking().get_reservation(key("gone-release")).unwrap();
    assert_eq!(r.status, ReservationStatus::Released);
    e.blocking().check_invariants().unwrap();
}

#[test]
fn commit_and_release_answer_on_the_callers_task() {
    let e = engine();
    let skus = cross_shard_order(&e, "c");
    let r = e.blocking().commit(key("c"), None).unwrap();
    assert_eq!(r.status, ReservationStatus::Committed);
    // Answered after the holds on other shards were settled, as before.
    for s in &skus {
        assert_eq!(figures(&e, s), (9, 0, 1), "{s}");
    }
    let one = sku_on(0, "single-", SHARDS);
    e.blocking().set_item(set_item(&one, 5)).unwrap();
    let req = ReserveRequest {
        order_id: order("r"),
        lines: vec![(one.clone(), 2)],
        ttl_secs: Some(60),
        metadata: None,
        placement: Default::default(),
    };
    e.blocking().reserve(req).unwrap();
    assert_eq!(e.blocking().release(key("r"), None).unwrap().status, ReservationStatus::Released);
    assert_eq!(figures(&e, &one), (5, 0, 0));
    assert_eq!((e.outcome_stats().committed, e.outcome_stats().released), (1, 1));
    e.blocking().check_invariants().unwrap();
}
