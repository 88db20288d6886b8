//! stockd-load: drives a flash sale or a mixed load against the embedded engine,
//! stockd's HTTP server, Redis or PostgreSQL, and reports throughput, latency
//! percentiles (hdrhistogram), error counts by kind and a JSON line.
//!
//! `flash`: one hot SKU with S units; C client threads each reserve 1 unit for a fresh
//! orderId until N attempts are made. Exactly min(S, N) must succeed: anything else is
//! printed as OVERSOLD / UNDERSOLD and exits non-zero.
//!
//! `mixed`: K SKUs (`--skus`) with S units each; N operations in all, each client
//! choosing reserve 60% / commit 30% / release 10% (commit and release settle the
//! client's own earlier successful reservations, oldest first; with none pending it
//! reserves). Afterwards every item is read back over the target's API and checked:
//! onHand = available + reserved, sold + onHand = S, and in total sold = the
//! acknowledged commits, reserved = the reservations still held. A violation exits 1.
//!
//! Every run uses fresh SKU names and orderIds (suffixed with a run id), so runs
//! against the same server or peer do not disturb each other.

mod clients;
mod replicated;
mod sqlite;

use clap::{Parser, ValueEnum};
use clients::{Client, Embedded, Figures, Http, Postgres, Redis, INSUFFICIENT};
use hdrhistogram::Histogram;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Instant;
use stockd_engine::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Target {
    /// In-process engine with a WAL (fsync per batch) in --data-dir or a temp dir.
    Embedded,
    /// In-process engine with a WAL but no fsync (--durability none).
    EmbeddedNosync,
    /// In-process engine with no WAL at all.
    Memory,
    /// A running `stockd serve` at --url (keep-alive HTTP/1.1, one connection per client).
    Http,
    /// A Redis server at --url (Lua scripts by EVALSHA).
    Redis,
    /// A PostgreSQL server at --url (conditional UPDATE + INSERT, one transaction).
    Postgres,
    /// SQLite (bundled), a database file in --data-dir or a temp dir: WAL journal,
    /// synchronous=FULL, one connection per client.
    Sqlite,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Workload {
    Flash,
    Mixed,
}

#[derive(Parser, Debug)]
#[command(name = "stockd-load", about = "Flash-sale and mixed load generator for stockd and its peers")]
struct Args {
    #[arg(long, value_enum, default_value = "embedded")]
    target: Target,
    #[arg(long, value_enum, default_value = "flash")]
    workload: Workload,
    /// Units in stock: of the hot SKU (flash) or of each SKU (mixed) (S).
    #[arg(long, default_value_t = 100_000)]
    stock: u64,
    /// Reservation attempts (flash) or operations (mixed) in all (N).
    #[arg(long, default_value_t = 120_000)]
    attempts: u64,
    /// Concurrent clients (C).
    #[arg(long, default_value_t = 64)]
    clients: u64,
    /// Connections for the network targets: one client thread per connection
    /// (overrides --clients).
    #[arg(long)]
    connections: Option<u64>,
    /// Flash only: each client submits this many reservations at once (the
    /// embedded engine's `reserve_many`: a batch-submitting client). 1 = one at a time.
    #[arg(long, default_value_t = 1)]
    batch: u64,
    /// SKUs of the mixed workload (K).
    #[arg(long, default_value_t = 1_000)]
    skus: u64,
    /// Server URL: http://HOST:PORT, redis://HOST:PORT, postgres://USER@HOST:PORT/DB.
    #[arg(long)]
    url: Option<String>,
    /// Shards of the embedded targets.
    #[arg(long, default_value_t = 4)]
    shards: usize,
    /// Embedded target only: run the engine as the leader of a replicated node
    /// (`stockd serve --replication kafka`) on these Kafka brokers, with fresh topics
    /// named after the run; the load starts once it leads.
    #[arg(long, value_name = "BROKERS")]
    replicate_to: Option<String>,
    /// Data directory (default: a fresh temp dir, removed afterwards).
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
    /// Write the full latency distribution in HdrHistogram's text format.
    #[arg(long)]
    hgrm: Option<std::path::PathBuf>,
}

fn fail(msg: impl std::fmt::Display, code: i32) -> ! {
    eprintln!("stockd-load: {msg}");
    std::process::exit(code)
}

/// What one client thread did.
#[derive(Default)]
struct Tally {
    reserve_ok: u64,
    insufficient: u64,
    commit_ok: u64,
    release_ok: u64,
    /// Errors other than INSUFFICIENT_INVENTORY, by "op:CODE".
    errors: BTreeMap<String, u64>,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.reserve_ok += other.reserve_ok;
        self.insufficient += other.insufficient;
        self.commit_ok += other.commit_ok;
        self.release_ok += other.release_ok;
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
    }

    fn error(&mut self, op: &str, code: String) {
        // Keep the kind short: the code before any detail.
        let kind = code.split(':').next().unwrap_or(&code).to_owned();
        *self.errors.entry(format!("{op}:{kind}")).or_default() += 1;
    }

    fn other(&self) -> u64 {
        self.errors.values().sum()
    }
}

