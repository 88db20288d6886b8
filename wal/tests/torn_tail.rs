mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;

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

#[test]
fn truncation_at_every_offset_of_last_record() {
    let (src, records) = build();
    let all = read_all(src.path());
    let last = all.last().unwrap();
    let last_seg = segment_paths(src.path()).pop().unwrap();
    let start = last.offset;
    let end = start + (RECORD_HEADER_LEN + last.payload.len()) as u64;
    assert_eq!(fs::metadata(&last_seg).unwrap().len(), end);

    for cut in start..end {
        let tmp = tempfile::tempdir().unwrap();
        copy_dir(src.path(), tmp.path());
        let seg = tmp.path().join(last_seg.file_name().unwrap());
        OpenOptions::new().write(true).open(&seg).unwrap().set_len(cut).unwrap();

        // The reader sees the same torn tail without touching anything.
        let r = WalReader::open(tmp.path()).unwrap();
        let read: Vec<_> = r.iter_from(0).collect::<Result<_, _>>().unwrap();
        assert_eq!(read.len(), records.len() - 1, "cut at {cut}");
        if cut > start {
            let t = r.torn_tail().expect("reader reports the torn tail");
            assert_eq!((t.offset, t.bytes_dropped), (start, cut - start));
        } else {
            assert!(r.torn_tail().is_none());
        }

        let (mut w, report) = WalWriter::open(tmp.path(), config(SEG)).unwrap();
        assert_eq!(report.last_lsn, records.len() as u64 - 1, "cut at {cut}");
        if cut > start {
            let t = report.truncated_tail.expect("torn tail reported");
            assert_eq!(t.segment, seg);
            assert_eq!(t.offset, start);
            assert_eq!(t.bytes_dropped, cut - start);
        } else {
            assert_eq!(report.truncated_tail, None, "a clean cut is no torn tail");
        }
        assert_eq!(fs::metadata(&seg).unwrap().len(), start, "tail truncated");
        assert_eq!(w.next_lsn(), records.len() as u64);
        assert_eq!(w.append(42, b"after").unwrap(), records.len() as u64);
        w.sync().unwrap();
        drop(w);

        let mut expect = records[..records.len() - 1].to_vec();
        expect.push((42, b"after".to_vec()));
        assert_matches(&read_all(tmp.path()), &expect, 1);
    }
}

#[test]
fn zero_filled_tail_is_dropped() {
    let (tmp, records) = build();
    let seg = segment_paths(tmp.path()).pop().unwrap();
    let len = fs::metadata(&seg).unwrap().len();
    OpenOptions::new().append(true).open(&seg).unwrap().write_all(&[0u8; 4096]).unwrap();
    let (mut w, report) = WalWriter::open(tmp.path(), config(SEG)).unwrap();
    let t = report.truncated_tail.unwrap();
    assert_eq!((t.offset, t.bytes_dropped), (len, 4096));
    assert_eq!(w.append(1, b"x").unwrap(), records.len() as u64 + 1);
    w.sync().unwrap();
    assert_eq!(read_all(tmp.path()).len(), records.len() + 1);
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
