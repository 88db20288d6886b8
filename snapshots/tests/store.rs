//! SnapshotStore behaviour: round trips, newest-wins, temp files, listing, pruning.

use std::fs;
use std::path::Path;

use stockd_snapshots::{
    read_snapshot_file, snapshot_file_name, CorruptReason, SnapshotError, SnapshotStore, MIN_FILE_LEN,
};

fn store() -> (tempfile::TempDir, SnapshotStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path()).unwrap();
    (dir, store)
}

fn lsns(store: &SnapshotStore) -> Vec<u64> {
    store.list().unwrap().iter().map(|i| i.lsn).collect()
}

#[test]
fn write_then_load_round_trips() {
    let (dir, store) = store();
    let payload = b"shard state \x00\xff bytes".to_vec();
    let info = store.write(17, &payload).unwrap();
    assert_eq!(info.lsn, 17);
    assert_eq!(info.path, dir.path().join("snapshot-00000000000000000017.snap"));
    assert_eq!(info.size, MIN_FILE_LEN + payload.len() as u64);
    assert_eq!(fs::metadata(&info.path).unwrap().len(), info.size);

    let loaded = store.load_latest().unwrap().expect("a snapshot");
    assert_eq!(loaded.lsn, 17);
    assert_eq!(loaded.payload, payload);
    assert_eq!(loaded.path, info.path);
    assert!(loaded.skipped.is_empty());

    // A fresh store on the same directory sees the same thing.
    drop(store);
    let reopened = SnapshotStore::open(dir.path()).unwrap();
    assert_eq!(reopened.load_latest().unwrap().unwrap().payload, payload);
}

#[test]
fn empty_payload_round_trips() {
    let (_dir, store) = store();
    store.write(0, b"").unwrap();
    let loaded = store.load_latest().unwrap().unwrap();
    assert_eq!((loaded.lsn, loaded.payload.len()), (0, 0));
}

#[test]
fn large_payload_round_trips() {
    let (_dir, store) = store();
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i * 31 % 251) as u8).collect();
    store.write(9, &payload).unwrap();
    assert_eq!(store.load_latest().unwrap().unwrap().payload, payload);
    assert_eq!(store.prune(1).unwrap(), 0); // streaming verify accepts it
}

#[test]
fn empty_directory_loads_none() {
    let (_dir, store) = store();
    assert!(store.load_latest().unwrap().is_none());
    assert!(store.list().unwrap().is_empty());
    assert_eq!(store.oldest_retained_lsn().unwrap(), None);
}

#[test]
fn open_creates_missing_nested_directory() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b/snapshots");
    let store = SnapshotStore::open(&nested).unwrap();
    assert!(nested.is_dir());
    assert_eq!(store.dir(), nested);
    store.write(1, b"x").unwrap();
}

#[test]
fn open_on_a_regular_file_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    fs::write(&file, b"").unwrap();
    assert!(matches!(SnapshotStore::open(&file), Err(SnapshotError::Io { .. })));
}

#[test]
fn load_latest_picks_the_highest_lsn_not_the_latest_written() {
    let (_dir, store) = store();
    store.write(100, b"hundred").unwrap();
    store.write(5, b"five").unwrap();
    store.write(1_000, b"thousand").unwrap();
    store.write(20, b"twenty").unwrap();
    let loaded = store.load_latest().unwrap().unwrap();
    assert_eq!((loaded.lsn, loaded.payload.as_slice()), (1_000, &b"thousand"[..]));
    assert_eq!(lsns(&store), vec![5, 20, 100, 1_000]);
}

#[test]
fn lsn_order_is_numeric_across_digit_counts_and_extremes() {
    let (_dir, store) = store();
    for lsn in [u64::MAX, 9, 10, 0, 99_999_999_999] {
        store.write(lsn, &lsn.to_le_bytes()).unwrap();
    }
    assert_eq!(lsns(&store), vec![0, 9, 10, 99_999_999_999, u64::MAX]);
    let loaded = store.load_latest().unwrap().unwrap();
    assert_eq!(loaded.lsn, u64::MAX);
    assert_eq!(loaded.payload, u64::MAX.to_le_bytes());
}

