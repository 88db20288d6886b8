//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use stockd_wal::{FaultInjector, WalConfig, WalReader, WalRecord, WalWriter};

/// Deterministic xorshift generator (no extra dependency needed).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

/// `(type, payload)` pairs of random sizes in `0..max_len`.
pub fn random_records(seed: u64, n: usize, max_len: u64) -> Vec<(u8, Vec<u8>)> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let len = rng.below(max_len) as usize;
            (rng.next_u64() as u8, rng.bytes(len))
        })
        .collect()
}

pub fn config(segment_size: u64) -> WalConfig {
    WalConfig { segment_size, ..WalConfig::default() }
}

pub fn config_with_faults(segment_size: u64, faults: &Arc<FaultInjector>) -> WalConfig {
    WalConfig { segment_size, faults: Some(Arc::clone(faults)), ..WalConfig::default() }
}

/// Opens a fresh log in `dir`, appends all records, syncing every `batch` appends and
/// at the end. Returns the LSNs assigned.
pub fn write_log(dir: &Path, cfg: WalConfig, records: &[(u8, Vec<u8>)], batch: usize) -> Vec<u64> {
    let (mut w, _) = WalWriter::open(dir, cfg).unwrap();
    let mut lsns = Vec::new();
    for (i, (t, p)) in records.iter().enumerate() {
        lsns.push(w.append(*t, p).unwrap());
        if (i + 1) % batch == 0 {
            w.sync().unwrap();
        }
    }
    w.sync().unwrap();
    lsns
}

/// All records from the reader, panicking on any error.
pub fn read_all(dir: &Path) -> Vec<WalRecord> {
    let r = WalReader::open(dir).unwrap();
    let recs: Vec<WalRecord> = r.iter_from(0).collect::<Result<_, _>>().unwrap();
    recs
}

/// Segment files in `dir`, sorted.
pub fn segment_paths(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    v.sort();
    v
}

pub fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for e in fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
}

/// Every file's name and full contents.
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().to_string_lossy().into_owned(), fs::read(e.path()).unwrap())
        })
        .collect()
}

pub fn assert_matches(read: &[WalRecord], written: &[(u8, Vec<u8>)], first_lsn: u64) {
    assert_eq!(read.len(), written.len());
    for (i, (r, (t, p))) in read.iter().zip(written).enumerate() {
        assert_eq!(r.lsn, first_lsn + i as u64, "LSNs must be contiguous");
        assert_eq!(r.record_type, *t, "type of LSN {}", r.lsn);
        assert_eq!(&r.payload, p, "payload of LSN {}", r.lsn);
    }
}
