//! The TTL policy (issue 15, "Holds longer than a day"): `EngineConfig::default_ttl_secs`
//! and `max_ttl_secs` (default 900 s and 90 days, at most `MAX_TTL_CEILING_SECS`);
//! a request's `expiresIn` is 1..=max; an extension is capped at `created_at + max`,
//! with the cap carried in the logged `ExtendReservationWithin`, so replay decides as
//! the live engine did; an `EXTEND` record of the engines before (type 12, cap
//! 86,400 s) keeps its bytes and still replays.

use std::sync::Arc;
use stockd_engine::limits::{DEFAULT_MAX_TTL_SECS, DEFAULT_TTL_SECS, MAX_TTL_CEILING_SECS};
use stockd_engine::offline::{apply_logged, decode_record, encode_record, PAYLOAD_VERSION};
use stockd_engine::*;
use stockd_wal::{WalConfig, WalWriter};

mod common;
use common::*;

const START: Millis = 1_700_000_000_000;
const DAY: u64 = 24 * 3600;

fn config(clock: &ManualClock, default_ttl_secs: u64, max_ttl_secs: u64) -> EngineConfig {
    EngineConfig {
        shards: 2,
        expiry_interval: None,
        clock: Arc::new(clock.clone()),
        default_ttl_secs,
        max_ttl_secs,
        ..Default::default()
    }
}

fn request(o: &str, s: &Sku, ttl: Option<u64>) -> ReserveRequest {
    ReserveRequest {
        order_id: order(o),
        lines: vec![(s.clone(), 2)],
        ttl_secs: ttl,
        metadata: None,
        placement: Default::default(),
    }
}

fn validation(err: EngineError) -> (String, String) {
    match err {
        EngineError::Validation { field, message } => (field, message),
        other => panic!("expected VALIDATION_ERROR, got {other:?}"),
    }
}

#[test]
fn a_three_day_hold_lives_three_days_and_then_expires() {
    let clock = ManualClock::new(START);
    let engine = Engine::in_memory(config(&clock, DEFAULT_TTL_SECS, DEFAULT_MAX_TTL_SECS)).unwrap();
    let e = engine.blocking();
    let s = sku("LONG");
    stock(&engine, &s, 5);
    let r = e.reserve(request("o-long", &s, Some(3 * DAY))).unwrap().reservation;
    assert_eq!(r.expires_at, START + 3 * DAY * 1000);

    clock.advance_secs(2 * DAY);
    assert!(e.expire_due().unwrap().is_empty(), "nothing is due after 2 of 3 days");
    let now = e.get_reservation(key("o-long")).unwrap();
    assert_eq!(now.status, ReservationStatus::Active);
    assert_eq!(e.get_item(s.clone()).unwrap().reserved, 2);

    clock.advance_secs(DAY + 1);
    let expired = e.expire_due().unwrap();
    assert_eq!(expired.iter().map(|r| r.order_id.to_string()).collect::<Vec<_>>(), ["o-long"]);
    assert_eq!(e.get_reservation(key("o-long")).unwrap().status, ReservationStatus::Expired);
    assert_eq!(e.get_item(s).unwrap().reserved, 0, "the units are back on sale");
    e.check_invariants().unwrap();
    engine.shutdown();
}

#[test]
fn the_default_ttl_applies_when_a_request_names_none() {
    let clock = ManualClock::new(START);
    let engine = Engine::in_memory(config(&clock, 3600, 30 * DAY)).unwrap();
    let e = engine.blocking();
    let s = sku("DEF");
    stock(&engine, &s, 10);
    let r = e.reserve(request("o-def", &s, None)).unwrap().reservation;
    assert_eq!(r.expires_at, START + 3_600_000);
    // The batch path too.
    let many = e.reserve_many(vec![request("o-def-2", &s, None), request("o-own", &s, Some(7 * DAY))]);
    assert_eq!(many[0].as_ref().unwrap().reservation.expires_at, START + 3_600_000);
    assert_eq!(many[1].as_ref().unwrap().reservation.expires_at, START + 7 * DAY * 1000);
    // Over the configured max: refused naming expiresIn, in both paths.
    let (field, message) = validation(e.reserve(request("o-over", &s, Some(30 * DAY + 1))).unwrap_err());
    assert_eq!(field, "expiresIn");
    assert!(message.contains(&format!("{}", 30 * DAY)), "{message}");
    let many = e.reserve_many(vec![request("o-over", &s, Some(30 * DAY + 1))]);
    assert_eq!(validation(many.into_iter().next().unwrap().unwrap_err()).0, "expiresIn");
    assert!(e.get_reservation(key("o-over")).is_err(), "a refused reserve leaves nothing");
    engine.shutdown();
}

