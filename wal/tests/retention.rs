mod common;

use common::*;
use stockd_wal::{WalError, WalReader, WalWriter};

#[test]
fn removes_only_wholly_covered_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let records = random_records(41, 200, 300);
    write_log(tmp.path(), config(2048), &records, 3);
    let (mut w, _) = WalWriter::open(tmp.path(), config(2048)).unwrap();
    let firsts: Vec<u64> = WalReader::open(tmp.path()).unwrap().segments().iter().map(|s| s.first_lsn).collect();
    assert!(firsts.len() >= 6);

    // Nothing is wholly below the first segment's end.
    assert_eq!(w.remove_segments_before(0).unwrap(), 0);
    assert_eq!(w.remove_segments_before(firsts[1] - 1).unwrap(), 0);
    // Segment 0 holds firsts[0]..firsts[1]-1: all < firsts[1].
    assert_eq!(w.remove_segments_before(firsts[1]).unwrap(), 1);
    // An LSN in the middle of segment 3 removes segments 1 and 2 only.
    assert_eq!(w.remove_segments_before(firsts[3] + 1).unwrap(), 2);
    let left: Vec<u64> = WalReader::open(tmp.path()).unwrap().segments().iter().map(|s| s.first_lsn).collect();
    assert_eq!(left, firsts[3..]);

    // Everything past the end: all but the active segment go.
    let n = firsts.len();
    assert_eq!(w.remove_segments_before(u64::MAX).unwrap(), n - 4);
    assert_eq!(segment_paths(tmp.path()).len(), 1);
    let active_first = firsts[n - 1];

    // The remaining log still reads, reopens and continues.
    let r = WalReader::open(tmp.path()).unwrap();
    let rest: Vec<_> = r.iter_from(active_first).collect::<Result<_, _>>().unwrap();
    assert_matches(&rest, &records[active_first as usize - 1..], active_first);
    assert!(matches!(
        r.iter_from(1).next(),
        Some(Err(WalError::LsnUnavailable { requested: 1, oldest })) if oldest == active_first
    ));
    assert_eq!(r.iter_from(0).count(), rest.len(), "0 = from the oldest available");
    assert_eq!(w.append(1, b"x").unwrap(), 201);
    w.sync().unwrap();
    drop(w);
    let (w, report) = WalWriter::open(tmp.path(), config(2048)).unwrap();
    assert_eq!(report.last_lsn, 201);
    assert_eq!(report.records, 201 - active_first + 1);
    assert_eq!(w.next_lsn(), 202);
}
