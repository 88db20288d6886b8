mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;

use common::*;
use stockd_wal::{WalReader, WalWriter, RECORD_HEADER_LEN};

const SEG: u64 = 2048;

/// A log with several segments whose last record is in the last segment.
fn build() -> (tempfile::TempDir, Vec<(u8, Vec<u8>)>) {
    let tmp = tempfile::tempdir().unwrap();
    let mut records = random_records(11, 60, 300);
    records.last_mut().unwrap().1 = vec![0xAB; 150]; // a known-size last record
                                                     // The last record is a batch of its own, so losing it loses nothing else.
    let (last, rest) = records.split_last().unwrap();
    write_log(tmp.path(), config(SEG), rest, 4);
    let (mut w, _) = WalWriter::open(tmp.path(), config(SEG)).unwrap();
    w.append(last.0, &last.1).unwrap();
    w.sync().unwrap();
    drop(w);
    assert!(segment_paths(tmp.path()).len() >= 3);
    (tmp, records)
}

/// Version 3 segments are preallocated: a record torn by a power cut is its first
/// bytes followed by the zeros that were there (the file keeps its length), or, when
/// the length did not survive either, a shorter file. Both are cut by zeroing.
#[test]
fn truncation_at_every_offset_of_last_record() {
    let (src, records) = build();
    let all = read_all(src.path());
    let last = all.last().unwrap();
    let last_seg = segment_paths(src.path()).pop().unwrap();
    let start = last.offset;
    let end = start + (RECORD_HEADER_LEN + last.payload.len()) as u64;
    let file_len = fs::metadata(&last_seg).unwrap().len();
    assert!(file_len > end, "the writer preallocated zeros past the last record ({file_len} <= {end})");
    let original = fs::read(&last_seg).unwrap();
    assert!(original[end as usize..].iter().all(|&b| b == 0));

    for shorten in [false, true] {
        for cut in start..end {
            let tmp = tempfile::tempdir().unwrap();
            copy_dir(src.path(), tmp.path());
            let seg = tmp.path().join(last_seg.file_name().unwrap());
            let f = OpenOptions::new().write(true).open(&seg).unwrap();
            if shorten {
                f.set_len(cut).unwrap();
            } else {
                FileExt::write_all_at(&f, &vec![0u8; (end - cut) as usize], cut).unwrap();
            }
            drop(f);
            let len_before = fs::metadata(&seg).unwrap().len();
            // What is dropped: the torn record's bytes up to its last non-zero one.
            let dropped = original[start as usize..cut as usize].iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
            let case = format!("cut at {cut}, shorten {shorten}");

            // The reader sees the same torn tail without touching anything.
            let r = WalReader::open(tmp.path()).unwrap();
            let read: Vec<_> = r.iter_from(0).collect::<Result<_, _>>().unwrap();
            assert_eq!(read.len(), records.len() - 1, "{case}");
            if dropped > 0 {
                let t = r.torn_tail().expect("reader reports the torn tail");
                assert_eq!((t.offset, t.bytes_dropped), (start, dropped as u64), "{case}");
            } else {
                assert!(r.torn_tail().is_none(), "{case}");
            }

            let (mut w, report) = WalWriter::open(tmp.path(), config(SEG)).unwrap();
            assert_eq!(report.last_lsn, records.len() as u64 - 1, "{case}");
            if dropped > 0 {
                let t = report.truncated_tail.expect("torn tail reported");
                assert_eq!(t.segment, seg);
                assert_eq!(t.offset, start);
                assert_eq!(t.bytes_dropped, dropped as u64);
            } else {
                assert_eq!(report.truncated_tail, None, "a clean cut is no torn tail");
            }
            let after = fs::read(&seg).unwrap();
            assert_eq!(after.len() as u64, len_before, "{case}: the tail is zeroed, the file not shortened");
            assert!(after[start as usize..].iter().all(|&b| b == 0), "{case}: torn bytes zeroed");
            assert_eq!(w.next_lsn(), records.len() as u64);
            assert_eq!(w.append(42, b"after").unwrap(), records.len() as u64);
            w.sync().unwrap();
            drop(w);

            let mut expect = records[..records.len() - 1].to_vec();
            expect.push((42, b"after".to_vec()));
            assert_matches(&read_all(tmp.path()), &expect, 1);
        }
    }
}

