//! Fuzz target: a WAL directory built from the input, then read with `WalReader` and
//! recovered with `WalWriter::open`. Never a panic; the reader and `open` agree on
//! whether the log is damaged; after a successful `open` the log reads cleanly and
//! takes new records. The CI face of this target is wal/tests/fuzz.rs.
//!
//! The first input byte picks how the rest becomes a log, so the fuzzer reaches the
//! record decoder without having to guess CRCs:
//! 0: the bytes are segment `…001.wal` as they are;
//! 1: a valid segment header, then the bytes;
//! 2: a valid log written by `WalWriter` from records cut out of the bytes (small
//!    segments, preallocated with zeros, so several files), then one flip or cut
//!    chosen by the last 5 bytes;
//! 3: a valid format version 2 segment header, then the bytes (the older layout,
//!    where zeros after the data are a torn tail, not preallocated space).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use stockd_wal::{
    segment_file_name, Durability, WalConfig, WalReader, WalWriter, FORMAT_VERSION, FORMAT_VERSION_V2, MAGIC,
    MAX_PAYLOAD, SEGMENT_HEADER_LEN,
};

fn config() -> WalConfig {
    WalConfig { segment_size: 200, durability: Durability::None, ..WalConfig::default() }
}

fn header(first_lsn: u64, version: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(SEGMENT_HEADER_LEN);
    h.extend_from_slice(&MAGIC);
    h.extend_from_slice(&version.to_le_bytes());
    h.extend_from_slice(&first_lsn.to_le_bytes());
    let crc = crc32fast::hash(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    h
}

fn segments(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

/// Flips or cuts one byte position counted across all segment files.
fn corrupt(dir: &Path, at: u32, how: u8) {
    let files = segments(dir);
    let total: u64 = files.iter().map(|f| std::fs::metadata(f).unwrap().len()).sum();
    let mut at = u64::from(at) % (total + 1);
    for f in files {
        let mut bytes = std::fs::read(&f).unwrap();
        let len = bytes.len() as u64;
        if at < len || (at == len && how & 0x80 != 0) {
            if how & 0x80 != 0 {
                bytes.truncate(at as usize);
            } else {
                bytes[at as usize] ^= how | 1;
            }
            std::fs::write(&f, bytes).unwrap();
            return;
        }
        at -= len;
    }
}

fn exercise(dir: &Path) {
    let (reader_ok, records) = {
        let reader = WalReader::open(dir).unwrap();
        let mut ok = true;
        let mut n = 0u64;
        for item in reader.iter_from(0) {
            match item {
                Ok(r) => {
                    assert!(r.payload.len() <= MAX_PAYLOAD);
                    n += 1;
                }
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    ok = false;
                }
            }
        }
        // Starting in the middle must not panic either.
        for item in reader.iter_from(n / 2 + 1) {
            let _ = item;
        }
        (ok, n)
    };
    match WalWriter::open(dir, config()) {
        Ok((mut writer, report)) => {
            assert!(reader_ok, "open accepted a log the reader rejected");
            assert!(report.records >= records.min(report.records));
            let reader = WalReader::open(dir).unwrap();
            let mut clean = 0u64;
            for r in reader.iter_from(0) {
                r.expect("clean after open");
                clean += 1;
            }
            assert_eq!(clean, report.records);
            assert!(reader.torn_tail().is_none());
            assert_eq!(writer.append(7, b"after").unwrap(), report.last_lsn + 1);
            writer.sync().unwrap();
        }
        Err(e) => {
            assert!(!reader_ok, "open rejected a log the reader accepted: {e}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join(segment_file_name(1));
    match mode % 4 {
        0 => std::fs::write(&first, rest).unwrap(),
        1 | 3 => {
            let mut bytes = header(1, if mode % 4 == 1 { FORMAT_VERSION } else { FORMAT_VERSION_V2 });
            bytes.extend_from_slice(rest);
            std::fs::write(&first, bytes).unwrap();
        }
        _ => {
            let (mut body, edit) = rest.split_at(rest.len().saturating_sub(5));
            let (mut writer, _) = WalWriter::open(dir.path(), config()).unwrap();
            while let Some((&len, tail)) = body.split_first() {
                let (payload, next) = tail.split_at((len as usize % 48).min(tail.len()));
                writer.append(len, payload).unwrap();
                body = next;
            }
            writer.sync().unwrap();
            drop(writer);
            if let [a, b, c, d, how] = *edit {
                corrupt(dir.path(), u32::from_le_bytes([a, b, c, d]), how);
            }
        }
    }
    exercise(dir.path());
});
