//! The tool never modifies a file, and runs while a writer appends.

mod common;

use common::*;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[test]
fn no_subcommand_modifies_any_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let g = generate(&dir, 150, 6, 4096);
    let mut snap = g.states[1].clone();
    snap.apply(&stockd_engine::Command::ExpireDue { retention_ms: 1 }, g.now).unwrap();
    // A snapshot, a leftover temp file and a torn tail: what a writer would clean up.
    let n = g.log.iter().filter(|l| l.shard == 1).count() as u64;
    stockd_snapshots::SnapshotStore::open(&dir.join("shard-001/snapshots"))
        .unwrap()
        .write(n, &stockd_engine::offline::encode_state(&g.states[1]))
        .unwrap();
    std::fs::write(dir.join("shard-001/snapshots/snapshot-00000000000000000001.snap.tmp"), b"partial").unwrap();
    let seg = stockd_wal::WalReader::open(&dir.join("shard-000/wal")).unwrap().segments().last().unwrap().path.clone();
    std::fs::OpenOptions::new().append(true).open(&seg).unwrap().write_all(&[7, 0, 0]).unwrap();
    let before = snapshot_files(&dir);
    let d = dir.to_str().unwrap();
    let out = tmp.path().join("out.json");
    for args in [
        vec!["inspect", d],
        vec!["inspect", d, "--records", "--format", "csv"],
        vec!["verify", d],
        vec!["verify", d, "--strict"],
        vec!["replay", d, "--out", out.to_str().unwrap()],
        vec!["replay", d, "--until", "2026-01-01T00:00:05Z"],
        vec!["history", d, "--sku", "SKU-1"],
        vec!["stats", d, "--format", "json"],
    ] {
        let o = run(&args);
        assert!(o.status.code().is_some_and(|c| c <= 1), "{args:?}: {:?}", text(&o));
    }
    assert_eq!(snapshot_files(&dir), before, "a file was created, changed or removed");
}

#[test]
fn runs_while_a_writer_appends() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut g = generate(&dir, 50, 6, 8192);
    g.keep_log = false;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut steps: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                g.step();
                steps += 1;
                if steps.checked_rem(50) == Some(0) {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
            g.sync();
            steps
        })
    };
    let d = dir.to_str().unwrap();
    let started = std::time::Instant::now();
    let mut round = 0;
    while started.elapsed() < std::time::Duration::from_secs(4) {
        round += 1;
        for args in [vec!["verify", d], vec!["replay", d, "--format", "json"], vec!["stats", d], vec!["inspect", d]] {
            let o = run(&args);
            assert!(o.status.success(), "round {round} {args:?}: {:?}", text(&o));
        }
    }
    stop.store(true, Ordering::Relaxed);
    let steps = writer.join().unwrap();
    assert!(steps > 1000 && round > 3, "steps {steps}, rounds {round}");
    let o = run(&["verify", d, "--strict"]);
    assert!(o.status.success(), "{:?}", text(&o));
}
