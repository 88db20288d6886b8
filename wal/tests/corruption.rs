mod common;

use std::fs;

use common::*;
use stockd_wal::{WalError, WalReader, WalWriter, FORMAT_VERSION, RECORD_HEADER_LEN};

const SEG: u64 = 4096;

fn build() -> (tempfile::TempDir, Vec<stockd_wal::WalRecord>) {
    let tmp = tempfile::tempdir().unwrap();
    let records = random_records(21, 80, 400);
    write_log(tmp.path(), config(SEG), &records, 5);
    let read = read_all(tmp.path());
    assert!(segment_paths(tmp.path()).len() >= 4);
    (tmp, read)
}

fn flip(path: &std::path::Path, at: u64) {
    let mut b = fs::read(path).unwrap();
    b[at as usize] ^= 0x04;
    fs::write(path, b).unwrap();
}

/// Open must fail with exactly this corruption, and the reader must report it too,
/// after yielding every record before it. Neither may modify any file.
fn expect_corrupt(dir: &std::path::Path, seg: &std::path::Path, offset: u64, lsn: u64) {
    let before = snapshot(dir);
    match WalWriter::open(dir, config(SEG)) {
        Err(WalError::Corrupt { segment, offset: o, lsn: l, reason }) => {
            assert_eq!(segment, seg, "{reason}");
            assert_eq!(o, offset, "{reason}");
            assert_eq!(l, Some(lsn), "{reason}");
        }
        Ok(_) => panic!("open accepted a corrupt log"),
        Err(e) => panic!("expected Corrupt, got {e}"),
    }
    let r = WalReader::open(dir).unwrap();
    let items: Vec<_> = r.iter_from(0).collect();
    let (last, ok) = items.split_last().unwrap();
    assert_eq!(ok.len() as u64, lsn - 1, "records before the corruption are yielded");
    assert!(ok.iter().all(|i| i.is_ok()));
    match last {
        Err(WalError::Corrupt { segment, offset: o, lsn: l, .. }) => {
            assert_eq!((segment.as_path(), *o, *l), (seg, offset, Some(lsn)));
        }
        other => panic!("reader: expected Corrupt, got {other:?}"),
    }
    assert_eq!(snapshot(dir), before, "failed open / reading must not modify files");
}

#[test]
fn bit_flip_in_middle_of_segment() {
    let (tmp, read) = build();
    let r = WalReader::open(tmp.path()).unwrap();
    // A record in the middle of the second segment.
    let in_seg: Vec<_> = read.iter().filter(|x| x.segment == 1).collect();
    let victim = in_seg[in_seg.len() / 2];
    let seg = r.segments()[1].path.clone();
    flip(&seg, victim.offset + RECORD_HEADER_LEN as u64 + 3); // payload byte
    expect_corrupt(tmp.path(), &seg, victim.offset, victim.lsn);
}

#[test]
fn bit_flip_mid_record_of_last_segment() {
    let (tmp, read) = build();
    let r = WalReader::open(tmp.path()).unwrap();
    let last_seg = r.segments().len() - 1;
    let in_seg: Vec<_> = read.iter().filter(|x| x.segment == last_seg).collect();
    assert!(in_seg.len() >= 3);
    let victim = in_seg[0];
    let seg = r.segments()[last_seg].path.clone();
    flip(&seg, victim.offset + 9); // inside the LSN field
    expect_corrupt(tmp.path(), &seg, victim.offset, victim.lsn);
}

#[test]
fn length_field_flip_is_not_mistaken_for_a_torn_tail() {
    let (tmp, read) = build();
    let r = WalReader::open(tmp.path()).unwrap();
    let last_seg = r.segments().len() - 1;
    let victim = read.iter().find(|x| x.segment == last_seg).unwrap();
    let seg = r.segments()[last_seg].path.clone();
    // Make the length claim more bytes than the file has left.
    let mut b = fs::read(&seg).unwrap();
    b[victim.offset as usize + 2] ^= 0x08; // +512 KiB
    fs::write(&seg, b).unwrap();
    expect_corrupt(tmp.path(), &seg, victim.offset, victim.lsn);
}

#[test]
fn last_record_of_non_last_segment() {
    let (tmp, read) = build();
    let r = WalReader::open(tmp.path()).unwrap();
    let victim = read.iter().rfind(|x| x.segment == 0).unwrap();
    let seg = r.segments()[0].path.clone();
    flip(&seg, victim.offset + RECORD_HEADER_LEN as u64 - 1); // type byte
    expect_corrupt(tmp.path(), &seg, victim.offset, victim.lsn);
}

#[test]
fn missing_middle_segment_is_a_gap() {
    let (tmp, _) = build();
    let r = WalReader::open(tmp.path()).unwrap();
    let (gone, after) = (&r.segments()[1], &r.segments()[2]);
    fs::remove_file(&gone.path).unwrap();
    expect_corrupt(tmp.path(), &after.path, 0, gone.first_lsn);
}

#[test]
fn unknown_format_version_is_a_clear_error() {
    let (tmp, _) = build();
    let seg = segment_paths(tmp.path())[0].clone();
    let mut b = fs::read(&seg).unwrap();
    b[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    fs::write(&seg, b).unwrap();
    match WalWriter::open(tmp.path(), config(SEG)) {
        Err(WalError::BadVersion { segment, found, supported }) => {
            assert_eq!((segment, found, supported), (seg.clone(), FORMAT_VERSION + 1, FORMAT_VERSION));
        }
        other => panic!("expected BadVersion, got {:?}", other.err()),
    }
    let r = WalReader::open(tmp.path()).unwrap();
    assert!(matches!(r.iter_from(0).next(), Some(Err(WalError::BadVersion { .. }))));
}

#[test]
fn bad_magic_is_corrupt() {
    let (tmp, _) = build();
    let seg = segment_paths(tmp.path())[1].clone();
    let mut b = fs::read(&seg).unwrap();
    b[0] = b'X';
    fs::write(&seg, b).unwrap();
    match WalWriter::open(tmp.path(), config(SEG)) {
        Err(WalError::Corrupt { segment, offset: 0, lsn: None, .. }) => assert_eq!(segment, seg),
        other => panic!("expected Corrupt, got {:?}", other.err()),
    }
}
