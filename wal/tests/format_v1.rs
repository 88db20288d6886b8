//! Segments of format version 1 (written before batch framing) still open and read,
//! and a log that holds them keeps working: new records go to a version 2 segment.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use stockd_wal::{segment_file_name, WalReader, WalWriter, FORMAT_VERSION, FORMAT_VERSION_V1, MAGIC};

/// A version 1 segment, byte for byte as FORMAT.md (version 1) describes it.
fn v1_segment(first_lsn: u64, payloads: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION_V1.to_le_bytes());
    out.extend_from_slice(&first_lsn.to_le_bytes());
    let crc = crc32fast_hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    for (i, p) in payloads.iter().enumerate() {
        let len = (p.len() as u32).to_le_bytes();
        let mut covered = len.to_vec();
        covered.extend_from_slice(&(first_lsn + i as u64).to_le_bytes());
        covered.push(7);
        covered.extend_from_slice(p);
        out.extend_from_slice(&len);
        out.extend_from_slice(&crc32fast_hash(&covered).to_le_bytes());
        out.extend_from_slice(&covered[4..]);
    }
    out
}

/// CRC-32 (IEEE), bitwise, so the test does not depend on the crate's encoder.
fn crc32fast_hash(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn version_of(path: &Path) -> u32 {
    u32::from_le_bytes(fs::read(path).unwrap()[8..12].try_into().unwrap())
}

#[test]
fn a_version_1_log_opens_reads_and_takes_new_records_in_a_version_2_segment() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join(segment_file_name(1)), v1_segment(1, &[b"one", b"two"])).unwrap();
    fs::write(tmp.path().join(segment_file_name(3)), v1_segment(3, &[b"three"])).unwrap();

    let read = read_all(tmp.path());
    let got: Vec<(u64, &[u8])> = read.iter().map(|r| (r.lsn, r.payload.as_slice())).collect();
    assert_eq!(got, [(1, &b"one"[..]), (2, b"two"), (3, b"three")]);
    assert!(read.iter().all(|r| r.record_type == 7));

    let (mut w, report) = WalWriter::open(tmp.path(), config(1 << 20)).unwrap();
    assert_eq!((report.last_lsn, report.truncated_tail), (3, None));
    assert_eq!(w.append(1, b"four").unwrap(), 4);
    w.sync().unwrap();
    drop(w);
    let segs = segment_paths(tmp.path());
    assert_eq!(segs.len(), 3, "the version 1 segment is not appended to");
    assert_eq!(version_of(&segs[1]), FORMAT_VERSION_V1);
    assert_eq!(version_of(&segs[2]), FORMAT_VERSION);
    let lsns: Vec<u64> = read_all(tmp.path()).iter().map(|r| r.lsn).collect();
    assert_eq!(lsns, [1, 2, 3, 4]);
    let (_, report) = WalWriter::open(tmp.path(), config(1 << 20)).unwrap();
    assert_eq!(report.last_lsn, 4);
}

#[test]
fn a_header_only_version_1_segment_is_rewritten_as_version_2() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join(segment_file_name(1)), v1_segment(1, &[b"a"])).unwrap();
    let seg2 = tmp.path().join(segment_file_name(2));
    fs::write(&seg2, v1_segment(2, &[])).unwrap();
    let (mut w, report) = WalWriter::open(tmp.path(), config(1 << 20)).unwrap();
    assert_eq!(report.last_lsn, 1);
    assert_eq!(version_of(&seg2), FORMAT_VERSION);
    assert_eq!(w.append(1, b"b").unwrap(), 2);
    w.sync().unwrap();
    assert_eq!(segment_paths(tmp.path()).len(), 2);
    assert_eq!(read_all(tmp.path()).len(), 2);
}

#[test]
fn version_1_torn_tails_and_corruption_keep_the_version_1_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let seg = tmp.path().join(segment_file_name(1));
    let mut bytes = v1_segment(1, &[b"first", b"second", b"third"]);
    let full = bytes.len();
    bytes.truncate(full - 2); // a torn last record
    fs::write(&seg, &bytes).unwrap();
    let r = WalReader::open(tmp.path()).unwrap();
    assert_eq!(r.iter_from(0).filter(|x| x.is_ok()).count(), 2);
    let (_, report) = WalWriter::open(tmp.path(), config(1 << 20)).unwrap();
    assert_eq!(report.last_lsn, 2);
    assert_eq!(report.truncated_tail.unwrap().offset, (24 + 17 + 5 + 17 + 6) as u64);

    // A bad first record followed by a valid one is corruption, as in version 1.
    let tmp = tempfile::tempdir().unwrap();
    let seg = tmp.path().join(segment_file_name(1));
    let mut bytes = v1_segment(1, &[b"first", b"second"]);
    bytes[24 + 17] ^= 1;
    fs::write(&seg, &bytes).unwrap();
    assert!(matches!(
        WalWriter::open(tmp.path(), config(1 << 20)),
        Err(stockd_wal::WalError::Corrupt { offset: 24, lsn: Some(1), .. })
    ));
}
