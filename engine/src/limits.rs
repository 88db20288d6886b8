//! Every bound the engine enforces, in one place. A request over a bound is refused
//! with a clear error before it touches any state (TigerBeetle style: nothing unbounded).

/// Longest SKU, in bytes. SKUs are `[A-Za-z0-9._:/-]{1,128}`.
pub const MAX_SKU_LEN: usize = 128;
/// Longest orderId, in bytes (printable ASCII, no spaces).
pub const MAX_ORDER_ID_LEN: usize = 128;
/// Longest reservationId a client may name, in bytes (the ids stockd issues are 36).
pub const MAX_RESERVATION_ID_LEN: usize = 64;
/// Most lines (distinct SKUs) in one reservation or availability check.
pub const MAX_LINES: usize = 100;
/// Largest quantity in one line of a reservation or check.
pub const MAX_QUANTITY: u64 = 1_000_000_000;
/// Largest onHand an item may hold; also the bound of its incoming, per location and
/// summed over its locations.
pub const MAX_ON_HAND: u64 = 1_000_000_000_000;
/// Largest `sold + reserved` of an item (summed over its locations). `sold` only ever
/// grows, so it needs a bound too: a reservation that would take `sold + reserved`
/// past it is refused (VALIDATION_ERROR `sold`), which makes every later commit of
/// its units fit. 10^18 units is a million full restocks of `MAX_ON_HAND`: no
/// real item reaches it, and `u64` arithmetic on these figures cannot overflow.
pub const MAX_SOLD: u64 = 1_000_000_000_000_000_000;
/// Largest |delta| of one adjustment.
pub const MAX_ADJUST_DELTA: i64 = 1_000_000_000;
/// Shortest reservation time-to-live, seconds.
pub const MIN_TTL_SECS: u64 = 1;
/// Default of `EngineConfig::default_ttl_secs`: the TTL of a reservation whose
/// request names none.
pub const DEFAULT_TTL_SECS: u64 = 900;
/// Default of `EngineConfig::max_ttl_secs` (90 days): the longest TTL a request may
/// ask for, and the cap of extensions (`created_at + max_ttl_secs`).
pub const DEFAULT_MAX_TTL_SECS: u64 = 90 * 24 * 3600;
/// Hard ceiling of `EngineConfig::max_ttl_secs` (365 days). A long hold costs no
/// more than a short one (the expiry timer is a `BTreeSet` keyed by deadline), so
/// this only keeps deadlines far from `u64` overflow and holds within a year.
pub const MAX_TTL_CEILING_SECS: u64 = 365 * 24 * 3600;
/// The extension cap of an `EXTEND` record (`Command::ExtendReservation`) logged by
/// the engines before the TTL was configurable: `created_at + 86,400 s`. Replay of
/// such a record keeps it, so an old log replays exactly as it was written.
pub const LEGACY_EXTEND_CAP_SECS: u64 = 86_400;
/// Longest free-text reason (release reason, adjustment note).
pub const MAX_REASON_LEN: usize = 256;
/// Longest idempotency key (of an adjustment, a transfer, a receipt; a return id).
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 128;

/// The rule of an idempotency key given in `field`: 1 to [`MAX_IDEMPOTENCY_KEY_LEN`]
/// bytes.
pub fn check_idempotency_key(key: &str, field: &str) -> Result<(), crate::EngineError> {
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN {
        return Err(crate::EngineError::validation(field, format!("must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} bytes")));
    }
    Ok(())
}
/// Largest opaque metadata blob stored with a reservation, bytes.
pub const MAX_METADATA_LEN: usize = 4096;
/// Items one shard may hold.
pub const MAX_ITEMS_PER_SHARD: usize = 10_000_000;
/// Reservations (active, pending and remembered) one shard may hold.
pub const MAX_RESERVATIONS_PER_SHARD: usize = 4_000_000;
/// Remembered adjustment idempotency keys per shard.
pub const MAX_ADJUST_KEYS_PER_SHARD: usize = 1_000_000;
/// Requests waiting in one shard's queue; a full queue answers OVERLOADED.
pub const SHARD_QUEUE_CAPACITY: usize = 65_536;
/// Most requests a shard applies before one durability step.
pub const MAX_BATCH: usize = 4_096;
/// Most shards an engine runs.
pub const MAX_SHARDS: usize = 256;
/// Largest page of a listing.
pub const MAX_PAGE: usize = 1_000;
/// Most items one shard looks at for one page of a filtered listing (low or out of
/// stock): a page with few matches stops there and hands back a cursor, so a
/// listing never holds a shard thread for a full scan of a large catalogue.
pub const MAX_ITEMS_SCANNED_PER_PAGE: usize = 65_536;
/// Most reservation headers one shard looks at for one page of the operator's
/// reservation listing (same reason as `MAX_ITEMS_SCANNED_PER_PAGE`).
pub const MAX_RESERVATIONS_SCANNED_PER_PAGE: usize = 65_536;
/// Default retention of finished reservations and adjustment keys, seconds.
pub const DEFAULT_RETENTION_SECS: u64 = 24 * 3600;
/// A PENDING reservation header (a cross-shard reserve between its first and last
/// step) older than this, whose flow is not running, is aborted by the reconciler.
pub const PENDING_DEADLINE_MS: u64 = 30_000;
/// The reconciler looks only at headers finished longer ago than this, so it does not
/// race the flow that is settling them right now (it would only repeat its work).
pub const RECONCILE_GRACE_MS: u64 = 1_000;
/// How often the background sweep runs the reconciler.
pub const RECONCILE_EVERY_MS: u64 = 1_000;
/// Most headers one reconciler pass takes from one shard per kind.
pub const RECONCILE_PAGE: usize = 1_024;
