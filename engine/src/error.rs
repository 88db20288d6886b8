//! The one error type of the engine. Every variant has a stable `code()` (part of the
//! HTTP and event contract) and carries enough detail to explain itself.

use serde::{Deserialize, Serialize};

/// One line that could not be reserved for lack of stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shortfall {
    pub sku: String,
    pub requested: u64,
    pub available: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(untagged, rename_all_fields = "camelCase")]
pub enum EngineError {
    #[error("invalid {field}: {message}")]
    Validation { field: String, message: String },
    #[error("item {sku} not found")]
    ItemNotFound { sku: String },
    #[error("item {sku} already exists")]
    ItemExists { sku: String },
    #[error("reservation {key} not found")]
    ReservationNotFound { key: String },
    #[error("insufficient inventory for {} item(s)", items.len())]
    InsufficientInventory { items: Vec<Shortfall> },
    #[error("reservation {reservation_id} expired")]
    ReservationExpired { reservation_id: String },
    #[error("reservation {reservation_id} was released")]
    ReservationReleased { reservation_id: String },
    #[error("reservation {reservation_id} was committed")]
    ReservationCommitted { reservation_id: String },
    #[error("reservation {reservation_id} is still being placed; retry")]
    ReservationPending { reservation_id: String },
    #[error("item {sku} is at version {actual}, not {expected}")]
    VersionConflict { sku: String, expected: u64, actual: u64 },
    #[error("item {sku} has {reserved} unit(s) reserved")]
    ItemHasReservations { sku: String, reserved: u64 },
    #[error("adjusting {sku} by {delta} would leave available negative (available {available})")]
    NegativeInventory { sku: String, delta: i64, available: u64 },
    #[error("sales of {sku} are blocked by an operator")]
    SalesBlocked { sku: String },
    #[error("{sku}: at most {max_per_order} per order, {requested} requested")]
    MaxPerOrderExceeded { sku: String, requested: u64, max_per_order: u64 },
    #[error("idempotency key {key} was already used for a different request")]
    IdempotencyKeyReused { key: String },
    #[error("{what}: limit of {limit} reached")]
    LimitExceeded { what: String, limit: u64 },
    #[error("shard queue full; retry later")]
    Overloaded { shard: usize },
    #[error("engine unavailable: {reason}")]
    Unavailable { reason: String },
    /// This engine is a standby: it applies the leader's replicated log
    /// (`Engine::apply_replicated`), serves reads and refuses every write.
    #[error("this node is a standby; writes go to the leader")]
    NotLeader,
    /// Internal: the orderId's home moved while the request was in flight; the
    /// facade routes it again. Never returned to a caller.
    #[doc(hidden)]
    #[error("order routed to the wrong shard; retry")]
    Misrouted,
}

impl EngineError {
    pub fn validation(field: &str, message: impl Into<String>) -> EngineError {
        EngineError::Validation { field: field.to_owned(), message: message.into() }
    }

    /// The request line a validation error concerns: `N` of a field path
    /// `items[N]...`.
    pub fn line(&self) -> Option<usize> {
        let EngineError::Validation { field, .. } = self else { return None };
        field.strip_prefix("items[")?.split_once(']')?.0.parse().ok()
    }

    /// This error with its line renumbered by `to_request` (the field path `items[N]...`
    /// becomes `items[to_request(N)]...`): a shard names a line by its place among the
    /// lines it was given, the facade by its place in the caller's request.
    pub(crate) fn renumber_line(self, to_request: impl FnOnce(usize) -> usize) -> EngineError {
        match (self.line(), self) {
            (Some(n), EngineError::Validation { field, message }) => {
                let rest = field.split_once(']').map_or("", |(_, rest)| rest);
                EngineError::Validation { field: format!("items[{}]{rest}", to_request(n)), message }
            }
            (_, e) => e,
        }
    }

    /// The stable, machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::Validation { .. } => "VALIDATION_ERROR",
            EngineError::ItemNotFound { .. } => "ITEM_NOT_FOUND",
            EngineError::ItemExists { .. } => "ITEM_EXISTS",
            EngineError::ReservationNotFound { .. } => "RESERVATION_NOT_FOUND",
            EngineError::InsufficientInventory { .. } => "INSUFFICIENT_INVENTORY",
            EngineError::ReservationExpired { .. } => "RESERVATION_EXPIRED",
            EngineError::ReservationReleased { .. } => "RESERVATION_RELEASED",
            EngineError::ReservationCommitted { .. } => "RESERVATION_COMMITTED",
            EngineError::ReservationPending { .. } => "RESERVATION_PENDING",
            EngineError::VersionConflict { .. } => "VERSION_CONFLICT",
            EngineError::ItemHasReservations { .. } => "ITEM_HAS_RESERVATIONS",
            EngineError::NegativeInventory { .. } => "NEGATIVE_INVENTORY",
            EngineError::SalesBlocked { .. } => "SALES_BLOCKED",
            EngineError::MaxPerOrderExceeded { .. } => "MAX_PER_ORDER_EXCEEDED",
            EngineError::IdempotencyKeyReused { .. } => "IDEMPOTENCY_KEY_REUSED",
            EngineError::LimitExceeded { .. } => "LIMIT_EXCEEDED",
            EngineError::Overloaded { .. } => "OVERLOADED",
            EngineError::Unavailable { .. } => "SERVICE_UNAVAILABLE",
            EngineError::NotLeader => "NOT_LEADER",
            EngineError::Misrouted => "MISROUTED",
        }
    }

    /// Order of precedence when the shards of one reservation fail differently:
    /// the lowest rank wins, so the answer does not depend on shard layout.
    pub(crate) fn reserve_rank(&self) -> u8 {
        match self {
            EngineError::Unavailable { .. } | EngineError::Overloaded { .. } | EngineError::NotLeader => 0,
            EngineError::Validation { .. } => 1,
            EngineError::ItemNotFound { .. } => 2,
            EngineError::SalesBlocked { .. } => 3,
            EngineError::MaxPerOrderExceeded { .. } => 4,
            EngineError::InsufficientInventory { .. } => 5,
            _ => 6,
        }
    }
}
