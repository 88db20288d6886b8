//! The engine's WAL payload: one applied `Command` and the time it was applied at.
//!
//! Payload layout: `[PAYLOAD_VERSION: u8][bincode 2 (standard config, serde) of
//! LogRecord]`. The WAL record's type byte is `command_type(&command)`, so tools can
//! filter by type without decoding. The WAL frame (length, CRC, LSN) is wal/FORMAT.md.
//! The hot record, a `ReserveLocal` whose placement names no location, is written
//! field by field (`encode_reserve_local`) instead of through serde: the same bytes,
//! checked against serde + bincode by a property test; every other record, and every
//! decode, goes through serde.

use crate::command::{Applied, Command};
use crate::error::EngineError;
use crate::shard_state::ShardState;
use crate::Millis;
use serde::{Deserialize, Serialize};

/// Version of the payload encoding this build writes. 4: `TRANSFER` and `RECEIVE`
/// end with an optional idempotency key; every other record's bytes are as in 3.
pub const PAYLOAD_VERSION: u8 = 4;
/// Written by an engine that logs `HOLDS_SETTLED` but whose `TRANSFER` and `RECEIVE`
/// had no idempotency key. Still read: those two decode with no key.
pub const NO_MOVEMENT_KEY_PAYLOAD_VERSION: u8 = 3;
/// Version 2: like 3, and written by an engine that forgot a finished header after
/// retention without logging that its holds on other shards were settled (it settled
/// them synchronously). Still read; replayed with that rule (`LogRecord::legacy`).
pub const LEGACY_PAYLOAD_VERSION: u8 = 2;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    /// The time the shard applied the command (ms since the Unix epoch).
    pub now: Millis,
    pub command: Command,
    /// Written by the previous payload version (not part of the encoding).
    #[serde(skip)]
    pub legacy: bool,
}

impl LogRecord {
    /// Applies this record to `state` as the engine that wrote it did
    /// (`apply_logged`).
    pub fn apply_to(&self, state: &mut ShardState) -> Result<Applied, EngineError> {
        apply_logged(state, &self.command, self.now, self.legacy)
    }
}

/// Replays one logged command: `ShardState::apply`, plus, for a record of the
/// previous payload version, that engine's retention rule: a finished header's holds
/// were settled when it finished (nothing was left unsettled), so it is tracked for
/// retention at once and a later `EXPIRE_DUE` of that log forgets it as it did then.
/// Every replayer (recovery, the follower, stockd-wal) goes through here.
pub fn apply_logged(
    state: &mut ShardState,
    command: &Command,
    now: Millis,
    legacy: bool,
) -> Result<Applied, EngineError> {
    let applied = state.apply(command, now)?;
    if legacy {
        state.adopt_legacy_settlement();
    }
    Ok(applied)
}

/// The WAL type byte of a command.
pub fn command_type(command: &Command) -> u8 {
    match command {
        Command::SetItem(_) => 1,
        Command::AdjustItem(_) => 2,
        Command::DeleteItem { .. } => 3,
        Command::OpenReservation { .. } => 4,
        Command::PlaceHold { .. } => 5,
        Command::ActivateReservation { .. } => 6,
        Command::AbortReservation { .. } => 7,
        Command::ReleaseHold { .. } => 8,
        Command::CommitHold { .. } => 9,
        Command::CommitReservation { .. } => 10,
        Command::ReleaseReservation { .. } => 11,
        Command::ExtendReservation { .. } => 12,
        Command::ExpireReservation { .. } => 13,
        Command::ExpireDue { .. } => 14,
        Command::ReserveLocal(_) => 15,
        Command::SetSalesBlocked { .. } => 16,
        Command::Transfer(_) => TRANSFER_TYPE,
        Command::ReceiveIncoming { .. } => RECEIVE_TYPE,
        Command::SetWarehouses { .. } => 19,
        Command::HoldsSettled { .. } => 20,
        Command::ExtendReservationWithin { .. } => 21,
        Command::ReturnSold(_) => 22,
    }
}

/// Encodes a record: `(type byte, payload)`.
pub fn encode_record(now: Millis, command: &Command) -> (u8, Vec<u8>) {
    let mut payload = Vec::with_capacity(96);
    let record_type = encode_record_into(&mut payload, now, command);
    (record_type, payload)
}

/// Encodes a record's payload into `payload` (cleared first, so a caller can reuse
/// one buffer for every record); returns the type byte.
pub fn encode_record_into(payload: &mut Vec<u8>, now: Millis, command: &Command) -> u8 {
    #[derive(Serialize)]
    struct LogRecordRef<'a> {
        now: Millis,
        command: &'a Command,
    }
    payload.clear();
    payload.push(PAYLOAD_VERSION);
    if let Command::ReserveLocal(reserve) = command {
        if reserve.placement.locations.is_empty() {
            // The hot record, written field by field: the same bytes as below
            // (`tests::the_direct_encoding_is_bincodes`), without serde's walk.
            put_varint(payload, now);
            put_varint(payload, RESERVE_LOCAL_VARIANT);
            encode_reserve_local(payload, reserve);
            return command_type(command);
        }
    }
    let record = LogRecordRef { now, command };
    bincode::serde::encode_into_std_write(&record, payload, bincode::config::standard())
        .expect("encoding into a Vec cannot fail");
    command_type(command)
}

