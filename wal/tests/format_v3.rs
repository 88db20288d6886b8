//! Format version 3: preallocated segments. A version 2 log written by the previous
//! writer (golden bytes in tests/fixtures/v2) still reads, reopens and continues in a
//! version 3 segment; a version 3 log continues at its logical end, not its file end;
//! retention and a concurrent reader work with preallocated space.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use stockd_wal::{
    segment_file_name, WalConfig, WalReader, WalWriter, FORMAT_VERSION, FORMAT_VERSION_V2, RECORD_HEADER_LEN,
};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v2")
}

/// What the pre-v3 writer wrote into the fixture (segment size 160): batches
/// [1, 2, 3], [4] in segment 1, then [5, 6] in segment 5.
fn fixture_records() -> Vec<(u8, Vec<u8>)> {
    vec![
        (1, b"alpha".to_vec()),
        (2, b"beta".to_vec()),
        (3, b"gamma".to_vec()),
        (9, b"delta-with-a-longer-payload".to_vec()),
        (2, Vec::new()),
        (3, vec![0, 1, 0, 0]),
    ]
}

fn version_of(path: &Path) -> u32 {
    u32::from_le_bytes(fs::read(path).unwrap()[8..12].try_into().unwrap())
}

fn copy_fixture() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), tmp.path());
    tmp
}

#[test]
fn the_golden_version_2_log_reads_reopens_and_continues_in_version_3() {
    let tmp = copy_fixture();
    let segs = segment_paths(tmp.path());
    assert_eq!(segs.len(), 2);
    assert!(segs.iter().all(|s| version_of(s) == FORMAT_VERSION_V2));
    let before = snapshot(tmp.path());
    assert_matches(&read_all(tmp.path()), &fixture_records(), 1);
    assert_eq!(WalReader::open(tmp.path()).unwrap().torn_tail(), None);

    let (mut w, report) = WalWriter::open(tmp.path(), config(160)).unwrap();
    assert_eq!((report.last_lsn, report.truncated_tail, report.segments), (6, None, 2));
    assert_eq!(snapshot(tmp.path()), before, "a clean version 2 log is not rewritten by open");
    assert_eq!(w.append(4, b"seven").unwrap(), 7);
    w.sync().unwrap();
    drop(w);
    let segs = segment_paths(tmp.path());
    assert_eq!(segs.len(), 3, "the version 2 segment is not appended to");
    assert_eq!(fs::read(&segs[1]).unwrap(), before[&segment_file_name(5)], "the v2 segment is unchanged");
    assert_eq!(version_of(&segs[2]), FORMAT_VERSION);
    assert_eq!(segs[2].file_name().unwrap().to_str().unwrap(), segment_file_name(7));
    let mut expect = fixture_records();
    expect.push((4, b"seven".to_vec()));
    assert_matches(&read_all(tmp.path()), &expect, 1);

    // Reopened once more: v2, v2, v3 read as one log, and it goes on in v3.
    let (mut w, report) = WalWriter::open(tmp.path(), config(160)).unwrap();
    assert_eq!((report.last_lsn, report.truncated_tail), (7, None));
    assert_eq!(w.append(5, b"eight").unwrap(), 8);
    w.sync().unwrap();
    drop(w);
    expect.push((5, b"eight".to_vec()));
    assert_matches(&read_all(tmp.path()), &expect, 1);
    assert_eq!(segment_paths(tmp.path()).len(), 3);
}

