//! The event contract, without any Kafka I/O: the [`Action`]s a consumed event can
//! map to (the map itself is [`super::mapping::Mapping`]), and turning a replayed WAL record into the [`OutEvent`]s it
//! publishes (seed 002's envelope: id, type, source, dataVersion, timestamp,
//! correlationId, data). Parsing consumed messages is in [`super::incoming`], the
//! JSON renderings of items and reservations in [`super::event_views`].

use super::event_views::{add_item_figures, iso_millis, line_json, reservation_data};
use super::incoming::Incoming;
use super::mapping::{Payload, Publishing};
use rdkafka::message::{Header, OwnedHeaders};
use serde_json::{json, Value};
use stockd_engine::location::LocationId;
use stockd_engine::{Adjust, AdjustReason, ReturnSold, SetItem, Transfer};
use stockd_engine::{
    AlertKind, Applied, Command, EngineError, Item, Millis, Outcome, Reservation, ReservationStatus, StockAlert,
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
    /// Release the order's reservation (reason CANCELLED); if the order is committed
    /// already, the mapping's [`CancelAfterCommit`](super::mapping::CancelAfterCommit)
    /// policy decides (restock or dead-letter).
    Cancel,
    /// Release the order's reservation (reason PAYMENT_FAILED); a committed order as
    /// for `Cancel`.
    PaymentFailed,
    /// Returned items back on hand (RETURN adjustments): the units the order
    /// committed (of the lines the event lists, when it lists any), or, when stockd
    /// no longer knows the order, the event's items. Also named `return`.
    Restock,
    /// Create the item if it does not exist.
    CreateItem,
    /// Set the item's on-hand quantity (creating it if missing).
    SetItem,
    /// Consume the message and do nothing (e.g. `order.updated` with status shipped).
    Ignore,
}

impl Action {
    pub const ALL: [Action; 9] = [
        Action::Reserve,
        Action::Commit,
        Action::Confirm,
        Action::Cancel,
        Action::PaymentFailed,
        Action::Restock,
        Action::CreateItem,
        Action::SetItem,
        Action::Ignore,
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
            Action::SetItem => "set_item",
            Action::Ignore => "ignore",
        }
    }

    /// An action by name; `return` is another name of `restock`.
    pub fn parse(s: &str) -> Option<Action> {
        if s == "return" {
            return Some(Action::Restock);
        }
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
            Action::SetItem | Action::Ignore => &[],
        }
    }
}

/// Every event type stockd publishes (the keys a mapping's `publish.topics` may name).
pub const PUBLISHED_TYPES: [&str; 11] = [
    "inventory.reserved",
    "inventory.confirmed",
    "inventory.released",
    "inventory.adjusted",
    "inventory.item_deleted",
    "inventory.transferred",
    "inventory.received",
    "inventory.low_stock",
    "inventory.out_of_stock",
    "inventory.reservation_failed",
    "inventory.confirmation_failed",
];

/// The event types whose data lists a reservation's `items` (the types a mapping's
/// `publish.lines` may name).
pub const LINE_TYPES: [&str; 3] = ["inventory.reserved", "inventory.confirmed", "inventory.released"];

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

    /// The body the mapping lays out for this event: the envelope, or its `data`
    /// alone.
    pub fn body(&self, publishing: &Publishing) -> Vec<u8> {
        let v = match publishing.payload_for(self.event_type) {
            Payload::Envelope => &self.envelope(),
            Payload::Bare => &self.data,
        };
        serde_json::to_vec(v).expect("JSON of a Value")
    }

    /// The events the mapping publishes for this one: itself, or for a type its
    /// `publish.lines` lists, one event per element of `items` — the data without
    /// `items` plus that item's fields (sku, quantity, allocations, committed), with
    /// the id `{id}-{i}` (i from 0) and the same key.
    pub fn per_line(self, publishing: &Publishing) -> Vec<OutEvent> {
        let items = match self.data.get("items") {
            Some(Value::Array(items)) if publishing.per_line(self.event_type) && !items.is_empty() => items.clone(),
            _ => return vec![self],
        };
        let mut base = self.data.clone();
        if let Value::Object(m) = &mut base {
            m.remove("items");
        }
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                let mut data = base.clone();
                if let (Value::Object(d), Value::Object(line)) = (&mut data, item) {
                    d.extend(line);
                }
                OutEvent { id: format!("{}-{i}", self.id), data, ..self.clone() }
            })
            .collect()
    }

    /// The topic the mapping sends this event to.
    pub fn topic(&self, publishing: &Publishing) -> String {
        publishing.topic_for(self.event_type)
    }

    /// The Kafka headers of every published event: `id` and `type` (a bare body
    /// names neither).
    pub fn headers(&self) -> OwnedHeaders {
        OwnedHeaders::new()
            .insert(Header { key: "id", value: Some(self.id.as_str()) })
            .insert(Header { key: "type", value: Some(self.event_type) })
    }
}

