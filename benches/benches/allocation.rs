//! What allocation costs on the flash-sale path: `ShardState::apply` of a one-unit
//! `ReserveLocal` on one hot SKU, for each case of `stockd_benches::allocation`. Each
//! chunk's reservations are released untimed, so stock stays put.
//!
//! Reproduce: `cargo bench -p stockd-benches --bench allocation`; compare the
//! variants of one run as ratios. On a noisy machine, prefer the instruction counts
//! of `benches/examples/allocation_cost.rs` (see BENCHMARKS.md).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::time::Duration;
use stockd_benches::allocation::{allocation_cases, hot_sku};
use stockd_benches::{sku, smoke, time_reserves, T0};

fn bench_allocation(c: &mut Criterion) {
    let mut g = c.benchmark_group("allocation/hot_sku_reserve_local");
    g.throughput(Throughput::Elements(1));
    if !smoke() {
        g.measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    }
    let mut seq = 0u64;
    let mut clock = T0;
    for case in allocation_cases() {
        let mut state = hot_sku(&case.locations, 1_000_000_000);
        g.bench_function(case.name, |b| {
            b.iter_custom(|iters| time_reserves(&mut state, iters, &mut clock, &mut seq, || sku(0), &case.placement))
        });
        state.check_invariants().expect("invariants hold");
    }
    g.finish();
}

criterion_group!(benches, bench_allocation);
criterion_main!(benches);
