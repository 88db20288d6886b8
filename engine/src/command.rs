//! What a shard is asked to do (`Command`, logged; `Query`, not logged) and what it
//! answers (`Outcome`, `QueryResult`). A `Command` together with the time it was
//! applied at is exactly what the WAL stores, so replay re-runs `ShardState::apply`.

use crate::item::{Item, StockAlert};
use crate::location::{Allocation, LocationId, Placement, Warehouse};
use crate::reservation::{Reservation, ReservationKey, ReservationStatus};
use crate::reservation_id::ReservationId;
use crate::sku::{OrderId, Sku};
use crate::Millis;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AdjustReason {
    Restock,
    Damaged,
    Lost,
    Correction,
    Return,
}

impl AdjustReason {
    pub const ALL: [AdjustReason; 5] = [Self::Restock, Self::Damaged, Self::Lost, Self::Correction, Self::Return];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Restock => "RESTOCK",
            Self::Damaged => "DAMAGED",
            Self::Lost => "LOST",
            Self::Correction => "CORRECTION",
            Self::Return => "RETURN",
        }
    }

    pub fn parse(s: &str) -> Option<AdjustReason> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Create an item or set its figures: the request of `Engine::set_item` and the
/// payload of [`Command::SetItem`]. Absent optional fields keep their value (or take
/// the default on create).
///
/// Field order is the log's byte order (bincode writes the fields in declaration
/// order): never reorder, insert or remove a field without a new payload version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetItem {
    pub sku: Sku,
    /// The onHand of `location`.
    pub on_hand: u64,
    pub low_stock_threshold: Option<u64>,
    /// `Some(0)` clears the limit; `None` keeps it.
    pub max_per_order: Option<u64>,
    pub expected_version: Option<u64>,
    /// The location whose onHand (and incoming) this sets; `None`: the default one.
    /// A location the item does not stock yet is added.
    pub location: Option<LocationId>,
    /// Units in transit to `location`; `None` keeps the figure.
    pub incoming: Option<u64>,
}

impl SetItem {
    /// Sets `sku`'s onHand at the default location and nothing else (creating the
    /// item, with the defaults, if it does not exist).
    pub fn on_hand(sku: Sku, on_hand: u64) -> SetItem {
        SetItem {
            sku,
            on_hand,
            low_stock_threshold: None,
            max_per_order: None,
            expected_version: None,
            location: None,
            incoming: None,
        }
    }
}

/// Change the onHand of `location` (default: the default location) by `delta`: the
/// request of `Engine::adjust` and the payload of [`Command::AdjustItem`]. Field
/// order is the log's byte order (see [`SetItem`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adjust {
    pub sku: Sku,
    pub delta: i64,
    pub reason: AdjustReason,
    pub note: Option<String>,
    pub idempotency_key: Option<String>,
    pub expected_version: Option<u64>,
    /// The location whose onHand changes; `None`: the default one.
    pub location: Option<LocationId>,
}

/// Move `quantity` available units of a SKU from one location to another: onto the
/// destination's shelves, or into its `incoming` when `in_transit`. The request of
/// `Engine::transfer` and the payload of [`Command::Transfer`]. Field order is the
/// log's byte order (see [`SetItem`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub sku: Sku,
    pub from: LocationId,
    pub to: LocationId,
    pub quantity: u64,
    /// Into the destination's `incoming` (received later) instead of its onHand.
    pub in_transit: bool,
    pub note: Option<String>,
    /// A retry of the transfer with this key (for this SKU) answers the first
    /// result and moves nothing (see [`Command::ReceiveIncoming`]'s key too: stock
    /// movements and adjustments share one key space per SKU). Last, since payload
    /// version 4 (`durable::log_record`).
    pub idempotency_key: Option<String>,
}

/// Units an order sold, back on hand: a return (or a cancellation after commit) of
/// `quantity` units of `sku` that `order_id` committed at `location`. The payload of
/// [`Command::ReturnSold`]. The shard keeps, per order, SKU and location, how many
/// units came back (the return ledger, purged with the order after retention): a
/// return brings back at most `sold` minus what came back already, and one
/// `return_id` (the return event's identity) is applied once. Field order is the
/// log's byte order (see [`SetItem`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnSold {
    pub sku: Sku,
    pub location: LocationId,
    pub order_id: OrderId,
    /// Units the order committed of this SKU at this location: the most that can
    /// ever come back.
    pub sold: u64,
    /// Units this return brings back (fewer if less is left).
    pub quantity: u64,
    /// The return's identity: a repeat of it changes nothing.
    pub return_id: String,
    pub note: Option<String>,
}

