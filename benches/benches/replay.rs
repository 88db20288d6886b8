//! Recovery speed. `replay`: read a WAL of `STOCKD_BENCH_REPLAY_RECORDS` records
//! (default 1,000,000; 10,000 in smoke mode) with `WalReader` (every CRC verified),
//! `decode_record` each and `ShardState::apply` it to a fresh state. `engine_open`:
//! `Engine::open` on a one-shard data directory whose WAL holds
//! `STOCKD_BENCH_OPEN_RECORDS` records (default 1,000,000; 10,000 in smoke mode;
//! set it to 10000000 for the 10 M-record figure, which takes minutes)
//! and no snapshot: the full recovery a restart does. The log is the command stream
//! of `stockd_benches::log_commands` (items, then reserve / commit / release cycles).
//! `engine_open_snapshots`: the same on a 4-shard directory laid out as the default
//! snapshot policy leaves it, at its worst (see the function).

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};
use stockd_benches::{size, smoke, write_data_dir, write_log};
use stockd_engine::offline::decode_record;
use stockd_engine::{Durability, Engine, EngineConfig, RecoveryReport, ShardState, StorageConfig};
use stockd_wal::WalReader;

const ITEMS: usize = 10_000;

fn bench_replay(c: &mut Criterion) {
    let records = size("STOCKD_BENCH_REPLAY_RECORDS", 1_000_000, 10_000) as u64;
    let dir = tempfile::tempdir().expect("temp dir");
    let t = Instant::now();
    let last = write_log(dir.path(), ITEMS.min(records as usize / 2), records);
    assert_eq!(last, records);
    eprintln!("replay bench: wrote {records} records in {:.2} s", t.elapsed().as_secs_f64());
    let mut g = c.benchmark_group(format!("replay/{records}_records"));
    g.throughput(Throughput::Elements(records));
    if !smoke() {
        g.sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .measurement_time(Duration::from_secs(8))
            .warm_up_time(Duration::from_secs(1));
    }
    g.bench_function("read_verify", |b| {
        b.iter(|| {
            let reader = WalReader::open(dir.path()).expect("open reader");
            let mut n = 0u64;
            for r in reader.iter_from(1) {
                black_box(r.expect("record"));
                n += 1;
            }
            assert_eq!(n, records);
        })
    });
    g.bench_function("read_decode_apply", |b| {
        b.iter(|| {
            let reader = WalReader::open(dir.path()).expect("open reader");
            let mut state = ShardState::new(0);
            for r in reader.iter_from(1) {
                let r = r.expect("record");
                let rec = decode_record(r.record_type, &r.payload).expect("decode");
                state.apply(&rec.command, rec.now).expect("replays");
            }
            black_box(state)
        })
    });
    g.finish();
}

fn bench_open(c: &mut Criterion) {
    let records = size("STOCKD_BENCH_OPEN_RECORDS", 1_000_000, 10_000) as u64;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = || EngineConfig { shards: 1, expiry_interval: None, ..EngineConfig::default() };
    // Never snapshot, so every open replays the whole log.
    let storage = || StorageConfig {
        durability: Durability::None,
        snapshot_every_records: u64::MAX,
        snapshot_every: Duration::from_secs(1 << 30),
        ..StorageConfig::default()
    };
    // Lay out the data directory (manifest, shard-000/), then fill its WAL directly.
    let (engine, _) = Engine::open(dir.path(), config(), storage()).expect("create data dir");
    engine.shutdown();
    drop(engine);
    let t = Instant::now();
    write_log(&stockd_engine::DataDir::new(dir.path()).shard_wal(0), ITEMS.min(records as usize / 2), records);
    eprintln!("engine_open bench: wrote {records} records in {:.2} s", t.elapsed().as_secs_f64());
    let group = format!("engine_open/{records}_records");
    bench_opens(c, &group, Some(records), dir.path(), config, storage, |report| {
        let replayed: u64 = report.shards.iter().map(|s| s.records_replayed).sum();
        assert!(replayed >= records, "replayed {replayed} of {records}");
    });
}

/// Times `Engine::open` (then shuts it down) on `dir`, checking each recovery report.
fn bench_opens(
    c: &mut Criterion,
    group: &str,
    elements: Option<u64>,
    dir: &Path,
    config: impl Fn() -> EngineConfig,
    storage: impl Fn() -> StorageConfig,
    check: impl Fn(&RecoveryReport),
) {
    let mut g = c.benchmark_group(group);
    if let Some(n) = elements {
        g.throughput(Throughput::Elements(n));
    }
    if !smoke() {
        g.sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .measurement_time(Duration::from_secs(10))
            .warm_up_time(Duration::from_secs(1));
    }
    g.bench_function("open", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                let (engine, report) = Engine::open(dir, config(), storage()).expect("open");
                total += t.elapsed();
                check(&report);
                engine.shutdown();
            }
            total
        })
    });
    g.finish();
}

/// `Engine::open` of a 4-shard data directory holding `STOCKD_BENCH_OPEN_SNAP_RECORDS`
/// records in all (default 2,000,000; 10,000 in smoke mode; 10000000 for the issue's
/// figure) under the default snapshot policy, at its worst: every shard's newest
/// snapshot is 199,999 records behind the end of its WAL, so recovery loads four
/// snapshots and replays almost 800,000 records (on one thread per core).
fn bench_open_with_snapshots(c: &mut Criterion) {
    const SHARDS: usize = 4;
    let records = size("STOCKD_BENCH_OPEN_SNAP_RECORDS", 2_000_000, 10_000) as u64;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = || EngineConfig { shards: SHARDS, expiry_interval: None, ..EngineConfig::default() };
    let storage = || StorageConfig { durability: Durability::None, ..StorageConfig::default() };
    let (engine, _) = Engine::open(dir.path(), config(), storage()).expect("create data dir");
    engine.shutdown();
    drop(engine);
    let t = Instant::now();
    let every = StorageConfig::default().snapshot_every_records;
    let tail = write_data_dir(dir.path(), SHARDS, ITEMS / SHARDS, records / SHARDS as u64, every);
    eprintln!(
        "engine_open_snapshots bench: wrote {records} records, {tail} after the snapshots, in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let group = format!("engine_open_snapshots/{records}_records_{SHARDS}_shards");
    bench_opens(c, &group, None, dir.path(), config, storage, |report| {
        let replayed: u64 = report.shards.iter().map(|s| s.records_replayed).sum();
        assert!(replayed >= tail, "replayed {replayed}, expected at least {tail}");
        assert!(report.shards.iter().all(|s| s.snapshot_lsn.is_some()), "every shard starts from a snapshot");
    });
}

criterion_group!(benches, bench_replay, bench_open, bench_open_with_snapshots);
criterion_main!(benches);
