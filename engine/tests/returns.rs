//! Units an order sold, back on hand (`Engine::return_sold`, WAL record type 22): a
//! return brings back at most what the order sold at that location minus what came
//! back already, one `return_id` is applied once, and the ledger survives a restart
//! (replayed from the WAL, and carried by a snapshot, state version 5).

use stockd_engine::location::LocationId;
use stockd_engine::*;

mod common;
use common::*;

fn ret(s: &Sku, o: &str, sold: u64, quantity: u64, id: &str) -> ReturnSold {
    ReturnSold {
        sku: s.clone(),
        location: LocationId::DEFAULT,
        order_id: order(o),
        sold,
        quantity,
        return_id: id.into(),
        note: Some("test".into()),
    }
}

#[test]
fn partial_returns_add_up_across_restarts_and_never_exceed_the_sale() {
    let dir = tempfile::tempdir().unwrap();
    let config = || EngineConfig { shards: 2, expiry_interval: None, ..Default::default() };
    let a = sku("RET-A");
    let (engine, _) = Engine::open(dir.path(), config(), Default::default()).unwrap();
    let e = engine.blocking();
    stock(&engine, &a, 10);
    e.reserve(ReserveRequest {
        order_id: order("o-1"),
        lines: vec![(a.clone(), 5)],
        ttl_secs: None,
        metadata: None,
        placement: Default::default(),
    })
    .unwrap();
    e.commit(key("o-1"), None).unwrap();
    let back = |e: &BlockingEngine, q: u64, id: &str| {
        let (change, n) = e.return_sold(ret(&a, "o-1", 5, q, id)).unwrap();
        (n, change.item.on_hand)
    };
    assert_eq!(back(&e, 2, "r-1"), (2, 7));
    assert_eq!(back(&e, 2, "r-1"), (0, 7), "the same return again");
    engine.shutdown();

    // Replayed from the WAL: the ledger remembers r-1 and the 2 units.
    let (engine, _) = Engine::open(dir.path(), config(), Default::default()).unwrap();
    let e = engine.blocking();
    assert_eq!(back(&e, 2, "r-1"), (0, 7), "r-1 after a restart");
    engine.shutdown();

    // Once more with a snapshot after every batch: the third open restores the
    // ledger from a snapshot (state version 5), replaying nothing.
    let (engine, _) = Engine::open(dir.path(), config(), snapshot_each_batch()).unwrap();
    let e = engine.blocking();
    assert_eq!(back(&e, 2, "r-2"), (2, 9), "another partial return");
    engine.shutdown();
    let (engine, report) = Engine::open(dir.path(), config(), snapshot_each_batch()).unwrap();
    let home = shard_of_sku(&a, 2);
    assert_eq!(report.shards[home].records_replayed, 0, "all from the snapshot: {report:?}");
    let e = engine.blocking();
    assert_eq!(back(&e, 5, "cancel"), (1, 10), "the rest of the sale");
    assert_eq!(back(&e, 5, "cancel-2"), (0, 10), "nothing left");
    e.check_invariants().unwrap();
    let item = e.get_item(a.clone()).unwrap();
    assert_eq!((item.on_hand, item.reserved, item.sold), (10, 0, 5));
    engine.shutdown();
}