/// A reservation made in one step on its home shard, which owns every line's SKU:
/// the payload of [`Command::ReserveLocal`]. Field order is the log's byte order
/// (see [`SetItem`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReserveLocal {
    pub order_id: OrderId,
    pub lines: Vec<(Sku, u64)>,
    pub ttl_secs: u64,
    pub metadata: Option<String>,
    pub placement: Placement,
}

/// A state change, applied by exactly one shard and logged before it is acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Create an item or set its figures (see [`SetItem`]).
    SetItem(SetItem),
    /// Changes the onHand of a location by a delta (see [`Adjust`]).
    AdjustItem(Adjust),
    /// Moves available units of a SKU from one location to another (see [`Transfer`]).
    Transfer(Transfer),
    /// Receives `quantity` units of a location's incoming stock: incoming → onHand.
    /// With an `idempotency_key`, a retry answers the first result and receives
    /// nothing. The key is last, since payload version 4 (`durable::log_record`).
    ReceiveIncoming {
        sku: Sku,
        location: LocationId,
        quantity: u64,
        idempotency_key: Option<String>,
    },
    /// Replaces the warehouse table allocation reads (logged, so replay allocates
    /// with the table that was in force).
    SetWarehouses {
        warehouses: Vec<Warehouse>,
    },
    DeleteItem {
        sku: Sku,
        expected_version: Option<u64>,
    },
    /// Operator: block (or unblock) new reservations of a SKU.
    SetSalesBlocked {
        sku: Sku,
        blocked: bool,
    },
    /// Fast path, when the home shard also owns every SKU: open, hold and activate
    /// in one step (or answer an existing reservation). All or nothing.
    ReserveLocal(ReserveLocal),
    /// Home shard: write a PENDING header (or answer an existing one).
    OpenReservation {
        order_id: OrderId,
        lines: Vec<(Sku, u64)>,
        ttl_secs: u64,
        metadata: Option<String>,
    },
    /// Item shard: hold stock for this shard's lines of a reservation, all or nothing.
    /// The shard allocates each line to locations (see `location::allocate`).
    PlaceHold {
        reservation_id: ReservationId,
        order_id: OrderId,
        lines: Vec<(Sku, u64)>,
        placement: Placement,
    },
    /// Home shard: every hold is durable; PENDING → ACTIVE. The commit point.
    /// `allocations` are what the holds chose, recorded in the header.
    ActivateReservation {
        reservation_id: ReservationId,
        allocations: Vec<Allocation>,
    },
    /// Home shard: a hold failed; forget the PENDING header.
    AbortReservation {
        reservation_id: ReservationId,
    },
    /// Item shard: give a reservation's held stock back. Idempotent.
    ReleaseHold {
        reservation_id: ReservationId,
    },
    /// Item shard: turn held stock into sold stock (`committed` per SKU, the rest goes
    /// back to available). Idempotent.
    CommitHold {
        reservation_id: ReservationId,
        committed: Vec<(Sku, u64)>,
    },
    /// Home shard: ACTIVE → COMMITTED. `quantities` commits less than reserved for
    /// the SKUs it names; SKUs it does not name commit in full.
    CommitReservation {
        key: ReservationKey,
        quantities: Option<Vec<(Sku, u64)>>,
    },
    /// Home shard: ACTIVE → RELEASED.
    ReleaseReservation {
        key: ReservationKey,
        reason: String,
    },
    /// Home shard: move an ACTIVE reservation's deadline to `now + ttl_secs`, at most
    /// `created_at + 86,400 s` (`limits::LEGACY_EXTEND_CAP_SECS`). Written by engines
    /// before the TTL was configurable; still replayed, never written now (see
    /// `ExtendReservationWithin`).
    ExtendReservation {
        key: ReservationKey,
        ttl_secs: u64,
    },
    /// Home shard: ACTIVE → EXPIRED now, whatever its deadline (operator action).
    ExpireReservation {
        key: ReservationKey,
    },
    /// Expire every ACTIVE reservation whose deadline is at or before `now`, and
    /// forget finished reservations and adjustment keys older than `retention_ms`.
    ExpireDue {
        retention_ms: u64,
    },
    /// Home shard: every hold of this finished reservation on another shard is
    /// settled (the facade applied its CommitHold / ReleaseHold there), so its
    /// header may now be forgotten after retention. Idempotent.
    HoldsSettled {
        reservation_id: ReservationId,
    },
    /// Home shard: move an ACTIVE reservation's deadline to `now + ttl_secs`, at most
    /// `created_at + max_ttl_secs`. The cap (the engine's `max_ttl_secs` when it was
    /// sent) travels in the command, so replay refuses and accepts exactly what the
    /// live engine did, whatever `--max-ttl` the replaying process runs with.
    /// Declared last: bincode numbers variants in order, so every older variant keeps
    /// its bytes.
    ExtendReservationWithin {
        key: ReservationKey,
        ttl_secs: u64,
        max_ttl_secs: u64,
    },
    /// Item shard: units an order sold, back on hand (see [`ReturnSold`]). Declared
    /// last, like `ExtendReservationWithin`.
    ReturnSold(ReturnSold),
}

