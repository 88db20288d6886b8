//! `ReservationId`: a reservation's id as the three numbers it is made of, 16 bytes
//! and `Copy`, instead of the 36-character text clients see.
//!
//! The text is `{secs:08x}-{shard:04x}-{seq>>48:04x}-{seq>>32&0xffff:04x}-{seq&0xffffffff:012x}`
//! (the layout of a UUID): the second the reservation was made, its home shard (so a
//! lookup by id is routed without a directory) and the home shard's sequence number.
//! A shard keeps an id in up to six places (header map, header, hold map, orderId
//! index, expiry and retention timers); as text that was a 24-byte `String` and a
//! 48-byte heap chunk each.
//!
//! Text and value are a bijection: [`ReservationId::parse`] accepts exactly the texts
//! [`Display`](std::fmt::Display) writes (36 characters, dashes at 8, 13, 18 and 23,
//! lowercase hex digits, the last field at most `ffffffff`), so a text that does not
//! parse names no reservation. The derived `Ord` (secs, shard, seq) is the order of
//! the texts, so timers keyed by id expire in the same order as before. With serde the
//! id is the same string, so WAL records and snapshots are byte-identical to those of
//! the `String` ids.

use crate::Millis;
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A reservation id; see the module docs. Field order is the sort order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReservationId {
    secs: u32,
    shard: u16,
    seq: u64,
}

/// Length of an id's text.
pub const RESERVATION_ID_LEN: usize = 36;

/// Positions of the dashes in an id's text.
const DASHES: [usize; 4] = [8, 13, 18, 23];

impl ReservationId {
    /// The id of the `seq`-th reservation of `shard`, made at `now`. Keeps the low 32
    /// bits of the second and the low 16 bits of the shard, as the text always did.
    pub fn new(now: Millis, shard: usize, seq: u64) -> ReservationId {
        ReservationId { secs: (now / 1000) as u32, shard: shard as u16, seq }
    }

    /// The id's three numbers: second, shard, sequence (what the order compares).
    pub(crate) fn parts(self) -> (u32, u16, u64) {
        (self.secs, self.shard, self.seq)
    }

    /// The id of these three numbers (`parts` back).
    pub(crate) fn from_parts(secs: u32, shard: u16, seq: u64) -> ReservationId {
        ReservationId { secs, shard, seq }
    }

    /// The home shard the id names.
    pub fn shard(self) -> usize {
        usize::from(self.shard)
    }

    /// The id a text names, if it is one this type writes (see the module docs).
    pub fn parse(text: &str) -> Option<ReservationId> {
        let b = text.as_bytes();
        if b.len() != RESERVATION_ID_LEN || DASHES.iter().any(|&i| b[i] != b'-') {
            return None;
        }
        let secs = hex(&b[0..8])?;
        let shard = hex(&b[9..13])?;
        let (hi, mid, lo) = (hex(&b[14..18])?, hex(&b[19..23])?, hex(&b[24..36])?);
        if lo > 0xffff_ffff {
            return None;
        }
        Some(ReservationId { secs: secs as u32, shard: shard as u16, seq: (hi << 48) | (mid << 32) | lo })
    }

    /// The id's text, written digit by digit into a buffer (this runs on the hot path
    /// whenever an id is logged or answered).
    fn text(self) -> [u8; RESERVATION_ID_LEN] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        fn put(out: &mut [u8], value: u64) {
            let n = out.len();
            for (i, d) in out.iter_mut().enumerate() {
                *d = HEX[((value >> (4 * (n - 1 - i))) & 0xf) as usize];
            }
        }
        let mut out = [b'-'; RESERVATION_ID_LEN];
        put(&mut out[0..8], u64::from(self.secs));
        put(&mut out[9..13], u64::from(self.shard));
        put(&mut out[14..18], (self.seq >> 48) & 0xffff);
        put(&mut out[19..23], (self.seq >> 32) & 0xffff);
        put(&mut out[24..36], self.seq & 0xffff_ffff);
        out
    }

    /// Runs `f` on the id's text without allocating.
    pub fn with_str<R>(self, f: impl FnOnce(&str) -> R) -> R {
        let text = self.text();
        f(std::str::from_utf8(&text).expect("hex digits and dashes are ASCII"))
    }
}

/// The value of lowercase hex digits (at most 16 of them), or `None`.
fn hex(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |acc, &c| {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        Some(acc << 4 | u64::from(d))
    })
}

impl fmt::Display for ReservationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_str(|s| f.pad(s))
    }
}

/// As the text's `Debug` (quoted), like the `String` it replaces.
impl fmt::Debug for ReservationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_str(|s| write!(f, "{s:?}"))
    }
}

/// The error of parsing a text that is not a reservation id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidReservationId;

impl fmt::Display for InvalidReservationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a reservation id")
    }
}

impl std::error::Error for InvalidReservationId {}

impl FromStr for ReservationId {
    type Err = InvalidReservationId;
    fn from_str(s: &str) -> Result<ReservationId, InvalidReservationId> {
        ReservationId::parse(s).ok_or(InvalidReservationId)
    }
}

impl PartialEq<str> for ReservationId {
    fn eq(&self, other: &str) -> bool {
        self.with_str(|s| s == other)
    }
}

