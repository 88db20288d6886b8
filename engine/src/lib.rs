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
//!   [`invariants::oversells_detected`], that must stay 0).
//! - A failed command changes nothing. Every error is an [`EngineError`] with a stable
//!   code.
//! - A reservation over several shards is all or nothing (see ARCHITECTURE.md).
//! - Nothing is answered before the shard's [`CommandLog`] has synced it.
//! - Every queue, list and map has a bound ([`limits`]).
//!
//! It knows nothing of HTTP or Kafka. Embed it with [`Engine::in_memory`] (tests) or,
//! durable, [`Engine::open`] on a data directory.

pub mod clock;
pub mod command;
pub mod command_log;
pub mod durable;
pub mod engine;
pub mod error;
pub mod invariants;
pub mod item;
pub mod limits;
pub mod location;
pub mod one_or_many;
pub mod reservation;
pub mod reservation_id;
pub mod routing;
pub mod shard;
pub mod shard_state;
pub mod sku;
pub mod sync;
pub mod time;

mod block_on;

/// Milliseconds since the Unix epoch: the engine's only notion of time.
pub type Millis = u64;

pub use block_on::block_on;
pub use clock::{Clock, ManualClock, SystemClock};
pub use command::{
    AdjustReason, Applied, Command, LineAvailability, Outcome, Query, QueryResult, ReservationFilter, StockFilter,
};
pub use command_log::{CommandLog, NoLog};
pub use durable::{DataDir, Durability, FaultInjector, RecoveryReport, StorageConfig};
pub use engine::{
    Adjust, BlockingEngine, Engine, EngineConfig, FlowStats, ItemChange, ItemPage, LatencyHistogram, Origin,
    OutcomeStats, ReconcileReport, Rejections, ReservationListing, ReservationOp, ReservationPage, ReserveOutcome,
    ReserveRequest, SetItem, Transfer, RESERVE_LATENCY_BUCKETS_MICROS,
};
pub use error::{EngineError, Shortfall};
pub use item::{AlertKind, Item, StockAlert};
pub use location::{Allocation, AllocationStrategy, LocationId, LocationStock, Placement, Warehouse};
pub use one_or_many::OneOrMany;
pub use reservation::{Hold, Reservation, ReservationKey, ReservationLine, ReservationStatus};
pub use reservation_id::ReservationId;
pub use shard_state::ShardState;
pub use sku::{OrderId, Sku};
