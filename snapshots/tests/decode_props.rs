//! Property tests: decode_snapshot never panics on arbitrary or mutated input, rejects
//! every damaged encoding it can detect, and round-trips every valid one.

use proptest::prelude::*;
use stockd_snapshots::{decode_snapshot, encode_snapshot, CorruptReason, SnapshotError, HEADER_LEN, MIN_FILE_LEN};

/// Ok, or one of the two content errors; anything else (or a panic) fails.
fn assert_clear_outcome(bytes: &[u8]) {
    match decode_snapshot(bytes) {
        Ok((_, payload)) => {
            assert_eq!(payload.len() as u64 + MIN_FILE_LEN, bytes.len() as u64);
        }
        Err(SnapshotError::Corrupt { reason, path }) => {
            assert!(path.as_os_str().is_empty());
            assert!(!reason.to_string().is_empty());
        }
        Err(SnapshotError::BadVersion { found, .. }) => assert_ne!(found, 1),
        Err(other) => panic!("unexpected error kind: {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        assert_clear_outcome(&bytes);
    }

    #[test]
    fn bytes_with_valid_magic_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..128)) {
        let mut bytes = b"STKDSNAP\x01\x00\x00\x00".to_vec();
        bytes.extend_from_slice(&tail);
        assert_clear_outcome(&bytes);
    }

    #[test]
    fn round_trip(lsn in any::<u64>(), payload in proptest::collection::vec(any::<u8>(), 0..512)) {
        let bytes = encode_snapshot(lsn, &payload).unwrap();
        prop_assert_eq!(bytes.len() as u64, MIN_FILE_LEN + payload.len() as u64);
        let (got_lsn, got_payload) = decode_snapshot(&bytes).unwrap();
        prop_assert_eq!(got_lsn, lsn);
        prop_assert_eq!(got_payload, payload.as_slice());
    }

    /// CRC-32 plus the header checks detect every single-bit error.
    #[test]
    fn any_single_bit_flip_is_rejected(
        lsn in any::<u64>(),
        payload in proptest::collection::vec(any::<u8>(), 0..256),
        pos in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let mut bytes = encode_snapshot(lsn, &payload).unwrap();
        let i = pos.index(bytes.len());
        bytes[i] ^= 1 << bit;
        prop_assert!(decode_snapshot(&bytes).is_err());
        assert_clear_outcome(&bytes);
    }

    #[test]
    fn any_truncation_or_extension_is_rejected(
        payload in proptest::collection::vec(any::<u8>(), 0..256),
        cut in any::<prop::sample::Index>(),
        extra in proptest::collection::vec(any::<u8>(), 1..16),
    ) {
        let bytes = encode_snapshot(5, &payload).unwrap();
        let short = &bytes[..cut.index(bytes.len())];
        prop_assert!(decode_snapshot(short).is_err());
        let mut long = bytes.clone();
        long.extend_from_slice(&extra);
        let extended_is_length_mismatch = matches!(
            decode_snapshot(&long),
            Err(SnapshotError::Corrupt { reason: CorruptReason::LengthMismatch { .. }, .. })
        );
        prop_assert!(extended_is_length_mismatch);
    }

    /// Arbitrary multi-byte mutations (overwrites, including of the length field) never
    /// panic and give a clear outcome.
    #[test]
    fn random_mutations_never_panic(
        payload in proptest::collection::vec(any::<u8>(), 0..128),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        len_field in proptest::option::of(any::<u64>()),
    ) {
        let mut bytes = encode_snapshot(9, &payload).unwrap();
        for (pos, value) in edits {
            let i = pos.index(bytes.len());
            bytes[i] = value;
        }
        if let Some(len) = len_field {
            bytes[HEADER_LEN - 8..HEADER_LEN].copy_from_slice(&len.to_le_bytes());
        }
        assert_clear_outcome(&bytes);
    }
}

/// A fixed encoding, pinned byte for byte: the example in FORMAT.md.
#[test]
fn golden_encoding_matches_format_md() {
    let bytes = encode_snapshot(0x0102_0304_0506_0708, b"hi").unwrap();
    let expected: Vec<u8> = [
        &b"STKDSNAP"[..],
        &[0x01, 0x00, 0x00, 0x00],
        &[0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01],
        &[0x02, 0, 0, 0, 0, 0, 0, 0],
        b"hi",
    ]
    .concat();
    assert_eq!(&bytes[..bytes.len() - 4], expected.as_slice());
    let crc = crc32_of(&expected);
    assert_eq!(&bytes[bytes.len() - 4..], &crc.to_le_bytes());
    assert_eq!(crc, GOLDEN_CRC, "update FORMAT.md if this changes");
}

const GOLDEN_CRC: u32 = 0xBD81_F693;

/// Bitwise reference CRC-32 (IEEE 802.3, reflected, poly 0xEDB88320), independent of
/// crc32fast, so the test pins the algorithm and not just the library.
fn crc32_of(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}
