//! Snapshots of one shard with many SKUs (`STOCKD_BENCH_SNAPSHOT_SKUS`, default
//! 1,000,000; 10,000 in smoke mode), the state built by applying SetItem commands:
//! encode (`encode_state`) + write (`SnapshotStore::write`: temp file, fsync, rename,
//! fsync dir), and load (`load_latest`, CRC verified) + decode (`decode_state`), plus
//! the codec alone.

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use std::hint::black_box;
use std::time::{Duration, Instant};
use stockd_benches::{size, smoke, state_with_items};
use stockd_engine::offline::{decode_state, encode_state};
use stockd_snapshots::SnapshotStore;

fn bench_snapshot(c: &mut Criterion) {
    let skus = size("STOCKD_BENCH_SNAPSHOT_SKUS", 1_000_000, 10_000);
    let built = Instant::now();
    let state = state_with_items(skus, 100);
    let payload = encode_state(&state);
    eprintln!(
        "snapshot bench: {skus} SKUs built in {:.2} s; payload {} bytes = {:.1} bytes/SKU",
        built.elapsed().as_secs_f64(),
        payload.len(),
        payload.len() as f64 / skus as f64
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SnapshotStore::open(dir.path()).expect("open store");
    let mut g = c.benchmark_group(format!("snapshot/{skus}_skus"));
    g.throughput(Throughput::Elements(skus as u64));
    if !smoke() {
        g.sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .measurement_time(Duration::from_secs(8))
            .warm_up_time(Duration::from_secs(1));
    }
    g.bench_function("encode", |b| b.iter(|| black_box(encode_state(black_box(&state)))));
    g.bench_function("decode", |b| b.iter(|| black_box(decode_state(black_box(&payload)).expect("decodes"))));
    let mut lsn = 0u64;
    g.bench_function("encode_write", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                lsn += 1;
                let t = Instant::now();
                let bytes = encode_state(&state);
                store.write(lsn, &bytes).expect("write snapshot");
                total += t.elapsed();
                store.prune(2).expect("prune");
            }
            total
        })
    });
    g.bench_function("load_decode", |b| {
        b.iter(|| {
            let loaded = store.load_latest().expect("load").expect("a snapshot exists");
            let decoded = decode_state(&loaded.payload).expect("decodes");
            assert_eq!(decoded.items().count(), skus);
            black_box(decoded)
        })
    });
    g.finish();
}

criterion_group!(benches, bench_snapshot);
criterion_main!(benches);