#[test]
fn version_2_tails_keep_the_version_2_rules() {
    // Zeros after the last record of a version 2 segment are a torn tail (a v2 writer
    // never preallocated), cut by shortening the file.
    let tmp = copy_fixture();
    let last = tmp.path().join(segment_file_name(5));
    let len = fs::metadata(&last).unwrap().len();
    let mut bytes = fs::read(&last).unwrap();
    bytes.extend_from_slice(&[0; 100]);
    fs::write(&last, &bytes).unwrap();
    let r = WalReader::open(tmp.path()).unwrap();
    assert_eq!(r.iter_from(0).count(), 6);
    assert_eq!(r.torn_tail().map(|t| (t.offset, t.bytes_dropped)), Some((len, 100)));
    let (_, report) = WalWriter::open(tmp.path(), config(160)).unwrap();
    assert_eq!(report.truncated_tail.map(|t| (t.offset, t.bytes_dropped)), Some((len, 100)));
    assert_eq!(fs::metadata(&last).unwrap().len(), len, "a v2 torn tail is cut with set_len");

    // A torn last batch in the last v2 segment: it loses its only batch, so the
    // header-only v2 segment is rewritten as version 3 and the log continues in it.
    let tmp = copy_fixture();
    let last = tmp.path().join(segment_file_name(5));
    let bytes = fs::read(&last).unwrap();
    fs::write(&last, &bytes[..bytes.len() - 3]).unwrap();
    let (mut w, report) = WalWriter::open(tmp.path(), config(160)).unwrap();
    assert_eq!(report.last_lsn, 4);
    assert_eq!(report.truncated_tail.unwrap().offset, 24);
    assert_eq!(version_of(&last), FORMAT_VERSION);
    assert_eq!(w.append(7, b"five again").unwrap(), 5);
    w.sync().unwrap();
    drop(w);
    let mut expect = fixture_records()[..4].to_vec();
    expect.push((7, b"five again".to_vec()));
    assert_matches(&read_all(tmp.path()), &expect, 1);
    assert_eq!(segment_paths(tmp.path()).len(), 2);
}

/// The offset just past record `r`.
fn end_of(r: &stockd_wal::WalRecord) -> u64 {
    r.offset + (RECORD_HEADER_LEN + r.payload.len()) as u64
}

#[test]
fn reopen_after_a_clean_stop_continues_at_the_logical_end() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = || WalConfig { preallocate: 64 * 1024, ..config(1 << 20) };
    let records = random_records(7, 30, 200);
    write_log(tmp.path(), cfg(), &records, 4);
    let seg = segment_paths(tmp.path()).pop().unwrap();
    let file_len = fs::metadata(&seg).unwrap().len();
    let logical_end = end_of(read_all(tmp.path()).last().unwrap());
    assert!(file_len > logical_end + 32 * 1024, "preallocated: file {file_len}, data {logical_end}");

    let (mut w, report) = WalWriter::open(tmp.path(), cfg()).unwrap();
    assert_eq!((report.last_lsn, report.truncated_tail), (30, None));
    assert_eq!(w.append(1, b"next").unwrap(), 31);
    w.sync().unwrap();
    drop(w);
    let all = read_all(tmp.path());
    assert_eq!(all.len(), 31);
    assert_eq!(all[30].offset, logical_end, "the next record goes at the logical end, not the file end");
    assert_eq!(fs::metadata(&seg).unwrap().len(), file_len, "written inside the preallocated space");
    let mut expect = records.clone();
    expect.push((1, b"next".to_vec()));
    assert_matches(&all, &expect, 1);
}

#[test]
fn preallocation_never_grows_a_segment_past_its_size_and_retention_removes_them() {
    let tmp = tempfile::tempdir().unwrap();
    let seg_size = 8 * 1024;
    // Preallocation larger than a segment (so the cap decides), and batches of three
    // records well under a sixteenth of it (so every extension writes zeros ahead).
    let cfg = || WalConfig { preallocate: 64 * 1024, ..config(seg_size) };
    let records = random_records(8, 300, 300);
    let (mut w, _) = WalWriter::open(tmp.path(), cfg()).unwrap();
    for (i, (t, p)) in records.iter().enumerate() {
        w.append(*t, p).unwrap();
        if i % 3 == 2 {
            w.sync().unwrap();
        }
    }
    w.sync().unwrap();
    let r = WalReader::open(tmp.path()).unwrap();
    let segs = r.segments().to_vec();
    assert!(segs.len() > 4, "{}", segs.len());
    let all = read_all(tmp.path());
    for (i, s) in segs.iter().enumerate() {
        assert_eq!(s.size, fs::metadata(&s.path).unwrap().len(), "SegmentInfo::size is the file's size");
        let data_end = all.iter().filter(|r| r.segment == i).map(end_of).max().unwrap();
        assert!(s.size >= data_end && s.size <= seg_size, "segment {i}: size {}, data {data_end}", s.size);
        if i + 1 < segs.len() {
            assert_eq!(s.size, seg_size, "a full segment was preallocated up to the segment size");
        }
    }
    let cut = segs[3].first_lsn;
    assert_eq!(w.remove_segments_before(cut).unwrap(), 3);
    w.append(1, b"after retention").unwrap();
    w.sync().unwrap();
    drop(w);
    let r = WalReader::open(tmp.path()).unwrap();
    assert_eq!(r.segments()[0].first_lsn, cut);
    let rest: Vec<_> = r.iter_from(0).collect::<Result<_, _>>().unwrap();
    assert_eq!(rest.first().unwrap().lsn, cut);
    assert_matches(&rest[..rest.len() - 1], &records[cut as usize - 1..], cut);
    let (_, report) = WalWriter::open(tmp.path(), cfg()).unwrap();
    assert_eq!((report.last_lsn, report.truncated_tail), (301, None));
}

