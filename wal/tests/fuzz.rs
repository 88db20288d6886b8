//! Property tests: arbitrary or mutated bytes never make the reader or `open` panic;
//! they give Ok or a clear error, and a successful open leaves a log that reads cleanly.
mod common;

use std::fs;
use std::path::Path;

use common::*;
use proptest::prelude::*;
use stockd_wal::{WalError, WalReader, WalWriter};

const SEG: u64 = 1024;

fn clear_error(e: &WalError) {
    match e {
        WalError::Corrupt { reason, .. } => assert!(!reason.is_empty()),
        WalError::BadVersion { .. } | WalError::Io { .. } => {}
        other => panic!("unexpected error kind: {other}"),
    }
}

/// Reader then writer over `dir`; checks the invariants that must hold either way.
fn exercise(dir: &Path) -> Option<u64> {
    let reader_ok = {
        let r = WalReader::open(dir).unwrap();
        let mut ok = true;
        for item in r.iter_from(0) {
            if let Err(e) = item {
                clear_error(&e);
                ok = false;
            }
        }
        ok
    };
    match WalWriter::open(dir, config(SEG)) {
        Ok((mut w, report)) => {
            assert!(reader_ok, "open accepted what the reader rejected");
            // After open the log reads cleanly: exactly report.records, no torn tail.
            let r = WalReader::open(dir).unwrap();
            let n = r.iter_from(0).inspect(|x| assert!(x.is_ok(), "clean after open: {x:?}")).count() as u64;
            assert_eq!(n, report.records);
            assert!(r.torn_tail().is_none());
            assert_eq!(w.append(1, b"z").unwrap(), report.last_lsn + 1);
            w.sync().unwrap();
            Some(report.last_lsn)
        }
        Err(e) => {
            clear_error(&e);
            assert!(!reader_ok, "open rejected what the reader accepted: {e}");
            None
        }
    }
}

fn valid_log(dir: &Path) -> Vec<(u8, Vec<u8>)> {
    let records = random_records(61, 30, 120);
    write_log(dir, config(SEG), &records, 3);
    records
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { file: usize, at: usize, bit: u8 },
    Truncate { file: usize, at: usize },
    Overwrite { file: usize, at: usize, bytes: Vec<u8> },
    Append { file: usize, bytes: Vec<u8> },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<usize>(), 0u8..8).prop_map(|(file, at, bit)| Mutation::Flip { file, at, bit }),
        (any::<usize>(), any::<usize>()).prop_map(|(file, at)| Mutation::Truncate { file, at }),
        (any::<usize>(), any::<usize>(), proptest::collection::vec(any::<u8>(), 1..40))
            .prop_map(|(file, at, bytes)| Mutation::Overwrite { file, at, bytes }),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..200))
            .prop_map(|(file, bytes)| Mutation::Append { file, bytes }),
    ]
}

fn apply(dir: &Path, m: &Mutation) {
    let files = segment_paths(dir);
    let pick = |i: usize| &files[i % files.len()];
    match m {
        Mutation::Flip { file, at, bit } => {
            let p = pick(*file);
            let mut b = fs::read(p).unwrap();
            if !b.is_empty() {
                let i = at % b.len();
                b[i] ^= 1 << bit;
                fs::write(p, b).unwrap();
            }
        }
        Mutation::Truncate { file, at } => {
            let p = pick(*file);
            let mut b = fs::read(p).unwrap();
            b.truncate(at % (b.len() + 1));
            fs::write(p, b).unwrap();
        }
        Mutation::Overwrite { file, at, bytes } => {
            let p = pick(*file);
            let mut b = fs::read(p).unwrap();
            if !b.is_empty() {
                let i = at % b.len();
                let end = (i + bytes.len()).min(b.len());
                b[i..end].copy_from_slice(&bytes[..end - i]);
                fs::write(p, b).unwrap();
            }
        }
        Mutation::Append { file, bytes } => {
            let p = pick(*file);
            let mut b = fs::read(p).unwrap();
            b.extend_from_slice(bytes);
            fs::write(p, b).unwrap();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        with_header in any::<bool>(),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let mut content = Vec::new();
        if with_header {
            // A valid header followed by garbage exercises the record decoder.
            valid_log(tmp.path());
            content = fs::read(&segment_paths(tmp.path())[0]).unwrap()[..24].to_vec();
            for p in segment_paths(tmp.path()) { fs::remove_file(p).unwrap(); }
        }
        content.extend_from_slice(&bytes);
        fs::write(tmp.path().join("00000000000000000001.wal"), &content).unwrap();
        exercise(tmp.path());
    }

    #[test]
    fn mutated_logs_never_panic(muts in proptest::collection::vec(mutation(), 1..4)) {
        let tmp = tempfile::tempdir().unwrap();
        valid_log(tmp.path());
        for m in &muts { apply(tmp.path(), m); }
        exercise(tmp.path());
    }

    #[test]
    fn truncating_the_last_segment_always_opens_to_a_prefix(cut in any::<usize>()) {
        let tmp = tempfile::tempdir().unwrap();
        let records = valid_log(tmp.path());
        let last = segment_paths(tmp.path()).pop().unwrap();
        let mut b = fs::read(&last).unwrap();
        b.truncate(cut % (b.len() + 1));
        fs::write(&last, b).unwrap();
        let last_lsn = exercise(tmp.path()).expect("a truncated tail always opens");
        let read = read_all(tmp.path());
        assert_matches(&read[..last_lsn as usize], &records[..last_lsn as usize], 1);
    }
}
