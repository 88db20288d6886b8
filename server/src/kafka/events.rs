//! The event contract, without any Kafka I/O: parsing consumed messages (a bare
//! payload or seed 002's envelope) into [`Incoming`], the configurable event-type →
//! [`Action`] map, and turning a replayed WAL record into the [`OutEvent`]s it
//! publishes (seed 002's envelope: id, type, source, dataVersion, timestamp,
//! correlationId, data).

use serde_json::{json, Map, Value};
use stockd_engine::{
    AlertKind, Applied, Command, EngineError, Millis, Outcome, Reservation, ReservationStatus, StockAlert,
};

/// What a consumed event makes stockd do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Reserve every item of the order, all or nothing (orderId is the idempotency key).
    Reserve,
    /// Commit the order's reservation.
    Commit,
    /// `inventory.confirm_requested`: commit, and answer `inventory.confirmed` or
    /// `inventory.confirmation_failed`.
    Confirm,
    /// Release the order's reservation (reason CANCELLED).
    Cancel,
    /// Release the order's reservation (reason PAYMENT_FAILED).
    PaymentFailed,
    /// Put returned items back on hand (adjust, reason RETURN).
    Restock,
    /// Create the item if it does not exist.
    CreateItem,
}

impl Action {
    pub const ALL: [Action; 7] = [
        Action::Reserve,
        Action::Commit,
        Action::Confirm,
        Action::Cancel,
        Action::PaymentFailed,
        Action::Restock,
        Action::CreateItem,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Action::Reserve => "reserve",
            Action::Commit => "commit",
            Action::Confirm => "confirm",
            Action::Cancel => "cancel",
            Action::PaymentFailed => "payment_failed",
            Action::Restock => "restock",
            Action::CreateItem => "create_item",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == s)
    }

    /// The event types mapped to this action by default (the names the seeds use).
    pub fn default_types(self) -> &'static [&'static str] {
        match self {
            Action::Reserve => &["order.created", "order.placed", "order.checkout.started"],
            Action::Commit => &[
                "payment.completed",
                "payment.authorized",
                "payment.confirmed",
                "order.payment.completed",
                "order.delivered",
            ],
            Action::Confirm => &["inventory.confirm_requested"],
            Action::Cancel => &["order.cancelled"],
            Action::PaymentFailed => &["payment.failed", "order.payment.failed"],
            Action::Restock => &["order.returned"],
            Action::CreateItem => &["product.created", "product.onboarding.completed"],
        }
    }
}

/// Event type → action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMap {
    entries: Vec<(String, Action)>,
}

impl Default for EventMap {
    fn default() -> Self {
        let mut entries = Vec::new();
        for a in Action::ALL {
            for t in a.default_types() {
                entries.push(((*t).to_owned(), a));
            }
        }
        EventMap { entries }
    }
}

impl EventMap {
    /// The defaults, with each `ACTION=TYPE[,TYPE...]` override replacing the types
    /// of its action.
    pub fn with_overrides(overrides: &[String]) -> Result<EventMap, String> {
        let mut map = EventMap::default();
        for o in overrides.iter().filter(|o| !o.trim().is_empty()) {
            let (action, types) =
                o.split_once('=').ok_or_else(|| format!("--kafka-map {o:?}: expected ACTION=TYPE,..."))?;
            let action = Action::parse(action.trim()).ok_or_else(|| {
                let names: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
                format!("--kafka-map {o:?}: unknown action (one of {})", names.join(", "))
            })?;
            map.entries.retain(|(_, a)| *a != action);
            for t in types.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                map.entries.retain(|(et, _)| et != t);
                map.entries.push((t.to_owned(), action));
            }
        }
        Ok(map)
    }

    pub fn action(&self, event_type: &str) -> Option<Action> {
        self.entries.iter().find(|(t, _)| t == event_type).map(|(_, a)| *a)
    }

    /// Every event type mapped, in a stable order (the default topic list).
    pub fn types(&self) -> Vec<String> {
        self.entries.iter().map(|(t, _)| t.clone()).collect()
    }
}

/// One line of an order: the SKU (`sku`, or `productId:variantId`, or `productId`)
/// and the quantity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub sku: String,
    pub quantity: u64,
}

/// A consumed event, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    /// The event type (envelope `type`, else payload `eventType` / `type`, else the
    /// topic name without a `.topic` suffix).
    pub event_type: String,
    /// The envelope's id or the payload's eventId / idempotencyId, when present.
    pub event_id: Option<String>,
    /// The payload (the envelope's `data`, or the whole message).
    pub data: Value,
}

fn str_field<'a>(v: &'a Value, names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|n| v.get(*n).and_then(Value::as_str)).filter(|s| !s.is_empty())
}

