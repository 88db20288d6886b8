//! The answer to check-availability: per line, whether a reserve of it would succeed
//! now and, when not, the code reserve would answer.

use super::reservation::Echo;
use serde::Serialize;
use utoipa::ToSchema;

/// The answer to `POST /check-availability`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AvailabilityView {
    /// Every line is available.
    pub available: bool,
    pub items: Vec<AvailabilityLineView>,
}

/// One line of check-availability, named as the request named it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AvailabilityLineView {
    /// Whether a reserve of this line alone would succeed now.
    pub available: bool,
    /// At the line's location when it names one; 0 for an unknown item.
    pub available_quantity: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Per location of the item, when the line names a location or the item is
    /// stocked at named ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locations: Option<Vec<LocationAvailableView>>,
    /// With reason MAX_PER_ORDER_EXCEEDED: the item's limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_per_order: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    /// null when available; else the code a reserve would answer (ITEM_NOT_FOUND,
    /// SALES_BLOCKED, MAX_PER_ORDER_EXCEEDED, INSUFFICIENT_INVENTORY, ...).
    #[schema(required = true)]
    pub reason: Option<&'static str>,
    pub requested_quantity: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant_id: Option<String>,
}

impl AvailabilityLineView {
    /// A line named as `echo`; the figures are set by the caller.
    pub fn named(echo: Echo<'_>) -> AvailabilityLineView {
        AvailabilityLineView {
            available: false,
            available_quantity: 0,
            location: echo.location.map(str::to_owned),
            locations: None,
            max_per_order: None,
            product_id: echo.product_id.map(str::to_owned),
            reason: None,
            requested_quantity: 0,
            sku: echo.sku.map(str::to_owned),
            variant_id: echo.variant_id.map(str::to_owned),
        }
    }
}

/// Units available at one location of the item.
#[derive(Debug, Serialize, ToSchema)]
pub struct LocationAvailableView {
    pub available: u64,
    pub location: String,
}
