//! Stock per location (warehouse): set a location's figures, list them, transfer
//! between locations (optionally in transit), receive what is in transit, and the
//! warehouse table with the default allocation strategy. Also the location parts of
//! reservations: the placement a reserve asks for and the allocations it got.
//!
//! Writes need the admin token when one is configured, like the other item writes.

use crate::app::AppState;
use crate::auth::Admin;
use crate::envelope::{ok, ApiError, ApiResult, Envelope};
use crate::extract::{PathParam, PathParams, StrictJson};
use crate::routes::items::{set_item, sku_of};
use crate::views::{ItemView, LocationView, LocationsView, WarehouseView, WarehousesView};
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use stockd_engine::location::{AllocationStrategy, LocationId, LocationStock};
use stockd_engine::{EngineError, SetItem, Sku, Transfer};
use utoipa::ToSchema;

/// Body of `PUT /items/{sku}/locations/{location}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PutLocationBody {
    pub on_hand: u64,
    /// Units in transit to this location; absent: unchanged.
    pub incoming: Option<u64>,
    pub expected_version: Option<u64>,
    /// Item-wide, as in `PUT /items/{sku}`.
    pub low_stock_threshold: Option<u64>,
    /// Item-wide; 0 clears the limit.
    pub max_per_order: Option<u64>,
}

/// Body of `POST /items/{sku}/transfers`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TransferBody {
    pub from: String,
    pub to: String,
    /// Available units of `from` to move, 1 to 10^9.
    pub quantity: u64,
    /// true: into `to`'s incoming (received later with a receipt); default false:
    /// straight into its onHand.
    pub in_transit: Option<bool>,
    pub note: Option<String>,
    /// A retry with this key answers the first result and moves nothing; the same
    /// key with a different request is 422 IDEMPOTENCY_KEY_REUSED. One key space per
    /// SKU, shared with adjustments and receipts.
    pub idempotency_key: Option<String>,
}

/// Body of `POST /items/{sku}/receipts`: `quantity` of `location`'s incoming arrives.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReceiptBody {
    pub location: String,
    pub quantity: u64,
    /// As in a transfer: a retry with this key receives nothing again.
    pub idempotency_key: Option<String>,
}

/// A location id from client input; `field` names it in the error.
pub fn location_of(s: &str, field: &str) -> Result<LocationId, ApiError> {
    Ok(LocationId::parse(s, field)?)
}

/// The strategy a request names, or the server's default.
pub fn strategy_of(name: Option<&str>, default: AllocationStrategy) -> Result<AllocationStrategy, ApiError> {
    let Some(name) = name else { return Ok(default) };
    AllocationStrategy::parse(name).ok_or_else(|| {
        let all: Vec<&str> = AllocationStrategy::ALL.iter().map(|a| a.as_str()).collect();
        ApiError::validation("allocation", format!("must be one of {}; got {name:?}", all.join(", ")))
    })
}

/// Whether a check-availability line shows its item's `locations`: when it names a
/// location or the item is stocked anywhere but the default location (an item that
/// never names one answers in seed 002's shape).
pub fn shows_locations(named: Option<&LocationId>, stock: Option<&[LocationStock]>) -> bool {
    named.is_some() || stock.is_some_and(|s| s.iter().any(|l| !l.location.is_default()))
}

/// The locations of each SKU given (`None`: skip it), looked up concurrently; an
/// item deleted meanwhile answers `None`.
pub async fn location_stocks(
    st: &AppState,
    skus: Vec<Option<Sku>>,
) -> Result<Vec<Option<Vec<LocationStock>>>, ApiError> {
    let tasks: Vec<_> = skus
        .into_iter()
        .map(|sku| {
            let engine = st.engine.clone();
            tokio::spawn(async move {
                match sku {
                    Some(sku) => engine.get_item(sku).await.map(|i| Some(i.locations().into_owned())),
                    None => Ok(None),
                }
            })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        match task.await.map_err(|e| ApiError::unavailable(format!("item lookup failed: {e}")))? {
            Ok(found) => out.push(found),
            Err(EngineError::ItemNotFound { .. }) => out.push(None),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

#[utoipa::path(put, path = "/api/v1/inventory/items/{sku}/locations/{location}", tag = "locations",
    params(("sku" = String, Path, description = "SKU, URL-encoded", pattern = "^[A-Za-z0-9._:/-]{1,128}$"),
        ("location" = String, Path, description = "warehouse id ([A-Za-z0-9._:/-]{1,64}) or default", pattern = "^[A-Za-z0-9._:/-]{1,64}$")),
    request_body = PutLocationBody,
    responses((status = 201, body = Envelope<ItemView>, description = "item created"), (status = 200, body = Envelope<ItemView>, description = "updated"),
        (status = 400, description = "VALIDATION_ERROR (e.g. location not in the warehouse table)"),
        (status = 401, description = "UNAUTHORIZED"), (status = 403, description = "FORBIDDEN"),
        (status = 409, description = "VERSION_CONFLICT, ITEM_HAS_RESERVATIONS (onHand below the location's reserved)")),
    security(("admin" = [])))]
pub async fn put_location(
    _: Admin,
    State(st): State<AppState>,
    PathParams(sku, location): PathParams,
    StrictJson(body): StrictJson<PutLocationBody>,
) -> ApiResult {
    let req = SetItem {
        sku: sku_of(&sku)?,
        on_hand: body.on_hand,
        low_stock_threshold: body.low_stock_threshold,
        max_per_order: body.max_per_order,
        expected_version: body.expected_version,
        location: Some(location_of(&location, "location")?),
        incoming: body.incoming,
    };
    set_item(&st, req).await
}

#[utoipa::path(get, path = "/api/v1/inventory/items/{sku}/locations", tag = "locations",
    params(("sku" = String, Path, description = "SKU, URL-encoded", pattern = "^[A-Za-z0-9._:/-]{1,128}$")),
    responses((status = 200, body = Envelope<LocationsView>, description = "the item's locations, by id"),
        (status = 404, description = "ITEM_NOT_FOUND")))]