impl Command {
    /// A short name for logs, metrics and tools.
    pub fn kind(&self) -> &'static str {
        match self {
            Command::SetItem(_) => "SET_ITEM",
            Command::AdjustItem(_) => "ADJUST",
            Command::DeleteItem { .. } => "DELETE_ITEM",
            Command::Transfer(_) => "TRANSFER",
            Command::ReceiveIncoming { .. } => "RECEIVE",
            Command::SetWarehouses { .. } => "SET_WAREHOUSES",
            Command::SetSalesBlocked { blocked: true, .. } => "BLOCK_SALES",
            Command::SetSalesBlocked { blocked: false, .. } => "UNBLOCK_SALES",
            Command::OpenReservation { .. } => "OPEN_RESERVATION",
            Command::ReserveLocal(_) => "RESERVE",
            Command::PlaceHold { .. } => "PLACE_HOLD",
            Command::ActivateReservation { .. } => "ACTIVATE",
            Command::AbortReservation { .. } => "ABORT",
            Command::ReleaseHold { .. } => "RELEASE_HOLD",
            Command::CommitHold { .. } => "COMMIT_HOLD",
            Command::CommitReservation { .. } => "COMMIT",
            Command::ReleaseReservation { .. } => "RELEASE",
            Command::ExtendReservation { .. } | Command::ExtendReservationWithin { .. } => "EXTEND",
            Command::ExpireReservation { .. } => "EXPIRE",
            Command::ExpireDue { .. } => "EXPIRE_DUE",
            Command::HoldsSettled { .. } => "HOLDS_SETTLED",
            Command::ReturnSold(_) => "RETURN_SOLD",
        }
    }
}

/// What a successful command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Item {
        item: Item,
        created: bool,
    },
    Deleted {
        sku: Sku,
    },
    /// A new PENDING header.
    Opened(Reservation),
    /// A new ACTIVE reservation made in one step (`ReserveLocal`).
    Reserved(Reservation),
    /// The orderId already had this reservation; nothing changed.
    Existing(Reservation),
    /// A header after a transition (activate, commit, release, extend, expire, abort).
    /// `changed` is false when the call was an idempotent repeat.
    Reservation {
        reservation: Reservation,
        changed: bool,
    },
    /// A commit or extend found the deadline passed: the reservation is now EXPIRED
    /// and its holds must be released. The caller answers RESERVATION_EXPIRED.
    ExpiredOnAccess(Reservation),
    /// Holds released or committed (`changed` false on an idempotent repeat).
    Holds {
        changed: bool,
    },
    /// Holds placed (or, `changed` false, already placed): where the units are held.
    Placed {
        allocations: Vec<Allocation>,
        changed: bool,
    },
    /// Sold units back on hand (`ReturnSold`): the item after, and how many came
    /// back (0: nothing was left to return, or a repeat of the same return).
    Returned {
        item: Item,
        returned: u64,
    },
    /// The warehouse table was replaced.
    Warehouses {
        changed: bool,
    },
    /// Reservations expired by `ExpireDue`, whose holds must now be released, and how
    /// many finished reservations and adjustment keys it forgot.
    Expired {
        expired: Vec<Reservation>,
        purged: usize,
        /// OrderIds whose finished headers were forgotten.
        purged_orders: Vec<OrderId>,
    },
}

