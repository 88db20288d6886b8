//! What the engine's API answered, counted once per call whatever the caller (an
//! HTTP front, an event consumer, an embedder): reservations created, committed and
//! released, refusals by operation and error code, stock alerts raised, and reserve
//! latency per [`Origin`]. Read with [`Engine::outcome_stats`](super::Engine::outcome_stats).
//!
//! Counted at the facade when the call answers (so after the change is durable): a
//! caller that drops a reserve future before its answer is not counted. Expired
//! reservations are counted by the shards themselves (every path: the sweep, on
//! access, the operator), and read from them.
//!
//! Plain relaxed atomics: a few adds per call, no lock, no allocation.

use crate::error::EngineError;
use crate::item::{AlertKind, StockAlert};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Who made a reserve call, for its latency: the engine does not know what these
/// are, only that the caller said so. [`Engine::reserve`](super::Engine::reserve) is
/// `Embedded`; a server names its fronts with
/// [`Engine::reserve_from`](super::Engine::reserve_from).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    /// A request-response API in front of the engine (e.g. HTTP).
    Api,
    /// An event stream the engine's owner consumes (e.g. Kafka).
    Events,
    /// A program calling the engine directly.
    Embedded,
}

impl Origin {
    pub const ALL: [Origin; 3] = [Origin::Api, Origin::Events, Origin::Embedded];

    fn index(self) -> usize {
        match self {
            Origin::Api => 0,
            Origin::Events => 1,
            Origin::Embedded => 2,
        }
    }
}

/// A reservation operation whose refusals are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReservationOp {
    Reserve,
    Commit,
    Release,
    Extend,
    Expire,
}

impl ReservationOp {
    pub const ALL: [ReservationOp; 5] = [
        ReservationOp::Reserve,
        ReservationOp::Commit,
        ReservationOp::Release,
        ReservationOp::Extend,
        ReservationOp::Expire,
    ];

    /// Lower-case name, for a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationOp::Reserve => "reserve",
            ReservationOp::Commit => "commit",
            ReservationOp::Release => "release",
            ReservationOp::Extend => "extend",
            ReservationOp::Expire => "expire",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Upper bounds (microseconds) of the reserve latency buckets.
pub const RESERVE_LATENCY_BUCKETS_MICROS: [u64; 12] =
    [500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000];

/// Every error code, in one order, so refusals are counted in an array (no lock).
const CODES: [&str; 20] = [
    "VALIDATION_ERROR",
    "ITEM_NOT_FOUND",
    "ITEM_EXISTS",
    "RESERVATION_NOT_FOUND",
    "INSUFFICIENT_INVENTORY",
    "RESERVATION_EXPIRED",
    "RESERVATION_RELEASED",
    "RESERVATION_COMMITTED",
    "RESERVATION_PENDING",
    "VERSION_CONFLICT",
    "ITEM_HAS_RESERVATIONS",
    "NEGATIVE_INVENTORY",
    "SALES_BLOCKED",
    "MAX_PER_ORDER_EXCEEDED",
    "IDEMPOTENCY_KEY_REUSED",
    "LIMIT_EXCEEDED",
    "OVERLOADED",
    "SERVICE_UNAVAILABLE",
    "MISROUTED",
    "NOT_LEADER",
];

/// The position of `e`'s code in [`CODES`] (exhaustive: a new variant must be added).
fn code_index(e: &EngineError) -> usize {
    match e {
        EngineError::Validation { .. } => 0,
        EngineError::ItemNotFound { .. } => 1,
        EngineError::ItemExists { .. } => 2,
        EngineError::ReservationNotFound { .. } => 3,
        EngineError::InsufficientInventory { .. } => 4,
        EngineError::ReservationExpired { .. } => 5,
        EngineError::ReservationReleased { .. } => 6,
        EngineError::ReservationCommitted { .. } => 7,
        EngineError::ReservationPending { .. } => 8,
        EngineError::VersionConflict { .. } => 9,
        EngineError::ItemHasReservations { .. } => 10,
        EngineError::NegativeInventory { .. } => 11,
        EngineError::SalesBlocked { .. } => 12,
        EngineError::MaxPerOrderExceeded { .. } => 13,
        EngineError::IdempotencyKeyReused { .. } => 14,
        EngineError::LimitExceeded { .. } => 15,
        EngineError::Overloaded { .. } => 16,
        EngineError::Unavailable { .. } => 17,
        EngineError::Misrouted => 18,
        EngineError::NotLeader => 19,
    }
}

#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; RESERVE_LATENCY_BUCKETS_MICROS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        self.observe_n(d, 1);
    }

    /// `n` observations of `d` at once (a batch's calls, which all took as long).
    fn observe_n(&self, d: Duration, n: u64) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        if let Some(i) = RESERVE_LATENCY_BUCKETS_MICROS.iter().position(|b| micros <= *b) {
            self.buckets[i].fetch_add(n, Relaxed);
        }
        self.count.fetch_add(n, Relaxed);
        self.sum_micros.fetch_add(micros.saturating_mul(n), Relaxed);
    }

    fn snapshot(&self) -> LatencyHistogram {
        LatencyHistogram {
            buckets: std::array::from_fn(|i| self.buckets[i].load(Relaxed)),
            count: self.count.load(Relaxed),
            sum_micros: self.sum_micros.load(Relaxed),
        }
    }
}

