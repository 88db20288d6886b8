//! Generates a stockd data directory with a random but engine-faithful workload
//! (see `stockd_tools::testgen`), for trying and benchmarking `stockd-wal`:
//!
//! `cargo run --release -p stockd-tools --example gen_wal -- DIR RECORDS [SHARDS] [SKUS] [locations]`
//!
//! `locations`: a warehouse table, stock at several warehouses, transfers, receipts
//! and reservations with placements (`Gen::with_locations`).
use std::path::PathBuf;
use stockd_tools::testgen::Gen;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: gen_wal DIR RECORDS [SHARDS=2] [SKUS=1000] [locations]");
        std::process::exit(2);
    }
    let dir = PathBuf::from(&args[1]);
    let records: usize = args[2].parse().expect("RECORDS");
    let shards: usize = args.get(3).map_or(2, |s| s.parse().expect("SHARDS"));
    let skus: usize = args.get(4).map_or(1000, |s| s.parse().expect("SKUS"));
    let locations = match args.get(5).map(String::as_str) {
        None => false,
        Some("locations") => true,
        Some(other) => panic!("unknown option {other:?} (expected `locations`)"),
    };
    let started = std::time::Instant::now();
    let mut g = Gen::create(&dir, shards, 64 * 1024 * 1024, 42, 1_767_225_600_000);
    g.keep_log = false;
    g.track = false;
    g.syncs_every = 4096;
    if locations {
        g.with_locations(stockd_tools::testgen::warehouses());
    }
    for i in 0..skus {
        g.set_item(&format!("SKU-{i:05}"), 1000);
    }
    let mut written = 0usize;
    while written < records {
        g.step();
        written = g.logged();
    }
    g.sync();
    eprintln!("wrote {written} records in {:.1} s to {}", started.elapsed().as_secs_f64(), dir.display());
}
