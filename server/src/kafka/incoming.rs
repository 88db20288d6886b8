//! Consumed messages, parsed: a bare payload or seed 002's envelope into [`Incoming`],
//! and an order's lines (SKU, quantity and, optionally, the location to take them
//! from) and delivery region. Errors are plain text for the dead-letter topic.

use serde_json::Value;
use stockd_engine::location::AllocationStrategy;

/// Fields naming the location (warehouse) of an order line: stockd's `location`, and
/// seed 004's `warehouseId` / `warehouse_id`.
pub const LOCATION_FIELDS: [&str; 3] = ["location", "warehouseId", "warehouse_id"];

/// One line of an order: the SKU (`sku`, or `productId:variantId`, or `productId`),
/// the quantity, and the location it must come from, when the line names one (the
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

/// A string field that may be absent (or null) but, when present, must be a string.
fn optional_str(v: &Value, names: &[&str], field: &str) -> Result<Option<String>, String> {
    let mut found: Option<(&str, &str)> = None;
    for name in names {
        match v.get(*name) {
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
    pub fn order_id(&self) -> Result<String, String> {
        str_field(&self.data, &["orderId", "order_id"])
            .map(str::to_owned)
            .or_else(|| self.data.get("orderId").and_then(Value::as_u64).map(|n| n.to_string()))
            .ok_or_else(|| format!("{}: missing orderId", self.event_type))
    }

    /// The order's lines; a missing or empty list is an error. The same SKU twice is
    /// one line (quantities added); it may not name two different locations.
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
            let location = optional_str(it, &LOCATION_FIELDS, &format!("items[{i}].location"))?;
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
        optional_str(&self.data, &["region"], "region")
    }

    /// The allocation strategy (`allocation`, alias `allocationStrategy`), when the
    /// message names one: priority, most-available or single-location-only.
    pub fn allocation(&self) -> Result<Option<AllocationStrategy>, String> {
        let Some(name) = optional_str(&self.data, &["allocation", "allocationStrategy"], "allocation")? else {
            return Ok(None);
        };
        AllocationStrategy::parse(&name).map(Some).ok_or_else(|| {
            let all: Vec<&str> = AllocationStrategy::ALL.iter().map(|a| a.as_str()).collect();
            format!("allocation: must be one of {}; got {name:?}", all.join(", "))
        })
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
