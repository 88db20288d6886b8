//! A data directory written by the engine before `HOLDS_SETTLED` existed (payload
//! version 2) still opens, and replays as that engine ran: it forgot a finished
//! cross-shard header after retention with no record saying its holds were settled
//! (it settled them synchronously). Replayed with today's rule alone, that header
//! would be kept, and a later reserve of the same orderId in the log would not replay.

use std::path::Path;
use stockd_engine::offline::{apply_logged, decode_record, encode_record, LEGACY_PAYLOAD_VERSION, PAYLOAD_VERSION};
use stockd_engine::*;
use stockd_wal::{WalConfig, WalWriter};

mod common;
use common::*;

const START: Millis = 1_700_000_000_000;

/// Logs `(shard, now, command)` records as the old engine wrote them (payload
/// version 2), applying each to a scratch state with the old rule to learn ids.
struct OldLog {
    writers: Vec<WalWriter>,
    states: Vec<ShardState>,
}

impl OldLog {
    fn new(dir: &Path) -> OldLog {
        std::fs::create_dir_all(dir).unwrap();
        let layout = DataDir::new(dir);
        std::fs::write(layout.manifest(), DataDir::manifest_text(2)).unwrap();
        let writers = (0..2)
            .map(|s| {
                let wal = layout.shard_wal(s);
                std::fs::create_dir_all(&wal).unwrap();
                std::fs::create_dir_all(layout.shard_snapshots(s)).unwrap();
                WalWriter::open(&wal, WalConfig::default()).unwrap().0
            })
            .collect();
        OldLog { writers, states: (0..2).map(ShardState::new).collect() }
    }

    fn log(&mut self, shard: usize, now: Millis, command: Command) -> Outcome {
        let applied = apply_logged(&mut self.states[shard], &command, now, true).unwrap();
        let (kind, mut payload) = encode_record(now, &command);
        payload[0] = LEGACY_PAYLOAD_VERSION;
        self.writers[shard].append(kind, &payload).unwrap();
        self.writers[shard].sync().unwrap();
        applied.outcome
    }

    /// A cross-shard order as the old engine logged it: open, holds, activate,
    /// commit, the other shard's hold committed.
    fn order_committed(&mut self, o: &str, a: &Sku, b: &Sku, now: Millis) {
        let lines = vec![(a.clone(), 1), (b.clone(), 2)];
        let open = Command::OpenReservation { order_id: order(o), lines, ttl_secs: 600, metadata: None };
        let Outcome::Opened(r) = self.log(0, now, open) else { panic!("open") };
        let id = r.reservation_id;
        let mut allocations = Vec::new();
        for (shard, s, q) in [(0, a, 1), (1, b, 2)] {
            let hold = Command::PlaceHold {
                reservation_id: id,
                order_id: order(o),
                lines: vec![(s.clone(), q)],
                placement: Default::default(),
            };
            let Outcome::Placed { allocations: got, .. } = self.log(shard, now, hold) else { panic!("hold") };
            allocations.extend(got);
        }
        self.log(0, now, Command::ActivateReservation { reservation_id: id, allocations });
        self.log(0, now, Command::CommitReservation { key: ReservationKey::Order(order(o)), quantities: None });
        self.log(1, now, Command::CommitHold { reservation_id: id, committed: vec![(b.clone(), 2)] });
    }
}

#[test]
fn an_old_log_that_purged_a_cross_shard_header_and_reused_its_order_id_opens() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (sku_on(0, "A", 2), sku_on(1, "B", 2));
    let mut old = OldLog::new(dir.path());
    for (shard, s) in [(0, &a), (1, &b)] {
        old.log(shard, START, set_item_command(s, 10));
    }
    old.order_committed("o-1", &a, &b, START);
    // A day later the old engine forgot o-1 (retention 1 h), then o-1 came again.
    let later = START + 24 * 3600 * 1000;
    let Outcome::Expired { purged, .. } = old.log(0, later, Command::ExpireDue { retention_ms: 3_600_000 }) else {
        panic!("expire_due")
    };
    assert_eq!(purged, 1, "the old rule forgets the committed header");
    old.order_committed("o-1", &a, &b, later);
    drop(old);

    let config = EngineConfig {
        shards: 2,
        expiry_interval: None,
        clock: std::sync::Arc::new(ManualClock::new(later)),
        ..Default::default()
    };
    let (engine, report) = Engine::open(dir.path(), config, StorageConfig::default())
        .unwrap_or_else(|e| panic!("an old data directory must open: {e}"));
    assert_eq!(report.shards.iter().map(|s| s.records_replayed).sum::<u64>(), 15);
    let e = engine.blocking();
    e.check_invariants().unwrap();
    let r = e.get_reservation(ReservationKey::Order(order("o-1"))).unwrap();
    assert_eq!(r.status, ReservationStatus::Committed);
    assert_eq!(r.created_at, later, "the second o-1, not the forgotten one");
    assert_eq!((e.get_item(a).unwrap().sold, e.get_item(b).unwrap().sold), (2, 4));
    engine.shutdown();
}

