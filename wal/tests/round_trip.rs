mod common;

use std::sync::Arc;

use common::*;
use stockd_wal::{Durability, FaultInjector, WalConfig, WalError, WalReader, WalWriter, MAX_PAYLOAD};

#[test]
fn round_trip_across_rotations_and_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let records = random_records(1, 400, 3000);
    let lsns = write_log(&dir, config(8192), &records, 7);
    assert_eq!(lsns, (1..=400).collect::<Vec<_>>());
    assert!(segment_paths(&dir).len() > 5, "expected several rotations");

    let reader = WalReader::open(&dir).unwrap();
    for seg in reader.segments() {
        assert!(seg.size <= 8192 || seg.size <= 24 + 17 + 3000, "segment too big: {seg:?}");
    }
    // Segment names = first LSN, contiguous with the records inside.
    let read = read_all(&dir);
    assert_matches(&read, &records, 1);
    for r in &read {
        assert!(reader.segments()[r.segment].first_lsn <= r.lsn);
    }
    assert!(reader.torn_tail().is_none());

    let (mut w, report) = WalWriter::open(&dir, config(8192)).unwrap();
    assert_eq!(report.records, 400);
    assert_eq!(report.last_lsn, 400);
    assert_eq!(report.segments, reader.segments().len());
    assert_eq!(report.truncated_tail, None);
    assert_eq!(w.next_lsn(), 401);
    assert_eq!(w.durable_lsn(), 400);
    let more = random_records(2, 50, 3000);
    for (i, (t, p)) in more.iter().enumerate() {
        assert_eq!(w.append(*t, p).unwrap(), 401 + i as u64);
    }
    assert_eq!(w.durable_lsn(), 400, "append alone is not durable");
    assert_eq!(w.sync().unwrap(), 450);
    assert_eq!(w.durable_lsn(), 450);
    drop(w);

    let mut all = records.clone();
    all.extend(more);
    assert_matches(&read_all(&dir), &all, 1);
}

#[test]
fn fresh_log_starts_at_lsn_1() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a/b/wal");
    let (mut w, report) = WalWriter::open(&dir, WalConfig::default()).unwrap();
    assert_eq!(report.records, 0);
    assert_eq!(report.last_lsn, 0);
    assert_eq!(report.segments, 1);
    assert_eq!(w.next_lsn(), 1);
    assert_eq!(w.durable_lsn(), 0);
    assert_eq!(w.sync().unwrap(), 0, "nothing to sync");
    assert!(dir.join("00000000000000000001.wal").is_file());
    assert_eq!(w.append(9, b"x").unwrap(), 1);
    assert_eq!(w.sync().unwrap(), 1);
    assert!(read_all(&dir).iter().map(|r| r.lsn).eq([1]));
}

#[test]
fn group_commit_is_one_fsync() {
    let tmp = tempfile::tempdir().unwrap();
    let faults = Arc::new(FaultInjector::new());
    let (mut w, _) = WalWriter::open(tmp.path(), config_with_faults(1 << 20, &faults)).unwrap();
    let before = faults.syncs();
    for i in 0..100u32 {
        w.append(1, &i.to_le_bytes()).unwrap();
    }
    assert_eq!(faults.syncs(), before, "append must not sync");
    assert_eq!(w.sync().unwrap(), 100);
    assert_eq!(faults.syncs(), before + 1, "one fdatasync per group commit");
    assert_eq!(w.sync().unwrap(), 100);
    assert_eq!(faults.syncs(), before + 1, "empty sync does not fsync");
}

#[test]
fn record_size_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut w, _) = WalWriter::open(tmp.path(), config(4096)).unwrap();
    let big = vec![7u8; MAX_PAYLOAD + 1];
    match w.append(1, &big) {
        Err(WalError::RecordTooLarge { size, max }) => {
            assert_eq!((size, max), (MAX_PAYLOAD + 1, MAX_PAYLOAD))
        }
        other => panic!("expected RecordTooLarge, got {other:?}"),
    }
    assert!(w.failure().is_none(), "a rejected record does not fail the writer");
    // Exactly the limit is fine, and bigger than segment_size gets its own segment.
    assert_eq!(w.append(2, &big[..MAX_PAYLOAD]).unwrap(), 1);
    assert_eq!(w.append(3, b"small").unwrap(), 2);
    w.sync().unwrap();
    let read = read_all(tmp.path());
    assert_eq!(read[0].payload.len(), MAX_PAYLOAD);
    assert_eq!(read[1].payload, b"small");
    assert_eq!(segment_paths(tmp.path()).len(), 2);
}

#[test]
fn iter_from_starts_at_requested_lsn() {
    let tmp = tempfile::tempdir().unwrap();
    let records = random_records(3, 120, 500);
    write_log(tmp.path(), config(2048), &records, 10);
    let r = WalReader::open(tmp.path()).unwrap();
    for from in [1u64, 2, 37, 60, 119, 120] {
        let got: Vec<_> = r.iter_from(from).collect::<Result<_, _>>().unwrap();
        assert_matches(&got, &records[from as usize - 1..], from);
    }
    assert_eq!(r.iter_from(121).count(), 0);
    assert_eq!(r.iter_from(10_000).count(), 0);
}

#[test]
fn durability_none_still_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let faults = Arc::new(FaultInjector::new());
    let cfg = WalConfig {
        segment_size: 1024,
        durability: Durability::None,
        faults: Some(faults.clone()),
        ..WalConfig::default()
    };
    let records = random_records(4, 50, 200);
    write_log(tmp.path(), cfg, &records, 5);
    assert_eq!(faults.syncs(), 0, "Durability::None never fsyncs");
    assert_matches(&read_all(tmp.path()), &records, 1);
}
