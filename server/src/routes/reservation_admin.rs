//! Operator routes over reservations (admin token when one is configured):
//! `GET /reservations` lists headers across shards by status, SKU and age, paged by
//! cursor (reservation id order); `POST /reservations/expire-due` runs the expiry
//! sweep now and answers how many it expired.

use crate::app::AppState;
use crate::auth::Admin;
use crate::cli::parse_age;
use crate::envelope::{ok, ApiError, ApiResult, Envelope};
use crate::query::QueryParams;
use crate::views::{ExpiredCountView, ReservationPage, ReservationView};
use axum::extract::State;
use axum::http::StatusCode;
use stockd_engine::limits::MAX_PAGE;
use stockd_engine::{ReservationId, ReservationListing, ReservationStatus, Sku};

/// The query parameters `GET /reservations` accepts.
const PARAMS: [&str; 5] = ["status", "sku", "olderThan", "limit", "cursor"];

/// The listing a query asks for; every bad parameter is a 400 that names it.
fn listing_of(q: QueryParams) -> Result<ReservationListing, ApiError> {
    let q = q.only(&PARAMS)?;
    let limit = q.whole("limit")?.unwrap_or(100);
    if limit == 0 || limit > MAX_PAGE as u64 {
        return Err(ApiError::validation("limit", format!("must be 1 to {MAX_PAGE}, got {limit}")));
    }
    let status = q
        .text("status")?
        .map(|s| {
            ReservationStatus::parse(s).ok_or_else(|| {
                ApiError::validation(
                    "status",
                    format!("must be ACTIVE, PENDING, COMMITTED, RELEASED or EXPIRED; got {s:?}"),
                )
            })
        })
        .transpose()?;
    let sku = q.text("sku")?.map(|s| Sku::parse(s, "sku")).transpose()?;
    let older_than_secs =
        q.text("olderThan")?.map(|v| parse_age(v).map_err(|e| ApiError::validation("olderThan", e))).transpose()?;
    let after = q
        .cursor("cursor")
        .map(|c| ReservationId::parse(c).ok_or_else(|| ApiError::validation("cursor", "not a cursor of this listing")))
        .transpose()?;
    Ok(ReservationListing { after, limit: limit as usize, status, sku, older_than_secs })
}

#[utoipa::path(get, path = "/api/v1/inventory/reservations", tag = "reservations",
    params(("status" = Option<String>, Query, description = "ACTIVE, PENDING, COMMITTED, RELEASED or EXPIRED"),
        ("sku" = Option<String>, Query, description = "reservations with a line of this SKU"),
        ("olderThan" = Option<String>, Query, description = "reservations created longer ago than this: whole seconds (3600) or with a unit (90m, 1h, 3d)"),
        ("limit" = Option<u64>, Query, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "nextCursor of the previous page")),
    responses((status = 200, body = Envelope<ReservationPage>, description = "reservations (in reservationId order, each as GET /reservations/{id} shows it) and nextCursor (null: the listing is complete; a page may hold fewer than limit and still have one)"),
        (status = 400, description = "VALIDATION_ERROR naming the parameter"),
        (status = 401, description = "UNAUTHORIZED"), (status = 403, description = "FORBIDDEN")),
    security(("admin" = [])))]
pub async fn list_reservations(_: Admin, State(st): State<AppState>, q: QueryParams) -> ApiResult {
    let page = st.engine.list_reservations(listing_of(q)?).await?;
    let view = ReservationPage {
        next_cursor: page.next_after.map(|id| id.to_string()),
        reservations: page.reservations.iter().map(ReservationView::from).collect(),
    };
    Ok(ok(StatusCode::OK, view))
}

#[utoipa::path(post, path = "/api/v1/inventory/reservations/expire-due", tag = "reservations",
    responses((status = 200, body = Envelope<ExpiredCountView>, description = "expired: how many ACTIVE reservations past their deadline were expired now (their stock released)"),
        (status = 401, description = "UNAUTHORIZED"), (status = 403, description = "FORBIDDEN"),
        (status = 503, description = "SERVICE_UNAVAILABLE")),
    security(("admin" = [])))]
pub async fn expire_due(_: Admin, State(st): State<AppState>) -> ApiResult {
    let expired = st.engine.expire_due().await?;
    Ok(ok(StatusCode::OK, ExpiredCountView { expired: expired.len() }))
}
