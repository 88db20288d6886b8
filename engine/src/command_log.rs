//! `CommandLog`: where a shard makes its applied commands durable. The shard loop
//! appends every state-changing command of a batch and replies only once a sync
//! covered them. A log that can sync on another thread hands out a [`LogSyncer`]
//! (`CommandLog::syncer`): the shard then pipelines (applies the next batch while the
//! syncer thread makes the last one durable, `shard.rs`). Otherwise the shard calls
//! `sync` itself after each batch. `NoLog` is the in-memory engine's log: nothing is
//! durable.

use crate::command::Command;
use crate::error::EngineError;
use crate::Millis;

pub trait CommandLog: Send + 'static {
    /// Records `command`, applied at `now`. Not durable until `sync` returns Ok.
    fn append(&mut self, now: Millis, command: &Command) -> Result<(), EngineError>;
    /// Makes everything appended durable. After an error the log is failed for good.
    fn sync(&mut self) -> Result<(), EngineError>;
    /// The LSN up to which records are durable (0 for a log that keeps nothing).
    fn durable_lsn(&self) -> u64;
    /// Asked before `command` is applied: a log that cannot take more work of this
    /// kind now (the outbox is over its ceiling, `durable/outbox.rs`) refuses it, and
    /// the command fails without changing anything.
    fn admit(&mut self, _command: &Command) -> Result<(), EngineError> {
        Ok(())
    }
    /// Records a command a leader logged at `lsn` (a standby's copy,
    /// `Engine::apply_replicated`): it must land at that LSN, and it is not shipped
    /// again. Not durable until `sync` returns Ok.
    fn append_replica(&mut self, _lsn: u64, now: Millis, command: &Command) -> Result<(), EngineError> {
        self.append(now, command)
    }
    /// Asked after each successful sync that covered appended records: whether the
    /// replicated log holds everything appended so far (`durable::replication`).
    /// A log without replication confirms at once.
    fn confirm(&mut self, _timeout: std::time::Duration) -> crate::durable::Confirmation {
        crate::durable::Confirmation::Confirmed
    }
    /// Called on the shard thread after each successful sync (snapshots hook here);
    /// pipelined, before the shard's next batch once it sees the durable LSN moved,
    /// and once more when it stops (the state passed may then be ahead of what is
    /// durable).
    fn after_sync(&mut self, _state: &crate::shard_state::ShardState) {}
    /// Called once when the shard stops, after its last sync.
    fn finish(&mut self) {}
    /// The part of the log that makes appended records durable, for a syncer thread
    /// (the pipelined group commit, `shard.rs`). Asked once, when the shard starts;
    /// if it returns one, the shard never calls `sync` or `confirm` on this log
    /// again, and `durable_lsn` must follow what the syncer made durable. `None`
    /// (default): the shard syncs on its own thread.
    fn syncer(&mut self) -> Option<Box<dyn LogSyncer>> {
        None
    }
}

/// The syncing half of a pipelined log, on the shard's syncer thread.
pub trait LogSyncer: Send {
    /// Makes every record the shard appended before this call durable (a replicated
    /// log ships them first); returns the durable LSN. After an error the log is
    /// failed for good.
    fn sync(&mut self) -> Result<u64, EngineError>;
    /// Whether the replicated log holds everything synced so far
    /// (`durable::replication`); a log without replication confirms at once.
    fn confirm(&mut self, _timeout: std::time::Duration) -> crate::durable::Confirmation {
        crate::durable::Confirmation::Confirmed
    }
    /// Called after every round of the syncer (answers released): file maintenance
    /// the shard asked for (removing WAL segments a snapshot covers).
    fn housekeeping(&mut self) {}
}

/// The log of an in-memory engine: keeps nothing.
#[derive(Debug, Default)]
pub struct NoLog;

impl CommandLog for NoLog {
    fn append(&mut self, _now: Millis, _command: &Command) -> Result<(), EngineError> {
        Ok(())
    }

    fn sync(&mut self) -> Result<(), EngineError> {
        Ok(())
    }

    fn durable_lsn(&self) -> u64 {
        0
    }
}
