//! The WAL: encoding one record (bincode payload + CRC-32, what the shard does per
//! command), and append + group-commit sync in fsync mode at batch sizes 1, 16, 256
//! and 4096 records per fdatasync (in a temp dir on the machine's disk). The batch-1
//! figure is this disk's write + fdatasync latency.
//!
//! `wal_prealloc`: one record per fdatasync with `WalConfig::preallocate` 0 (the file
//! grows with every batch, so every fdatasync also commits the inode's new size, as
//! format version 2 did) against 256 KiB and 1 MiB of written zeros kept ahead of the
//! data (format version 3: most fdatasyncs cover data pages only).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::{Duration, Instant};
use stockd_benches::{order, sku, smoke, T0};
use stockd_engine::offline::{decode_record, encode_record};
use stockd_engine::{Command, ReservationId};
use stockd_wal::{Durability, WalConfig, WalWriter};

fn place_hold(i: u64) -> Command {
    Command::PlaceHold {
        // The text 6553f100-0000-0000-0000-{i:012x}, as before ids were typed.
        reservation_id: ReservationId::new(0x6553_f100 * 1000, 0, i),
        order_id: order("order", i),
        lines: vec![(sku(i as usize % 100_000), 1)],
        placement: Default::default(),
    }
}

fn bench_codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("wal_record");
    g.throughput(Throughput::Elements(1));
    if !smoke() {
        g.measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    }
    let cmd = place_hold(42);
    g.bench_function("encode_crc32", |b| {
        b.iter(|| {
            let (t, payload) = encode_record(T0, black_box(&cmd));
            black_box((t, crc32fast::hash(&payload)))
        })
    });
    let (t, payload) = encode_record(T0, &cmd);
    g.bench_function("crc32_verify_decode", |b| {
        b.iter(|| {
            let crc = crc32fast::hash(black_box(&payload));
            black_box((crc, decode_record(t, black_box(&payload)).expect("decodes")))
        })
    });
    g.finish();
}

fn bench_append_sync(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = WalConfig { durability: Durability::Fsync, segment_size: 8 * 1024 * 1024, ..WalConfig::default() };
    let (mut wal, _) = WalWriter::open(dir.path(), config).expect("open wal");
    let records: Vec<(u8, Vec<u8>)> = (0..4096).map(|i| encode_record(T0, &place_hold(i))).collect();
    eprintln!("wal bench: records of {} payload bytes in {}", records[0].1.len(), dir.path().display());
    let mut g = c.benchmark_group("wal_append_sync");
    if !smoke() {
        g.sample_size(20).measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    }
    for batch in [1usize, 16, 256, 4096] {
        g.throughput(Throughput::Elements(batch as u64));
        g.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, &batch| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    for (ty, payload) in &records[..batch] {
                        wal.append(*ty, payload).expect("append");
                    }
                    let lsn = wal.sync().expect("sync");
                    total += t.elapsed();
                    // Keep the disk footprint bounded: drop segments nothing needs.
                    if lsn % 65_536 < batch as u64 {
                        wal.remove_segments_before(lsn).expect("remove old segments");
                    }
                }
                total
            })
        });
    }
    g.finish();
}

fn bench_prealloc(c: &mut Criterion) {
    let (t, payload) = encode_record(T0, &place_hold(7));
    let mut g = c.benchmark_group("wal_prealloc");
    if !smoke() {
        g.sample_size(20).measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));
    }
    g.throughput(Throughput::Elements(1));
    for prealloc in [0u64, 256 * 1024, 1024 * 1024] {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = WalConfig { durability: Durability::Fsync, preallocate: prealloc, ..WalConfig::default() };
        let (mut wal, _) = WalWriter::open(dir.path(), config).expect("open wal");
        g.bench_with_input(BenchmarkId::new("append_sync_1", prealloc), &prealloc, |b, _| {
            b.iter_custom(|iters| {
                let t0 = Instant::now();
                for _ in 0..iters {
                    wal.append(t, &payload).expect("append");
                    let lsn = wal.sync().expect("sync");
                    if lsn % 65_536 == 0 {
                        wal.remove_segments_before(lsn).expect("remove old segments");
                    }
                }
                t0.elapsed()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_codec, bench_append_sync, bench_prealloc);
criterion_main!(benches);
