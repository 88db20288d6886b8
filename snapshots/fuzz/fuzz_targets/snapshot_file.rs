//! Fuzz target: a snapshot file. `decode_snapshot` on the bytes, and the same bytes as
//! the only file of a `SnapshotStore` (`load_latest`). Never a panic; every error is a
//! clear one; a file is trusted only under its own name. The CI face is
//! snapshots/tests/decode_props.rs. The payload inside is opaque here (snapshots know
//! nothing of the engine): the engine's payload decoder is engine/fuzz `state_payload`.
//!
//! First byte even: the rest is the file as it is. Odd: the rest is a payload, framed
//! by `encode_snapshot` into a valid file (the fuzzer cannot forge the CRC), so the
//! store's accept path is reached too.
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
        Ok((lsn, payload)) => {
            assert!(payload.len() < data.len());
            if mode & 1 == 1 {
                assert_eq!((lsn, payload), (7, rest), "a framed payload decodes as it was framed");
            }
        }
        Err(e) => {
            assert!(mode & 1 == 0, "a file framed by encode_snapshot decodes: {e}");
            assert!(!e.to_string().is_empty());
        }
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