#[test]
fn rewriting_the_same_lsn_replaces_it() {
    let (_dir, store) = store();
    store.write(3, b"first").unwrap();
    store.write(3, b"second").unwrap();
    assert_eq!(lsns(&store), vec![3]);
    assert_eq!(store.load_latest().unwrap().unwrap().payload, b"second");
}

#[test]
fn write_leaves_no_temp_file() {
    let (dir, store) = store();
    store.write(4, b"abc").unwrap();
    let names: Vec<String> =
        fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names, vec![snapshot_file_name(4)]);
}

#[test]
fn temp_leftovers_are_ignored_by_load_and_removed_by_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path()).unwrap();
    store.write(10, b"good").unwrap();
    // A crashed write of a newer snapshot: valid-looking bytes under the temp name, and
    // a torn one.
    let newer_tmp = dir.path().join("snapshot-00000000000000000020.snap.tmp");
    fs::write(&newer_tmp, stockd_snapshots::encode_snapshot(20, b"newer").unwrap()).unwrap();
    let torn_tmp = dir.path().join("snapshot-00000000000000000030.snap.tmp");
    fs::write(&torn_tmp, b"STKDSNAP\x01").unwrap();
    let unrelated = dir.path().join("notes.tmp");
    fs::write(&unrelated, b"keep me").unwrap();

    assert_eq!(lsns(&store), vec![10]);
    let loaded = store.load_latest().unwrap().unwrap();
    assert_eq!(loaded.lsn, 10);
    assert!(loaded.skipped.is_empty());
    assert_eq!(store.oldest_retained_lsn().unwrap(), Some(10));

    drop(store);
    let store = SnapshotStore::open(dir.path()).unwrap();
    assert!(!newer_tmp.exists());
    assert!(!torn_tmp.exists());
    assert!(unrelated.exists(), "open must only remove its own temp files");
    assert_eq!(store.load_latest().unwrap().unwrap().lsn, 10);
}

#[test]
fn list_ignores_foreign_files_and_directories() {
    let (dir, store) = store();
    store.write(2, b"b").unwrap();
    fs::write(dir.path().join("README"), b"x").unwrap();
    fs::write(dir.path().join("snapshot-2.snap"), b"x").unwrap();
    fs::create_dir(dir.path().join(snapshot_file_name(50))).unwrap();
    let infos = store.list().unwrap();
    assert_eq!(infos.len(), 1);
    assert_eq!(infos[0].lsn, 2);
    assert_eq!(infos[0].size, MIN_FILE_LEN + 1);
    assert_eq!(store.load_latest().unwrap().unwrap().lsn, 2);
}

#[test]
fn file_whose_header_lsn_disagrees_with_its_name_is_skipped() {
    let (dir, store) = store();
    store.write(1, b"one").unwrap();
    let two = store.write(2, b"two").unwrap();
    // A valid snapshot of LSN 2 copied under the name of LSN 9.
    let renamed = dir.path().join(snapshot_file_name(9));
    fs::copy(&two.path, &renamed).unwrap();

    let loaded = store.load_latest().unwrap().unwrap();
    assert_eq!(loaded.lsn, 2);
    assert_eq!(loaded.skipped.len(), 1);
    assert_eq!(loaded.skipped[0].0, renamed);
    assert!(loaded.skipped[0].1.contains("does not match"), "{}", loaded.skipped[0].1);
    // The file itself is a valid snapshot to the content-only reader.
    assert_eq!(read_snapshot_file(&renamed).unwrap().lsn, 2);
}

