//! The cost of `ShardState::clone` (what a snapshot cost the shard thread until
//! issue 13; snapshots are now built off the thread by replay, and the clone remains
//! what `Engine::shard_states` and invariant checks pay), for a shard of
//! `STOCKD_BENCH_CLONE_ITEMS` items (default 1,000,000; 10,000 in smoke mode) alone,
//! and with `STOCKD_BENCH_CLONE_RESERVATIONS` active one-shard reservations (default
//! 1,000,000; each a header, a hold, an orderId index entry and a timer entry).
//! Prints the time per entry (`ShardState::entry_count`: items + headers + holds +
//! adjustment keys). The snapshot stall itself is measured by
//! `stockd-snapshot-stall`.

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use std::hint::black_box;
use std::time::{Duration, Instant};
use stockd_benches::{order, reserve_on, size, sku, smoke, state_with_items, T0};
use stockd_engine::ShardState;

fn time_clones(state: &ShardState, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let t = Instant::now();
        let copy = black_box(state.clone());
        total += t.elapsed();
        drop(copy); // freeing the copy happens on the snapshot thread, not timed
    }
    total
}

fn report(label: &str, state: &ShardState) {
    let entries = state.entry_count();
    let runs = 5;
    let mut best = Duration::MAX;
    for _ in 0..runs {
        best = best.min(time_clones(state, 1));
    }
    eprintln!(
        "clone {label}: {entries} entries; best of {runs}: {:.1} ms = {:.0} ns/entry",
        best.as_secs_f64() * 1e3,
        best.as_nanos() as f64 / entries as f64
    );
}

fn bench_clone(c: &mut Criterion) {
    let items = size("STOCKD_BENCH_CLONE_ITEMS", 1_000_000, 10_000);
    let reservations = size("STOCKD_BENCH_CLONE_RESERVATIONS", 1_000_000, 10_000);
    let mut state = state_with_items(items, 1_000_000_000_000);
    let mut g = c.benchmark_group("snapshot_clone");
    if !smoke() {
        g.sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .measurement_time(Duration::from_secs(10))
            .warm_up_time(Duration::from_secs(1));
    }
    report(&format!("{items}_items"), &state);
    g.bench_function(format!("{items}_items"), |b| b.iter_custom(|iters| time_clones(&state, iters)));
    for i in 0..reservations {
        reserve_on(&mut state, order("clone", i as u64), sku(i % items), 3_600, T0);
    }
    report(&format!("{items}_items_{reservations}_reservations"), &state);
    g.bench_function(format!("{items}_items_{reservations}_reservations"), |b| {
        b.iter_custom(|iters| time_clones(&state, iters))
    });
    g.finish();
}

criterion_group!(benches, bench_clone);
criterion_main!(benches);
