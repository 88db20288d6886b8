//! The changelog's message format: one Kafka message per shard WAL record, or an
//! epoch marker written by a node taking over. Partition = shard; no key.
//!
//! ```text
//! offset  size  field
//! 0       1     magic 0x53 ('S')
//! 1       1     format version (1)
//! 2       1     kind: 1 RECORD, 2 EPOCH
//! 3       8     epoch (u64 big-endian): the leadership the message belongs to
//! 11      1     node id length n (1..=64)
//! 12      n     node id (UTF-8)
//! RECORD:
//! 12+n    8     LSN (u64 big-endian), the shard's WAL LSN
//! 20+n    1     WAL record type byte
//! 21+n    ..    WAL payload, byte for byte as the leader's WAL holds it
//! EPOCH:
//! 12+n    8     the LSN the new leader had applied when it wrote the marker
//! 20+n    2     advertised URL length u (u16 big-endian)
//! 22+n    u     the new leader's advertised URL (UTF-8)
//! ```
//!
//! Every other byte string is refused with a reason (`decode`), never a panic.

use stockd_engine::ShippedRecord;

const MAGIC: u8 = 0x53;
const VERSION: u8 = 1;
const RECORD: u8 = 1;
const EPOCH: u8 = 2;
pub const MAX_NODE_ID: usize = 64;

/// Who wrote a message: the leadership (epoch, node) it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub epoch: u64,
    pub node: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Record { stamp: Stamp, record: ShippedRecord },
    Epoch { stamp: Stamp, base_lsn: u64, url: String },
}

fn header(kind: u8, stamp: &Stamp, extra: usize) -> Vec<u8> {
    debug_assert!(!stamp.node.is_empty() && stamp.node.len() <= MAX_NODE_ID);
    let mut out = Vec::with_capacity(12 + stamp.node.len() + extra);
    out.extend_from_slice(&[MAGIC, VERSION, kind]);
    out.extend_from_slice(&stamp.epoch.to_be_bytes());
    out.push(stamp.node.len() as u8);
    out.extend_from_slice(stamp.node.as_bytes());
    out
}

pub fn encode_record(stamp: &Stamp, record: &ShippedRecord) -> Vec<u8> {
    let mut out = header(RECORD, stamp, 9 + record.payload.len());
    out.extend_from_slice(&record.lsn.to_be_bytes());
    out.push(record.record_type);
    out.extend_from_slice(&record.payload);
    out
}

pub fn encode_epoch(stamp: &Stamp, base_lsn: u64, url: &str) -> Vec<u8> {
    let url = &url.as_bytes()[..url.len().min(u16::MAX as usize)];
    let mut out = header(EPOCH, stamp, 10 + url.len());
    out.extend_from_slice(&base_lsn.to_be_bytes());
    out.extend_from_slice(&(url.len() as u16).to_be_bytes());
    out.extend_from_slice(url);
    out
}

fn take<'a>(bytes: &mut &'a [u8], n: usize, what: &str) -> Result<&'a [u8], String> {
    if bytes.len() < n {
        return Err(format!("truncated changelog message: {what} needs {n} bytes, {} left", bytes.len()));
    }
    let (head, rest) = bytes.split_at(n);
    *bytes = rest;
    Ok(head)
}

fn u64_of(bytes: &mut &[u8], what: &str) -> Result<u64, String> {
    Ok(u64::from_be_bytes(take(bytes, 8, what)?.try_into().expect("8 bytes")))
}

pub fn decode(mut bytes: &[u8]) -> Result<Frame, String> {
    let b = &mut bytes;
    let head = take(b, 3, "header")?;
    if head[0] != MAGIC {
        return Err(format!("not a stockd changelog message (magic {:#04x})", head[0]));
    }
    if head[1] != VERSION {
        return Err(format!("changelog message format {} is not known to this version (it reads {VERSION})", head[1]));
    }
    let kind = head[2];
    let epoch = u64_of(b, "epoch")?;
    let n = take(b, 1, "node id length")?[0] as usize;
    if n == 0 || n > MAX_NODE_ID {
        return Err(format!("node id length {n} is outside 1..={MAX_NODE_ID}"));
    }
    let node = std::str::from_utf8(take(b, n, "node id")?).map_err(|_| "node id is not UTF-8".to_string())?;
    let stamp = Stamp { epoch, node: node.to_owned() };
    match kind {
        RECORD => {
            let lsn = u64_of(b, "LSN")?;
            let record_type = take(b, 1, "record type")?[0];
            Ok(Frame::Record { stamp, record: ShippedRecord { lsn, record_type, payload: b.to_vec() } })
        }
        EPOCH => {
            let base_lsn = u64_of(b, "base LSN")?;
            let u = u16::from_be_bytes(take(b, 2, "URL length")?.try_into().expect("2 bytes")) as usize;
            let url = std::str::from_utf8(take(b, u, "URL")?).map_err(|_| "URL is not UTF-8".to_string())?;
            if !b.is_empty() {
                return Err(format!("{} trailing bytes after an epoch marker", b.len()));
            }
            Ok(Frame::Epoch { stamp, base_lsn, url: url.to_owned() })
        }
        k => Err(format!("unknown changelog message kind {k}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp() -> Stamp {
        Stamp { epoch: 7, node: "node-a".into() }
    }

    #[test]
    fn records_and_markers_round_trip() {
        let record = ShippedRecord { lsn: 42, record_type: 15, payload: vec![3, 1, 4, 1, 5] };
        let bytes = encode_record(&stamp(), &record);
        assert_eq!(decode(&bytes).unwrap(), Frame::Record { stamp: stamp(), record });
        let bytes = encode_epoch(&stamp(), 99, "http://127.0.0.1:8081");
        assert_eq!(
            decode(&bytes).unwrap(),
            Frame::Epoch { stamp: stamp(), base_lsn: 99, url: "http://127.0.0.1:8081".into() }
        );
    }

    #[test]
    fn every_truncation_and_a_bad_header_is_an_error_not_a_panic() {
        let record = ShippedRecord { lsn: 1, record_type: 1, payload: vec![] };
        for bytes in [encode_record(&stamp(), &record), encode_epoch(&stamp(), 1, "http://x")] {
            let decoded = decode(&bytes).unwrap();
            for cut in 0..bytes.len() {
                let got = decode(&bytes[..cut]);
                // A record's payload may be empty, so only the full frame decodes to it.
                assert!(got.as_ref() != Ok(&decoded), "a cut at {cut} decoded as the whole frame");
            }
        }
        assert!(decode(&[0x00, 1, 1]).unwrap_err().contains("magic"));
        assert!(decode(&[MAGIC, 9, 1]).unwrap_err().contains("format 9"));
        let mut bad_kind = encode_epoch(&stamp(), 1, "u");
        bad_kind[2] = 9;
        assert!(decode(&bad_kind).unwrap_err().contains("kind 9"));
    }
}
