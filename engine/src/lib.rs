//! stockd-engine: the in-memory, sharded stock-reservation engine.
//!
//! **What it owns.** Items (`sku` → onHand, reserved, sold, thresholds, version, and
//! the same figures per location: [`location`]) and reservations (ACTIVE → COMMITTED |
//! RELEASED | EXPIRED, with the locations their units were allocated from),
//! partitioned by hash into shards. Each shard is one thread that owns its state
//! outright and applies commands with no locks ([`ShardState::apply`], pure: time is
//! an input).
//!
//! **What it promises.**
//! - `onHand = available + reserved`, nothing negative, never oversold, per location
//!   and per item, after every command (`debug_assert!` per mutation;
//!   [`ShardState::check_invariants`] in full; a release-build oversell counter,
//!   [`oversells_detected`], that must stay 0).
//! - A failed command changes nothing. Every error is an [`EngineError`] with a stable
//!   code.
//! - A reservation over several shards is all or nothing (see ARCHITECTURE.md).
//! - Nothing is answered before the shard's [`CommandLog`] has synced it.
//! - Every queue, list and map has a bound ([`limits`]).
//!
//! It knows nothing of HTTP or Kafka. Embed it with [`Engine::in_memory`] (tests) or,
//! durable, [`Engine::open`] on a data directory.

//! **Its public surface** is the list of `pub use` below (the facade [`Engine`], its
//! requests and answers, the [`Command`]s a shard applies and logs, the state types,
//! the storage configuration and its filesystem seam [`Fs`]), and four namespaces:
//! [`limits`] (every bound), [`location`] (warehouses and allocation), [`time`] (the
//! clock floor and time arithmetic), and [`offline`] (readers of a data directory:
//! layout, record and state codecs, replay, history). Every other module is private;
//! `internals` exists for loom-tests alone and promises nothing.

mod clock;
mod command;
mod command_log;
mod durable;
mod engine;
mod error;
mod invariants;
mod item;
pub mod limits;
pub mod location;
pub mod offline;
mod one_or_many;
mod reservation;
mod reservation_id;
mod routing;
mod shard;
mod shard_state;
mod sku;
mod sync;
pub mod time;

mod block_on;

/// Milliseconds since the Unix epoch: the engine's only notion of time.
pub type Millis = u64;

pub use block_on::block_on;
pub use clock::{Clock, ManualClock, SystemClock};
pub use command::{
    AdjustReason, Applied, Command, LineAvailability, Outcome, Query, QueryResult, ReservationFilter, ReserveLocal,
    ReturnSold, StockFilter,
};
pub use command_log::{CommandLog, LogSyncer, NoLog};
pub use durable::history::DEFAULT_HISTORY_LIMIT;
pub use durable::{
    Confirmation, DataDir, Durability, FaultInjector, Fs, HistoryEntry, HistoryPage, HistoryQuery, OutboxConfig,
    OutboxFullPolicy, RealFs, RecoveryReport, Replicator, ShardRecovery, ShippedRecord, SimFs, StorageConfig,
};
pub use engine::{
    Adjust, BlockingEngine, Engine, EngineConfig, FlowStats, ItemChange, ItemPage, LatencyHistogram, Origin,
    OutcomeStats, ReconcileReport, Rejections, ReservationListing, ReservationOp, ReservationPage, ReserveOutcome,
    ReserveRequest, SetItem, Transfer, RESERVE_LATENCY_BUCKETS_MICROS,
};
pub use error::{EngineError, Shortfall};
pub use invariants::oversells_detected;
pub use item::{AlertKind, Item, StockAlert};
pub use location::{Allocation, AllocationStrategy, LocationId, LocationStock, Placement, Warehouse};
pub use one_or_many::OneOrMany;
pub use reservation::{Hold, Reservation, ReservationKey, ReservationLine, ReservationStatus};
pub use reservation_id::ReservationId;
pub use routing::shard_of_sku;
pub use shard::{ShardStatus, SYNC_BUCKETS_MICROS};
pub use shard_state::ShardState;
pub use sku::{OrderId, Sku, ID_PUNCTUATION};

/// The shard loop and the cross-thread primitives, public only so that loom-tests/
/// can model them. Not part of the API: no stability, no documentation.
#[doc(hidden)]
pub mod internals {
    pub use crate::shard::{QueueCapacity, Request, ShardHandle, ShardShared};
    pub use crate::sync::handoff::Handoff;
    pub use crate::sync::queue::{BoundedQueue, PushError};
    pub use crate::sync::reply::{reply_channel, Canceled};
}
