//! Fuzz target: a snapshot file. `decode_snapshot` on the bytes, the same bytes as the
//! only file of a `SnapshotStore` (`load_latest`), and, when the file verifies, the
//! engine's `decode_state` on its payload. Never a panic; every error is a clear one.
//! The CI face is snapshots/tests/decode_props.rs and engine/tests/decode_props.rs.
//!
//! First byte even: the rest is the file as it is. Odd: the rest is a payload, framed
//! by `encode_snapshot` into a valid file (the fuzzer cannot forge the CRC), so the
//! engine's `decode_state` is reached through the file path too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stockd_snapshots::{decode_snapshot, encode_snapshot, snapshot_file_name, SnapshotError, SnapshotStore};

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else { return };
    let framed;
    let data = if mode & 1 == 1 {
        framed = encode_snapshot(7, rest).unwrap();
        &framed[..]
    } else {
        rest
    };
    match decode_snapshot(data) {
        Ok((_lsn, payload)) => {
            if let Ok(mut state) = stockd_engine::durable::decode_state(payload) {
                if state.check_invariants().is_ok() {
                    let _ = state.apply(&stockd_engine::Command::ExpireDue { retention_ms: 0 }, u64::MAX / 2);
                }
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(snapshot_file_name(7)), data).unwrap();
    let store = SnapshotStore::open(dir.path()).unwrap();
    match store.load_latest() {
        Ok(Some(s)) => assert_eq!(s.lsn, 7, "a snapshot is trusted only under its own name"),
        Ok(None) => panic!("a snapshot file exists"),
        Err(SnapshotError::NoValidSnapshot { .. }) => assert!(decode_snapshot(data).is_err()),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
