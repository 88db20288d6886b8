//! Reservations as the API shows them: the lookup view (also commit, release, extend,
//! expire and the operator listing), the reserve answer (seed 002's shape), and the
//! error details of a reserve that found too little stock.

use super::item::SkuLine;
use super::location::AllocationView;
use crate::envelope::rfc3339;
use serde::Serialize;
use serde_json::Value;
use stockd_engine::{Reservation, ReservationId};
use utoipa::ToSchema;

/// A reservation as lookups, commit, release, extend and expire show it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReservationView {
    pub created_at: String,
    pub expires_at: String,
    /// When it was committed, released or expired; null while ACTIVE or PENDING.
    #[schema(required = true)]
    pub finished_at: Option<String>,
    pub items: Vec<ReservationLineView>,
    /// The client's `metadata` of the reserve, as given; null when none.
    #[schema(value_type = Option<Object>)]
    #[schema(required = true)]
    pub metadata: Option<Value>,
    pub order_id: String,
    #[schema(required = true)]
    pub release_reason: Option<String>,
    #[schema(value_type = String)]
    pub reservation_id: ReservationId,
    /// ACTIVE, PENDING, COMMITTED, RELEASED or EXPIRED.
    pub status: &'static str,
}

/// One line of a reservation: its SKU (and productId / variantId), the quantity held,
/// how much of it was committed, and where the units are held.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReservationLineView {
    pub allocations: Vec<AllocationView>,
    pub committed_quantity: u64,
    #[serde(flatten)]
    pub line: SkuLine,
}

impl From<&Reservation> for ReservationView {
    fn from(r: &Reservation) -> ReservationView {
        let allocations = r.allocations();
        ReservationView {
            created_at: rfc3339(r.created_at),
            expires_at: rfc3339(r.expires_at),
            finished_at: r.finished_at.map(rfc3339),
            items: r
                .lines
                .iter()
                .map(|l| ReservationLineView {
                    allocations: AllocationView::of(&allocations, &l.sku),
                    committed_quantity: l.committed,
                    line: SkuLine::new(l.sku.as_str(), l.quantity),
                })
                .collect(),
            // Stored as the JSON text the client sent (re-rendered by the server).
            metadata: r.metadata.as_deref().and_then(|m| serde_json::from_str::<Value>(m).ok()),
            order_id: r.order_id.as_str().to_owned(),
            release_reason: r.release_reason.as_deref().map(str::to_owned),
            reservation_id: r.reservation_id,
            status: r.status.as_str(),
        }
    }
}

/// A page of the operator's reservation listing.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReservationPage {
    /// null: the listing is complete (a page may hold fewer than `limit` and still
    /// have one).
    #[schema(required = true)]
    pub next_cursor: Option<String>,
    pub reservations: Vec<ReservationView>,
}

/// The answer to `POST /reservations/expire-due`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExpiredCountView {
    /// ACTIVE reservations past their deadline expired now.
    pub expired: usize,
}

/// A reserve line named as the client named it: `productId` (+ `variantId`) or `sku`,
/// and its `location` when it gave one.
#[derive(Debug, Clone, Copy, Default)]
pub struct Echo<'a> {
    pub product_id: Option<&'a str>,
    pub variant_id: Option<&'a str>,
    pub sku: Option<&'a str>,
    pub location: Option<&'a str>,
}

/// The answer to a reserve (seed 002's shape).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReserveView {
    pub expires_at: String,
    pub items: Vec<ReserveLineView>,
    pub order_id: String,
    #[schema(value_type = String)]
    pub reservation_id: ReservationId,
    pub status: &'static str,
}

/// A line of a reserve answer, named as the request named it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReserveLineView {
    /// Present when the request names a location, region or allocation strategy, or
    /// a unit of the line came from a named location.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocations: Option<Vec<AllocationView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    pub quantity: u64,
    pub reserved: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant_id: Option<String>,
}

impl ReserveLineView {
    pub fn new(echo: Echo<'_>, quantity: u64, reserved: bool, allocations: Option<Vec<AllocationView>>) -> Self {
        ReserveLineView {
            allocations,
            location: echo.location.map(str::to_owned),
            product_id: echo.product_id.map(str::to_owned),
            quantity,
            reserved,
            sku: echo.sku.map(str::to_owned),
            variant_id: echo.variant_id.map(str::to_owned),
        }
    }
}

/// A line a reserve could not fill (`details.items` of INSUFFICIENT_INVENTORY): named
/// as the request named it, with its `sku` always.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShortfallView {
    pub available_quantity: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    pub requested_quantity: u64,
    pub sku: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant_id: Option<String>,
}

impl ShortfallView {
    /// The shortfall of `sku`, its line named as `echo` (the SKU only when unknown).
    pub fn new(echo: Echo<'_>, sku: &str, requested: u64, available: u64) -> ShortfallView {
        ShortfallView {
            available_quantity: available,
            location: echo.location.map(str::to_owned),
            product_id: echo.product_id.map(str::to_owned),
            requested_quantity: requested,
            sku: sku.to_owned(),
            variant_id: echo.variant_id.map(str::to_owned),
        }
    }
}
