//! Consumed messages, parsed: a bare payload or seed 002's envelope into [`Incoming`],
//! and an order's lines (item key, quantity and, optionally, the location to take them
//! from), delivery region, TTL, and a product event's items, each read with the
//! mapping's [`Fields`] (the built-in ones without `--kafka-config`). Errors are plain
//! text for the dead-letter topic.

use super::mapping::Fields;
use serde_json::Value;
use std::sync::{Arc, OnceLock};
use stockd_engine::location::AllocationStrategy;
use stockd_engine::EngineError;

/// Fields naming the location (warehouse) of an order line: stockd's `location`, and
/// seed 004's `warehouseId` / `warehouse_id`.
pub const LOCATION_FIELDS: [&str; 3] = ["location", "warehouseId", "warehouse_id"];

/// One line of an order: the SKU (the first of the mapping's `item_key` templates the
/// line fills; built in: `sku`, or `productId:variantId`, or `productId`), the quantity, and the location it must come from, when the line names one (the
/// raw text; the consumer checks it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub sku: String,
    pub quantity: u64,
    pub location: Option<String>,
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
    /// How its fields are read.
    pub fields: Arc<Fields>,
}

/// A product event's item: its key, on-hand quantity and low-stock threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewItem {
    pub sku: String,
    pub on_hand: u64,
    pub low_stock_threshold: Option<u64>,
}

fn str_field<'a, S: AsRef<str>>(v: &'a Value, names: &[S]) -> Option<&'a str> {
    names.iter().find_map(|n| v.get(n.as_ref()).and_then(Value::as_str)).filter(|s| !s.is_empty())
}

/// The first of `names` that is present (and not null).
fn first_field<'a>(v: &'a Value, names: &'a [String]) -> Option<(&'a str, &'a Value)> {
    names.iter().find_map(|n| v.get(n).filter(|x| !x.is_null()).map(|x| (n.as_str(), x)))
}

/// The built-in fields, shared.
fn default_fields() -> &'static Arc<Fields> {
    static DEFAULT: OnceLock<Arc<Fields>> = OnceLock::new();
    DEFAULT.get_or_init(|| Arc::new(Fields::default()))
}

/// Parses a consumed message with the built-in fields. Errors are for the
/// dead-letter topic.
pub fn parse_message(topic: &str, payload: Option<&[u8]>) -> Result<Incoming, String> {
    parse_with(default_fields(), topic, payload)
}

/// Parses a consumed message with `fields`. Errors are for the dead-letter topic.
pub fn parse_with(fields: &Arc<Fields>, topic: &str, payload: Option<&[u8]>) -> Result<Incoming, String> {
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
        let t = str_field(&value, &fields.event_type).map(str::to_owned);
        let id = str_field(&value, &fields.event_id).map(str::to_owned);
        (t, id, value)
    };
    let event_type = event_type.unwrap_or_else(|| topic.strip_suffix(".topic").unwrap_or(topic).to_owned());
    Ok(Incoming { event_type, event_id, data, fields: fields.clone() })
}

/// A string field that may be absent (or null) but, when present, must be a string.
fn optional_str<S: AsRef<str>>(v: &Value, names: &[S], field: &str) -> Result<Option<String>, String> {
    let mut found: Option<(&str, &str)> = None;
    for name in names {
        let name = name.as_ref();
        match v.get(name) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => match found {
                Some((other, prev)) if prev != s => {
                    return Err(format!("{field}: {other} {prev:?} and {name} {s:?} disagree"));
                }
                Some(_) => {}
                None => found = Some((name, s)),
            },
            Some(other) => return Err(format!("{field}: {name} must be a string, got {other}")),
        }
    }
    Ok(found.map(|(_, s)| s.to_owned()))
}

impl Incoming {
    /// The order id: the first `order_id` field that is a non-empty string, else the
    /// first that is a whole number.
    pub fn order_id(&self) -> Result<String, String> {
        let f = &self.fields.order_id;
        str_field(&self.data, f)
            .map(str::to_owned)
            .or_else(|| f.iter().find_map(|n| self.data.get(n).and_then(Value::as_u64)).map(|n| n.to_string()))
            .ok_or_else(|| format!("{}: missing {}", self.event_type, f[0]))
    }

