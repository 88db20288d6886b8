//! Replication seam: how a leader's WAL records reach a replicated log, and how a
//! standby applies them. The engine knows nothing of the log behind it (the server
//! implements [`Replicator`] over a Kafka changelog); it only promises:
//!
//! - **Leader.** Every record a shard appends is handed to [`Replicator::ship`] by the
//!   shard's syncer thread before the local `fdatasync` that covers it, and after the
//!   sync the syncer asks [`Replicator::confirm`] for the last LSN it shipped. No
//!   answer of those batches (reads and idempotent repeats included) leaves the shard
//!   before the replicator confirms that the replicated log holds every record up to
//!   it under this node's leadership. Meanwhile the shard thread applies and appends
//!   the next batches (the pipelined group commit, `shard.rs`): they are shipped,
//!   synced and confirmed together by the syncer's next round. `Pending` (the log is
//!   unreachable or slow) stalls the shard: it answers SERVICE_UNAVAILABLE and
//!   applies nothing new until a later `confirm` succeeds (the syncer asks again
//!   before each of the shard's batches), so writes resume when the log is back.
//!   `Fenced` (another node took over) fails the engine for good.
//! - **Standby.** `EngineConfig::standby` opens the engine without running recovery's
//!   settling steps, the expiry sweep or any other write of its own; client commands
//!   answer NOT_LEADER. [`crate::Engine::apply_replicated`] applies shipped records
//!   in LSN order through the same replay step as recovery (`apply_logged`), and
//!   appends each to the local WAL at the same LSN, so a standby's data directory is
//!   a copy of the leader's, record for record. [`crate::Engine::promote`] makes it
//!   the leader: it finishes what recovery would have (settle, expire, check), then
//!   starts the sweep.

use std::time::Duration;

/// One WAL record as the replicated log carries it: the shard's LSN, the WAL type
/// byte and the payload (`durable::encode_record`'s bytes, unchanged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShippedRecord {
    pub lsn: u64,
    pub record_type: u8,
    pub payload: Vec<u8>,
}

/// What the replicated log says about the records shipped up to an LSN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// Every record up to the LSN is in the log, under this node's leadership.
    Confirmed,
    /// Not yet (unreachable, slow): try again later. The reason is shown to clients.
    Pending(String),
    /// Another node leads now: nothing more may be acknowledged here, ever.
    Fenced(String),
}

/// A leader's link to its replicated log. Called on shards' syncer threads (one per
/// shard: a shard's calls never overlap); implementations must be cheap in `ship`
/// (queue and return) and bound `confirm` by its timeout.
pub trait Replicator: Send + Sync + 'static {
    /// Queues `records` (LSN ascending, contiguous with what this shard shipped
    /// before) for the log.
    fn ship(&self, shard: usize, records: &[ShippedRecord]);
    /// Waits up to `timeout` until every record of `shard` up to `lsn` is confirmed.
    fn confirm(&self, shard: usize, lsn: u64, timeout: Duration) -> Confirmation;
}

/// How long a shard's syncer waits for a confirmation before the shard stalls
/// (answers SERVICE_UNAVAILABLE and polls before each batch).
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a stalled shard waits per poll before it answers the queued requests.
pub const STALLED_POLL: Duration = Duration::from_millis(200);

/// The records of `shard`'s WAL in a data directory from `from_lsn` on (LSN
/// ascending, contiguous), as they would be shipped: a restarted node compares what
/// it holds beyond its last replicated position with the log. An error when the WAL
/// no longer starts at or below `from_lsn` (pruned after a snapshot) or is damaged.
pub fn read_local_records(
    fs: std::sync::Arc<dyn stockd_fs::Fs>,
    dir: &std::path::Path,
    shard: usize,
    from_lsn: u64,
) -> Result<Vec<ShippedRecord>, String> {
    let wal_dir = super::DataDir::new(dir).shard_wal(shard);
    let reader = stockd_wal::WalReader::open_with_fs(&wal_dir, fs).map_err(|e| e.to_string())?;
    let mut out: Vec<ShippedRecord> = Vec::new();
    for record in reader.iter_from(from_lsn) {
        let record = record.map_err(|e| e.to_string())?;
        let expected = out.last().map_or(from_lsn, |r| r.lsn + 1);
        if record.lsn != expected {
            return Err(format!("shard {shard}: the local WAL has LSN {} where {expected} was expected", record.lsn));
        }
        out.push(ShippedRecord { lsn: record.lsn, record_type: record.record_type, payload: record.payload });
    }
    Ok(out)
}