#[test]
fn prune_keeps_the_newest_n() {
    let (_dir, store) = store();
    for lsn in [10, 20, 30, 40, 50] {
        store.write(lsn, format!("state@{lsn}").as_bytes()).unwrap();
    }
    assert_eq!(store.prune(3).unwrap(), 2);
    assert_eq!(lsns(&store), vec![30, 40, 50]);
    assert_eq!(store.oldest_retained_lsn().unwrap(), Some(30));
    // Idempotent; keeping more than exist deletes nothing.
    assert_eq!(store.prune(3).unwrap(), 0);
    assert_eq!(store.prune(10).unwrap(), 0);
    assert_eq!(store.prune(1).unwrap(), 2);
    assert_eq!(lsns(&store), vec![50]);
    assert_eq!(store.oldest_retained_lsn().unwrap(), Some(50));
    assert_eq!(store.load_latest().unwrap().unwrap().payload, b"state@50");
}

#[test]
fn prune_zero_is_rejected_and_deletes_nothing() {
    let (_dir, store) = store();
    store.write(1, b"a").unwrap();
    assert!(matches!(store.prune(0), Err(SnapshotError::InvalidKeep)));
    assert_eq!(lsns(&store), vec![1]);
}

#[test]
fn prune_counts_only_snapshots_that_verify() {
    let (_dir, store) = store();
    store.write(10, b"old").unwrap();
    store.write(20, b"good").unwrap();
    let newest = store.write(30, b"bad").unwrap();
    corrupt_last_byte(&newest.path);

    // Keeping 1 must keep LSN 20 (the newest good one), not just the corrupt LSN 30.
    assert_eq!(store.prune(1).unwrap(), 1);
    assert_eq!(lsns(&store), vec![20, 30]);
    assert_eq!(store.oldest_retained_lsn().unwrap(), Some(20));
    let loaded = store.load_latest().unwrap().unwrap();
    assert_eq!(loaded.lsn, 20);
    assert_eq!(loaded.skipped.len(), 1);
}

#[test]
fn prune_deletes_nothing_when_too_few_verify() {
    let (_dir, store) = store();
    let a = store.write(1, b"a").unwrap();
    let b = store.write(2, b"b").unwrap();
    corrupt_last_byte(&a.path);
    corrupt_last_byte(&b.path);
    assert_eq!(store.prune(1).unwrap(), 0);
    assert_eq!(lsns(&store), vec![1, 2]);
}

#[test]
fn oldest_retained_lsn_tracks_writes_and_prunes() {
    let (_dir, store) = store();
    assert_eq!(store.oldest_retained_lsn().unwrap(), None);
    store.write(70, b"x").unwrap();
    assert_eq!(store.oldest_retained_lsn().unwrap(), Some(70));
    store.write(80, b"y").unwrap();
    store.write(60, b"z").unwrap();
    assert_eq!(store.oldest_retained_lsn().unwrap(), Some(60));
    store.prune(2).unwrap();
    assert_eq!(store.oldest_retained_lsn().unwrap(), Some(70));
}

#[test]
fn read_snapshot_file_does_not_modify_anything() {
    let (dir, store) = store();
    let info = store.write(5, b"inspect me").unwrap();
    let tmp = dir.path().join("snapshot-00000000000000000006.snap.tmp");
    fs::write(&tmp, b"partial").unwrap();
    let before = fs::read(&info.path).unwrap();
    let mut perms = fs::metadata(&info.path).unwrap().permissions();
    perms.set_readonly(true);
    fs::set_permissions(&info.path, perms).unwrap();

    let loaded = read_snapshot_file(&info.path).unwrap();
    assert_eq!((loaded.lsn, loaded.payload.as_slice()), (5, &b"inspect me"[..]));
    assert!(loaded.skipped.is_empty());
    assert_eq!(fs::read(&info.path).unwrap(), before);
    assert!(tmp.exists(), "the inspector must not clean up temp files");
}

