//! Fuzz target: the engine's snapshot payload decoder `decode_state`, straight (the
//! CRC of a snapshot file keeps mutations from reaching it through a file; the file
//! framing is snapshots/fuzz `snapshot_file`).
//! Never a panic or an abort; what decodes with its invariants intact takes an expiry
//! sweep without a panic. The CI face is engine/tests/decode_props.rs.
//! Known finding (FUZZING.md): a huge string length prefix aborts the process.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stockd_engine::offline::decode_state;

fuzz_target!(|data: &[u8]| {
    match decode_state(data) {
        Ok(mut state) => {
            if state.check_invariants().is_ok() {
                let _ = state.apply(&stockd_engine::Command::ExpireDue { retention_ms: 0 }, 1_700_000_000_000);
            }
        }
        Err(e) => assert!(!e.is_empty()),
    }
});
