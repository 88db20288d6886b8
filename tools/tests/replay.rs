//! `replay --until` equals the state the generator (applying the same commands to
//! `ShardState`s) had at that LSN / time, including from a snapshot after the WAL's
//! first segments were removed.

mod common;

use common::*;
use std::collections::BTreeMap;
use stockd_engine::offline::encode_state;
use stockd_tools::testgen::{figures, Figures};

fn replay_json(dir: &std::path::Path, until: &str) -> serde_json::Value {
    let o = run(&["replay", dir.to_str().unwrap(), "--until", until, "--format", "json"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "replay --until {until} failed: {err}");
    serde_json::from_str(&out).unwrap()
}

#[test]
fn replay_until_each_lsn_matches_the_engine_state() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let g = generate(&dir, 150, 6, 64 << 20);
    let mut checked = 0;
    for shard in 0..2 {
        let entries: Vec<_> = g.log.iter().filter(|l| l.shard == shard).collect();
        assert!(entries.len() > 50, "shard {shard} has only {} records", entries.len());
        for e in entries {
            let json = replay_json(&dir, &e.lsn.to_string());
            assert_eq!(json["shards"][shard]["last_lsn"].as_u64(), Some(e.lsn));
            assert_eq!(&items_of(&json, Some(shard)), e.items_after.as_ref().unwrap(), "shard {shard} LSN {}", e.lsn);
            checked += 1;
        }
    }
    assert_eq!(checked, g.log.len());
}

#[test]
fn replay_until_a_time_applies_to_all_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let g = generate(&dir, 120, 6, 64 << 20);
    let last = g.log.last().unwrap().now;
    for t in [T0, T0 + (last - T0) / 3, T0 + (last - T0) / 2, last] {
        let mut expected: BTreeMap<String, Figures> = BTreeMap::new();
        for shard in 0..2 {
            if let Some(e) = g.log.iter().rfind(|l| l.shard == shard && l.now <= t) {
                expected.extend(e.items_after.clone().unwrap());
            }
        }
        let json = replay_json(&dir, &stockd_engine::time::format_millis(t));
        assert_eq!(items_of(&json, None), expected, "at {t}");
    }
    // --out FILE.csv writes CSV.
    let out = tmp.path().join("state.csv");
    let o = run(&["replay", dir.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o).1);
    let csv = std::fs::read_to_string(&out).unwrap();
    assert!(csv.starts_with("kind,sku,shard,on_hand,available,reserved,sold"), "{csv}");
    let items = csv.lines().filter(|l| l.starts_with("item,")).count();
    assert_eq!(items, g.states.iter().map(|s| s.items().count()).sum::<usize>());
}

#[test]
fn replay_starts_from_a_snapshot_when_early_segments_are_gone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    // Small segments so shard 0 has several; snapshot shard 0 at a mid LSN.
    let mut g = generate(&dir, 80, 6, 2048);
    let snap_lsn = g.log.iter().filter(|l| l.shard == 0).count() as u64;
    let snap_state = g.states[0].clone();
    for _ in 0..80 {
        g.step();
    }
    g.sync();
    let store = stockd_snapshots::SnapshotStore::open(&dir.join("shard-000/snapshots")).unwrap();
    store.write(snap_lsn, &encode_state(&snap_state)).unwrap();
    drop(store);
    // Remove shard 0's segments that end at or before the snapshot (as the engine does).
    let reader = stockd_wal::WalReader::open(&dir.join("shard-000/wal")).unwrap();
    let segs = reader.segments().to_vec();
    assert!(segs.len() >= 3, "want several segments, got {}", segs.len());
    let mut removed = 0;
    for w in segs.windows(2) {
        if w[1].first_lsn <= snap_lsn + 1 {
            std::fs::remove_file(&w[0].path).unwrap();
            removed += 1;
        }
    }
    assert!(removed > 0);
    let o = run(&["verify", dir.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains(&format!("from snapshot at LSN {snap_lsn}")), "{out}");
    for e in g.log.iter().filter(|l| l.shard == 0 && l.lsn >= snap_lsn) {
        let json = replay_json(&dir, &e.lsn.to_string());
        assert_eq!(&items_of(&json, Some(0)), e.items_after.as_ref().unwrap(), "LSN {}", e.lsn);
    }
    assert_eq!(figures(&snap_state), items_of(&replay_json(&dir, &snap_lsn.to_string()), Some(0)));
    // Before the snapshot the state can no longer be rebuilt: a clear error.
    let o = run(&["replay", dir.to_str().unwrap(), "--until", &(snap_lsn - 1).to_string()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("cannot rebuild the state at LSN"), "{}", text(&o).1);
}
