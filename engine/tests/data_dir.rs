//! Directory-entry durability of the data directory (issue 13, defect 9, engine part):
//! opening a new data directory syncs the parent of every directory and file the
//! engine relies on (the manifest in DATA; `shard-NNN` in DATA; `wal/` and
//! `snapshots/` in each shard directory) through `durable::data_dir`, and a reopen
//! (nothing new to create) syncs nothing more and finds everything.
//!
//! One test in this binary: it reads a process-wide counter.

use std::sync::Arc;
use stockd_engine::offline::dir_syncs;
use stockd_engine::*;

fn config() -> EngineConfig {
    EngineConfig {
        shards: 2,
        expiry_interval: None,
        clock: Arc::new(ManualClock::new(1_700_000_000_000)),
        ..Default::default()
    }
}

#[test]
fn a_new_data_dir_syncs_every_entry_it_creates_and_reopens() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    let before = dir_syncs();
    let (engine, _) = Engine::open(&dir, config(), StorageConfig::default()).unwrap();
    // DATA in its parent, the manifest in DATA, and per shard: shard-NNN in DATA,
    // snapshots/ and wal/ in shard-NNN.
    assert_eq!(dir_syncs() - before, 1 + 1 + 2 * 3);
    for shard in 0..2 {
        assert!(DataDir::new(&dir).shard_wal(shard).is_dir());
        assert!(DataDir::new(&dir).shard_snapshots(shard).is_dir());
    }
    let manifest = DataDir::new(&dir).manifest();
    assert!(!manifest.with_extension("manifest.tmp").exists());
    assert!(std::fs::read_to_string(manifest).unwrap().contains("shards 2"));
    engine
        .blocking()
        .set_item(SetItem {
            sku: Sku::parse("A", "sku").unwrap(),
            on_hand: 5,
            low_stock_threshold: None,
            max_per_order: None,
            expected_version: None,
            location: None,
            incoming: None,
        })
        .unwrap();
    engine.shutdown();
    drop(engine);

    let before = dir_syncs();
    let (engine, _) = Engine::open(&dir, config(), StorageConfig::default()).unwrap();
    assert_eq!(dir_syncs() - before, 0, "nothing new to create on a reopen");
    assert_eq!(engine.blocking().get_item(Sku::parse("A", "sku").unwrap()).unwrap().on_hand, 5);
}
