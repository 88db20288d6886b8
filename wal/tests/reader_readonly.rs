mod common;

use std::fs::{self, OpenOptions};

use common::*;
use stockd_wal::{WalError, WalReader, WalWriter};

fn read_everything(dir: &std::path::Path) -> usize {
    let r = WalReader::open(dir).unwrap();
    let mut n = 0;
    for from in [0, 1, 17, 1000] {
        n = r.iter_from(from).filter(|x| x.is_ok()).count();
    }
    let _ = r.iter_from(0).count();
    n
}

#[test]
fn reader_never_modifies_files() {
    let tmp = tempfile::tempdir().unwrap();
    write_log(tmp.path(), config(2048), &random_records(51, 100, 300), 4);
    let before = snapshot(tmp.path());
    read_everything(tmp.path());
    assert_eq!(snapshot(tmp.path()), before);

    // With a torn tail (partial record, in the preallocated zeros) present.
    let last = segment_paths(tmp.path()).pop().unwrap();
    let end = {
        let r = read_all(tmp.path());
        let rec = r.last().unwrap();
        rec.offset + stockd_wal::RECORD_HEADER_LEN as u64 + rec.payload.len() as u64
    };
    let f = OpenOptions::new().write(true).open(&last).unwrap();
    assert!(f.metadata().unwrap().len() >= end + 7 + 100, "the writer preallocated space past the data");
    std::os::unix::fs::FileExt::write_all_at(&f, &[40, 0, 0, 0, 1, 2, 3], end).unwrap();
    drop(f);
    let before = snapshot(tmp.path());
    let r = WalReader::open(tmp.path()).unwrap();
    assert_eq!(r.iter_from(0).filter(|x| x.is_ok()).count(), 100);
    assert!(r.iter_from(0).all(|x| x.is_ok()));
    assert_eq!(r.torn_tail().unwrap().bytes_dropped, 7, "the torn bytes, not the zeros after them");
    assert_eq!(snapshot(tmp.path()), before, "torn tail left in place");

    // With a torn segment header present: the reader must not repair it either.
    fs::write(tmp.path().join(format!("{:020}.wal", 101)), b"ST").unwrap();
    let before = snapshot(tmp.path());
    read_everything(tmp.path());
    assert_eq!(snapshot(tmp.path()), before);
}

#[test]
fn reader_on_missing_dir_errors_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nope");
    assert!(matches!(WalReader::open(&dir), Err(WalError::Io { .. })));
    assert!(!dir.exists());
}

#[test]
fn reader_while_writer_appends() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let records = random_records(52, 2000, 200);
    let (mut w, _) = WalWriter::open(&dir, config(4096)).unwrap();
    let writer_records = records.clone();
    let h = std::thread::spawn(move || {
        for (i, (t, p)) in writer_records.iter().enumerate() {
            w.append(*t, p).unwrap();
            if i % 3 == 0 {
                w.sync().unwrap();
            }
        }
        w.sync().unwrap();
    });
    for _ in 0..20 {
        // Every pass yields a clean prefix (a record being written is a torn tail).
        let r = WalReader::open(&dir).unwrap();
        let got: Vec<_> = r.iter_from(0).collect::<Result<_, _>>().unwrap();
        assert_matches(&got, &records[..got.len()], 1);
    }
    h.join().unwrap();
    assert_matches(&read_all(&dir), &records, 1);
}