impl PartialEq<String> for ReservationId {
    fn eq(&self, other: &String) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<ReservationId> for String {
    fn eq(&self, other: &ReservationId) -> bool {
        other == self.as_str()
    }
}

impl Serialize for ReservationId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.with_str(|s| serializer.serialize_str(s))
    }
}

impl<'de> Deserialize<'de> for ReservationId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ReservationId, D::Error> {
        struct Text;
        impl de::Visitor<'_> for Text {
            type Value = ReservationId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a reservation id (8-4-4-4-12 lowercase hex digits)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ReservationId, E> {
                ReservationId::parse(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        deserializer.deserialize_str(Text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The text as the engine wrote it before ids were typed.
    fn old_text(now: Millis, shard: usize, seq: u64) -> String {
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            (now / 1000) as u32,
            shard as u16,
            (seq >> 48) & 0xffff,
            (seq >> 32) & 0xffff,
            seq & 0xffff_ffff
        )
    }

    #[test]
    fn text_is_the_old_text() {
        let id = ReservationId::new(1_700_000_000_123, 7, 0x1234_5678_9abc);
        assert_eq!(id.to_string(), old_text(1_700_000_000_123, 7, 0x1234_5678_9abc));
        assert_eq!(id.to_string(), "6553f100-0007-0000-1234-000056789abc");
        assert_eq!(id.shard(), 7);
        assert_eq!(
            ReservationId::new(4_294_967_295_000, 0xffff, u64::MAX).to_string(),
            "ffffffff-ffff-ffff-ffff-0000ffffffff"
        );
        assert_eq!(ReservationId::new(0, 0, 0).to_string(), "00000000-0000-0000-0000-000000000000");
        assert_eq!(format!("{id:?}"), format!("{:?}", id.to_string()));
        assert_eq!(std::mem::size_of::<ReservationId>(), 16);
    }

    #[test]
    fn parse_rejects_what_it_does_not_write() {
        let good = "6553f100-0007-0000-1234-000056789abc";
        assert!(ReservationId::parse(good).is_some());
        for bad in [
            "",
            "nope",
            "not-an-id",
            "6553F100-0007-0000-1234-000056789abc",  // uppercase
            "6553f100-0007-0000-1234-000056789aBc",  // uppercase
            "6553f100-0007-0000-1234-000056789ab",   // short
            "6553f100-0007-0000-1234-000056789abc0", // long
            " 6553f100-0007-0000-1234-000056789abc", // padded
            "6553f1000-007-0000-1234-000056789abc",  // dash moved
            "6553f100-00070-000-1234-000056789abc",  // dash moved
            "6553f100-0007-0000-12340-00056789abc",  // dash moved
            "6553f100_0007_0000_1234_000056789abc",  // not dashes
            "6553f100-0007-0000-1234-000156789abc",  // last field > ffffffff
            "6553f100-0007-0000-1234-10000000000",   // short last field
            "6553f100-0007-0000-1234-100000000000",  // last field > ffffffff
            "zzzzzzzz-zzzz-0000-0000-000000000000",  // not hex
            "6553f100-0007-0000-12g4-000056789abc",  // not hex
            "+553f100-0007-0000-1234-000056789abc",  // sign
            "6553f100-0007-0000-1234-00005678é9b",   // not ASCII (36 bytes)
        ] {
            assert_eq!(ReservationId::parse(bad), None, "{bad:?}");
            assert!(bad.parse::<ReservationId>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn serde_is_the_string() {
        let id = ReservationId::new(1_700_000_000_123, 3, 99);
        let text = id.to_string();
        let config = bincode::config::standard();
        let as_id = bincode::serde::encode_to_vec(id, config).unwrap();
        assert_eq!(as_id, bincode::serde::encode_to_vec(&text, config).unwrap());
        let (back, _): (ReservationId, usize) = bincode::serde::decode_from_slice(&as_id, config).unwrap();
        assert_eq!(back, id);
        let bad = bincode::serde::encode_to_vec("6553F100-0007-0000-1234-000056789abc", config).unwrap();
        assert!(bincode::serde::decode_from_slice::<ReservationId, _>(&bad, config).is_err());
    }

    proptest! {
        #[test]
        fn text_round_trips(now in any::<u64>(), shard in 0usize..=0xffff, seq in any::<u64>()) {
            let id = ReservationId::new(now, shard, seq);
            let text = id.to_string();
            prop_assert_eq!(&text, &old_text(now, shard, seq));
            prop_assert_eq!(ReservationId::parse(&text), Some(id));
            prop_assert_eq!(id.shard(), shard);
            prop_assert!(id == text);
        }

        #[test]
        fn order_is_text_order(
            a in (any::<u32>(), 0usize..4, any::<u64>()),
            b in (any::<u32>(), 0usize..4, any::<u64>()),
            small in any::<bool>(),
        ) {
            // Small values too, so equal fields are common and later fields decide.
            let pick = |(s, h, q): (u32, usize, u64)| if small {
                ReservationId::new(u64::from(s % 3) * 1000, h, (q % 3) | ((q & 1) << 40))
            } else {
                ReservationId::new(u64::from(s) * 1000, h, q)
            };
            let (a, b) = (pick(a), pick(b));
            prop_assert_eq!(a.cmp(&b), a.to_string().cmp(&b.to_string()));
        }
    }
}
