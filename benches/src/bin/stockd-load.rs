//! stockd-load: drives a flash sale against an embedded engine and reports throughput,
//! latency percentiles (hdrhistogram) and the group-commit batch size.
//!
//! `flash`: one hot SKU with S units; C client threads each reserve 1 unit for a fresh
//! orderId until N attempts are made. Exactly min(S, N) must succeed: anything else is
//! printed as OVERSOLD / UNDERSOLD and exits non-zero.

use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use stockd_engine::*;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Target {
    /// In-process engine with a WAL (fsync per batch) in --data-dir or a temp dir.
    Embedded,
    /// In-process engine with a WAL but no fsync (--durability none).
    EmbeddedNosync,
    /// In-process engine with no WAL at all.
    Memory,
}

#[derive(Parser, Debug)]
#[command(name = "stockd-load", about = "Flash-sale load generator for stockd")]
struct Args {
    #[arg(long, value_enum, default_value = "embedded")]
    target: Target,
    /// Units of the hot SKU in stock (S).
    #[arg(long, default_value_t = 100_000)]
    stock: u64,
    /// Reservation attempts in all (N).
    #[arg(long, default_value_t = 120_000)]
    attempts: u64,
    /// Concurrent clients (C).
    #[arg(long, default_value_t = 64)]
    clients: u64,
    #[arg(long, default_value_t = 4)]
    shards: usize,
    /// Data directory (default: a fresh temp dir, removed afterwards).
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
    /// Write the full latency distribution in HdrHistogram's text format.
    #[arg(long)]
    hgrm: Option<std::path::PathBuf>,
}

fn main() {
    let args = Args::parse();
    if args.clients == 0 || args.attempts == 0 {
        eprintln!("stockd-load: --clients and --attempts must be at least 1");
        std::process::exit(2);
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = args.data_dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let config = EngineConfig { shards: args.shards, ..EngineConfig::default() };
    let engine = match args.target {
        Target::Memory => Engine::in_memory(config).expect("engine"),
        Target::Embedded | Target::EmbeddedNosync => {
            let durability = if matches!(args.target, Target::Embedded) { Durability::Fsync } else { Durability::None };
            let storage = StorageConfig { durability, ..StorageConfig::default() };
            match Engine::open(&dir, config, storage) {
                Ok((engine, _)) => engine,
                Err(e) => {
                    eprintln!("stockd-load: cannot open {}: {e}", dir.display());
                    std::process::exit(1);
                }
            }
        }
    };
    let hot = Sku::parse("flash-hot", "sku").unwrap();
    engine
        .blocking()
        .set_item(SetItem {
            sku: hot.clone(),
            on_hand: args.stock,
            low_stock_threshold: None,
            max_per_order: None,
            expected_version: None,
        })
        .expect("stock the hot SKU");

    let next = Arc::new(AtomicU64::new(0));
    let run_id = std::process::id();
    let started = Instant::now();
    let workers: Vec<_> = (0..args.clients)
        .map(|_| {
            let engine = engine.clone();
            let next = next.clone();
            let hot = hot.clone();
            let attempts = args.attempts;
            std::thread::spawn(move || {
                let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
                let (mut ok, mut insufficient, mut other) = (0u64, 0u64, 0u64);
                let e = engine.blocking();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= attempts {
                        break;
                    }
                    let req = ReserveRequest {
                        order_id: OrderId::parse(&format!("load-{run_id}-{i}"), "orderId").unwrap(),
                        lines: vec![(hot.clone(), 1)],
                        ttl_secs: Some(3600),
                        metadata: None,
                    };
                    let t = Instant::now();
                    let r = e.reserve(req);
                    hist.saturating_record(t.elapsed().as_micros() as u64);
                    match r {
                        Ok(_) => ok += 1,
                        Err(EngineError::InsufficientInventory { .. }) => insufficient += 1,
                        Err(_) => other += 1,
                    }
                }
                (hist, ok, insufficient, other)
            })
        })
        .collect();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let (mut ok, mut insufficient, mut other) = (0, 0, 0);
    for w in workers {
        let (h, o, i, x) = w.join().expect("client thread");
        hist.add(h).unwrap();
        ok += o;
        insufficient += i;
        other += x;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let status = engine.shard_status();
    let logged: u64 = status.iter().map(|s| s.logged.load(Ordering::Relaxed)).sum();
    let syncs: u64 = status.iter().map(|s| s.syncs.load(Ordering::Relaxed)).sum();
    let item = engine.blocking().get_item(hot).expect("hot item");
    engine.shutdown();

    let expected = args.stock.min(args.attempts);
    let verdict = if ok > expected || item.reserved > args.stock {
        "OVERSOLD"
    } else if ok < expected {
        "UNDERSOLD"
    } else {
        "OK"
    };
    let q = |p: f64| hist.value_at_quantile(p);
    println!(
        "target {:?}  shards {}  clients {}  attempts {}  stock {}",
        args.target, args.shards, args.clients, args.attempts, args.stock
    );
    println!(
        "reserve: {ok} ok, {insufficient} insufficient, {other} other errors in {elapsed:.2} s = {:.0} attempts/s",
        args.attempts as f64 / elapsed
    );
    println!("latency µs: p50 {}  p99 {}  p99.9 {}  max {}", q(0.5), q(0.99), q(0.999), hist.max());
    println!(
        "group commit: {logged} records in {syncs} syncs = {:.1} records/sync",
        logged as f64 / syncs.max(1) as f64
    );
    println!("verdict: {verdict} (expected exactly {expected} successes)");
    println!(
        "{{\"target\":\"{:?}\",\"shards\":{},\"clients\":{},\"attempts\":{},\"ok\":{ok},\"insufficient\":{insufficient},\"other\":{other},\"seconds\":{elapsed:.3},\"throughput\":{:.0},\"p50_us\":{},\"p99_us\":{},\"p999_us\":{},\"max_us\":{},\"records_per_sync\":{:.2},\"verdict\":\"{verdict}\"}}",
        args.target,
        args.shards,
        args.clients,
        args.attempts,
        args.attempts as f64 / elapsed,
        q(0.5),
        q(0.99),
        q(0.999),
        hist.max(),
        logged as f64 / syncs.max(1) as f64
    );
    if let Some(path) = &args.hgrm {
        if let Err(e) = write_hgrm(&hist, path) {
            eprintln!("stockd-load: cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
    }
    if verdict != "OK" {
        std::process::exit(1);
    }
}

/// HdrHistogram's percentile-distribution text format (as `HistogramLogProcessor`
/// and the online plotter read it), values in microseconds.
fn write_hgrm(hist: &Histogram<u64>, path: &std::path::Path) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(f, "{:>12} {:>14} {:>10} {:>14}\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)")?;
    for v in hist.iter_quantiles(1) {
        let p = v.quantile_iterated_to();
        let inv = if p < 1.0 { 1.0 / (1.0 - p) } else { f64::INFINITY };
        writeln!(
            f,
            "{:>12.3} {:>14.12} {:>10} {:>14.2}",
            v.value_iterated_to() as f64,
            p,
            v.count_since_last_iteration(),
            inv
        )?;
    }
    writeln!(
        f,
        "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]\n#[Max     = {:>12.3}, Total count    = {:>12}]",
        hist.mean(),
        hist.stdev(),
        hist.max() as f64,
        hist.len()
    )?;
    Ok(())
}
