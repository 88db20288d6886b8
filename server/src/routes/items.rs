//! Item routes: create/update, read, list, delete, adjust, block. Writes need the
//! admin token when one is configured. A write that names no `location` acts on the
//! default one (see routes/locations.rs for stock per location).

use crate::app::AppState;
use crate::auth::Admin;
use crate::envelope::{ok, ApiError, ApiResult, Envelope};
use crate::extract::{PathParam, StrictJson};
use crate::query::QueryParams;
use crate::routes::locations::location_of;
use crate::views::{DeletedView, ItemPage, ItemView};
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use stockd_engine::limits::MAX_PAGE;
use stockd_engine::{Adjust, AdjustReason, SetItem, Sku, StockFilter};
use utoipa::ToSchema;

/// Body of `PUT /items/{sku}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PutItemBody {
    /// The onHand of `location` (the default location when absent).
    pub on_hand: u64,
    pub low_stock_threshold: Option<u64>,
    /// Most units one reservation may take; 0 clears the limit.
    pub max_per_order: Option<u64>,
    pub expected_version: Option<u64>,
    /// The location (warehouse id) whose figures this sets; default: `default`.
    pub location: Option<String>,
    /// Units in transit to `location` (not sellable until received); absent: unchanged.
    pub incoming: Option<u64>,
}

/// Body of `POST /items/{sku}/adjust`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AdjustBody {
    pub delta: i64,
    /// RESTOCK, DAMAGED, LOST, CORRECTION or RETURN; default CORRECTION.
    pub reason: Option<String>,
    pub note: Option<String>,
    pub idempotency_key: Option<String>,
    pub expected_version: Option<u64>,
    /// The location whose onHand changes; default: `default`.
    pub location: Option<String>,
}

pub(crate) fn sku_of(path: &str) -> Result<Sku, ApiError> {
    Ok(Sku::parse(path, "sku")?)
}

#[utoipa::path(put, path = "/api/v1/inventory/items/{sku}", tag = "items",
    params(("sku" = String, Path, description = "SKU, [A-Za-z0-9._:/-]{1,128}, URL-encoded", pattern = "^[A-Za-z0-9._:/-]{1,128}$")),
    request_body = PutItemBody,
    responses((status = 201, body = Envelope<ItemView>, description = "created"), (status = 200, body = Envelope<ItemView>, description = "updated"),
        (status = 400, description = "VALIDATION_ERROR"), (status = 401, description = "UNAUTHORIZED"), (status = 403, description = "FORBIDDEN"),
        (status = 409, description = "VERSION_CONFLICT, ITEM_HAS_RESERVATIONS (onHand below reserved)")),
    security(("admin" = [])))]
pub async fn put_item(
    _: Admin,
    State(st): State<AppState>,
    PathParam(sku): PathParam,
    StrictJson(body): StrictJson<PutItemBody>,
) -> ApiResult {
    let req = SetItem {
        sku: sku_of(&sku)?,
        on_hand: body.on_hand,
        low_stock_threshold: body.low_stock_threshold,
        max_per_order: body.max_per_order,
        expected_version: body.expected_version,
        location: body.location.as_deref().map(|l| location_of(l, "location")).transpose()?,
        incoming: body.incoming,
    };
    set_item(&st, req).await
}

/// Applies `req`: 201 with the item when it created it, 200 otherwise.
pub(crate) async fn set_item(st: &AppState, req: SetItem) -> ApiResult {
    let change = st.engine.set_item(req).await?;
    let status = if change.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok(ok(status, ItemView::from(&change.item)))
}

#[utoipa::path(get, path = "/api/v1/inventory/items/{sku}", tag = "items",
    params(("sku" = String, Path, description = "SKU, URL-encoded", pattern = "^[A-Za-z0-9._:/-]{1,128}$")),
    responses((status = 200, body = Envelope<ItemView>, description = "the item"), (status = 404, description = "ITEM_NOT_FOUND")))]
pub async fn get_item(State(st): State<AppState>, PathParam(sku): PathParam) -> ApiResult {
    let item = st.engine.get_item(sku_of(&sku)?).await?;
    Ok(ok(StatusCode::OK, ItemView::from(&item)))
}

#[utoipa::path(get, path = "/api/v1/inventory/items", tag = "items",
    params(("limit" = Option<u64>, Query, description = "page size, 1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "nextCursor of the previous page"),
        ("stock" = Option<String>, Query, description = "low: only items with available <= lowStockThreshold; out: only items with available 0. A filtered page may be short and still have a nextCursor: the listing ends when nextCursor is null")),
    responses((status = 200, body = Envelope<ItemPage>, description = "items in sku order"), (status = 400, description = "VALIDATION_ERROR")))]
pub async fn list_items(State(st): State<AppState>, q: QueryParams) -> ApiResult {
    let q = q.only(&["limit", "cursor", "stock"])?;
    let limit = q.whole("limit")?.unwrap_or(100);
    if limit == 0 || limit > MAX_PAGE as u64 {
        return Err(ApiError::validation("limit", format!("must be 1 to {MAX_PAGE}")));
    }
    let after = q.cursor("cursor").map(|c| Sku::parse(c, "cursor")).transpose()?;
    let filter = match q.text("stock")? {
        None | Some("all") => StockFilter::All,
        Some("low") => StockFilter::Low,
        Some("out") => StockFilter::Out,
        Some(other) => return Err(ApiError::validation("stock", format!("must be low, out or all; got {other:?}"))),
    };
    let page = st.engine.list_items_where(after, limit as usize, filter).await?;
    let next_cursor = page.next_after.map(|s| s.to_string());
    Ok(ok(StatusCode::OK, ItemPage { items: page.items.iter().map(ItemView::from).collect(), next_cursor }))
}

