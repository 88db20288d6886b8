//! Record type 20 (`HOLDS_SETTLED`, the home shard's note that a finished
//! cross-shard reservation's holds on other shards are settled) reads like every
//! other reservation step: `inspect --type HOLDS_SETTLED` accepts the name, and the
//! record names its reservation (so `--order` finds it with the rest of the order).

mod common;

use common::*;
use serde_json::Value;
use std::sync::Arc;
use stockd_engine::shard_of_sku;
use stockd_engine::{
    Engine, EngineConfig, ManualClock, OrderId, ReservationKey, ReserveRequest, SetItem, Sku, StorageConfig,
};

fn records(dir: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["inspect", dir, "--records", "--format", "json"];
    args.extend_from_slice(extra);
    let o = run(&args);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{args:?}: {err}");
    out.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn inspect_reads_holds_settled_records() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let config =
        EngineConfig { shards: 2, expiry_interval: None, clock: Arc::new(ManualClock::new(T0)), ..Default::default() };
    let (engine, _) = Engine::open(&dir, config, StorageConfig::default()).unwrap();
    let b = engine.blocking();
    let sku_on = |shard: usize| {
        (0..).map(|n| Sku::parse(&format!("S-{n}"), "sku").unwrap()).find(|s| shard_of_sku(s, 2) == shard).unwrap()
    };
    let (s0, s1) = (sku_on(0), sku_on(1));
    for s in [&s0, &s1] {
        b.set_item(SetItem::on_hand(s.clone(), 10)).unwrap();
    }
    let order = OrderId::parse("o-1", "o").unwrap();
    let r = b
        .reserve(ReserveRequest {
            order_id: order.clone(),
            lines: vec![(s0.clone(), 1), (s1.clone(), 2)],
            ttl_secs: Some(60),
            metadata: None,
            placement: Default::default(),
        })
        .unwrap()
        .reservation;
    b.commit(ReservationKey::Order(order), None).unwrap();
    engine.shutdown();
    drop(engine);
    let d = dir.to_str().unwrap();
    let id = r.reservation_id.to_string();

    let settled = records(d, &["--type", "holds_settled"]);
    assert_eq!(settled.len(), 1, "{settled:?}");
    assert_eq!(settled[0]["type"], "HOLDS_SETTLED");
    assert_eq!(settled[0]["reservation_id"], id.as_str(), "{settled:?}");
    assert_eq!(settled[0]["order_id"], "o-1", "{settled:?}");

    let kinds: Vec<String> =
        records(d, &["--order", "o-1"]).iter().map(|r| r["type"].as_str().unwrap().to_string()).collect();
    assert!(kinds.iter().any(|k| k == "HOLDS_SETTLED"), "--order o-1 misses the HOLDS_SETTLED record: {kinds:?}");

    let o = run(&["verify", d, "--strict", "--check-every", "1"]);
    assert!(o.status.success(), "{:?}", text(&o));
}