    /// The reservation id, when the message names one.
    pub fn reservation_id(&self) -> Option<&str> {
        str_field(&self.data, &self.fields.reservation_id)
    }

    /// The item key a line (or a product event) names: the first `item_key` template
    /// it fills.
    pub fn item_key(&self, object: &Value) -> Option<String> {
        self.fields.item_key.iter().find_map(|t| t.fill(object))
    }

    /// What an object without an item key lacks.
    fn item_key_hint(&self) -> String {
        let names: Vec<&str> = self.fields.item_key.iter().map(|t| t.as_str()).collect();
        match names.as_slice() {
            ["{sku}", "{productId}:{variantId}", "{productId}"] => "needs sku or productId".to_owned(),
            _ => format!("fills no item key template ({})", names.join(", ")),
        }
    }

    /// The raw line objects, when the message lists any.
    pub fn raw_items(&self) -> Option<&Vec<Value>> {
        first_field(&self.data, &self.fields.items).and_then(|(_, v)| v.as_array())
    }

    /// The order's lines; a missing or empty list is an error. The same SKU twice is
    /// one line (quantities added); it may not name two different locations.
    pub fn lines(&self) -> Result<Vec<Line>, String> {
        let f = &self.fields;
        let items = self.raw_items().ok_or_else(|| format!("{}: missing {}", self.event_type, f.items[0]))?;
        if items.is_empty() {
            return Err(format!("{}: {} is empty", self.event_type, f.items[0]));
        }
        let mut out: Vec<Line> = Vec::with_capacity(items.len());
        for (i, it) in items.iter().enumerate() {
            let sku = self.item_key(it).ok_or_else(|| format!("items[{i}]: {}", self.item_key_hint()))?;
            let quantity = first_field(it, &f.quantity)
                .and_then(|(_, v)| v.as_u64())
                .ok_or_else(|| format!("items[{i}].{}: must be a whole number", f.quantity[0]))?;
            let location = optional_str(it, &f.location, &format!("items[{i}].location"))?;
            match out.iter_mut().find(|l| l.sku == sku) {
                Some(l) if l.location != location => {
                    return Err(format!(
                        "items[{i}]: {sku} appears twice with different locations ({} and {})",
                        l.location.as_deref().unwrap_or("none"),
                        location.as_deref().unwrap_or("none")
                    ));
                }
                Some(l) => l.quantity = l.quantity.saturating_add(quantity),
                None => out.push(Line { sku, quantity, location }),
            }
        }
        Ok(out)
    }

    /// The delivery region (`region`), when the message names one.
    pub fn region(&self) -> Result<Option<String>, String> {
        optional_str(&self.data, &self.fields.region, "region")
    }