#[test]
fn zeros_after_the_last_record_are_the_clean_end_in_version_3() {
    let (tmp, records) = build();
    let seg = segment_paths(tmp.path()).pop().unwrap();
    let len = fs::metadata(&seg).unwrap().len();
    OpenOptions::new().append(true).open(&seg).unwrap().write_all(&[0u8; 4096]).unwrap();
    let r = WalReader::open(tmp.path()).unwrap();
    assert_eq!(r.iter_from(0).count(), records.len());
    assert_eq!(r.torn_tail(), None);
    let (mut w, report) = WalWriter::open(tmp.path(), config(SEG)).unwrap();
    assert_eq!((report.last_lsn, report.truncated_tail), (records.len() as u64, None));
    assert_eq!(fs::metadata(&seg).unwrap().len(), len + 4096, "the zeros stay: they are preallocated space");
    assert_eq!(w.append(1, b"x").unwrap(), records.len() as u64 + 1);
    w.sync().unwrap();
    assert_eq!(read_all(tmp.path()).len(), records.len() + 1);
}

/// A torn batch followed by zeros, with a hole: its first record's page was lost
/// (zeros at a batch boundary), a later one survived. Not the end of the log: a torn
/// tail, cut by zeroing through the last non-zero byte.
#[test]
fn a_zero_header_followed_by_torn_data_is_a_torn_tail_not_the_end() {
    let (src, records) = build();
    let last = read_all(src.path()).pop().unwrap();
    let seg = segment_paths(src.path()).pop().unwrap();
    let f = OpenOptions::new().write(true).open(&seg).unwrap();
    FileExt::write_all_at(&f, &[0u8; RECORD_HEADER_LEN], last.offset).unwrap();
    drop(f);
    let r = WalReader::open(src.path()).unwrap();
    assert_eq!(r.iter_from(0).filter(|x| x.is_ok()).count(), records.len() - 1);
    let t = r.torn_tail().expect("torn, not a clean end");
    assert_eq!((t.offset, t.bytes_dropped), (last.offset, (RECORD_HEADER_LEN + 150) as u64));
    let (_, report) = WalWriter::open(src.path(), config(SEG)).unwrap();
    assert_eq!(report.truncated_tail.unwrap().offset, last.offset);
    assert!(fs::read(&seg).unwrap()[last.offset as usize..].iter().all(|&b| b == 0));
    assert_eq!(read_all(src.path()).len(), records.len() - 1);
}

#[test]
fn bad_checksum_on_last_record_is_a_torn_tail() {
    let (tmp, records) = build();
    let last = read_all(tmp.path()).pop().unwrap();
    let seg = segment_paths(tmp.path()).pop().unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    let at = last.offset as usize + RECORD_HEADER_LEN + 10;
    bytes[at] ^= 0x10;
    fs::write(&seg, &bytes).unwrap();
    let (w, report) = WalWriter::open(tmp.path(), config(SEG)).unwrap();
    assert_eq!(report.truncated_tail.unwrap().offset, last.offset);
    assert_eq!(w.next_lsn(), records.len() as u64);
}

#[test]
fn torn_segment_header_after_rotation() {
    let (tmp, records) = build();
    let n = records.len() as u64;
    // A crash right after creating the next segment: its header is incomplete.
    let next = tmp.path().join(format!("{:020}.wal", n + 1));
    fs::write(&next, b"STKDW").unwrap();
    let r = WalReader::open(tmp.path()).unwrap();
    assert_eq!(r.iter_from(0).filter(|x| x.is_ok()).count(), records.len());
    assert_eq!(r.torn_tail().unwrap().segment, next);

    let (mut w, report) = WalWriter::open(tmp.path(), config(SEG)).unwrap();
    let t = report.truncated_tail.unwrap();
    assert_eq!((t.segment.clone(), t.offset, t.bytes_dropped), (next.clone(), 0, 5));
    assert_eq!(report.last_lsn, n);
    assert_eq!(w.append(5, b"next").unwrap(), n + 1);
    w.sync().unwrap();
    drop(w);
    let all = read_all(tmp.path());
    assert_eq!(all.len() as u64, n + 1);
    assert_eq!(all.last().unwrap().payload, b"next");
}