#[test]
fn a_reader_reads_clean_prefixes_while_the_writer_fills_preallocated_space() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let records = random_records(53, 3000, 300);
    // Large segments and preallocation: every reader maps a file whose zeros the
    // writer is overwriting while the reader walks it.
    let cfg = WalConfig { preallocate: 256 * 1024, ..config(1 << 20) };
    let (mut w, _) = WalWriter::open(&dir, cfg).unwrap();
    let writer_records = records.clone();
    let h = std::thread::spawn(move || {
        for (i, (t, p)) in writer_records.iter().enumerate() {
            w.append(*t, p).unwrap();
            if i % 2 == 0 {
                w.sync().unwrap();
            }
        }
        w.sync().unwrap();
    });
    let mut lengths = Vec::new();
    while !h.is_finished() || lengths.is_empty() {
        let r = WalReader::open(&dir).unwrap();
        let got: Vec<_> = r.iter_from(0).collect::<Result<_, _>>().unwrap();
        assert_matches(&got, &records[..got.len()], 1);
        lengths.push(got.len());
    }
    h.join().unwrap();
    assert_matches(&read_all(&dir), &records, 1);
    assert!(lengths.windows(2).all(|w| w[0] <= w[1]), "a later reader never sees less");
}

#[test]
fn a_large_batch_grows_the_file_itself_and_a_small_one_writes_zeros_ahead() {
    let tmp = tempfile::tempdir().unwrap();
    // Preallocation 64 KiB: a batch of 4 KiB or more is large.
    let cfg = || WalConfig { preallocate: 64 * 1024, ..config(1 << 20) };
    let (mut w, _) = WalWriter::open(tmp.path(), cfg()).unwrap();
    let seg = segment_paths(tmp.path()).pop().unwrap();
    // 20 records of 1,000 bytes in one batch: about 20 KiB, written with no zeros ahead.
    for i in 0..20u8 {
        w.append(1, &[i; 1000]).unwrap();
    }
    w.sync().unwrap();
    let data_end = read_all(tmp.path()).iter().map(end_of).max().unwrap();
    assert_eq!(fs::metadata(&seg).unwrap().len(), data_end, "the large batch grew the file to its own end");
    // One small record: zeros are written 64 KiB ahead of it.
    w.append(1, b"small").unwrap();
    w.sync().unwrap();
    let data_end = read_all(tmp.path()).iter().map(end_of).max().unwrap();
    assert_eq!(fs::metadata(&seg).unwrap().len(), data_end + 64 * 1024, "preallocated after the small batch");
    // Another large batch that does not fit into what is left is written at the data
    // end again (not past the zeros), and the whole log reads and reopens.
    for i in 0..80u8 {
        w.append(2, &[i; 1000]).unwrap();
    }
    w.sync().unwrap();
    drop(w);
    let all = read_all(tmp.path());
    assert_eq!(all.len(), 101);
    assert_eq!(fs::metadata(&seg).unwrap().len(), all.iter().map(end_of).max().unwrap());
    let (w, report) = WalWriter::open(tmp.path(), cfg()).unwrap();
    assert_eq!((report.last_lsn, report.truncated_tail), (101, None));
    assert_eq!(w.next_lsn(), 102);
}