/// Parses a consumed message. Errors are for the dead-letter topic.
pub fn parse_message(topic: &str, payload: Option<&[u8]>) -> Result<Incoming, String> {
    let bytes = payload.ok_or("empty message (no payload)")?;
    let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("payload is not JSON: {e}"))?;
    if !value.is_object() {
        return Err("payload is not a JSON object".into());
    }
    let enveloped = value.get("data").is_some_and(Value::is_object) && value.get("type").is_some_and(Value::is_string);
    let (event_type, event_id, data) = if enveloped {
        let t = str_field(&value, &["type"]).map(str::to_owned);
        let id = str_field(&value, &["id"]).map(str::to_owned);
        (t, id, value["data"].clone())
    } else {
        let t = str_field(&value, &["eventType", "type"]).map(str::to_owned);
        let id = str_field(&value, &["eventId", "id", "idempotencyId"]).map(str::to_owned);
        (t, id, value)
    };
    let event_type = event_type.unwrap_or_else(|| topic.strip_suffix(".topic").unwrap_or(topic).to_owned());
    Ok(Incoming { event_type, event_id, data })
}

impl Incoming {
    pub fn order_id(&self) -> Result<String, String> {
        str_field(&self.data, &["orderId", "order_id"])
            .map(str::to_owned)
            .or_else(|| self.data.get("orderId").and_then(Value::as_u64).map(|n| n.to_string()))
            .ok_or_else(|| format!("{}: missing orderId", self.event_type))
    }

    /// The order's lines; `required` makes an empty or missing list an error.
    pub fn lines(&self) -> Result<Vec<Line>, String> {
        let items = self
            .data
            .get("items")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("{}: missing items", self.event_type))?;
        if items.is_empty() {
            return Err(format!("{}: items is empty", self.event_type));
        }
        let mut out: Vec<Line> = Vec::with_capacity(items.len());
        for (i, it) in items.iter().enumerate() {
            let sku = sku_of(it).ok_or_else(|| format!("items[{i}]: needs sku or productId"))?;
            let quantity = it
                .get("quantity")
                .and_then(Value::as_u64)
                .ok_or_else(|| format!("items[{i}].quantity: must be a whole number"))?;
            // The same SKU twice in one order is one line.
            match out.iter_mut().find(|l| l.sku == sku) {
                Some(l) => l.quantity = l.quantity.saturating_add(quantity),
                None => out.push(Line { sku, quantity }),
            }
        }
        Ok(out)
    }
}

/// `sku`, else `productId:variantId`, else `productId`.
pub fn sku_of(item: &Value) -> Option<String> {
    if let Some(s) = str_field(item, &["sku"]) {
        return Some(s.to_owned());
    }
    let product = str_field(item, &["productId"])?;
    Some(match str_field(item, &["variantId"]) {
        Some(v) => format!("{product}:{v}"),
        None => product.to_owned(),
    })
}

/// The line of a SKU as published: `sku`, and `productId`/`variantId` when the SKU
/// is `productId:variantId`.
fn line_json(sku: &str, quantity: u64) -> Value {
    let mut m = Map::new();
    m.insert("sku".into(), json!(sku));
    if let Some((p, v)) = sku.split_once(':') {
        m.insert("productId".into(), json!(p));
        m.insert("variantId".into(), json!(v));
    } else {
        m.insert("productId".into(), json!(sku));
    }
    m.insert("quantity".into(), json!(quantity));
    Value::Object(m)
}

pub fn iso_millis(ms: Millis) -> String {
    stockd_engine::time::format_millis(ms)
}

/// An event to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct OutEvent {
    pub id: String,
    pub event_type: &'static str,
    /// The Kafka key: the orderId for order-level events, the SKU for item events.
    pub key: String,
    pub correlation_id: Option<String>,
    pub timestamp: Millis,
    pub data: Value,
}

impl OutEvent {
    /// Seed 002's envelope.
    pub fn envelope(&self) -> Value {
        json!({
            "id": self.id,
            "type": self.event_type,
            "source": "stockd",
            "dataVersion": "1.0",
            "timestamp": iso_millis(self.timestamp),
            "correlationId": self.correlation_id,
            "data": self.data,
        })
    }

    pub fn topic(&self, template: &str) -> String {
        template.replace("{type}", self.event_type)
    }
}

fn reservation_data(r: &Reservation, reason: Option<&str>) -> Value {
    let items: Vec<Value> = r
        .lines
        .iter()
        .map(|l| {
            let mut v = line_json(l.sku.as_str(), l.quantity);
            if r.status == ReservationStatus::Committed {
                v["committed"] = json!(l.committed);
            }
            v
        })
        .collect();
    let mut data = json!({
        "orderId": r.order_id.as_str(),
        "reservationId": r.reservation_id,
        "status": r.status.as_str(),
        "items": items,
        "expiresAt": iso_millis(r.expires_at),
    });
    if let Some(reason) = reason {
        data["reason"] = json!(reason);
    }
    data
}

