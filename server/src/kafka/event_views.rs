//! The data of the published events, rendered by the same view structs as the HTTP
//! answers ([`crate::views`]): a SKU's line is a [`SkuLine`] (`sku`, `productId`,
//! `variantId`, `quantity`), an item's figures an [`ItemFigures`] (the item view's
//! `onHand`, `reserved`, `available`, `sold`, `incoming`, `version` and `locations`,
//! each a [`crate::views::LocationView`]), a reservation's units per item a list of
//! [`AllocationView`] (`{location, quantity, committed}`).
//!
//! Events are JSON values ([`super::events::OutEvent::data`]) because each event
//! type adds its own fields; what they share comes from here.

use crate::views::{AllocationView, ItemFigures, SkuLine};
use serde::Serialize;
use serde_json::Value;
use stockd_engine::{Item, Millis, Reservation, ReservationId, ReservationStatus};

pub fn iso_millis(ms: Millis) -> String {
    stockd_engine::time::format_millis(ms)
}

/// A view as a JSON value. Views are plain structs of strings and numbers, whose
/// serialization cannot fail; should it ever, the event says so rather than panic.
fn value_of(view: &impl Serialize) -> Value {
    serde_json::to_value(view).unwrap_or_else(|e| Value::String(format!("unrenderable: {e}")))
}

/// The line of a SKU as published: `sku`, and `productId`/`variantId` when the SKU
/// is `productId:variantId`.
pub fn line_json(sku: &str, quantity: u64) -> Value {
    value_of(&SkuLine::new(sku, quantity))
}

/// Adds an item's figures ([`ItemFigures`]) to an event's data.
pub fn add_item_figures(data: &mut Value, item: &Item) {
    if let (Value::Object(data), Value::Object(figures)) = (data, value_of(&ItemFigures::from(item))) {
        data.extend(figures);
    }
}

/// The data of a reservation event.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ReservationEvent<'a> {
    expires_at: String,
    items: Vec<ReservationEventLine>,
    order_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    reservation_id: ReservationId,
    status: &'static str,
}

/// An item of a reservation event: its line, where its units are held, and once
/// committed, how many were.
#[derive(Debug, Serialize)]
struct ReservationEventLine {
    allocations: Vec<AllocationView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    committed: Option<u64>,
    #[serde(flatten)]
    line: SkuLine,
}

/// The data of a reservation event: orderId, reservationId, status, items (each with
/// its `allocations`, and `committed` once committed), expiresAt, and the reason.
pub fn reservation_data(r: &Reservation, reason: Option<&str>) -> Value {
    let allocations = r.allocations();
    let committed = r.status == ReservationStatus::Committed;
    let items = r
        .lines
        .iter()
        .map(|l| ReservationEventLine {
            allocations: AllocationView::of(&allocations, &l.sku),
            committed: committed.then_some(l.committed),
            line: SkuLine::new(l.sku.as_str(), l.quantity),
        })
        .collect();
    value_of(&ReservationEvent {
        expires_at: iso_millis(r.expires_at),
        items,
        order_id: r.order_id.as_str(),
        reason,
        reservation_id: r.reservation_id,
        status: r.status.as_str(),
    })
}