/// `Command::ReserveLocal`'s variant index, as serde numbers the enum's variants (in
/// declaration order). Checked by `tests::the_direct_encoding_is_bincodes`.
const RESERVE_LOCAL_VARIANT: u64 = 7;

/// An unsigned integer as bincode's standard config writes it (varint): below 251 one
/// byte; else a marker (251, 252, 253) and the value as u16, u32 or u64, little-endian.
fn put_varint(out: &mut Vec<u8>, v: u64) {
    if v < 251 {
        out.push(v as u8);
    } else if v <= u64::from(u16::MAX) {
        out.push(251);
        out.extend_from_slice(&(v as u16).to_le_bytes());
    } else if v <= u64::from(u32::MAX) {
        out.push(252);
        out.extend_from_slice(&(v as u32).to_le_bytes());
    } else {
        out.push(253);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// A string as bincode writes it: its length, then its bytes.
fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// A `ReserveLocal` whose placement names no location, as serde + bincode write it:
/// the fields in declaration order (order id, lines, TTL, metadata, placement).
fn encode_reserve_local(out: &mut Vec<u8>, reserve: &crate::command::ReserveLocal) {
    let crate::command::ReserveLocal { order_id, lines, ttl_secs, metadata, placement } = reserve;
    debug_assert!(placement.locations.is_empty());
    put_str(out, order_id.as_str());
    put_varint(out, lines.len() as u64);
    for (sku, quantity) in lines {
        put_str(out, sku.as_str());
        put_varint(out, *quantity);
    }
    put_varint(out, *ttl_secs);
    match metadata {
        None => out.push(0),
        Some(m) => {
            out.push(1);
            put_str(out, m);
        }
    }
    put_varint(out, placement.strategy as u64);
    match &placement.region {
        None => out.push(0),
        Some(r) => {
            out.push(1);
            put_str(out, r);
        }
    }
    put_varint(out, 0); // no located lines
}

/// Decodes a payload written by `encode_record`, checking version and type byte.
pub fn decode_record(record_type: u8, payload: &[u8]) -> Result<LogRecord, String> {
    let (&version, body) = payload.split_first().ok_or("empty payload")?;
    if !(LEGACY_PAYLOAD_VERSION..=PAYLOAD_VERSION).contains(&version) {
        return Err(format!(
            "unknown payload format version {version} (this build reads {LEGACY_PAYLOAD_VERSION} to {PAYLOAD_VERSION})"
        ));
    }
    let config = bincode::config::standard().with_limit::<{ 2 * 1024 * 1024 }>();
    let undecodable = |e: bincode::error::DecodeError| format!("undecodable payload: {e}");
    let (mut record, used): (LogRecord, usize) = match (version, record_type) {
        (LEGACY_PAYLOAD_VERSION | NO_MOVEMENT_KEY_PAYLOAD_VERSION, TRANSFER_TYPE | RECEIVE_TYPE) => {
            decode_keyless_movement(body, config).map_err(undecodable)?
        }
        _ => bincode::serde::decode_from_slice(body, config).map_err(undecodable)?,
    };
    record.legacy = version == LEGACY_PAYLOAD_VERSION;
    if used != body.len() {
        return Err(format!("{} trailing bytes after the record", body.len() - used));
    }
    if command_type(&record.command) != record_type {
        return Err(format!("type byte {record_type} does not match the {} command inside", record.command.kind()));
    }
    Ok(record)
}

const TRANSFER_TYPE: u8 = 17;
const RECEIVE_TYPE: u8 = 18;

/// A `TRANSFER` or `RECEIVE` of payload version 2 or 3: the same bytes as today's
/// without the trailing key. Serde writes an enum variant as its index (a varint u32
/// in bincode's standard config) followed by the fields, so the old record reads as
/// `(now, variant index, fields)`; the index must be the command's.
fn decode_keyless_movement<C: bincode::config::Config>(
    body: &[u8],
    config: C,
) -> Result<(LogRecord, usize), bincode::error::DecodeError> {
    use crate::command::Transfer;
    use crate::location::LocationId;
    use crate::sku::Sku;
    type TransferFields = (Sku, LocationId, LocationId, u64, bool, Option<String>);
    type ReceiveFields = (Sku, LocationId, u64);
    let wrong = |index: u32| bincode::error::DecodeError::OtherString(format!("unexpected command variant {index}"));
    let ((now, index), head): ((Millis, u32), usize) = bincode::serde::decode_from_slice(body, config)?;
    let rest = &body[head..];
    let (command, used) = match index {
        TRANSFER_VARIANT => {
            let ((sku, from, to, quantity, in_transit, note), used): (TransferFields, usize) =
                bincode::serde::decode_from_slice(rest, config)?;
            let t = Transfer { sku, from, to, quantity, in_transit, note, idempotency_key: None };
            (Command::Transfer(t), used)
        }
        RECEIVE_VARIANT => {
            let ((sku, location, quantity), used): (ReceiveFields, usize) =
                bincode::serde::decode_from_slice(rest, config)?;
            (Command::ReceiveIncoming { sku, location, quantity, idempotency_key: None }, used)
        }
        other => return Err(wrong(other)),
    };
    Ok((LogRecord { now, command, legacy: false }, head + used))
}

/// The serde variant indexes of `Command::Transfer` and `Command::ReceiveIncoming`
/// (declaration order), checked by `tests::a_keyless_movement_of_version_3_decodes`.
const TRANSFER_VARIANT: u32 = 2;
const RECEIVE_VARIANT: u32 = 3;

/// Why [`replay_records`] stopped.
#[derive(Debug)]
pub(crate) enum ReplayError {
    /// The WAL could not be read.
    Wal(stockd_wal::WalError),
    /// Record `lsn` did not decode or apply: `"LSN {lsn}: {message}"`.
    Record { lsn: u64, message: String },
    /// The caller's own reason (shown as is).
    Other(String),
}

impl std::fmt::Display for ReplayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplayError::Wal(e) => write!(f, "{e}"),
            ReplayError::Record { lsn, message } => write!(f, "LSN {lsn}: {message}"),
            ReplayError::Other(reason) => f.write_str(reason),
        }
    }
}