struct Builder {
    shard: usize,
    lsn: u64,
    now: Millis,
    out: Vec<OutEvent>,
}

impl Builder {
    fn push(&mut self, event_type: &'static str, key: String, correlation: Option<String>, data: Value) {
        let n = self.out.len();
        self.out.push(OutEvent {
            id: format!("{}-{}-{n}", self.shard, self.lsn),
            event_type,
            key,
            correlation_id: correlation,
            timestamp: self.now,
            data,
        });
    }

    fn reservation(&mut self, event_type: &'static str, r: &Reservation, reason: Option<&str>) {
        let order = r.order_id.as_str().to_owned();
        self.push(event_type, order.clone(), Some(order), reservation_data(r, reason));
    }

    fn released(&mut self, r: &Reservation) {
        let reason = match r.status {
            ReservationStatus::Expired => "EXPIRED".to_owned(),
            _ => r.release_reason.clone().unwrap_or_else(|| "RELEASED".to_owned()),
        };
        self.reservation("inventory.released", r, Some(&reason));
    }

    fn alert(&mut self, a: &StockAlert) {
        let event_type = match a.kind {
            AlertKind::LowStock => "inventory.low_stock",
            AlertKind::OutOfStock => "inventory.out_of_stock",
        };
        let mut data = line_json(a.sku.as_str(), 0);
        if let Value::Object(m) = &mut data {
            m.remove("quantity");
        }
        data["available"] = json!(a.available);
        data["threshold"] = json!(a.threshold);
        self.push(event_type, a.sku.as_str().to_owned(), None, data);
    }
}

/// The events one WAL record of shard `shard` publishes, with ids `{shard}-{lsn}-{n}`.
///
/// - a reservation made (`ReserveLocal`, or `ActivateReservation` of a cross-shard one)
///   → `inventory.reserved`;
/// - committed → `inventory.confirmed`; released → `inventory.released` with the
///   release reason (CANCELLED, PAYMENT_FAILED, ...); expired (by the sweep, by an
///   operator, or found expired on commit) → `inventory.released` reason EXPIRED;
/// - an item set or adjusted → `inventory.adjusted`; deleted → `inventory.item_deleted`;
/// - every stock alert the record raised → `inventory.low_stock` /
///   `inventory.out_of_stock`, after the record's own event.
///
/// The internal steps of a cross-shard reservation (open, hold, abort, hold release
/// and commit) publish nothing but their alerts.
pub fn events_for_record(shard: usize, lsn: u64, now: Millis, command: &Command, applied: &Applied) -> Vec<OutEvent> {
    let mut b = Builder { shard, lsn, now, out: Vec::new() };
    match (command, &applied.outcome) {
        (Command::ReserveLocal { .. }, Outcome::Reserved(r)) => b.reservation("inventory.reserved", r, None),
        (Command::ActivateReservation { .. }, Outcome::Reservation { reservation: r, changed: true }) => {
            b.reservation("inventory.reserved", r, None)
        }
        (Command::CommitReservation { .. }, Outcome::Reservation { reservation: r, changed: true }) => {
            b.reservation("inventory.confirmed", r, None)
        }
        (
            Command::ReleaseReservation { .. } | Command::ExpireReservation { .. },
            Outcome::Reservation { reservation: r, changed: true },
        ) => b.released(r),
        (_, Outcome::ExpiredOnAccess(r)) => b.released(r),
        (Command::ExpireDue { .. }, Outcome::Expired { expired, .. }) => {
            for r in expired {
                b.released(r);
            }
        }
        (Command::SetItem { .. }, Outcome::Item { item, created }) => {
            let mut data = line_json(item.sku.as_str(), 0);
            data["quantity"] = json!(item.on_hand);
            data["reason"] = json!(if *created { "CREATED" } else { "SET" });
            data["onHand"] = json!(item.on_hand);
            data["reserved"] = json!(item.reserved);
            data["available"] = json!(item.available());
            data["version"] = json!(item.version);
            b.push("inventory.adjusted", item.sku.as_str().to_owned(), None, data);
        }
        (Command::AdjustItem { delta, reason, note, .. }, Outcome::Item { item, .. }) => {
            let mut data = line_json(item.sku.as_str(), delta.unsigned_abs());
            data["delta"] = json!(delta);
            data["reason"] = json!(reason.as_str());
            if let Some(note) = note {
                data["note"] = json!(note);
            }
            data["onHand"] = json!(item.on_hand);
            data["reserved"] = json!(item.reserved);
            data["available"] = json!(item.available());
            data["version"] = json!(item.version);
            b.push("inventory.adjusted", item.sku.as_str().to_owned(), None, data);
        }
        (Command::DeleteItem { .. }, Outcome::Deleted { sku }) => {
            let data = json!({ "sku": sku.as_str() });
            b.push("inventory.item_deleted", sku.as_str().to_owned(), None, data);
        }
        _ => {}
    }
    for a in &applied.alerts {
        b.alert(a);
    }
    b.out
}

