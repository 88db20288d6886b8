//! Helpers shared by the engine's test binaries: seeded randomness and power cuts.
//! (Each test binary compiles this module; not every binary uses every helper.)
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use stockd_wal::WalReader;

/// SplitMix64: tiny, good enough, and the same on every platform.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Cuts the WAL in `wal` at a random byte offset anywhere after the end of record
/// `durable` (and removes the segments after the cut): a power loss that kept an
/// arbitrary prefix of what was never synced. Returns the bytes cut.
pub fn cut_wal_after(wal: &Path, durable: u64, rng: &mut Rng) -> Result<u64, String> {
    let reader = WalReader::open(wal).map_err(|e| e.to_string())?;
    let segments: Vec<(PathBuf, u64)> = reader.segments().iter().map(|s| (s.path.clone(), s.size)).collect();
    // Where the non-durable bytes start: (segment index, offset).
    let mut start: Option<(usize, u64)> = None;
    let mut durable_end: Option<(usize, u64)> = None;
    for rec in reader.iter_from(0) {
        let rec = rec.map_err(|e| format!("WAL unreadable before the cut: {e}"))?;
        if rec.lsn == durable {
            durable_end = Some((rec.segment, rec.offset + (stockd_wal::RECORD_HEADER_LEN + rec.payload.len()) as u64));
        }
        if rec.lsn > durable && start.is_none() {
            start = Some((rec.segment, rec.offset));
        }
    }
    // Nothing durable in these segments: everything after the first header may go.
    let start = start.or(durable_end).unwrap_or((0, stockd_wal::SEGMENT_HEADER_LEN as u64));
    // Non-durable bytes, segment by segment, in log order.
    let mut spans = Vec::new();
    for (i, (path, size)) in segments.iter().enumerate().skip(start.0) {
        let from = if i == start.0 { start.1.min(*size) } else { 0 };
        spans.push((path.clone(), from, *size));
    }
    let total: u64 = spans.iter().map(|(_, a, b)| b - a).sum();
    if total == 0 {
        return Ok(0);
    }
    let mut cut = rng.below(total + 1);
    let cut_bytes = total - cut;
    let mut removing = false;
    for (path, from, to) in spans {
        if removing {
            std::fs::remove_file(&path).map_err(|e| e.to_string())?;
            continue;
        }
        let len = to - from;
        if cut <= len {
            let f = std::fs::OpenOptions::new().write(true).open(&path).map_err(|e| e.to_string())?;
            f.set_len(from + cut).map_err(|e| e.to_string())?;
            removing = true;
        } else {
            cut -= len;
        }
    }
    Ok(cut_bytes)
}

// ---- ids and requests -------------------------------------------------------------

use stockd_engine::{Command, Engine, OrderId, ReservationKey, SetItem, Sku};

pub fn sku(s: &str) -> Sku {
    Sku::parse(s, "sku").unwrap()
}

pub fn order(s: &str) -> OrderId {
    OrderId::parse(s, "orderId").unwrap()
}

/// The reservation of orderId `s`.
pub fn key(s: &str) -> ReservationKey {
    ReservationKey::Order(order(s))
}

/// The first SKU named `{prefix}-{n}` that lives on `shard` of `shards`.
pub fn sku_on(shard: usize, prefix: &str, shards: usize) -> Sku {
    (0..).map(|n| sku(&format!("{prefix}-{n}"))).find(|s| stockd_engine::shard_of_sku(s, shards) == shard).unwrap()
}

/// Sets `s`'s onHand at the default location, nothing else.
pub fn set_item(s: &Sku, on_hand: u64) -> SetItem {
    SetItem::on_hand(s.clone(), on_hand)
}

/// The same as the shard's command (what it logs).
pub fn set_item_command(s: &Sku, on_hand: u64) -> Command {
    Command::SetItem(SetItem::on_hand(s.clone(), on_hand))
}

/// Stocks `s` with `on_hand` units (panics on refusal).
pub fn stock(engine: &Engine, s: &Sku, on_hand: u64) {
    engine.blocking().set_item(set_item(s, on_hand)).unwrap();
}

/// Storage that takes a snapshot after every synced batch.
pub fn snapshot_each_batch() -> stockd_engine::StorageConfig {
    stockd_engine::StorageConfig {
        snapshot_every_records: 1,
        snapshot_records_per_entry: 0,
        snapshot_every: std::time::Duration::from_secs(3600),
        ..Default::default()
    }
}