#[test]
fn an_extension_is_capped_at_creation_plus_max() {
    let clock = ManualClock::new(START);
    let engine = Engine::in_memory(config(&clock, DEFAULT_TTL_SECS, 5 * DAY)).unwrap();
    let e = engine.blocking();
    let s = sku("EXT");
    stock(&engine, &s, 5);
    e.reserve(request("o-ext", &s, Some(2 * DAY))).unwrap();
    clock.advance_secs(DAY);
    // One second past created + 5 days: refused, nothing changes.
    let before = e.get_reservation(key("o-ext")).unwrap();
    let (field, message) = validation(e.extend(key("o-ext"), 4 * DAY + 1).unwrap_err());
    assert_eq!(field, "expiresIn");
    assert!(message.contains(&format!("at most {} s from its creation", 5 * DAY)), "{message}");
    assert_eq!(e.get_reservation(key("o-ext")).unwrap(), before);
    // Exactly created + 5 days: accepted.
    let r = e.extend(key("o-ext"), 4 * DAY).unwrap();
    assert_eq!(r.expires_at, START + 5 * DAY * 1000);
    // A TTL over the max itself is refused before it reaches the shard.
    let (field, message) = validation(e.extend(key("o-ext"), 5 * DAY + 1).unwrap_err());
    assert_eq!(field, "expiresIn");
    assert!(message.contains(&format!("got {}", 5 * DAY + 1)), "{message}");
    engine.shutdown();
}

#[test]
fn the_config_is_validated() {
    let clock = ManualClock::new(START);
    let refused = |default, max| match Engine::in_memory(config(&clock, default, max)) {
        Err(e) => validation(e),
        Ok(_) => panic!("default {default}, max {max} must be refused"),
    };
    assert_eq!(refused(DEFAULT_TTL_SECS, 0).0, "max_ttl_secs");
    assert_eq!(refused(DEFAULT_TTL_SECS, MAX_TTL_CEILING_SECS + 1).0, "max_ttl_secs");
    assert_eq!(refused(0, DAY).0, "default_ttl_secs");
    let (field, message) = refused(DAY + 1, DAY);
    assert_eq!(field, "default_ttl_secs");
    assert!(message.contains("max_ttl_secs"), "{message}");
    // The defaults, and the bounds themselves, are accepted.
    let d = EngineConfig::default();
    assert_eq!((d.default_ttl_secs, d.max_ttl_secs), (900, 90 * DAY));
    const { assert!(MAX_TTL_CEILING_SECS >= 90 * DAY) };
    Engine::in_memory(config(&clock, 1, 1)).unwrap().shutdown();
    Engine::in_memory(config(&clock, MAX_TTL_CEILING_SECS, MAX_TTL_CEILING_SECS)).unwrap().shutdown();
}

/// The extension cap travels in the record: reopened with a smaller `max_ttl_secs`,
/// the log still replays the 5-day extension the engine accepted.
#[test]
fn an_extension_replays_with_the_cap_it_was_logged_with() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START);
    let s = sku("RP");
    {
        let (engine, _) = Engine::open(dir.path(), config(&clock, 900, 10 * DAY), StorageConfig::default()).unwrap();
        stock(&engine, &s, 5);
        engine.blocking().reserve(request("o-rp", &s, Some(2 * DAY))).unwrap();
        clock.advance_secs(DAY);
        let r = engine.blocking().extend(key("o-rp"), 4 * DAY).unwrap();
        assert_eq!(r.expires_at, START + 5 * DAY * 1000);
        engine.shutdown();
    }
    let (engine, report) = Engine::open(dir.path(), config(&clock, 900, DAY), StorageConfig::default())
        .unwrap_or_else(|e| panic!("the log must replay under a smaller max: {e}"));
    assert_eq!(report.shards.iter().map(|s| s.records_replayed).sum::<u64>(), 3);
    let r = engine.blocking().get_reservation(key("o-rp")).unwrap();
    assert_eq!((r.status, r.expires_at), (ReservationStatus::Active, START + 5 * DAY * 1000));
    engine.shutdown();
}