#[test]
fn read_snapshot_file_of_missing_path_is_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = read_snapshot_file(&dir.path().join("nope.snap")).unwrap_err();
    assert!(matches!(err, SnapshotError::Io { .. }), "{err}");
    assert!(!err.is_content_error());
}

#[test]
fn huge_declared_length_is_rejected_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(snapshot_file_name(1));
    let mut bytes = stockd_snapshots::encode_snapshot(1, b"tiny").unwrap();
    // Declare a payload of u64::MAX, then just under the 4 GiB limit.
    for declared in [u64::MAX, stockd_snapshots::MAX_PAYLOAD_LEN] {
        bytes[20..28].copy_from_slice(&declared.to_le_bytes());
        fs::write(&path, &bytes).unwrap();
        let err = read_snapshot_file(&path).unwrap_err();
        let SnapshotError::Corrupt { reason, path: p } = err else {
            panic!("expected Corrupt, got {err:?}");
        };
        assert_eq!(p, path);
        assert!(
            matches!(reason, CorruptReason::PayloadTooLarge { .. } | CorruptReason::LengthMismatch { .. }),
            "{reason:?}"
        );
    }
}

#[test]
fn future_format_version_is_bad_version() {
    let (dir, store) = store();
    store.write(1, b"v1").unwrap();
    let path = dir.path().join(snapshot_file_name(2));
    let mut bytes = stockd_snapshots::encode_snapshot(2, b"v2").unwrap();
    bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
    fs::write(&path, &bytes).unwrap();
    assert!(matches!(read_snapshot_file(&path), Err(SnapshotError::BadVersion { found: 2, .. })));
    let loaded = store.load_latest().unwrap().unwrap();
    assert_eq!(loaded.lsn, 1);
    assert_eq!(loaded.skipped[0].0, path);
    assert!(loaded.skipped[0].1.contains("version 2"), "{}", loaded.skipped[0].1);
}

#[test]
fn store_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<SnapshotStore>();
}

#[test]
fn concurrent_writers_do_not_corrupt_each_other() {
    let (_dir, store) = store();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let store = &store;
            s.spawn(move || {
                for i in 0..10u64 {
                    let lsn = t * 100 + i;
                    store.write(lsn, &vec![t as u8; 1000]).unwrap();
                }
            });
        }
    });
    assert_eq!(store.list().unwrap().len(), 40);
    let loaded = store.load_latest().unwrap().unwrap();
    assert_eq!((loaded.lsn, loaded.payload), (309, vec![3u8; 1000]));
}

fn corrupt_last_byte(path: &Path) {
    let mut bytes = fs::read(path).unwrap();
    *bytes.last_mut().unwrap() ^= 0xff;
    fs::write(path, bytes).unwrap();
}

/// `list_snapshots` is for readers that do not own the directory: it lists what the
/// store lists, in LSN order, ignores temp files and foreign names without removing
/// them, and finds none in a directory that does not exist.
#[test]
fn list_snapshots_is_read_only_and_matches_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let snaps = dir.path().join("snapshots");
    assert_eq!(stockd_snapshots::list_snapshots(&snaps).unwrap(), Vec::new());
    assert!(!snaps.exists(), "listing must not create the directory");
    let store = SnapshotStore::open(&snaps).unwrap();
    for lsn in [30, 7, 12] {
        store.write(lsn, b"payload").unwrap();
    }
    let temp = snaps.join("snapshot-00000000000000000040.snap.tmp");
    std::fs::write(&temp, b"half written").unwrap();
    std::fs::write(snaps.join("notes.txt"), b"not ours").unwrap();
    let listed = stockd_snapshots::list_snapshots(&snaps).unwrap();
    assert_eq!(listed.iter().map(|i| i.lsn).collect::<Vec<_>>(), vec![7, 12, 30]);
    assert_eq!(listed, store.list().unwrap());
    assert!(temp.exists(), "a read-only listing must leave temp files alone");
}