pub async fn list_locations(State(st): State<AppState>, PathParam(sku): PathParam) -> ApiResult {
    let item = st.engine.get_item(sku_of(&sku)?).await?;
    let view = LocationsView {
        locations: item.locations().iter().map(LocationView::from).collect(),
        sku: item.sku.to_string(),
        version: item.version,
    };
    Ok(ok(StatusCode::OK, view))
}

#[utoipa::path(post, path = "/api/v1/inventory/items/{sku}/transfers", tag = "locations",
    params(("sku" = String, Path, description = "SKU, URL-encoded", pattern = "^[A-Za-z0-9._:/-]{1,128}$")),
    request_body = TransferBody,
    responses((status = 200, body = Envelope<ItemView>, description = "moved"),
        (status = 400, description = "VALIDATION_ERROR (from not stocked, to not a warehouse, from = to, quantity)"),
        (status = 401, description = "UNAUTHORIZED"), (status = 403, description = "FORBIDDEN"),
        (status = 404, description = "ITEM_NOT_FOUND"),
        (status = 409, description = "INSUFFICIENT_INVENTORY: fewer available at from"),
        (status = 422, description = "IDEMPOTENCY_KEY_REUSED: the key was used for another change of this SKU")),
    security(("admin" = [])))]
pub async fn transfer(
    _: Admin,
    State(st): State<AppState>,
    PathParam(sku): PathParam,
    StrictJson(body): StrictJson<TransferBody>,
) -> ApiResult {
    let req = Transfer {
        sku: sku_of(&sku)?,
        from: location_of(&body.from, "from")?,
        to: location_of(&body.to, "to")?,
        quantity: body.quantity,
        in_transit: body.in_transit.unwrap_or(false),
        note: body.note,
        idempotency_key: body.idempotency_key,
    };
    let change = st.engine.transfer(req).await?;
    Ok(ok(StatusCode::OK, ItemView::from(&change.item)))
}

#[utoipa::path(post, path = "/api/v1/inventory/items/{sku}/receipts", tag = "locations",
    params(("sku" = String, Path, description = "SKU, URL-encoded", pattern = "^[A-Za-z0-9._:/-]{1,128}$")),
    request_body = ReceiptBody,
    responses((status = 200, body = Envelope<ItemView>, description = "received: incoming → onHand at location"),
        (status = 400, description = "VALIDATION_ERROR (location not stocked, quantity over its incoming)"),
        (status = 401, description = "UNAUTHORIZED"), (status = 403, description = "FORBIDDEN"),
        (status = 404, description = "ITEM_NOT_FOUND"),
        (status = 422, description = "IDEMPOTENCY_KEY_REUSED: the key was used for another change of this SKU")),
    security(("admin" = [])))]
pub async fn receive(
    _: Admin,
    State(st): State<AppState>,
    PathParam(sku): PathParam,
    StrictJson(body): StrictJson<ReceiptBody>,
) -> ApiResult {
    let sku = sku_of(&sku)?;
    let location = location_of(&body.location, "location")?;
    let change = st.engine.receive(sku, location, body.quantity, body.idempotency_key).await?;
    Ok(ok(StatusCode::OK, ItemView::from(&change.item)))
}

#[utoipa::path(get, path = "/api/v1/inventory/warehouses", tag = "locations",
    responses((status = 200, body = Envelope<WarehousesView>, description = "the warehouse table (empty without --warehouses) and the default allocation strategy")))]
pub async fn warehouses(State(st): State<AppState>) -> ApiResult {
    let table = st.engine.warehouses().await?;
    let view = WarehousesView {
        allocation: st.allocation.as_str().to_owned(),
        warehouses: table.into_iter().map(WarehouseView::from).collect(),
    };
    Ok(ok(StatusCode::OK, view))
}