/// The live counters (in the engine's shared state).
#[derive(Default)]
pub(crate) struct Stats {
    created: AtomicU64,
    committed: AtomicU64,
    released: AtomicU64,
    low_stock_alerts: AtomicU64,
    out_of_stock_alerts: AtomicU64,
    rejections: [[AtomicU64; CODES.len()]; ReservationOp::ALL.len()],
    latency: [Histogram; Origin::ALL.len()],
}

impl Stats {
    pub(crate) fn created(&self) {
        self.created_n(1);
    }

    /// `n` reservations created (a batch's, counted once).
    pub(crate) fn created_n(&self, n: u64) {
        if n > 0 {
            self.created.fetch_add(n, Relaxed);
        }
    }

    pub(crate) fn committed(&self) {
        self.committed.fetch_add(1, Relaxed);
    }

    pub(crate) fn released(&self) {
        self.released.fetch_add(1, Relaxed);
    }

    pub(crate) fn rejected(&self, op: ReservationOp, e: &EngineError) {
        self.rejections[op.index()][code_index(e)].fetch_add(1, Relaxed);
    }

    pub(crate) fn alerts(&self, alerts: &[StockAlert]) {
        for a in alerts {
            match a.kind {
                AlertKind::LowStock => self.low_stock_alerts.fetch_add(1, Relaxed),
                AlertKind::OutOfStock => self.out_of_stock_alerts.fetch_add(1, Relaxed),
            };
        }
    }

    pub(crate) fn reserve_latency(&self, origin: Origin, d: Duration) {
        self.latency[origin.index()].observe(d);
    }

    /// `n` reserve calls from `origin` that each took `d` (a batch's).
    pub(crate) fn reserve_latency_n(&self, origin: Origin, d: Duration, n: u64) {
        if n > 0 {
            self.latency[origin.index()].observe_n(d, n);
        }
    }

    /// Counts a call's refusal under `op` and passes its result on.
    pub(crate) fn count<T>(&self, op: ReservationOp, result: Result<T, EngineError>) -> Result<T, EngineError> {
        if let Err(e) = &result {
            self.rejected(op, e);
        }
        result
    }

    pub(crate) fn snapshot(&self, expired: u64) -> OutcomeStats {
        let mut rejections = Vec::new();
        for op in ReservationOp::ALL {
            for (i, code) in CODES.iter().enumerate() {
                let n = self.rejections[op.index()][i].load(Relaxed);
                if n > 0 {
                    rejections.push(Rejections { op, code, count: n });
                }
            }
        }
        OutcomeStats {
            created: self.created.load(Relaxed),
            committed: self.committed.load(Relaxed),
            released: self.released.load(Relaxed),
            expired,
            low_stock_alerts: self.low_stock_alerts.load(Relaxed),
            out_of_stock_alerts: self.out_of_stock_alerts.load(Relaxed),
            rejections,
            reserve_latency: Origin::ALL.map(|o| (o, self.latency[o.index()].snapshot())),
        }
    }
}