/// An `EXTEND` record as the engines before this change wrote it: the same bytes
/// (hand-built from bincode's rules with the variant index those engines had), and
/// it replays with their cap, `created_at + 86,400 s`.
#[test]
fn an_old_extend_record_keeps_its_bytes_and_replays() {
    let old = Command::ExtendReservation { key: key("o1"), ttl_secs: 60 };
    let (kind, payload) = encode_record(START, &old);
    // [payload version 3][now: varint u64 = 253 + 8 LE bytes][variant 16 = ExtendReservation]
    // [ReservationKey::Order = 0][orderId: len 2, "o1"][ttl_secs: 60]
    let mut want = vec![3, 253];
    want.extend_from_slice(&START.to_le_bytes());
    want.extend_from_slice(&[16, 0, 2, b'o', b'1', 60]);
    assert_eq!(decode_record(12, &want).unwrap().command, old, "the version-3 bytes decode");
    // Payload version 4 changed only transfers and receipts: the same bytes after
    // the version byte.
    want[0] = PAYLOAD_VERSION;
    assert_eq!((kind, payload), (12, want));

    // A data directory with such a record opens and replays it.
    let dir = tempfile::tempdir().unwrap();
    let s = sku_on(0, "OLD", 1);
    let layout = DataDir::new(dir.path());
    std::fs::write(layout.manifest(), DataDir::manifest_text(1)).unwrap();
    let wal = layout.shard_wal(0);
    std::fs::create_dir_all(&wal).unwrap();
    std::fs::create_dir_all(layout.shard_snapshots(0)).unwrap();
    let (mut writer, _) = WalWriter::open(&wal, WalConfig::default()).unwrap();
    let mut scratch = ShardState::new(0);
    let reserve = Command::ReserveLocal(ReserveLocal {
        order_id: order("o1"),
        lines: vec![(s.clone(), 1)],
        ttl_secs: 23 * 3600 + 60,
        metadata: None,
        placement: Default::default(),
    });
    // The old engine's extension: 23 h later, to created + 86,400 s exactly.
    let later = START + 23 * 3600 * 1000;
    let extend = Command::ExtendReservation { key: key("o1"), ttl_secs: 3600 };
    for (now, command) in [(START, set_item_command(&s, 3)), (START, reserve), (later, extend)] {
        let (kind, payload) = encode_record(now, &command);
        let logged = decode_record(kind, &payload).unwrap();
        apply_logged(&mut scratch, &logged.command, logged.now, logged.legacy).unwrap();
        writer.append(kind, &payload).unwrap();
    }
    writer.sync().unwrap();
    drop(writer);
    // Past the old cap, the old command is still refused (so no such record exists).
    let err = apply_logged(&mut scratch, &Command::ExtendReservation { key: key("o1"), ttl_secs: 3601 }, later, false)
        .unwrap_err();
    assert_eq!(validation(err).0, "expiresIn");

    let clock = ManualClock::new(later);
    let (engine, report) = Engine::open(dir.path(), EngineConfig { shards: 1, ..config(&clock, 900, 90 * DAY) }, {
        StorageConfig::default()
    })
    .unwrap_or_else(|e| panic!("a log with an old EXTEND record must open: {e}"));
    assert_eq!(report.shards[0].records_replayed, 3);
    let r = engine.blocking().get_reservation(key("o1")).unwrap();
    assert_eq!((r.status, r.expires_at), (ReservationStatus::Active, START + DAY * 1000));
    engine.shutdown();
}
