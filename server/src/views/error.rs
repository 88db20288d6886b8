//! The `details` of an error answer: typed for every engine error (the fields each
//! code documents), free-form JSON for the HTTP layer's own varied details.

use super::reservation::ShortfallView;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::Value;
use stockd_engine::EngineError;

/// What an error answer says in `details`.
#[derive(Debug, Clone)]
pub enum Details {
    /// The fields of an engine error (see [`Details::serialize`] for each code's).
    Engine(EngineError),
    /// INSUFFICIENT_INVENTORY of a reserve: each short line named as the request
    /// named it (`{items: [...]}`).
    Shortfalls(Vec<ShortfallView>),
    /// Anything else (health's 503, timeouts, NOT_LEADER, limits): varied shapes.
    Json(Value),
}

impl Details {
    /// No details: `{}`.
    pub fn none() -> Details {
        Details::Json(Value::Object(Default::default()))
    }

    /// The details as a JSON value (tests and logs; the answer serializes directly).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

impl Serialize for Details {
    /// Engine errors, keys in alphabetical order (the order the answers always had):
    /// VALIDATION_ERROR `{field, reason}`; ITEM_NOT_FOUND, ITEM_EXISTS, SALES_BLOCKED
    /// `{sku}`; RESERVATION_NOT_FOUND, IDEMPOTENCY_KEY_REUSED `{key}`;
    /// INSUFFICIENT_INVENTORY `{items: [{availableQuantity, requestedQuantity, sku}]}`;
    /// RESERVATION_EXPIRED / _RELEASED / _COMMITTED / _PENDING `{reservationId}`;
    /// VERSION_CONFLICT `{actualVersion, expectedVersion, sku}`; ITEM_HAS_RESERVATIONS
    /// `{reserved, sku}`; NEGATIVE_INVENTORY `{available, delta, sku}`;
    /// MAX_PER_ORDER_EXCEEDED `{maxPerOrder, requestedQuantity, sku}`; LIMIT_EXCEEDED
    /// `{limit, what}`; OVERLOADED `{shard}`; SERVICE_UNAVAILABLE `{reason}`; the rest
    /// `{}`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = match self {
            Details::Json(v) => return v.serialize(s),
            Details::Shortfalls(items) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("items", items)?;
                return m.end();
            }
            Details::Engine(e) => e,
        };
        let mut m = s.serialize_map(None)?;
        match e {
            EngineError::Validation { field, message, .. } => {
                m.serialize_entry("field", field)?;
                m.serialize_entry("reason", message)?;
            }
            EngineError::ItemNotFound { sku, .. }
            | EngineError::ItemExists { sku, .. }
            | EngineError::SalesBlocked { sku, .. } => m.serialize_entry("sku", sku)?,
            EngineError::ReservationNotFound { key, .. } | EngineError::IdempotencyKeyReused { key, .. } => {
                m.serialize_entry("key", key)?
            }
            EngineError::InsufficientInventory { items, .. } => {
                let items: Vec<ShortfallView> = items
                    .iter()
                    .map(|s| ShortfallView::new(Default::default(), &s.sku, s.requested, s.available))
                    .collect();
                m.serialize_entry("items", &items)?;
            }
            EngineError::ReservationExpired { reservation_id, .. }
            | EngineError::ReservationReleased { reservation_id, .. }
            | EngineError::ReservationCommitted { reservation_id, .. }
            | EngineError::ReservationPending { reservation_id, .. } => {
                m.serialize_entry("reservationId", reservation_id)?
            }
            EngineError::VersionConflict { sku, expected, actual, .. } => {
                m.serialize_entry("actualVersion", actual)?;
                m.serialize_entry("expectedVersion", expected)?;
                m.serialize_entry("sku", sku)?;
            }
            EngineError::ItemHasReservations { sku, reserved, .. } => {
                m.serialize_entry("reserved", reserved)?;
                m.serialize_entry("sku", sku)?;
            }
            EngineError::NegativeInventory { sku, delta, available, .. } => {
                m.serialize_entry("available", available)?;
                m.serialize_entry("delta", delta)?;
                m.serialize_entry("sku", sku)?;
            }
            EngineError::MaxPerOrderExceeded { sku, requested, max_per_order, .. } => {
                m.serialize_entry("maxPerOrder", max_per_order)?;
                m.serialize_entry("requestedQuantity", requested)?;
                m.serialize_entry("sku", sku)?;
            }
            EngineError::LimitExceeded { what, limit, .. } => {
                m.serialize_entry("limit", limit)?;
                m.serialize_entry("what", what)?;
            }
            EngineError::Overloaded { shard, .. } => m.serialize_entry("shard", shard)?,
            EngineError::Unavailable { reason, .. } => m.serialize_entry("reason", reason)?,
            EngineError::Misrouted | EngineError::NotLeader => {}
        }
        m.end()
    }
}