/// A reserve latency histogram: per bucket of [`RESERVE_LATENCY_BUCKETS_MICROS`] the
/// calls that took at most its bound and more than the previous one (not cumulative;
/// calls over the last bound are only in `count`), the count and the sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    pub buckets: [u64; RESERVE_LATENCY_BUCKETS_MICROS.len()],
    pub count: u64,
    pub sum_micros: u64,
}

impl LatencyHistogram {
    /// The sum of two histograms (e.g. every origin's).
    pub fn merged(&self, other: &LatencyHistogram) -> LatencyHistogram {
        LatencyHistogram {
            buckets: std::array::from_fn(|i| self.buckets[i] + other.buckets[i]),
            count: self.count + other.count,
            sum_micros: self.sum_micros + other.sum_micros,
        }
    }
}

/// Refusals of one operation with one error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejections {
    pub op: ReservationOp,
    /// [`EngineError::code`].
    pub code: &'static str,
    pub count: u64,
}

/// What the engine's API answered since it started (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeStats {
    /// Reserves that made a new reservation (not idempotent repeats).
    pub created: u64,
    /// Commits that committed (not repeats).
    pub committed: u64,
    /// Releases that released (not repeats, not of an expired one).
    pub released: u64,
    /// Reservations expired: by the sweep, on access, or by the operator.
    pub expired: u64,
    /// Stock alerts raised by successful item writes and reserves.
    pub low_stock_alerts: u64,
    pub out_of_stock_alerts: u64,
    /// Refusals by operation and code; only the non-zero ones, in a fixed order.
    pub rejections: Vec<Rejections>,
    /// Reserve latency (every answer, refusals included) per origin.
    pub reserve_latency: [(Origin, LatencyHistogram); 3],
}

impl OutcomeStats {
    /// Refusals of `op`, every code.
    pub fn rejected(&self, op: ReservationOp) -> u64 {
        self.rejections.iter().filter(|r| r.op == op).map(|r| r.count).sum()
    }

    /// Refusals of `op` with `code`.
    pub fn rejected_with(&self, op: ReservationOp, code: &str) -> u64 {
        self.rejections.iter().filter(|r| r.op == op && r.code == code).map(|r| r.count).sum()
    }

    /// The reserve latency of `origin`.
    pub fn latency(&self, origin: Origin) -> LatencyHistogram {
        self.reserve_latency.iter().find(|(o, _)| *o == origin).map(|(_, h)| *h).unwrap_or_default()
    }

    /// The reserve latency over every origin.
    pub fn latency_all(&self) -> LatencyHistogram {
        self.reserve_latency.iter().fold(LatencyHistogram::default(), |acc, (_, h)| acc.merged(h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_listed_at_its_index() {
        let samples = [
            EngineError::validation("f", "m"),
            EngineError::ItemNotFound { sku: "s".into() },
            EngineError::Overloaded { shard: 0 },
            EngineError::Unavailable { reason: "r".into() },
            EngineError::Misrouted,
        ];
        for e in samples {
            assert_eq!(CODES[code_index(&e)], e.code());
        }
    }

    #[test]
    fn latency_lands_in_its_bucket() {
        let s = Stats::default();
        s.reserve_latency(Origin::Events, Duration::from_micros(700));
        s.reserve_latency(Origin::Events, Duration::from_secs(10));
        let h = s.snapshot(0).latency(Origin::Events);
        assert_eq!(h.buckets[1], 1);
        assert_eq!(h.buckets.iter().sum::<u64>(), 1, "over the last bound: only in count");
        assert_eq!(h.count, 2);
        assert_eq!(s.snapshot(0).latency(Origin::Api).count, 0);
    }
}