    /// The order's own TTL in seconds (`expiresIn`), when it names one; a TTL that is
    /// not a whole number of seconds is refused rather than silently replaced by the
    /// server's default.
    pub fn ttl_secs(&self) -> Result<Option<u64>, EngineError> {
        match first_field(&self.data, &self.fields.ttl) {
            None => Ok(None),
            Some((name, v)) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| EngineError::validation(name, format!("must be a whole number of seconds, got {v}"))),
        }
    }

    /// A product event's items: one per entry of its `variants` (each inheriting the
    /// product's `productId`, its `id` read as `variantId`), else the event itself.
    /// Each is keyed by the `item_key` templates; its on-hand quantity (default 0) and
    /// low-stock threshold are the `on_hand` and `low_stock_threshold` fields.
    pub fn new_items(&self) -> Result<Vec<NewItem>, String> {
        let data = &self.data;
        let objects: Vec<Value> = match data.get("variants").and_then(Value::as_array) {
            Some(vs) if !vs.is_empty() => vs
                .iter()
                .map(|v| {
                    let mut v = v.clone();
                    if v.get("productId").is_none() && v.get("sku").is_none() {
                        v["productId"] = data.get("productId").cloned().unwrap_or(Value::Null);
                    }
                    if v.get("variantId").is_none() {
                        if let Some(id) = v.get("id").cloned() {
                            v["variantId"] = id;
                        }
                    }
                    v
                })
                .collect(),
            _ => vec![data.clone()],
        };
        let number = |v: &Value, names: &[String]| names.iter().find_map(|n| v.get(n).and_then(Value::as_u64));
        let mut out = Vec::with_capacity(objects.len());
        for (i, v) in objects.iter().enumerate() {
            let sku =
                self.item_key(v).ok_or_else(|| format!("{}: variant {i} {}", self.event_type, self.item_key_hint()))?;
            out.push(NewItem {
                sku,
                on_hand: number(v, &self.fields.on_hand).unwrap_or(0),
                low_stock_threshold: number(v, &self.fields.low_stock_threshold),
            });
        }
        Ok(out)
    }

    /// The allocation strategy (`allocation`, alias `allocationStrategy`), when the
    /// message names one: priority, most-available or single-location-only.
    pub fn allocation(&self) -> Result<Option<AllocationStrategy>, String> {
        let Some(name) = optional_str(&self.data, &self.fields.allocation, "allocation")? else {
            return Ok(None);
        };
        AllocationStrategy::parse(&name).map(Some).ok_or_else(|| {
            let all: Vec<&str> = AllocationStrategy::ALL.iter().map(|a| a.as_str()).collect();
            format!("allocation: must be one of {}; got {name:?}", all.join(", "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(sku: &str, quantity: u64, location: Option<&str>) -> Line {
        Line { sku: sku.into(), quantity, location: location.map(str::to_owned) }
    }

    #[test]
    fn parses_bare_and_enveloped_payloads() {
        let bare = br#"{"eventType":"order.created","orderId":"o1","items":[{"productId":"p","variantId":"v","quantity":2},{"sku":"S","quantity":1}]}"#;
        let m = parse_message("orders", Some(bare)).unwrap();
        assert_eq!(m.event_type, "order.created");
        assert_eq!(m.order_id().unwrap(), "o1");
        assert_eq!(m.lines().unwrap(), vec![line("p:v", 2, None), line("S", 1, None)]);
        assert_eq!(m.region().unwrap(), None);
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
    fn lines_carry_locations_and_the_order_its_region() {
        let msg = |items: &str| {
            let body = format!(r#"{{"orderId":"o","region":"south","items":{items}}}"#);
            parse_message("order.created", Some(body.as_bytes())).unwrap()
        };
        let m = msg(r#"[{"sku":"A","quantity":1,"location":"wh-1"},{"sku":"B","quantity":2,"warehouseId":"wh-2"},
               {"sku":"C","quantity":3,"warehouse_id":"wh-3"},{"sku":"A","quantity":4,"location":"wh-1"},
               {"sku":"D","quantity":5,"location":null}]"#);
        assert_eq!(
            m.lines().unwrap(),
            vec![
                line("A", 5, Some("wh-1")),
                line("B", 2, Some("wh-2")),
                line("C", 3, Some("wh-3")),
                line("D", 5, None)
            ]
        );
        assert_eq!(m.region().unwrap().as_deref(), Some("south"));
        let bad = [
            r#"[{"sku":"A","quantity":1,"location":7}]"#,
            r#"[{"sku":"A","quantity":1,"location":"x","warehouseId":"y"}]"#,
            r#"[{"sku":"A","quantity":1,"location":"x"},{"sku":"A","quantity":1}]"#,
        ];
        for items in bad {
            let e = msg(items).lines().unwrap_err();
            assert!(e.contains("location"), "{items}: {e}");
        }
        let m = parse_message("t", Some(br#"{"orderId":"o","region":["x"],"items":[]}"#)).unwrap();
        assert!(m.region().unwrap_err().starts_with("region"));
    }
}
