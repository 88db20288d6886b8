//! The engine for offline readers of a data directory (`stockd-wal`, the Kafka
//! publisher's WAL follower, replication's local catch-up, benchmarks and fuzzers):
//! the one place they take the layout, the WAL record and snapshot codecs, replay
//! and item history from, so none of them works those out again.
//!
//! - Layout: [`DataDir`] (every file name of a data directory, the manifest text),
//!   and [`write_atomic`], the one atomic, durable file write of a data directory
//!   (temp file, fsync, rename, directory fsync; counted by [`dir_syncs`]) and
//!   [`remove_file_durable`].
//! - Records: [`encode_record`] / [`decode_record`] ([`LogRecord`]: the command, its
//!   time, and whether an older payload version wrote it), [`command_type`].
//! - Replay: [`apply_logged`] applies one decoded record exactly as recovery does;
//!   [`WalFollower`] replays a shard from its newest usable snapshot and tails it;
//!   [`read_local_records`] reads a shard's raw records for shipping.
//! - State: [`encode_state`] / [`decode_state`] (snapshot payloads), [`check_all`]
//!   (the cross-shard invariants).
//! - Routing: [`shard_of_sku`], [`shard_of_reservation_id`].
//! - History: [`read_history`] and its types, derived by replay.

pub use crate::durable::data_dir::{
    dir_syncs, remove_file_durable, write_atomic, DataDir, Manifest, MANIFEST_FILE, SHARD_DIR_PREFIX,
};
pub use crate::durable::history::{Figures, LocationChange, DEFAULT_HISTORY_LIMIT};
pub use crate::durable::{
    apply_logged, command_type, decode_record, decode_state, encode_record, encode_record_into, encode_state,
    read_history, read_local_records, FollowedRecord, HistoryEntry, HistoryPage, HistoryQuery, LogRecord, WalFollower,
    LEGACY_PAYLOAD_VERSION, PAYLOAD_VERSION, STATE_VERSION,
};
pub use crate::invariants::check_all;
pub use crate::reservation::shard_of_reservation_id;
pub use crate::routing::shard_of_sku;