/// `inventory.reservation_failed` for a consumed reserve that failed (seed 000's
/// order.reservation.failed: the failed items and why). Not in the WAL: a failed
/// command changes nothing, so it is published from the consumer, with an id derived
/// from the consumed message's position.
pub fn reservation_failed(
    id: String,
    order_id: &str,
    incoming: &Incoming,
    error: &EngineError,
    now: Millis,
) -> OutEvent {
    let failed: Vec<Value> = match error {
        EngineError::InsufficientInventory { items } => items
            .iter()
            .map(|s| {
                let mut v = line_json(&s.sku, s.requested);
                v["available"] = json!(s.available);
                v["reason"] = json!("INSUFFICIENT_INVENTORY");
                v
            })
            .collect(),
        EngineError::ItemNotFound { sku } | EngineError::SalesBlocked { sku } => {
            let mut v = line_json(sku, 0);
            v["reason"] = json!(error.code());
            vec![v]
        }
        EngineError::MaxPerOrderExceeded { sku, requested, max_per_order } => {
            let mut v = line_json(sku, *requested);
            v["maxPerOrder"] = json!(max_per_order);
            v["reason"] = json!("MAX_PER_ORDER_EXCEEDED");
            vec![v]
        }
        _ => Vec::new(),
    };
    let mut data = json!({
        "orderId": order_id,
        "reason": error.code(),
        "message": error.to_string(),
        "failedItems": failed,
    });
    for field in ["sagaId", "storeId", "userId"] {
        if let Some(v) = incoming.data.get(field) {
            data[field] = v.clone();
        }
    }
    OutEvent {
        id,
        event_type: "inventory.reservation_failed",
        key: order_id.to_owned(),
        correlation_id: Some(order_id.to_owned()),
        timestamp: now,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bare_and_enveloped_payloads() {
        let bare = br#"{"eventType":"order.created","orderId":"o1","items":[{"productId":"p","variantId":"v","quantity":2},{"sku":"S","quantity":1}]}"#;
        let m = parse_message("orders", Some(bare)).unwrap();
        assert_eq!(m.event_type, "order.created");
        assert_eq!(m.order_id().unwrap(), "o1");
        assert_eq!(
            m.lines().unwrap(),
            vec![Line { sku: "p:v".into(), quantity: 2 }, Line { sku: "S".into(), quantity: 1 }]
        );
        let env = br#"{"id":"e1","type":"inventory.confirm_requested","source":"order-service","dataVersion":"1.0","correlationId":"o1","data":{"orderId":"o1","reservationId":"r"}}"#;
        let m = parse_message("x", Some(env)).unwrap();
        assert_eq!(m.event_type, "inventory.confirm_requested");
        assert_eq!(m.event_id.as_deref(), Some("e1"));
        assert_eq!(m.order_id().unwrap(), "o1");
        // No type anywhere: the topic names it.
        let m = parse_message("order.checkout.started.topic", Some(br#"{"orderId":"o"}"#)).unwrap();
        assert_eq!(m.event_type, "order.checkout.started");
        assert!(parse_message("t", Some(b"not json")).is_err());
        assert!(parse_message("t", Some(b"[1]")).is_err());
        assert!(parse_message("t", None).is_err());
    }

    #[test]
    fn default_map_and_overrides() {
        let m = EventMap::default();
        assert_eq!(m.action("order.created"), Some(Action::Reserve));
        assert_eq!(m.action("payment.completed"), Some(Action::Commit));
        assert_eq!(m.action("payment.failed"), Some(Action::PaymentFailed));
        assert_eq!(m.action("order.returned"), Some(Action::Restock));
        assert_eq!(m.action("nope"), None);
        let m = EventMap::with_overrides(&["reserve=cart.checkout".into()]).unwrap();
        assert_eq!(m.action("order.created"), None);
        assert_eq!(m.action("cart.checkout"), Some(Action::Reserve));
        assert!(EventMap::with_overrides(&["bogus=x".into()]).is_err());
    }

    #[test]
    fn iso_time() {
        assert_eq!(iso_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_millis(1_700_556_450_123), "2023-11-21T08:47:30.123Z");
    }
}
