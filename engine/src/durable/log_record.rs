//! The engine's WAL payload: one applied `Command` and the time it was applied at.
//!
//! Payload layout: `[PAYLOAD_VERSION: u8][bincode 2 (standard config, serde) of
//! LogRecord]`. The WAL record's type byte is `command_type(&command)`, so tools can
//! filter by type without decoding. The WAL frame (length, CRC, LSN) is wal/FORMAT.md.

use crate::command::{Applied, Command};
use crate::error::EngineError;
use crate::shard_state::ShardState;
use crate::Millis;
use serde::{Deserialize, Serialize};

/// Version of the payload encoding this build writes. 3: written by an engine that
/// logs `HOLDS_SETTLED`; the bytes of a record are the same as in version 2.
pub const PAYLOAD_VERSION: u8 = 3;
/// The version before: written by an engine that forgot a finished header after
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
        Command::Transfer(_) => 17,
        Command::ReceiveIncoming { .. } => 18,
        Command::SetWarehouses { .. } => 19,
        Command::HoldsSettled { .. } => 20,
        Command::ExtendReservationWithin { .. } => 21,
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
    let record = LogRecordRef { now, command };
    bincode::serde::encode_into_std_write(&record, payload, bincode::config::standard())
        .expect("encoding into a Vec cannot fail");
    command_type(command)
}

/// Decodes a payload written by `encode_record`, checking version and type byte.
pub fn decode_record(record_type: u8, payload: &[u8]) -> Result<LogRecord, String> {
    let (&version, body) = payload.split_first().ok_or("empty payload")?;
    if version != PAYLOAD_VERSION && version != LEGACY_PAYLOAD_VERSION {
        return Err(format!(
            "unknown payload format version {version} (this build reads {LEGACY_PAYLOAD_VERSION} and {PAYLOAD_VERSION})"
        ));
    }
    let config = bincode::config::standard().with_limit::<{ 2 * 1024 * 1024 }>();
    let (mut record, used): (LogRecord, usize) =
        bincode::serde::decode_from_slice(body, config).map_err(|e| format!("undecodable payload: {e}"))?;
    record.legacy = version == LEGACY_PAYLOAD_VERSION;
    if used != body.len() {
        return Err(format!("{} trailing bytes after the record", body.len() - used));
    }
    if command_type(&record.command) != record_type {
        return Err(format!("type byte {record_type} does not match the {} command inside", record.command.kind()));
    }
    Ok(record)
}

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