/// The result of `ShardState::apply` on success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub outcome: Outcome,
    /// Low-stock / out-of-stock lines crossed by this command.
    pub alerts: Vec<StockAlert>,
    /// Whether state changed (and so the command must be logged).
    pub changed: bool,
}

/// A read. Never logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    GetItem {
        sku: Sku,
    },
    /// Items with sku > `after` that pass `filter`, in sku order: at most `limit`, and
    /// looking at no more than `scan_budget` items.
    ListItems {
        after: Option<Sku>,
        limit: usize,
        filter: StockFilter,
        scan_budget: usize,
    },
    /// Whether each line, on its own, could be held now under `placement` (the rule
    /// of `PlaceHold`), and the units available.
    Availability {
        lines: Vec<(Sku, u64)>,
        placement: Placement,
    },
    GetReservation {
        key: ReservationKey,
    },
    /// Headers with id > `after` that pass `filter`, in id order: at most `limit`,
    /// looking at no more than `scan_budget` headers (the operator's listing).
    ListReservations {
        after: Option<ReservationId>,
        limit: usize,
        filter: ReservationFilter,
        scan_budget: usize,
    },
    Warehouses,
    /// Finished headers whose holds on other shards are not known to be settled,
    /// finished before `finished_before`, oldest first (the reconciler).
    Unsettled {
        finished_before: Millis,
        limit: usize,
    },
    /// PENDING headers created before `created_before`, oldest first (the
    /// reconciler's deadline for reserve flows that stopped half-way).
    StalePending {
        created_before: Millis,
        limit: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryResult {
    Item(Item),
    /// A listing's matches, and the last SKU looked at when the scan budget ran out
    /// first (the listing must not go past it on this page).
    Items {
        items: Vec<Item>,
        stopped_at: Option<Sku>,
    },
    /// Per line: the units available now (0 when the item does not exist), whether
    /// the item exists, and why the line could not be reserved now.
    Availability(Vec<LineAvailability>),
    Reservation(Reservation),
    Warehouses(Vec<Warehouse>),
    Reservations(Vec<Reservation>),
    /// A reservation listing's matches, and the last id looked at when the scan
    /// budget ran out first (the listing must not go past it on this page).
    ReservationPage {
        reservations: Vec<Reservation>,
        stopped_at: Option<ReservationId>,
    },
}

/// Which reservation headers a listing returns: every given condition must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReservationFilter {
    pub status: Option<ReservationStatus>,
    /// Headers with a line of this SKU.
    pub sku: Option<Sku>,
    /// Headers created before this time (strictly).
    pub created_before: Option<Millis>,
}

impl ReservationFilter {
    pub fn matches(&self, r: &Reservation) -> bool {
        self.status.is_none_or(|s| r.status == s)
            && self.sku.as_ref().is_none_or(|sku| r.lines.iter().any(|l| &l.sku == sku))
            && self.created_before.is_none_or(|t| r.created_at < t)
    }
}

/// Which items a listing returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StockFilter {
    #[default]
    All,
    /// available ≤ lowStockThreshold (out-of-stock items included).
    Low,
    /// available = 0.
    Out,
}

impl StockFilter {
    pub fn matches(self, item: &Item) -> bool {
        match self {
            StockFilter::All => true,
            StockFilter::Low => item.is_low_stock(),
            StockFilter::Out => item.available() == 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineAvailability {
    pub sku: Sku,
    pub requested: u64,
    pub available: u64,
    pub exists: bool,
    /// `None` when the line, on its own, could be reserved now; otherwise the error a
    /// reserve of it would answer (`ItemNotFound`, `SalesBlocked`,
    /// `MaxPerOrderExceeded`, `InsufficientInventory`, ...), decided by the same rule
    /// as a hold (`PlaceHold`), in the same precedence.
    pub reason: Option<crate::error::EngineError>,
}

impl LineAvailability {
    /// Whether the line could be reserved now.
    pub fn is_available(&self) -> bool {
        self.reason.is_none()
    }
}
