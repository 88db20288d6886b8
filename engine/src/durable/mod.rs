//! Durability: the engine over a data directory. Each shard has its own WAL
//! (`shard-NNN/wal/`) and snapshots (`shard-NNN/snapshots/`); `Engine::open` recovers
//! every shard from its newest good snapshot plus the WAL after it, settles
//! reservations a crash left half-made, checks every invariant, and only then
//! returns an engine that accepts requests. `history` serves an item's stock
//! history from the same WAL.
//!
//! Retention (`wal_log.rs`, `outbox.rs`): after each snapshot a background pass
//! prunes snapshots to the newest `snapshots_kept`, and the WAL's disk half (on the
//! shard's syncer thread) removes segments wholly covered by every retained snapshot. With an outbox consumer registered
//! (`StorageConfig::outbox`, `Engine::outbox`: the Kafka publisher), segments and
//! snapshots are also kept back to its acknowledged LSN per shard, so a follower
//! reopened at that LSN misses nothing; what that holds is measured per shard and
//! bounded by a ceiling whose policy refuses new writes (default) or drops the held
//! records with a count and an error log. The shard clock's floor is part of the
//! state and its snapshot (`ShardState::clock_floor`, state version 4).

pub mod data_dir;
pub mod follower;
pub mod history;
mod log_record;
pub mod outbox;
mod recovery;
mod replication;
mod state_codec;
mod wal_log;

pub use data_dir::DataDir;
pub use follower::{FollowedRecord, WalFollower};
pub use history::{read_history, HistoryEntry, HistoryPage, HistoryQuery};
pub use log_record::{
    apply_logged, command_type, decode_record, encode_record, encode_record_into, LogRecord, LEGACY_PAYLOAD_VERSION,
    PAYLOAD_VERSION,
};
pub use outbox::{OutboxConfig, OutboxFullPolicy, OutboxRetention};
pub use recovery::{RecoveryReport, ShardRecovery};
pub use replication::{read_local_records, Confirmation, Replicator, ShippedRecord, CONFIRM_TIMEOUT, STALLED_POLL};
pub use state_codec::{decode_state, encode_state, STATE_VERSION};
pub use stockd_fs::{Fs, RealFs, SimFs};
pub use stockd_wal::{Durability, FaultInjector};

use std::sync::Arc;
use std::time::Duration;

/// Settings of a durable engine's storage.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// `Fsync` (default): nothing is acknowledged before fdatasync. `None`: never
    /// syncs; unsafe, for benchmarks only.
    pub durability: Durability,
    /// WAL segment size in bytes; segments rotate when they would exceed it.
    pub segment_size: u64,
    /// Take a shard snapshot after this many logged records...
    pub snapshot_every_records: u64,
    /// ...but never before this many records per entry of the shard's state
    /// (`ShardState::entry_count`). A snapshot costs O(state) on the shard thread
    /// (the clone), so this keeps that cost amortized over the records it covers: a
    /// flash sale that piles up a million active reservations is not cloned every
    /// `snapshot_every_records`. Recovery then replays at most
    /// max(`snapshot_every_records`, this × entries) records per shard, about as many
    /// as the snapshot holds. 0 turns the floor off.
    pub snapshot_records_per_entry: u64,
    /// ...or after this long with at least one new record.
    pub snapshot_every: Duration,
    /// Snapshots kept per shard (at least 2, so a corrupt newest one has a fallback).
    pub snapshots_kept: usize,
    /// Test hook: make WAL writes or syncs fail.
    pub faults: Option<Arc<FaultInjector>>,
    /// The filesystem every file of the data directory is reached through: the
    /// real one (default), or `stockd_fs::SimFs` in tests that cut power (losing a
    /// random subset of unsynced pages and directory entries) or inject faults.
    pub fs: Arc<dyn stockd_fs::Fs>,
    /// Registers an outbox consumer (the Kafka publisher): WAL and snapshots are kept
    /// back to its acknowledged LSN per shard (`Engine::outbox`), up to a ceiling
    /// (see `outbox.rs`). None: retention follows snapshots only.
    pub outbox: Option<OutboxConfig>,
    /// A leader's replicated log (`replication.rs`): every appended record is
    /// shipped to it and nothing is answered before it confirms. None: local only.
    pub replicator: Option<Arc<dyn Replicator>>,
}

impl std::fmt::Debug for dyn Replicator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Replicator")
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            durability: Durability::Fsync,
            segment_size: 64 * 1024 * 1024,
            snapshot_every_records: 200_000,
            snapshot_records_per_entry: 1,
            snapshot_every: Duration::from_secs(300),
            snapshots_kept: 2,
            faults: None,
            fs: stockd_fs::real(),
            outbox: None,
            replicator: None,
        }
    }
}