/// The name of the location a set / adjust touched (none named: the default one).
fn location_name(location: Option<&LocationId>) -> &str {
    location.map_or(LocationId::DEFAULT_NAME, LocationId::as_str)
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
            _ => r.release_reason.as_deref().unwrap_or("RELEASED").to_owned(),
        };
        self.reservation("inventory.released", r, Some(&reason));
    }

    /// An item event keyed by SKU, with the item's figures after the change.
    fn item(&mut self, event_type: &'static str, item: &Item, mut data: Value) {
        add_item_figures(&mut data, item);
        self.push(event_type, item.sku.as_str().to_owned(), None, data);
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
/// - an item set or adjusted → `inventory.adjusted` (with the `location` it set or
///   adjusted); deleted → `inventory.item_deleted`;
/// - stock moved between locations → `inventory.transferred`; units in transit
///   received → `inventory.received`;
/// - every stock alert the record raised → `inventory.low_stock` /
///   `inventory.out_of_stock`, after the record's own event.
///
/// Item events carry the item's figures after the change, `incoming` and `locations`
/// included; reservation events carry, per item, its `allocations`. The internal steps
/// of a cross-shard reservation (open, hold, abort, hold release and commit) publish
/// nothing but their alerts; a new warehouse table (SET_WAREHOUSES, one record per
/// shard) and blocking sales publish nothing.
pub fn events_for_record(shard: usize, lsn: u64, now: Millis, command: &Command, applied: &Applied) -> Vec<OutEvent> {
    let mut b = Builder { shard, lsn, now, out: Vec::new() };
    match (command, &applied.outcome) {
        (Command::ReserveLocal(_), Outcome::Reserved(r)) => b.reservation("inventory.reserved", r, None),
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
        (Command::SetItem(SetItem { location, .. }), Outcome::Item { item, created }) => {
            let mut data = line_json(item.sku.as_str(), 0);
            data["quantity"] = json!(item.on_hand);
            data["reason"] = json!(if *created { "CREATED" } else { "SET" });
            data["location"] = json!(location_name(location.as_ref()));
            b.item("inventory.adjusted", item, data);
        }
        (Command::AdjustItem(Adjust { delta, reason, note, location, .. }), Outcome::Item { item, .. }) => {
            let mut data = line_json(item.sku.as_str(), delta.unsigned_abs());
            data["delta"] = json!(delta);
            data["reason"] = json!(reason.as_str());
            if let Some(note) = note {
                data["note"] = json!(note);
            }
            data["location"] = json!(location_name(location.as_ref()));
            b.item("inventory.adjusted", item, data);
        }
        // A return is a RETURN adjustment of what came back, naming its order.
        (Command::ReturnSold(ReturnSold { location, order_id, note, .. }), Outcome::Returned { item, returned }) => {
            let mut data = line_json(item.sku.as_str(), *returned);
            data["delta"] = json!(returned);
            data["reason"] = json!(AdjustReason::Return.as_str());
            if let Some(note) = note {
                data["note"] = json!(note);
            }
            data["location"] = json!(location.as_str());
            data["orderId"] = json!(order_id.as_str());
            b.item("inventory.adjusted", item, data);
        }
        (Command::Transfer(Transfer { from, to, quantity, in_transit, note, .. }), Outcome::Item { item, .. }) => {
            let mut data = line_json(item.sku.as_str(), *quantity);
            data["from"] = json!(from.as_str());
            data["to"] = json!(to.as_str());
            data["inTransit"] = json!(in_transit);
            if let Some(note) = note {
                data["note"] = json!(note);
            }
            b.item("inventory.transferred", item, data);
        }
        (Command::ReceiveIncoming { location, quantity, .. }, Outcome::Item { item, .. }) => {
            let mut data = line_json(item.sku.as_str(), *quantity);
            data["location"] = json!(location.as_str());
            b.item("inventory.received", item, data);
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
    let mut failed: Vec<Value> = match error {
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
    // The location a failed line had to come from, when the order named one, and the
    // line's productTitle (seed 000), when it has one.
    let lines = incoming.lines().unwrap_or_default();
    let raw = incoming.raw_items().cloned().unwrap_or_default();
    for v in &mut failed {
        let named = lines.iter().find(|l| v["sku"] == l.sku.as_str()).and_then(|l| l.location.as_deref());
        if let Some(location) = named {
            v["location"] = json!(location);
        }
        let title = raw.iter().find(|it| incoming.item_key(it).as_deref() == v["sku"].as_str());
        if let Some(t) = title.and_then(|it| it.get("productTitle")).filter(|t| t.is_string()) {
            v["productTitle"] = t.clone();
        }
    }
    let mut data = json!({
        "orderId": order_id,
        "reason": error.code(),
        "message": error.to_string(),
        "failedItems": failed,
        "failedAt": iso_millis(now),
    });
    for field in ["sagaId", "storeId", "userId", "region"] {
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
    use stockd_engine::ReserveLocal;

    fn run(state: &mut stockd_engine::ShardState, lsn: u64, command: Command) -> Vec<OutEvent> {
        let applied = state.apply(&command, 1_000 + lsn).unwrap();
        events_for_record(0, lsn, 1_000 + lsn, &command, &applied)
    }

    #[test]
    fn item_and_reservation_events_show_locations() {
        use stockd_engine::location::Placement;
        use stockd_engine::{OrderId, ReservationKey, ShardState, Sku};
        let mut st = ShardState::new(0);
        let sku = Sku::parse("W-1", "sku").unwrap();
        let loc = |s: &str| LocationId::parse(s, "location").unwrap();
        let set = |location: &str, on_hand| {
            Command::SetItem(SetItem { location: Some(loc(location)), ..SetItem::on_hand(sku.clone(), on_hand) })
        };
        run(&mut st, 1, set("wh-a", 3));
        let e = run(&mut st, 2, set("wh-b", 4));
        assert_eq!(e[0].event_type, "inventory.adjusted");
        assert_eq!(e[0].data["location"], "wh-b");
        assert_eq!(e[0].data["onHand"], 7);
        assert_eq!(
            e[0].data["locations"][1],
            json!({"location": "wh-b", "onHand": 4, "available": 4, "reserved": 0, "sold": 0, "incoming": 0})
        );

        let transfer = Command::Transfer(Transfer {
            sku: sku.clone(),
            from: loc("wh-b"),
            to: loc("wh-c"),
            quantity: 2,
            in_transit: true,
            note: Some("rebalance".into()),
            idempotency_key: Some("move-1".into()),
        });
        let e = run(&mut st, 3, transfer);
        assert_eq!((e.len(), e[0].event_type, e[0].key.as_str()), (1, "inventory.transferred", "W-1"));
        let d = &e[0].data;
        assert_eq!(
            (&d["from"], &d["to"], &d["quantity"], &d["inTransit"]),
            (&json!("wh-b"), &json!("wh-c"), &json!(2), &json!(true))
        );
        assert_eq!((&d["note"], &d["onHand"], &d["incoming"]), (&json!("rebalance"), &json!(5), &json!(2)));
        assert_eq!(d["locations"][2]["incoming"], 2);

        let receipt =
            Command::ReceiveIncoming { sku: sku.clone(), location: loc("wh-c"), quantity: 2, idempotency_key: None };
        let e = run(&mut st, 4, receipt);
        assert_eq!(e[0].event_type, "inventory.received");
        assert_eq!((&e[0].data["location"], &e[0].data["quantity"]), (&json!("wh-c"), &json!(2)));
        assert_eq!((&e[0].data["onHand"], &e[0].data["incoming"]), (&json!(7), &json!(0)));
        assert_eq!(e[0].data["locations"][2]["onHand"], 2);

        // No location fills 5: split in id order (no warehouse table).
        let order = OrderId::parse("o-1", "orderId").unwrap();
        let reserve = Command::ReserveLocal(ReserveLocal {
            order_id: order.clone(),
            lines: vec![(sku.clone(), 5)],
            ttl_secs: 60,
            metadata: None,
            placement: Placement::default(),
        });
        let e = run(&mut st, 5, reserve);
        assert_eq!(e[0].event_type, "inventory.reserved");
        assert_eq!(
            e[0].data["items"][0]["allocations"],
            json!([{"location": "wh-a", "quantity": 3, "committed": 0}, {"location": "wh-b", "quantity": 2, "committed": 0}])
        );
        let commit = Command::CommitReservation { key: ReservationKey::Order(order), quantities: Some(vec![(sku, 4)]) };
        let e = run(&mut st, 6, commit);
        assert_eq!(e[0].event_type, "inventory.confirmed");
        assert_eq!(e[0].data["items"][0]["committed"], 4);
        assert_eq!(
            e[0].data["items"][0]["allocations"],
            json!([{"location": "wh-a", "quantity": 3, "committed": 3}, {"location": "wh-b", "quantity": 2, "committed": 1}])
        );
    }

    #[test]
    fn the_mapping_lays_out_the_body_and_every_event_has_id_and_type_headers() {
        use rdkafka::message::Headers;
        let e = OutEvent {
            id: "0-7-0".into(),
            event_type: "inventory.reservation_failed",
            key: "o-1".into(),
            correlation_id: Some("o-1".into()),
            timestamp: 1_700_556_450_123,
            data: json!({"orderId": "o-1", "reason": "INSUFFICIENT_INVENTORY"}),
        };
        let body = |p: &Publishing| serde_json::from_slice::<Value>(&e.body(p)).unwrap();
        let mut p = Publishing::default();
        let envelope = body(&p);
        assert_eq!(
            (&envelope["id"], &envelope["type"], &envelope["timestamp"], &envelope["data"]),
            (&json!("0-7-0"), &json!(e.event_type), &json!("2023-11-21T08:47:30.123Z"), &e.data)
        );
        p.payload_by_type.push((e.event_type.into(), Payload::Bare));
        assert_eq!(body(&p), e.data);
        p.payload_by_type.clear();
        p.payload = Payload::Bare;
        assert_eq!(body(&p), e.data);
        let h = e.headers();
        let got: Vec<(&str, &[u8])> = h.iter().map(|h| (h.key, h.value.unwrap())).collect();
        assert_eq!(got, [("id", &b"0-7-0"[..]), ("type", e.event_type.as_bytes())]);
    }

    #[test]
    fn a_mapping_may_publish_a_reservation_event_per_line() {
        let e = OutEvent {
            id: "1-9-0".into(),
            event_type: "inventory.reserved",
            key: "o-1".into(),
            correlation_id: Some("o-1".into()),
            timestamp: 0,
            data: json!({"orderId": "o-1", "status": "ACTIVE",
                         "items": [{"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 1}]}),
        };
        let mut p = Publishing::default();
        assert_eq!(e.clone().per_line(&p), vec![e.clone()], "not listed: as it is");
        p.per_line.push("inventory.reserved".into());
        let lines = e.clone().per_line(&p);
        let got: Vec<(&str, &Value, &str)> = lines.iter().map(|l| (l.id.as_str(), &l.data, l.key.as_str())).collect();
        assert_eq!(
            got,
            [
                ("1-9-0-0", &json!({"orderId": "o-1", "status": "ACTIVE", "sku": "A", "quantity": 2}), "o-1"),
                ("1-9-0-1", &json!({"orderId": "o-1", "status": "ACTIVE", "sku": "B", "quantity": 1}), "o-1"),
            ]
        );
        let other = OutEvent { event_type: "inventory.released", ..e };
        assert_eq!(other.clone().per_line(&p), vec![other], "another type: as it is");
    }

    #[test]
    fn iso_time() {
        assert_eq!(iso_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_millis(1_700_556_450_123), "2023-11-21T08:47:30.123Z");
    }
}
