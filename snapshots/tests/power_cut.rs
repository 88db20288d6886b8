//! Power cuts on `stockd_fs::SimFs` (random subsets of unsynced pages and directory
//! entries): a snapshot whose `write` returned `Ok` survives, and `load_latest` never
//! fails or returns an unverified snapshot after a cut. Issue 13, defect 9.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use stockd_fs::{Fault, Fs, FsOp, SimFs};
use stockd_snapshots::SnapshotStore;

const DIR: &str = "/data/shard-000/snapshots";

fn open(fs: &SimFs) -> SnapshotStore {
    SnapshotStore::open_with_fs(Path::new(DIR), Arc::new(fs.clone())).unwrap()
}

fn names(fs: &SimFs) -> Vec<String> {
    let mut v: Vec<String> = fs.read_dir(Path::new(DIR)).unwrap().into_iter().map(|e| e.name).collect();
    v.sort();
    v
}

#[test]
fn a_written_snapshot_survives_a_power_cut_right_after_write() {
    let fs = SimFs::new();
    let store = open(&fs);
    store.write(5, b"state at 5").unwrap();
    drop(store);
    fs.power_cut_lose_unsynced();
    // The store's directories were created by `open` and their entries synced too.
    let loaded = open(&fs).load_latest().unwrap().expect("the snapshot survives");
    assert_eq!((loaded.lsn, loaded.payload.as_slice()), (5, &b"state at 5"[..]));
}

#[test]
fn without_the_directory_sync_the_rename_would_be_lost() {
    // The control for the test above: the same steps by hand, minus the final sync.
    let fs = SimFs::new();
    drop(open(&fs));
    let tmp = Path::new(DIR).join("snapshot-00000000000000000005.snap.tmp");
    let mut f = fs.create(&tmp).unwrap();
    f.write_all(b"anything").unwrap();
    f.sync_data().unwrap();
    fs.rename(&tmp, &Path::new(DIR).join("snapshot-00000000000000000005.snap")).unwrap();
    fs.power_cut_lose_unsynced();
    assert!(names(&fs).is_empty(), "{:?}", names(&fs));
}

#[test]
fn removals_by_open_and_prune_are_durable() {
    let fs = SimFs::new();
    let store = open(&fs);
    for lsn in [1, 2, 3] {
        store.write(lsn, &[lsn as u8; 100]).unwrap();
    }
    assert_eq!(store.prune(1).unwrap(), 2);
    drop(store);
    let tmp = Path::new(DIR).join("snapshot-00000000000000000009.snap.tmp");
    fs.create(&tmp).unwrap().sync_data().unwrap();
    fs.sync_dir(Path::new(DIR)).unwrap();
    drop(open(&fs)); // deletes the temp file
    fs.power_cut_lose_unsynced();
    assert_eq!(names(&fs), ["snapshot-00000000000000000003.snap"]);
}

#[test]
fn failed_writes_leave_the_previous_snapshot() {
    for (op, n) in [(FsOp::Create, 1), (FsOp::Write, 2), (FsOp::FileSync, 1), (FsOp::Rename, 1), (FsOp::DirSync, 1)] {
        for seed in 0..16 {
            let fs = SimFs::new();
            let store = open(&fs);
            store.write(1, b"one").unwrap();
            fs.fail_nth(op, n, Fault::NoSpace);
            assert!(store.write(2, &[2; 9000]).is_err(), "{op:?}");
            assert_eq!(fs.faults_fired(), 1, "{op:?}");
            drop(store);
            fs.power_cut(seed);
            let loaded = open(&fs).load_latest().unwrap().unwrap();
            match loaded.lsn {
                1 => assert_eq!(loaded.payload, b"one"),
                // The rename happened; only the directory sync failed.
                2 => assert_eq!((op, loaded.payload), (FsOp::DirSync, vec![2; 9000])),
                n => panic!("{op:?} seed {seed}: loaded LSN {n}"),
            }
        }
    }
}

#[test]
fn random_writes_prunes_faults_and_power_cuts() {
    let ops = [FsOp::Create, FsOp::Write, FsOp::FileSync, FsOp::Rename, FsOp::DirSync, FsOp::Remove];
    let (mut cuts, mut fired, mut unacked_loaded) = (0u64, 0u64, 0u64);
    for seed in 0..200u64 {
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let fs = SimFs::new();
        let mut store = open(&fs);
        let mut written: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        let mut acked = None;
        let mut lsn = 0;
        for step in 0..40 {
            match next(6) {
                0..=2 => {
                    lsn += 1 + next(50);
                    let payload: Vec<u8> = (0..next(10_000)).map(|i| (i ^ lsn) as u8).collect();
                    if next(4) == 0 {
                        fs.fail_nth(ops[next(6) as usize], 1 + next(2), Fault::Io);
                    }
                    written.insert(lsn, payload.clone());
                    if store.write(lsn, &payload).is_ok() {
                        acked = Some(lsn);
                    }
                }
                3 => {
                    let _ = store.prune(1 + next(3) as usize);
                }
                _ => {
                    drop(store);
                    fs.disarm();
                    fs.power_cut(next(u64::MAX));
                    cuts += 1;
                    store = SnapshotStore::open_with_fs(Path::new(DIR), Arc::new(fs.clone()))
                        .unwrap_or_else(|e| panic!("seed {seed} step {step}: {e}"));
                    let loaded = store.load_latest().unwrap_or_else(|e| panic!("seed {seed} step {step}: {e}"));
                    match (loaded, acked) {
                        (None, None) => {}
                        (None, Some(a)) => {
                            panic!("seed {seed} step {step}: snapshot {a} was acknowledged, none loaded")
                        }
                        (Some(s), a) => {
                            assert!(Some(s.lsn) >= a, "seed {seed} step {step}: loaded {} < acknowledged {a:?}", s.lsn);
                            assert_eq!(s.payload, written[&s.lsn], "seed {seed} step {step}");
                            assert!(s.skipped.is_empty(), "seed {seed} step {step}: {:?}", s.skipped);
                            unacked_loaded += u64::from(Some(s.lsn) > a);
                            acked = Some(s.lsn);
                        }
                    }
                }
            }
        }
        fired += fs.faults_fired();
    }
    // The loop must reach the cases it exists for.
    assert!(cuts > 1000 && fired > 100 && unacked_loaded > 0, "cuts {cuts}, faults {fired}, {unacked_loaded}");
}