/// The payload bytes an engine wrote for each command whose shape changed in the
/// code (struct variants became variants carrying a struct: `Command::SetItem(SetItem)`,
/// ...), captured from the engine before that change. bincode writes a struct
/// variant and a newtype variant holding a struct the same way, so the log's bytes
/// did not change: these still decode to the same command and encode to the same bytes.
#[test]
fn records_written_before_commands_carried_structs_decode_and_encode_byte_for_byte() {
    for (command, hex) in golden_commands() {
        let golden: Vec<u8> =
            (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        assert_eq!(golden[0], 3, "captured at payload version 3");
        let (kind, payload) = encode_record(START, &command);
        // Version 4 writes the same bytes after its version byte, except that a
        // transfer and a receipt end with their idempotency key (here none: one 0).
        let mut now = golden.clone();
        now[0] = PAYLOAD_VERSION;
        if matches!(command, Command::Transfer(_) | Command::ReceiveIncoming { .. }) {
            now.push(0);
        }
        assert_eq!(payload, now, "{} encodes as before", command.kind());
        let decoded = decode_record(kind, &golden).unwrap();
        assert_eq!((decoded.now, &decoded.command), (START, &command), "{} decodes as before", command.kind());
        assert!(!decoded.legacy);
        assert_eq!(decode_record(kind, &payload).unwrap().command, command);
    }
}

fn golden_commands() -> Vec<(Command, &'static str)> {
    let l = |s: &str| LocationId::parse(s, "location").unwrap();
    vec![
        (
            Command::SetItem(SetItem {
                sku: sku("SKU-1"),
                on_hand: 40,
                low_stock_threshold: Some(5),
                max_per_order: Some(0),
                expected_version: Some(3),
                location: Some(l("berlin")),
                incoming: Some(7),
            }),
            "03fd0068e5cf8b0100000005534b552d312801050100010301066265726c696e0107",
        ),
        (
            Command::SetItem(SetItem::on_hand(sku("SKU-2"), 1)),
            "03fd0068e5cf8b0100000005534b552d32010000000000",
        ),
        (
            Command::AdjustItem(Adjust {
                sku: sku("SKU-1"),
                delta: -3,
                reason: AdjustReason::Damaged,
                note: Some("dropped".into()),
                idempotency_key: Some("k-1".into()),
                expected_version: Some(4),
                location: Some(l("berlin")),
            }),
            "03fd0068e5cf8b0100000105534b552d310501010764726f7070656401036b2d31010401066265726c696e",
        ),
        (
            Command::Transfer(Transfer {
                sku: sku("SKU-1"),
                from: l("berlin"),
                to: l("paris"),
                quantity: 2,
                in_transit: true,
                note: Some("truck 9".into()),
                idempotency_key: None,
            }),
            "03fd0068e5cf8b0100000205534b552d31066265726c696e05706172697302010107747275636b2039",
        ),
        (
            // Built by hand from the layout (no capture was kept): time, variant 3,
            // SKU, location, quantity.
            Command::ReceiveIncoming { sku: sku("SKU-1"), location: l("berlin"), quantity: 2, idempotency_key: None },
            "03fd0068e5cf8b0100000305534b552d31066265726c696e02",
        ),
        (
            Command::ReserveLocal(ReserveLocal {
                order_id: order("o-1"),
                lines: vec![(sku("SKU-1"), 2), (sku("SKU-2"), 1)],
                ttl_secs: 600,
                metadata: Some("m".into()),
                placement: Placement {
                    strategy: AllocationStrategy::default(),
                    region: Some("eu".into()),
                    locations: vec![(sku("SKU-1"), l("berlin"))],
                },
            }),
            "03fd0068e5cf8b01000007036f2d310205534b552d310205534b552d3201fb580201016d00010265750105534b552d31066265726c696e",
        ),
    ]
}
