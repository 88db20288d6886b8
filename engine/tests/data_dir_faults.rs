//! The data directory on `SimFs` (the filesystem seam's in-memory model, issue 13
//! defect 9): every entry `Engine::open` creates (DATA, the manifest, `shard-NNN`,
//! `wal/`, `snapshots/`, the first segments) survives a power cut that loses
//! everything unsynced; an I/O fault at any step of creating it (create, write, file
//! sync, rename, directory sync) fails the open with an error, never a panic or a
//! half-made directory that a later open refuses; and what was acknowledged survives.

use std::path::Path;
use std::sync::Arc;
use stockd_engine::SimFs;
use stockd_engine::*;
use stockd_fs::{Fault, Fs, FsOp};

mod common;
use common::*;

fn config() -> EngineConfig {
    EngineConfig {
        shards: 2,
        expiry_interval: None,
        clock: Arc::new(ManualClock::new(1_700_000_000_000)),
        ..Default::default()
    }
}

fn storage(fs: &SimFs) -> StorageConfig {
    StorageConfig { fs: Arc::new(fs.clone()), ..StorageConfig::default() }
}

const DIR: &str = "/data";

#[test]
fn a_new_data_dir_and_every_acknowledged_write_survive_a_power_cut_losing_all_unsynced() {
    let fs = SimFs::new();
    let (engine, _) = Engine::open(Path::new(DIR), config(), storage(&fs)).unwrap();
    stock(&engine, &sku("A"), 5);
    stock(&engine, &sku("B"), 7);
    // No clean shutdown: the power goes while the engine runs.
    fs.power_cut_lose_unsynced();
    drop(engine);
    let (engine, _) = Engine::open(Path::new(DIR), config(), storage(&fs))
        .unwrap_or_else(|e| panic!("reopen after a power cut: {e}"));
    assert_eq!(&*fs.read(Path::new("/data/stockd.manifest")).unwrap(), b"stockd-data 1\nshards 2\n");
    assert_eq!(engine.blocking().get_item(sku("A")).unwrap().on_hand, 5);
    assert_eq!(engine.blocking().get_item(sku("B")).unwrap().on_hand, 7);
    engine.blocking().check_invariants().unwrap();
    engine.shutdown();
}

#[test]
fn a_fault_at_any_step_of_making_the_data_dir_fails_the_open_cleanly() {
    let mut fired = 0;
    for op in [FsOp::Create, FsOp::Write, FsOp::FileSync, FsOp::Rename, FsOp::DirSync] {
        for n in 1..=6 {
            for fault in [Fault::Io, Fault::NoSpace] {
                let fs = SimFs::new();
                fs.fail_nth(op, n, fault);
                let first = Engine::open(Path::new(DIR), config(), storage(&fs));
                let hit = fs.faults_fired() > 0;
                fired += u64::from(hit);
                match first {
                    // A fault that fired where the open depends on it is an error...
                    Err(e) => assert!(hit, "{op:?} #{n}: open failed without a fault: {e}"),
                    // ...or it fired nowhere (fewer than n such operations).
                    Ok((engine, _)) => {
                        assert!(!hit, "{op:?} #{n} {fault:?} fired, yet the open succeeded");
                        engine.shutdown();
                    }
                }
                // Whatever survived the failed open (and a power cut after it), a
                // second open makes a working directory.
                fs.disarm();
                fs.power_cut(n * 31 + op as u64);
                let (engine, _) = Engine::open(Path::new(DIR), config(), storage(&fs))
                    .unwrap_or_else(|e| panic!("{op:?} #{n} {fault:?}: the open after the failed one: {e}"));
                stock(&engine, &sku("A"), 1);
                engine.shutdown();
                drop(engine);
                let (engine, _) = Engine::open(Path::new(DIR), config(), storage(&fs)).unwrap();
                assert_eq!(engine.blocking().get_item(sku("A")).unwrap().on_hand, 1, "{op:?} #{n}");
                engine.shutdown();
            }
        }
    }
    assert!(fired >= 20, "only {fired} armed faults fired: the test did not reach the paths");
}
