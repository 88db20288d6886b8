//! A flash sale against an embedded, in-memory engine.
//!
//! One hot SKU with 1,000 units; 16 threads each reserve 1 unit for a fresh order
//! until the SKU is sold out; then half the reservations are committed and the rest
//! released. Prints the counts and the time taken, and exits non-zero if the engine
//! oversold or the books do not balance.
//!
//! Run: `cargo run -p stockd-engine --example flash_sale`

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stockd_engine::*;

const STOCK: u64 = 1_000;
const THREADS: usize = 16;
const SKU: &str = "FLASH-SALE-1";

fn main() -> ExitCode {
    let engine = Engine::in_memory(EngineConfig {
        shards: std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8),
        retention_secs: 3_600,
        expiry_interval: Some(Duration::from_millis(100)),
        clock: Arc::new(SystemClock),
        warehouses: None,
        ..Default::default()
    })
    .expect("engine config is valid");
    let hot = Sku::parse(SKU, "sku").expect("valid sku");
    engine
        .blocking()
        .set_item(SetItem {
            sku: hot.clone(),
            on_hand: STOCK,
            low_stock_threshold: Some(100),
            max_per_order: Some(1),
            expected_version: None,
            location: None,
            incoming: None,
        })
        .expect("stock the hot SKU");

    // Phase 1: everybody rushes for the SKU.
    let started = Instant::now();
    let next_order = AtomicUsize::new(0);
    let sold_out_answers = AtomicUsize::new(0);
    let other_errors = AtomicUsize::new(0);
    let won: Mutex<Vec<String>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| loop {
                let n = next_order.fetch_add(1, Ordering::Relaxed);
                let order_id = OrderId::parse(&format!("flash-order-{n}"), "orderId").expect("valid orderId");
                let request = ReserveRequest {
                    order_id,
                    lines: vec![(hot.clone(), 1)],
                    ttl_secs: Some(600),
                    metadata: None,
                    placement: Default::default(),
                };
                match engine.blocking().reserve(request) {
                    Ok(r) => won.lock().unwrap().push(r.reservation.reservation_id.to_string()),
                    Err(EngineError::InsufficientInventory { .. }) => {
                        sold_out_answers.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    Err(e) => {
                        eprintln!("unexpected error {}: {e}", e.code());
                        other_errors.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            });
        }
    });
    let reserve_time = started.elapsed();
    let won = won.into_inner().unwrap();
    let attempts = next_order.load(Ordering::Relaxed);

    // Phase 2: half the winners pay, the others abandon their carts.
    let settle_started = Instant::now();
    let (to_commit, to_release) = won.split_at(won.len() / 2);
    let failures = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for chunk in to_commit.chunks(to_commit.len().div_ceil(THREADS).max(1)) {
            let (engine, failures) = (&engine, &failures);
            s.spawn(move || {
                for id in chunk {
                    if let Err(e) = engine.blocking().commit(ReservationKey::Id(id.clone()), None) {
                        eprintln!("commit {id}: {e}");
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        for chunk in to_release.chunks(to_release.len().div_ceil(THREADS).max(1)) {
            let (engine, failures) = (&engine, &failures);
            s.spawn(move || {
                for id in chunk {
                    if let Err(e) =
                        engine.blocking().release(ReservationKey::Id(id.clone()), Some("cart abandoned".into()))
                    {
                        eprintln!("release {id}: {e}");
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let settle_time = settle_started.elapsed();

    let item = engine.blocking().get_item(hot).expect("the hot SKU exists");
    let invariants = engine.blocking().check_invariants();
    engine.shutdown();

    println!("flash sale of {STOCK} x {SKU} with {THREADS} threads");
    println!("  reserve attempts     {attempts}");
    println!("  successes            {}", won.len());
    println!("  sold-out answers     {}", sold_out_answers.load(Ordering::Relaxed));
    println!("  committed / released {} / {}", to_commit.len(), to_release.len());
    println!("  sold                 {}", item.sold);
    println!("  available            {}", item.available());
    println!("  reserved             {}", item.reserved);
    println!("  onHand               {}", item.on_hand);
    println!(
        "  elapsed              {:.1?} reserving ({:.0} reservations/s), {:.1?} settling",
        reserve_time,
        won.len() as f64 / reserve_time.as_secs_f64().max(1e-9),
        settle_time
    );

    let mut problems = Vec::new();
    if won.len() as u64 > STOCK {
        problems.push(format!("OVERSOLD: {} reservations for {STOCK} units", won.len()));
    }
    if (won.len() as u64) < STOCK {
        problems.push(format!("undersold: only {} of {STOCK} units reserved", won.len()));
    }
    if item.sold != to_commit.len() as u64 {
        problems.push(format!("sold {} but {} commits", item.sold, to_commit.len()));
    }
    if item.sold + item.available() + item.reserved != STOCK || item.reserved != 0 {
        problems.push(format!(
            "books do not balance: sold {} + available {} + reserved {} != {STOCK}",
            item.sold,
            item.available(),
            item.reserved
        ));
    }
    if other_errors.load(Ordering::Relaxed) + failures.load(Ordering::Relaxed) > 0 {
        problems.push("some operations failed unexpectedly".into());
    }
    if let Err(e) = invariants {
        problems.push(format!("invariants: {e}"));
    }
    if problems.is_empty() {
        println!("OK: never oversold");
        ExitCode::SUCCESS
    } else {
        for p in &problems {
            eprintln!("FAILED: {p}");
        }
        ExitCode::FAILURE
    }
}