fn new_hist() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

/// A cheap per-thread PRNG (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn main() {
    let mut args = Args::parse();
    if let Some(c) = args.connections {
        args.clients = c;
    }
    if args.clients == 0 || args.attempts == 0 || args.skus == 0 {
        fail("--clients, --attempts and --skus must be at least 1", 2);
    }
    if args.batch == 0 || (args.batch > 1 && args.workload != Workload::Flash) {
        fail("--batch must be at least 1, and above 1 only with --workload flash", 2);
    }
    if args.replicate_to.is_some() && args.target != Target::Embedded {
        fail("--replicate-to works with --target embedded only", 2);
    }
    let network = matches!(args.target, Target::Http | Target::Redis | Target::Postgres);
    let url = match (network, &args.url) {
        (true, Some(u)) => u.clone(),
        (true, None) => fail("--url is required for the http, redis and postgres targets", 2),
        (false, _) => String::new(),
    };

    // ---- the embedded engine, if any ----
    let run_id = format!(
        "{}x{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() % 1_000_000_000)
    );
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = args.data_dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let config = EngineConfig { shards: args.shards, ..EngineConfig::default() };
    // Kept until the end of the run: its runtime carries the node's replication.
    let replicated_node = args.replicate_to.as_deref().map(|brokers| {
        replicated::open(brokers, &run_id, &dir, config.clone())
            .unwrap_or_else(|e| fail(format_args!("replicated engine on {brokers}: {e}"), 1))
    });
    let engine = match args.target {
        Target::Memory => Some(Engine::in_memory(config).expect("engine")),
        Target::Embedded if replicated_node.is_some() => replicated_node.as_ref().map(|r| r.engine.clone()),
        Target::Embedded | Target::EmbeddedNosync => {
            let durability = if args.target == Target::Embedded { Durability::Fsync } else { Durability::None };
            let storage = StorageConfig { durability, ..StorageConfig::default() };
            match Engine::open(&dir, config, storage) {
                Ok((engine, _)) => Some(engine),
                Err(e) => fail(format_args!("cannot open {}: {e}", dir.display()), 1),
            }
        }
        _ => None,
    };
    let connect = |schema: bool| -> Result<Box<dyn Client>, String> {
        Ok(match args.target {
            Target::Http => Box::new(Http::connect(&url)?),
            Target::Redis => Box::new(Redis::connect(&url)?),
            Target::Postgres => Box::new(Postgres::connect(&url, schema)?),
            Target::Sqlite => Box::new(sqlite::Sqlite::open(&dir.join("stockd-load.sqlite"), schema)?),
            _ => Box::new(Embedded::new(engine.clone().expect("embedded engine"))),
        })
    };

    // ---- stock ----
    let skus: Vec<String> = match args.workload {
        Workload::Flash => vec![format!("flash-hot-{run_id}")],
        Workload::Mixed => (0..args.skus).map(|k| format!("mixed-{run_id}-{k}")).collect(),
    };
    let mut setup = connect(true).unwrap_or_else(|e| fail(format_args!("cannot connect to {url}: {e}"), 2));
    for sku in &skus {
        if let Err(e) = setup.set_item(sku, args.stock) {
            fail(format_args!("cannot stock {sku}: {e}"), 1);
        }
    }

    // ---- the load ----
    let next = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(args.clients as usize + 1));
    let skus = Arc::new(skus);
    let workers: Vec<_> = (0..args.clients)
        .map(|c| {
            let client = connect(false);
            let next = next.clone();
            let barrier = barrier.clone();
            let skus = skus.clone();
            let run_id = run_id.clone();
            let (attempts, workload, batch) = (args.attempts, args.workload, args.batch);
            std::thread::spawn(move || {
                let mut client = match client {
                    Ok(c) => c,
                    Err(e) => {
                        barrier.wait();
                        return Err(e);
                    }
                };
                let mut hist = new_hist();
                let mut tally = Tally::default();
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (c + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
                let mut held: VecDeque<(String, usize)> = VecDeque::new();
                let prefix = format!("load-{run_id}-");
                barrier.wait();
                // One loop per mode: batches of `batch`, or one reservation at a time.
                loop {
                    if batch == 1 {
                        break;
                    }
                    let first = next.fetch_add(batch, Ordering::Relaxed);
                    if first >= attempts {
                        break;
                    }
                    let t = Instant::now();
                    let answers = client.reserve_batch(&prefix, first..(first + batch).min(attempts), &skus[0], 1);
                    // Each reservation of the batch waited as long as the whole batch.
                    hist.saturating_record_n(t.elapsed().as_micros() as u64, answers.len() as u64);
                    for r in answers {
                        match r {
                            Ok(()) => tally.reserve_ok += 1,
                            Err(code) if code == INSUFFICIENT => tally.insufficient += 1,
                            Err(code) => tally.error("reserve", code),
                        }
                    }
                }
                loop {
                    if batch > 1 {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= attempts {
                        break;
                    }
                    let roll = if workload == Workload::Flash { 0 } else { rng.next() % 100 };
                    let t = Instant::now();
                    if roll < 60 || held.is_empty() {
                        let k = if skus.len() == 1 { 0 } else { (rng.next() % skus.len() as u64) as usize };
                        let order_id = format!("load-{run_id}-{i}");
                        let r = client.reserve(&order_id, &skus[k], 1);
                        hist.saturating_record(t.elapsed().as_micros() as u64);
                        match r {
                            Ok(()) => {
                                tally.reserve_ok += 1;
                                if workload == Workload::Mixed {
                                    held.push_back((order_id, k));
                                }
                            }
                            Err(code) if code == INSUFFICIENT => tally.insufficient += 1,
                            Err(code) => tally.error("reserve", code),
                        }
                    } else {
                        let (order_id, k) = held.pop_front().expect("non-empty");
                        let commit = roll < 90;
                        let r = if commit {
                            client.commit(&order_id, &skus[k])
                        } else {
                            client.release(&order_id, &skus[k])
                        };
                        hist.saturating_record(t.elapsed().as_micros() as u64);
                        match (r, commit) {
                            (Ok(()), true) => tally.commit_ok += 1,
                            (Ok(()), false) => tally.release_ok += 1,
                            (Err(code), true) => tally.error("commit", code),
                            (Err(code), false) => tally.error("release", code),
                        }
                    }
                }
                Ok((hist, tally))
            })
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    let mut hist = new_hist();
    let mut tally = Tally::default();
    let mut connect_errors = Vec::new();
    for w in workers {
        match w.join().expect("client thread") {
            Ok((h, t)) => {
                hist.add(h).expect("same histogram bounds");
                tally.add(t);
            }
            Err(e) => connect_errors.push(e),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(e) = connect_errors.first() {
        fail(format_args!("{} of {} clients could not connect: {e}", connect_errors.len(), args.clients), 2);
    }

    // ---- read back and check ----
    let mut violations = Vec::new();
    let mut totals = Figures { on_hand: 0, available: 0, reserved: 0, sold: 0 };
    for sku in skus.iter() {
        match setup.get_item(sku) {
            Ok(f) => {
                if f.on_hand != f.available + f.reserved {
                    violations.push(format!(
                        "{sku}: onHand {} != available {} + reserved {}",
                        f.on_hand, f.available, f.reserved
                    ));
                }
                if f.sold + f.on_hand != args.stock {
                    violations.push(format!("{sku}: sold {} + onHand {} != initial {}", f.sold, f.on_hand, args.stock));
                }
                totals.on_hand += f.on_hand;
                totals.available += f.available;
                totals.reserved += f.reserved;
                totals.sold += f.sold;
            }
            Err(e) => violations.push(format!("{sku}: cannot read back: {e}")),
        }
    }
    if violations.is_empty() {
        if totals.sold != tally.commit_ok {
            violations.push(format!("sold {} in all but {} commits acknowledged", totals.sold, tally.commit_ok));
        }
        let still_held = tally.reserve_ok - tally.commit_ok - tally.release_ok;
        if totals.reserved != still_held {
            violations.push(format!("reserved {} in all but {still_held} reservations still held", totals.reserved));
        }
    }
    let mut logged = 0;
    let mut syncs = 0;
    if let Some(engine) = &engine {
        let status = engine.shard_status();
        logged = status.iter().map(|s| s.logged.load(Ordering::Relaxed)).sum();
        syncs = status.iter().map(|s| s.syncs.load(Ordering::Relaxed)).sum();
        if let Err(e) = engine.blocking().check_invariants() {
            violations.push(format!("engine invariants: {e}"));
        }
        engine.shutdown();
    }

    // ---- report ----
    let (ok, insufficient, other) = (tally.reserve_ok, tally.insufficient, tally.other());
    let expected = args.stock.min(args.attempts);
    let verdict = match args.workload {
        Workload::Flash if ok > expected || totals.reserved > args.stock => "OVERSOLD",
        Workload::Flash if ok < expected => "UNDERSOLD",
        _ if !violations.is_empty() => "VIOLATION",
        _ => "OK",
    };
    let q = |p: f64| hist.value_at_quantile(p);
    let ok_per_s = ok as f64 / elapsed;
    let ops_per_s = args.attempts as f64 / elapsed;
    println!(
        "target {:?}  workload {:?}  shards {}  clients {}  attempts {}  stock {}  batch {}",
        args.target, args.workload, args.shards, args.clients, args.attempts, args.stock, args.batch
    );
    println!(
        "reserve: {ok} ok, {insufficient} insufficient, {other} other errors in {elapsed:.2} s = {ops_per_s:.0} attempts/s"
    );
    println!("successful reservations/s: {ok_per_s:.0}");
    if args.workload == Workload::Mixed {
        println!(
            "mixed: {} ops over {} SKUs = {ops_per_s:.0} ops/s; commits {} ok, releases {} ok",
            args.attempts, args.skus, tally.commit_ok, tally.release_ok
        );
    }
    println!("latency µs: p50 {}  p99 {}  p99.9 {}  max {}", q(0.5), q(0.99), q(0.999), hist.max());
    let errors: Vec<String> = tally.errors.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("errors: {}", if errors.is_empty() { "none".to_owned() } else { errors.join(" ") });
    if engine.is_some() {
        println!(
            "group commit: {logged} records in {syncs} syncs = {:.1} records/sync",
            logged as f64 / syncs.max(1) as f64
        );
    }
    for v in &violations {
        println!("INVARIANT VIOLATED: {v}");
    }
    if args.workload == Workload::Mixed {
        println!(
            "invariants: {} ({} SKUs read back: onHand {} available {} reserved {} sold {})",
            if violations.is_empty() { "OK" } else { "VIOLATED" },
            skus.len(),
            totals.on_hand,
            totals.available,
            totals.reserved,
            totals.sold
        );
        println!("verdict: {verdict}");
    } else {
        println!("verdict: {verdict} (expected exactly {expected} successes)");
    }
    let errors_json: Vec<String> = tally.errors.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
    println!(
        "{{\"target\":\"{:?}\",\"workload\":\"{:?}\",\"shards\":{},\"clients\":{},\"batch\":{},\"attempts\":{},\"stock\":{},\"skus\":{},\"ok\":{ok},\"insufficient\":{insufficient},\"other\":{other},\"commits\":{},\"releases\":{},\"errors\":{{{}}},\"seconds\":{elapsed:.3},\"throughput\":{ops_per_s:.0},\"ok_per_s\":{ok_per_s:.0},\"p50_us\":{},\"p99_us\":{},\"p999_us\":{},\"max_us\":{},\"records_per_sync\":{:.2},\"violations\":{},\"verdict\":\"{verdict}\"}}",
        args.target,
        args.workload,
        args.shards,
        args.clients,
        args.batch,
        args.attempts,
        args.stock,
        skus.len(),
        tally.commit_ok,
        tally.release_ok,
        errors_json.join(","),
        q(0.5),
        q(0.99),
        q(0.999),
        hist.max(),
        logged as f64 / syncs.max(1) as f64,
        violations.len()
    );
    if let Some(path) = &args.hgrm {
        if let Err(e) = write_hgrm(&hist, path) {
            fail(format_args!("cannot write {}: {e}", path.display()), 1);
        }
    }
    if verdict != "OK" || (args.workload == Workload::Flash && !violations.is_empty()) {
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
