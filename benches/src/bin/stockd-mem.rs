//! stockd-mem: resident memory per item and per active reservation of an in-memory
//! engine (the issue-7 memory targets: ≤ 256 B per item at 1 M items, ≤ 512 B per
//! active reservation). Measures the process RSS before and after creating the
//! items, then after placing the reservations (1 unit each, TTL 1 h unless TTL_SECS
//! says otherwise, spread over the items), and prints bytes per item / per
//! reservation, the time taken, and a JSON line. Run it with a 15-minute and a
//! 90-day TTL to see that a long hold costs what a short one does (issue 15).
//!
//! `stockd-mem [ITEMS] [RESERVATIONS] [THREADS] [TTL_SECS]` (defaults 1000000 200000
//! 4 3600).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use stockd_benches::{order, rss_bytes, sku};
use stockd_engine::{Engine, EngineConfig, ReserveRequest, SetItem};

fn arg(i: usize, default: u64) -> u64 {
    std::env::args().nth(i).map_or(default, |a| a.replace('_', "").parse().expect("a number"))
}

fn main() {
    let items = arg(1, 1_000_000);
    let reservations = arg(2, 200_000);
    let threads = arg(3, 4).max(1);
    let ttl_secs = arg(4, 3600);
    let engine = Engine::in_memory(EngineConfig { expiry_interval: None, ..EngineConfig::default() }).expect("engine");
    let base = rss_bytes().unwrap_or(0);
    let t = Instant::now();
    let next = AtomicU64::new(0);
    let run = |total: u64, f: &(dyn Fn(u64) + Sync)| {
        next.store(0, Ordering::Relaxed);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    f(i);
                });
            }
        });
    };
    run(items, &|i| {
        engine.blocking().set_item(SetItem::on_hand(sku(i as usize), 1_000_000)).expect("set item");
    });
    let after_items = rss_bytes().unwrap_or(0);
    let items_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    run(reservations, &|i| {
        engine
            .blocking()
            .reserve(ReserveRequest {
                order_id: order("mem", i),
                lines: vec![(sku((i % items.max(1)) as usize), 1)],
                ttl_secs: Some(ttl_secs),
                metadata: None,
                placement: Default::default(),
            })
            .expect("reserve");
    });
    let after_res = rss_bytes().unwrap_or(0);
    let res_s = t.elapsed().as_secs_f64();
    engine.blocking().check_invariants().expect("invariants");
    engine.shutdown();
    let per_item = after_items.saturating_sub(base) as f64 / items.max(1) as f64;
    let per_res = after_res.saturating_sub(after_items) as f64 / reservations.max(1) as f64;
    println!("items: {items} in {items_s:.2} s, RSS +{} bytes = {per_item:.0} bytes/item", after_items - base);
    println!(
        "active reservations: {reservations} in {res_s:.2} s, RSS +{} bytes = {per_res:.0} bytes/reservation",
        after_res.saturating_sub(after_items)
    );
    println!(
        "{{\"items\":{items},\"bytes_per_item\":{per_item:.0},\"reservations\":{reservations},\"ttl_secs\":{ttl_secs},\"reserve_secs\":{res_s:.3},\"bytes_per_reservation\":{per_res:.0},\"rss_base\":{base},\"rss_items\":{after_items},\"rss_reservations\":{after_res}}}"
    );
}
