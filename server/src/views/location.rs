//! A location's share of an item, where a reservation holds its units, and the
//! warehouse table.

use serde::Serialize;
use stockd_engine::{Allocation, LocationStock, Reservation, Sku, Warehouse};
use utoipa::ToSchema;

/// One location's share of an item. `available = onHand - reserved`. Also the
/// `locations` entries of the Kafka item events.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocationView {
    pub available: u64,
    /// In transit to this location: not sellable until received.
    pub incoming: u64,
    /// Warehouse id, or `default` for stock nobody placed.
    pub location: String,
    pub on_hand: u64,
    pub reserved: u64,
    pub sold: u64,
}

impl From<&LocationStock> for LocationView {
    fn from(l: &LocationStock) -> LocationView {
        LocationView {
            available: l.available(),
            incoming: l.incoming,
            location: l.location.to_string(),
            on_hand: l.on_hand,
            reserved: l.reserved,
            sold: l.sold,
        }
    }
}

/// An item's locations (`GET /items/{sku}/locations`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocationsView {
    pub locations: Vec<LocationView>,
    pub sku: String,
    pub version: u64,
}

/// Where a reservation holds units of one SKU: `quantity` of them at `location`,
/// `committed` of those sold. Also in the Kafka reservation events.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AllocationView {
    pub committed: u64,
    pub location: String,
    pub quantity: u64,
}

impl From<&Allocation> for AllocationView {
    fn from(a: &Allocation) -> AllocationView {
        AllocationView { committed: a.committed, location: a.location.to_string(), quantity: a.quantity }
    }
}

impl AllocationView {
    /// Where `r` holds its units of `sku`, in the order they were chosen.
    pub fn of(allocations: &[Allocation], sku: &Sku) -> Vec<AllocationView> {
        allocations.iter().filter(|a| &a.sku == sku).map(AllocationView::from).collect()
    }

    /// [`AllocationView::of`] a reservation's allocations.
    pub fn of_reservation(r: &Reservation, sku: &Sku) -> Vec<AllocationView> {
        AllocationView::of(&r.allocations(), sku)
    }
}

/// A warehouse of the `--warehouses` file.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WarehouseView {
    pub id: String,
    pub name: String,
    /// Lower is tried first.
    pub priority: u32,
    #[schema(required = true)]
    pub region: Option<String>,
}

impl From<Warehouse> for WarehouseView {
    fn from(w: Warehouse) -> WarehouseView {
        WarehouseView { id: w.id.to_string(), name: w.name, priority: w.priority, region: w.region }
    }
}

/// The warehouse table in force and the default allocation strategy.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WarehousesView {
    /// priority, most-available or single-location-only (`--allocation`).
    pub allocation: String,
    pub warehouses: Vec<WarehouseView>,
}
