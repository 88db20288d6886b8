//! An item as the API shows it, a page of items, a deletion, and the item figures the
//! Kafka item events carry (the same names and values as the item view's).

use super::location::LocationView;
use crate::envelope::rfc3339;
use serde::Serialize;
use stockd_engine::Item;
use utoipa::ToSchema;

/// An item as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ItemView {
    pub available: u64,
    pub created_at: String,
    /// Units in transit to some location, over all locations.
    pub incoming: u64,
    /// Stock per location, by location id (`default` for stock nobody placed).
    pub locations: Vec<LocationView>,
    pub low_stock: bool,
    pub low_stock_threshold: u64,
    #[schema(required = true)]
    pub max_per_order: Option<u64>,
    pub on_hand: u64,
    pub reserved: u64,
    /// New reservations are refused (SALES_BLOCKED) while set.
    pub sales_blocked: bool,
    pub sku: String,
    pub sold: u64,
    pub updated_at: String,
    pub version: u64,
}

impl From<&Item> for ItemView {
    fn from(i: &Item) -> ItemView {
        ItemView {
            available: i.available(),
            created_at: rfc3339(i.created_at),
            incoming: i.incoming,
            locations: i.locations().iter().map(LocationView::from).collect(),
            low_stock: i.is_low_stock(),
            low_stock_threshold: i.low_stock_threshold,
            max_per_order: i.max_per_order,
            on_hand: i.on_hand,
            reserved: i.reserved,
            sales_blocked: i.sales_blocked,
            sku: i.sku.to_string(),
            sold: i.sold,
            updated_at: rfc3339(i.updated_at),
            version: i.version,
        }
    }
}

/// The figures of an item that its Kafka events carry after a change: a subset of
/// [`ItemView`], same names, same values (a test holds them together).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ItemFigures {
    pub available: u64,
    pub incoming: u64,
    pub locations: Vec<LocationView>,
    pub on_hand: u64,
    pub reserved: u64,
    pub sold: u64,
    pub version: u64,
}

impl From<&Item> for ItemFigures {
    fn from(i: &Item) -> ItemFigures {
        ItemFigures {
            available: i.available(),
            incoming: i.incoming,
            locations: i.locations().iter().map(LocationView::from).collect(),
            on_hand: i.on_hand,
            reserved: i.reserved,
            sold: i.sold,
            version: i.version,
        }
    }
}

/// A page of items.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ItemPage {
    pub items: Vec<ItemView>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// The answer to `DELETE /items/{sku}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeletedView {
    /// Always true.
    pub deleted: bool,
    pub sku: String,
}

/// A SKU's line as reservations and events name it: `sku`, and split at its first
/// `:`, `productId` and `variantId` (a SKU without `:` is its own `productId`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SkuLine {
    pub product_id: String,
    pub quantity: u64,
    pub sku: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant_id: Option<String>,
}

impl SkuLine {
    pub fn new(sku: &str, quantity: u64) -> SkuLine {
        let (product_id, variant_id) = match sku.split_once(':') {
            Some((p, v)) => (p, Some(v.to_owned())),
            None => (sku, None),
        };
        SkuLine { product_id: product_id.to_owned(), quantity, sku: sku.to_owned(), variant_id }
    }
}
