//! A replicated leader's flash sale, embedded, with a stand-in replicated log whose
//! `confirm` costs a fixed round trip (as tansu's fetch does, BENCHMARKS.md "issue
//! 14"): how much the pipelined group commit lifts a shard bound by confirmations.
//!
//! `cargo run --release -p stockd-benches --example replicated_flash -- CLIENTS ATTEMPTS CONFIRM_MS`
//! (defaults 64 20000 10). Prints ok/s, syncs and records per sync.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stockd_engine::*;
use stockd_engine::{Confirmation, Replicator, ShippedRecord};

struct RoundTrip {
    round_trip: Duration,
    confirms: AtomicU64,
}

impl Replicator for RoundTrip {
    fn ship(&self, _shard: usize, _records: &[ShippedRecord]) {}
    fn confirm(&self, _shard: usize, _lsn: u64, _timeout: Duration) -> Confirmation {
        self.confirms.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(self.round_trip);
        Confirmation::Confirmed
    }
}

fn main() {
    let args: Vec<u64> = std::env::args().skip(1).map(|a| a.parse().expect("a number")).collect();
    let clients = args.first().copied().unwrap_or(64) as usize;
    let attempts = args.get(1).copied().unwrap_or(20_000);
    let confirm_ms = args.get(2).copied().unwrap_or(10);
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(RoundTrip { round_trip: Duration::from_millis(confirm_ms), confirms: AtomicU64::new(0) });
    let storage = StorageConfig { replicator: Some(log.clone() as Arc<dyn Replicator>), ..Default::default() };
    let config = EngineConfig { shards: 2, expiry_interval: None, ..Default::default() };
    let (engine, _) = Engine::open(dir.path(), config, storage).unwrap();
    let sku = Sku::parse("flash-1", "sku").unwrap();
    engine.blocking().set_item(SetItem::on_hand(sku.clone(), attempts)).unwrap();
    let next = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (engine, sku, next, ok) = (engine.clone(), sku.clone(), next.clone(), ok.clone());
            std::thread::spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= attempts {
                    break;
                }
                let req = ReserveRequest {
                    order_id: OrderId::parse(&format!("o-{i}"), "orderId").unwrap(),
                    lines: vec![(sku.clone(), 1)],
                    ttl_secs: Some(600),
                    metadata: None,
                    placement: Placement::default(),
                };
                if engine.blocking().reserve(req).is_ok() {
                    ok.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let status = engine.shard_status();
    let syncs: u64 = status.iter().map(|s| s.syncs.load(Ordering::Relaxed)).sum();
    let logged: u64 = status.iter().map(|s| s.logged.load(Ordering::Relaxed)).sum();
    let ok = ok.load(Ordering::Relaxed);
    println!(
        "clients {clients} attempts {attempts} confirm {confirm_ms} ms: {ok} ok in {secs:.2} s = {:.0} ok/s; \
         {syncs} syncs, {:.1} records/sync, {} confirms",
        ok as f64 / secs,
        logged as f64 / syncs.max(1) as f64,
        log.confirms.load(Ordering::Relaxed)
    );
    engine.shutdown();
}
