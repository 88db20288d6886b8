//! JSON renderings the published events share: a SKU's line, an item's figures with
//! its locations, and a reservation with, per item, where its units are held.
//!
//! A location is rendered as the HTTP item view renders it:
//! `{"location","onHand","available","reserved","sold","incoming"}` (the default
//! location is `"default"`); an allocation as `{"location","quantity","committed"}`.

use serde_json::{json, Map, Value};
use stockd_engine::location::{Allocation, LocationStock};
use stockd_engine::{Item, Millis, Reservation, ReservationStatus, Sku};

pub fn iso_millis(ms: Millis) -> String {
    stockd_engine::time::format_millis(ms)
}

/// The line of a SKU as published: `sku`, and `productId`/`variantId` when the SKU
/// is `productId:variantId`.
pub fn line_json(sku: &str, quantity: u64) -> Value {
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

/// One location of an item.
pub fn location_json(l: &LocationStock) -> Value {
    json!({
        "location": l.location.as_str(),
        "onHand": l.on_hand,
        "available": l.available(),
        "reserved": l.reserved,
        "sold": l.sold,
        "incoming": l.incoming,
    })
}

/// Adds an item's figures to an event's data: `onHand`, `reserved`, `available`,
/// `sold`, `incoming`, `version` and `locations` (one entry per location, by id).
pub fn add_item_figures(data: &mut Value, item: &Item) {
    data["onHand"] = json!(item.on_hand);
    data["reserved"] = json!(item.reserved);
    data["available"] = json!(item.available());
    data["sold"] = json!(item.sold);
    data["incoming"] = json!(item.incoming);
    data["version"] = json!(item.version);
    data["locations"] = Value::Array(item.locations().iter().map(location_json).collect());
}

/// Where a reservation holds its units of `sku`, in the order they were chosen.
pub fn allocations_json(allocations: &[Allocation], sku: &Sku) -> Value {
    Value::Array(
        allocations
            .iter()
            .filter(|a| &a.sku == sku)
            .map(|a| json!({ "location": a.location.as_str(), "quantity": a.quantity, "committed": a.committed }))
            .collect(),
    )
}

/// The data of a reservation event: orderId, reservationId, status, items (each with
/// its `allocations`, and `committed` once committed), expiresAt, and the reason.
pub fn reservation_data(r: &Reservation, reason: Option<&str>) -> Value {
    let items: Vec<Value> = r
        .lines
        .iter()
        .map(|l| {
            let mut v = line_json(l.sku.as_str(), l.quantity);
            if r.status == ReservationStatus::Committed {
                v["committed"] = json!(l.committed);
            }
            v["allocations"] = allocations_json(&r.allocations(), &l.sku);
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
