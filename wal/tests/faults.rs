mod common;

use std::sync::Arc;

use common::*;
use stockd_wal::{FaultInjector, WalError, WalWriter};

fn assert_failed<T: std::fmt::Debug>(r: Result<T, WalError>) {
    assert!(matches!(r, Err(WalError::Failed(_))), "expected Failed, got {r:?}");
}

/// After a failed sync/write: Failed forever, and reopening shows every record that
/// was synced before the failure (records after it may or may not be there).
fn check_failed_forever_then_reopen(
    dir: &std::path::Path,
    mut w: WalWriter,
    faults: &FaultInjector,
    synced: &[(u8, Vec<u8>)],
) {
    assert!(w.failure().is_some());
    faults.fail_syncs(false);
    faults.fail_writes(false);
    for _ in 0..3 {
        assert_failed(w.append(1, b"more"));
        assert_failed(w.sync());
        assert_failed(w.remove_segments_before(u64::MAX));
    }
    assert_eq!(w.durable_lsn(), synced.len() as u64, "durable LSN does not advance");
    drop(w);

    let (w, report) = WalWriter::open(dir, config(2048)).unwrap();
    let all = read_all(dir);
    assert!(all.len() >= synced.len());
    assert_matches(&all[..synced.len()], synced, 1);
    assert_eq!(w.next_lsn(), report.last_lsn + 1);
    assert_eq!(report.last_lsn, all.len() as u64);
}

#[test]
fn failed_sync_is_permanent() {
    let tmp = tempfile::tempdir().unwrap();
    let faults = Arc::new(FaultInjector::new());
    let (mut w, _) = WalWriter::open(tmp.path(), config_with_faults(2048, &faults)).unwrap();
    let synced = random_records(31, 40, 200);
    for (t, p) in &synced {
        w.append(*t, p).unwrap();
    }
    assert_eq!(w.sync().unwrap(), 40);
    for (t, p) in random_records(32, 10, 200) {
        w.append(t, &p).unwrap();
    }
    faults.fail_syncs(true);
    assert_failed(w.sync());
    check_failed_forever_then_reopen(tmp.path(), w, &faults, &synced);
}

#[test]
fn fail_sync_after_counts_syncs() {
    let tmp = tempfile::tempdir().unwrap();
    let faults = Arc::new(FaultInjector::new());
    let (mut w, _) = WalWriter::open(tmp.path(), config_with_faults(1 << 20, &faults)).unwrap();
    faults.fail_sync_after(3);
    let records = random_records(33, 5, 100);
    for (i, (t, p)) in records.iter().enumerate().take(3) {
        w.append(*t, p).unwrap();
        assert_eq!(w.sync().unwrap(), i as u64 + 1);
    }
    let before = faults.syncs();
    w.append(records[3].0, &records[3].1).unwrap();
    assert_failed(w.sync()); // the 4th sync
    assert_eq!(faults.syncs(), before + 1, "the failed sync was attempted once, never retried");
    check_failed_forever_then_reopen(tmp.path(), w, &faults, &records[..3]);
}

#[test]
fn torn_write_is_recovered_on_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let faults = Arc::new(FaultInjector::new());
    let (mut w, _) = WalWriter::open(tmp.path(), config_with_faults(2048, &faults)).unwrap();
    let synced = random_records(34, 30, 200);
    for (t, p) in &synced {
        w.append(*t, p).unwrap();
    }
    w.sync().unwrap();
    w.append(1, &[0x55; 300]).unwrap();
    faults.fail_writes(true); // writes half the record, then errors
    assert_failed(w.sync());
    faults.fail_writes(false);
    drop(w);
    let (_, report) = WalWriter::open(tmp.path(), config(2048)).unwrap();
    assert!(report.truncated_tail.is_some(), "half-written record is a torn tail");
    assert_eq!(report.last_lsn, 30);
    assert_matches(&read_all(tmp.path()), &synced, 1);
}

#[test]
fn sync_failure_during_rotation() {
    let tmp = tempfile::tempdir().unwrap();
    let faults = Arc::new(FaultInjector::new());
    let (mut w, _) = WalWriter::open(tmp.path(), config_with_faults(1024, &faults)).unwrap();
    let synced = random_records(35, 10, 100);
    for (t, p) in &synced {
        w.append(*t, p).unwrap();
    }
    w.sync().unwrap();
    // Enough to need several new segments in one group commit; fail the second fsync.
    for (t, p) in random_records(36, 40, 200) {
        w.append(t, &p).unwrap();
    }
    faults.fail_sync_after(1);
    assert_failed(w.sync());
    check_failed_forever_then_reopen(tmp.path(), w, &faults, &synced);
}

#[test]
fn open_fails_cleanly_when_sync_fails() {
    let tmp = tempfile::tempdir().unwrap();
    write_log(tmp.path(), config(2048), &random_records(37, 5, 50), 1);
    let faults = Arc::new(FaultInjector::new());
    faults.fail_syncs(true);
    let err = WalWriter::open(tmp.path(), config_with_faults(2048, &faults)).unwrap_err();
    assert!(matches!(err, WalError::Io { .. }), "{err}");
}
