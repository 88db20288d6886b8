//! `stockd-snapshot-stall ITEMS [SECONDS]`: how long a shard stops answering while a
//! snapshot of a large state is taken (issue 13, defect 7).
//!
//! One durable shard (`--durability none`: no fsync noise; the WAL and snapshots are
//! still written) is stocked with ITEMS items and ITEMS/2 active
//! reservations, with a snapshot due every 10,000 records (the per-entry floor off), so
//! several snapshots fall inside the measured run. Once the snapshots of the loading
//! are written, one client sends one-at-a-time `set_item` requests for SECONDS (default
//! 20) and records each answer's latency: a snapshot that stalls the shard thread shows
//! as the max and the tail. Prints max, p99.9, p99 and p50, and how many snapshots the
//! run wrote (the newest snapshot's LSN before and after).

use hdrhistogram::Histogram;
use std::time::{Duration, Instant};
use stockd_engine::*;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let items: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let seconds: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(20);
    let dir = tempfile::tempdir().expect("temp dir");
    let config = EngineConfig { shards: 1, expiry_interval: None, ..EngineConfig::default() };
    let storage = StorageConfig {
        durability: Durability::None,
        snapshot_every_records: 10_000,
        snapshot_records_per_entry: 0,
        snapshot_every: Duration::from_secs(3600),
        ..StorageConfig::default()
    };
    let (engine, _) = Engine::open(dir.path(), config, storage).expect("open");
    let sku = |i: u64| Sku::parse(&format!("s-{i:09}"), "sku").expect("sku");
    let set = |i: u64, on_hand: u64| SetItem::on_hand(sku(i), on_hand);
    // Load from 32 threads, so the shard batches their requests.
    let started = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..32 {
            let engine = engine.clone();
            scope.spawn(move || {
                let e = engine.blocking();
                for i in (t..items).step_by(32) {
                    e.set_item(set(i, 10)).expect("set_item");
                }
            });
        }
    });
    let orders: Vec<ReserveRequest> = (0..items / 2)
        .map(|i| ReserveRequest {
            order_id: OrderId::parse(&format!("o-{i}"), "orderId").expect("order"),
            lines: vec![(sku(i), 1)],
            ttl_secs: Some(86_400),
            metadata: None,
            placement: Default::default(),
        })
        .collect();
    for chunk in orders.chunks(10_000) {
        for r in block_on(engine.reserve_many(chunk.to_vec())) {
            r.expect("reserve");
        }
    }
    eprintln!("loaded {items} items and {} reservations in {:.1?}", items / 2, started.elapsed());
    // The newest snapshot's LSN (file names are `snapshot-<lsn>.snap`).
    let newest = |engine: &Engine| {
        std::fs::read_dir(engine.data_dir().expect("durable").join("shard-000/snapshots"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().to_string();
                        name.strip_prefix("snapshot-")?.strip_suffix(".snap")?.parse::<u64>().ok()
                    })
                    .max()
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    };
    // Let the passes started while loading finish.
    let mut last = newest(&engine);
    loop {
        std::thread::sleep(Duration::from_secs(2));
        let now = newest(&engine);
        if now == last {
            break;
        }
        last = now;
    }
    let before = newest(&engine);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    let e = engine.blocking();
    let run = Instant::now();
    let mut r = 0;
    while run.elapsed() < Duration::from_secs(seconds) {
        r += 1;
        let t = Instant::now();
        e.set_item(set(r % items, 11)).expect("set_item");
        hist.record(t.elapsed().as_micros().max(1) as u64).expect("record");
    }
    println!(
        "items {items}, reservations {}, {} requests in {seconds} s: max {} us, p99.9 {} us, p99 {} us, p50 {} us; newest snapshot LSN {} -> {}",
        items / 2,
        hist.len(),
        hist.max(),
        hist.value_at_quantile(0.999),
        hist.value_at_quantile(0.99),
        hist.value_at_quantile(0.5),
        before,
        newest(&engine)
    );
    engine.shutdown();
}