#[utoipa::path(delete, path = "/api/v1/inventory/items/{sku}", tag = "items",
    params(("sku" = String, Path, description = "SKU, URL-encoded", pattern = "^[A-Za-z0-9._:/-]{1,128}$"),
        ("expectedVersion" = Option<u64>, Query, description = "refuse unless the item is at this version")),
    responses((status = 200, body = Envelope<DeletedView>, description = "deleted"), (status = 404, description = "ITEM_NOT_FOUND"),
        (status = 401, description = "UNAUTHORIZED"), (status = 403, description = "FORBIDDEN"),
        (status = 409, description = "ITEM_HAS_RESERVATIONS, VERSION_CONFLICT")),
    security(("admin" = [])))]
pub async fn delete_item(_: Admin, State(st): State<AppState>, PathParam(sku): PathParam, q: QueryParams) -> ApiResult {
    let expected = q.only(&["expectedVersion"])?.whole("expectedVersion")?;
    let sku = sku_of(&sku)?;
    st.engine.delete_item(sku.clone(), expected).await?;
    Ok(ok(StatusCode::OK, DeletedView { deleted: true, sku: sku.as_str().to_owned() }))
}

#[utoipa::path(post, path = "/api/v1/inventory/items/{sku}/adjust", tag = "items",
    params(("sku" = String, Path, description = "SKU, URL-encoded", pattern = "^[A-Za-z0-9._:/-]{1,128}$")),
    request_body = AdjustBody,
    responses((status = 200, body = Envelope<ItemView>, description = "adjusted (or an idempotent repeat)"),
        (status = 400, description = "VALIDATION_ERROR"), (status = 401, description = "UNAUTHORIZED"), (status = 403, description = "FORBIDDEN"),
        (status = 404, description = "ITEM_NOT_FOUND"), (status = 409, description = "NEGATIVE_INVENTORY, VERSION_CONFLICT"),
        (status = 422, description = "IDEMPOTENCY_KEY_REUSED")),
    security(("admin" = [])))]
pub async fn adjust_item(
    _: Admin,
    State(st): State<AppState>,
    PathParam(sku): PathParam,
    StrictJson(body): StrictJson<AdjustBody>,
) -> ApiResult {
    let reason = match body.reason.as_deref() {
        None => AdjustReason::Correction,
        Some(r) => AdjustReason::parse(r).ok_or_else(|| {
            ApiError::validation(
                "reason",
                format!("must be one of RESTOCK, DAMAGED, LOST, CORRECTION, RETURN; got {r:?}"),
            )
        })?,
    };
    let req = Adjust {
        sku: sku_of(&sku)?,
        delta: body.delta,
        reason,
        note: body.note,
        idempotency_key: body.idempotency_key,
        expected_version: body.expected_version,
        location: body.location.as_deref().map(|l| location_of(l, "location")).transpose()?,
    };
    let change = st.engine.adjust(req).await?;
    Ok(ok(StatusCode::OK, ItemView::from(&change.item)))
}

#[utoipa::path(post, path = "/api/v1/inventory/items/{sku}/block", tag = "items",
    params(("sku" = String, Path, description = "SKU, URL-encoded", pattern = "^[A-Za-z0-9._:/-]{1,128}$")),
    responses((status = 200, body = Envelope<ItemView>, description = "sales blocked: new reservations get 409 SALES_BLOCKED; existing ones can still commit or release"),
        (status = 401, description = "UNAUTHORIZED"), (status = 403, description = "FORBIDDEN"),
        (status = 404, description = "ITEM_NOT_FOUND")),
    security(("admin" = [])))]
pub async fn block_item(_: Admin, State(st): State<AppState>, PathParam(sku): PathParam) -> ApiResult {
    set_blocked(st, sku, true).await
}

#[utoipa::path(post, path = "/api/v1/inventory/items/{sku}/unblock", tag = "items",
    params(("sku" = String, Path, description = "SKU, URL-encoded", pattern = "^[A-Za-z0-9._:/-]{1,128}$")),
    responses((status = 200, body = Envelope<ItemView>, description = "sales allowed again"),
        (status = 401, description = "UNAUTHORIZED"), (status = 403, description = "FORBIDDEN"),
        (status = 404, description = "ITEM_NOT_FOUND")),
    security(("admin" = [])))]
pub async fn unblock_item(_: Admin, State(st): State<AppState>, PathParam(sku): PathParam) -> ApiResult {
    set_blocked(st, sku, false).await
}

async fn set_blocked(st: AppState, sku: String, blocked: bool) -> ApiResult {
    let change = st.engine.set_sales_blocked(sku_of(&sku)?, blocked).await?;
    Ok(ok(StatusCode::OK, ItemView::from(&change.item)))
}