/// The one replay loop of recovery and the background snapshot pass: decodes each
/// WAL record of `records` (a `WalReader::iter_from`, errors mapped with
/// `ReplayError::Wal`) and applies it to `state`
/// through [`LogRecord::apply_to`] (`apply_logged`), then calls `after(lsn, now)`,
/// which stops the replay with `Break` or fails it with `Err`.
pub(crate) fn replay_records(
    state: &mut ShardState,
    records: impl Iterator<Item = Result<stockd_wal::WalRecord, ReplayError>>,
    mut after: impl FnMut(u64, Millis) -> Result<std::ops::ControlFlow<()>, ReplayError>,
) -> Result<(), ReplayError> {
    for record in records {
        let record = record?;
        let lsn = record.lsn;
        let logged = decode_record(record.record_type, &record.payload)
            .map_err(|e| ReplayError::Record { lsn, message: e.to_string() })?;
        logged.apply_to(state).map_err(|e| ReplayError::Record {
            lsn,
            message: format!("{} failed on replay: {e}", logged.command.kind()),
        })?;
        if after(lsn, logged.now)?.is_break() {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::ReserveLocal;
    use crate::location::{AllocationStrategy, Placement};
    use crate::sku::{OrderId, Sku};
    use proptest::prelude::*;

    /// What `encode_record_into` wrote before the direct encoding: serde + bincode.
    fn by_serde(now: Millis, command: &Command) -> Vec<u8> {
        #[derive(Serialize)]
        struct LogRecordRef<'a> {
            now: Millis,
            command: &'a Command,
        }
        let mut out = vec![PAYLOAD_VERSION];
        bincode::serde::encode_into_std_write(LogRecordRef { now, command }, &mut out, bincode::config::standard())
            .unwrap();
        out
    }

    fn strategy(i: u8) -> AllocationStrategy {
        [AllocationStrategy::Priority, AllocationStrategy::MostAvailable, AllocationStrategy::SingleLocationOnly]
            [usize::from(i % 3)]
    }

    proptest! {
        /// Every varint width, text length, line count and option.
        #[test]
        fn the_direct_encoding_is_bincodes(
            now in prop_oneof![Just(0u64), 0u64..251, 251u64..70_000, 70_000u64..5_000_000_000, any::<u64>()],
            order in "[!-~]{1,128}",
            lines in prop::collection::vec(("[A-Za-z0-9-]{1,128}", prop_oneof![1u64..251, 251u64..1_000_000, any::<u64>()]), 0..5),
            ttl in prop_oneof![1u64..251, 251u64..70_000, 70_000u64..8_000_000],
            metadata in prop::option::of("[ -~]{0,300}"),
            strategy_index in 0u8..3,
            region in prop::option::of("[a-z]{0,300}"),
        ) {
            let command = Command::ReserveLocal(ReserveLocal {
                order_id: OrderId::parse(&order, "orderId").unwrap(),
                lines: lines.iter().map(|(s, q)| (Sku::parse(s, "sku").unwrap(), *q)).collect(),
                ttl_secs: ttl,
                metadata,
                placement: Placement { strategy: strategy(strategy_index), region, locations: Vec::new() },
            });
            let mut direct = Vec::new();
            let record_type = encode_record_into(&mut direct, now, &command);
            prop_assert_eq!(record_type, 15);
            prop_assert_eq!(&direct, &by_serde(now, &command));
            let back = decode_record(record_type, &direct).unwrap();
            prop_assert_eq!(back.command, command);
            prop_assert_eq!(back.now, now);
        }
    }
}
