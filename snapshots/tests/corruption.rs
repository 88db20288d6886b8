//! load_latest falls back past corrupt snapshots, reports them, and refuses to start
//! empty when every snapshot is corrupt.

use std::fs;
use std::path::{Path, PathBuf};

use stockd_snapshots::{read_snapshot_file, SnapshotError, SnapshotStore};

/// A store holding valid snapshots at LSN 1 and 2; returns the path of LSN 2.
fn two_snapshots() -> (tempfile::TempDir, SnapshotStore, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path()).unwrap();
    store.write(1, b"previous state").unwrap();
    let newest = store.write(2, b"newest!").unwrap();
    (dir, store, newest.path)
}

fn assert_fell_back(store: &SnapshotStore, corrupt: &Path, what: &str) {
    let loaded =
        store.load_latest().unwrap_or_else(|e| panic!("{what}: {e}")).unwrap_or_else(|| panic!("{what}: no snapshot"));
    assert_eq!(loaded.lsn, 1, "{what}");
    assert_eq!(loaded.payload, b"previous state", "{what}");
    assert_eq!(loaded.skipped.len(), 1, "{what}");
    assert_eq!(loaded.skipped[0].0, corrupt, "{what}");
    assert!(!loaded.skipped[0].1.is_empty(), "{what}");
}

#[test]
fn every_single_bit_flip_in_the_newest_falls_back_to_the_previous() {
    let (_dir, store, newest) = two_snapshots();
    let original = fs::read(&newest).unwrap();
    for pos in 0..original.len() {
        for bit in 0..8 {
            let mut bytes = original.clone();
            bytes[pos] ^= 1 << bit;
            fs::write(&newest, &bytes).unwrap();
            let what = format!("byte {pos} bit {bit}");
            let err = read_snapshot_file(&newest).expect_err(&what);
            assert!(err.is_content_error(), "{what}: {err:?}");
            assert_fell_back(&store, &newest, &what);
            // prune's streaming verifier must reject it too, so keeping one snapshot
            // keeps LSN 1 (the only good one) and deletes nothing.
            assert_eq!(store.prune(1).unwrap(), 0, "{what}");
        }
    }
    fs::write(&newest, &original).unwrap();
    assert_eq!(store.load_latest().unwrap().unwrap().lsn, 2);
}

#[test]
fn every_truncation_of_the_newest_falls_back_to_the_previous() {
    let (_dir, store, newest) = two_snapshots();
    let original = fs::read(&newest).unwrap();
    for len in 0..original.len() {
        fs::write(&newest, &original[..len]).unwrap();
        let what = format!("truncated to {len} bytes");
        let err = read_snapshot_file(&newest).expect_err(&what);
        assert!(matches!(err, SnapshotError::Corrupt { .. }), "{what}: {err:?}");
        assert_fell_back(&store, &newest, &what);
    }
}

#[test]
fn trailing_garbage_is_corruption() {
    let (_dir, store, newest) = two_snapshots();
    let mut bytes = fs::read(&newest).unwrap();
    bytes.push(0);
    fs::write(&newest, &bytes).unwrap();
    assert_fell_back(&store, &newest, "one extra byte");
}

#[test]
fn several_corrupt_newer_snapshots_are_all_skipped_and_listed_newest_first() {
    let (dir, store, newest) = two_snapshots();
    let third = store.write(3, b"third").unwrap().path;
    fs::write(&newest, b"garbage").unwrap();
    fs::write(&third, b"").unwrap();
    let loaded = store.load_latest().unwrap().unwrap();
    assert_eq!(loaded.lsn, 1);
    let skipped: Vec<&Path> = loaded.skipped.iter().map(|(p, _)| p.as_path()).collect();
    assert_eq!(skipped, vec![third.as_path(), newest.as_path()]);
    assert!(loaded.path.starts_with(dir.path()));
}

#[test]
fn all_corrupt_is_an_error_listing_every_file_not_an_empty_start() {
    let (dir, store, newest) = two_snapshots();
    let oldest = store.list().unwrap()[0].path.clone();
    fs::write(&oldest, b"STKDSNAP").unwrap();
    let mut bytes = fs::read(&newest).unwrap();
    bytes[30] ^= 0x10;
    fs::write(&newest, &bytes).unwrap();

    match store.load_latest() {
        Err(SnapshotError::NoValidSnapshot { dir: d, skipped }) => {
            assert_eq!(d, dir.path());
            let paths: Vec<&Path> = skipped.iter().map(|(p, _)| p.as_path()).collect();
            assert_eq!(paths, vec![newest.as_path(), oldest.as_path()]);
            assert!(skipped[0].1.contains("checksum"), "{}", skipped[0].1);
        }
        other => panic!("expected NoValidSnapshot, got {other:?}"),
    }
}

#[test]
fn a_single_corrupt_snapshot_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path()).unwrap();
    let only = store.write(8, b"only").unwrap().path;
    fs::write(&only, b"").unwrap();
    let err = store.load_latest().unwrap_err();
    assert!(matches!(&err, SnapshotError::NoValidSnapshot { skipped, .. } if skipped.len() == 1), "{err:?}");
}
