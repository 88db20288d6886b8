//! Reservation routes, following the Order Service contract (seed 002):
//! check-availability, reserve, release; plus commit, extend, lookup and the
//! operator's expire.
//!
//! An item line names its SKU either as `sku` or as `productId` (+ `variantId`):
//! `{productId, variantId}` is the SKU `productId:variantId`, a `productId` alone is
//! the SKU `productId`. Answers echo each line the way the client named it.
//!
//! Locations: a reserve line may name its `location` (alias `warehouseId`), the
//! request a delivery `region` and an `allocation` strategy (default `--allocation`);
//! reservations show per line the `allocations` they got (routes/locations.rs). The
//! reserve answer keeps seed 002's shape exactly for a request that names no location,
//! region or strategy and whose units all came from the default location; otherwise
//! it lists allocations too. Check-availability lists `locations` only for lines that
//! name one or whose item is stocked at named ones.

use crate::app::AppState;
use crate::auth::Admin;
use crate::envelope::{ok, rfc3339, ApiError, ApiResult, Envelope};
use crate::extract::{PathParam, StrictJson};
use crate::routes::locations::{location_of, location_stocks, shows_locations, strategy_of};
use crate::views::error::Details;
use crate::views::{
    AllocationView, AvailabilityLineView, AvailabilityView, Echo, LocationAvailableView, ReservationView,
    ReserveLineView, ReserveView, ShortfallView,
};
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use stockd_engine::location::{AllocationStrategy, LocationId, LocationStock, Placement};
use stockd_engine::{EngineError, OrderId, Origin, ReservationKey, ReservationStatus, ReserveRequest, Sku};
use utoipa::ToSchema;

/// One line of a request: `sku`, or `productId` with an optional `variantId`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LineIn {
    pub product_id: Option<String>,
    pub variant_id: Option<String>,
    pub sku: Option<String>,
    pub quantity: u64,
    /// Reserve and check-availability only: the one location (warehouse id) this line
    /// may take its units from. `warehouseId` is accepted as an alias (seed 004).
    #[serde(alias = "warehouseId")]
    pub location: Option<String>,
}

impl LineIn {
    fn sku(&self, i: usize) -> Result<Sku, ApiError> {
        let field = |f: &str| format!("items[{i}].{f}");
        match (&self.sku, &self.product_id, &self.variant_id) {
            (Some(s), None, None) => Ok(Sku::parse(s, &field("sku"))?),
            (Some(_), _, _) => {
                Err(ApiError::validation(field("sku"), "give either sku or productId/variantId, not both"))
            }
            (None, Some(p), v) => {
                Sku::parse(p, &field("productId"))?;
                match v {
                    Some(v) => {
                        Sku::parse(v, &field("variantId"))?;
                        Ok(Sku::parse(&format!("{p}:{v}"), &field("productId"))?)
                    }
                    None => Ok(Sku::parse(p, &field("productId"))?),
                }
            }
            (None, None, Some(_)) => Err(ApiError::validation(field("productId"), "variantId needs a productId")),
            (None, None, None) => Err(ApiError::validation(field("productId"), "give sku or productId")),
        }
    }

    /// The line's name as the client gave it: `productId` (+ `variantId`), else
    /// `sku`; and its `location`.
    fn echo(&self) -> Echo<'_> {
        let product_id = self.product_id.as_deref();
        Echo {
            product_id,
            variant_id: product_id.and(self.variant_id.as_deref()),
            sku: if product_id.is_some() { None } else { self.sku.as_deref() },
            location: self.location.as_deref(),
        }
    }

    /// The location the line names, checked.
    fn location(&self, i: usize) -> Result<Option<LocationId>, ApiError> {
        self.location.as_deref().map(|l| location_of(l, &format!("items[{i}].location"))).transpose()
    }
}

fn lines_of(items: &[LineIn]) -> Result<Vec<(Sku, u64)>, ApiError> {
    items.iter().enumerate().map(|(i, l)| Ok((l.sku(i)?, l.quantity))).collect()
}

/// The placement a reserve asks for: its lines' locations, region and strategy.
fn placement_of(body: &ReserveBody, lines: &[(Sku, u64)], default: AllocationStrategy) -> Result<Placement, ApiError> {
    let strategy = strategy_of(body.allocation.as_deref(), default)?;
    let mut locations = Vec::new();
    for (i, (line, (sku, _))) in body.items.iter().zip(lines).enumerate() {
        if let Some(l) = line.location(i)? {
            locations.push((sku.clone(), l));
        }
    }
    Ok(Placement { strategy, region: body.region.clone(), locations })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CheckBody {
    pub items: Vec<LineIn>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReserveBody {
    pub order_id: String,
    pub items: Vec<LineIn>,
    /// Seconds to hold the stock, 1 to `--max-ttl`; default `--default-ttl`.
    pub expires_in: Option<u64>,
    /// Opaque client data (at most 4 KiB as JSON text), returned by lookups.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// Delivery region: warehouses in it are tried first.
    pub region: Option<String>,
    /// priority, most-available or single-location-only; default: the server's
    /// `--allocation`.
    pub allocation: Option<String>,
}

/// Commit: exactly one of orderId / reservationId; `items` commits less than
/// reserved for the SKUs it names (the rest goes back to available).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CommitBody {
    pub order_id: Option<String>,
    pub reservation_id: Option<String>,
    pub items: Option<Vec<LineIn>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReleaseBody {
    pub order_id: Option<String>,
    pub reservation_id: Option<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExtendBody {
    pub order_id: Option<String>,
    pub reservation_id: Option<String>,
    pub expires_in: u64,
}

fn key_of(order_id: Option<String>, reservation_id: Option<String>) -> Result<ReservationKey, ApiError> {
    match (order_id, reservation_id) {
        (Some(o), None) => Ok(ReservationKey::Order(OrderId::parse(&o, "orderId")?)),
        (None, Some(r)) => Ok(ReservationKey::id(&r, "reservationId")?),
        _ => Err(ApiError::validation("orderId", "give exactly one of orderId or reservationId")),
    }
}

#[utoipa::path(post, path = "/api/v1/inventory/check-availability", tag = "reservations", request_body = CheckBody,
    responses((status = 200, body = Envelope<AvailabilityView>, description = "per item: available (whether a reserve of the line would succeed now), reason (null when available, else the code reserve would answer: ITEM_NOT_FOUND, SALES_BLOCKED, MAX_PER_ORDER_EXCEEDED with maxPerOrder, INSUFFICIENT_INVENTORY, ...; in reserve's precedence), requestedQuantity, availableQuantity (at the line's location when it names one; unknown items: available false, availableQuantity 0), and locations [{location, available}] when the line names a location or the item is stocked at named ones"),
        (status = 400, description = "VALIDATION_ERROR")))]
pub async fn check_availability(State(st): State<AppState>, StrictJson(body): StrictJson<CheckBody>) -> ApiResult {
    let lines = lines_of(&body.items)?;
    let named: Vec<Option<LocationId>> =
        body.items.iter().enumerate().map(|(i, l)| l.location(i)).collect::<Result<_, _>>()?;
    let locations = lines.iter().zip(&named).filter_map(|((sku, _), l)| Some((sku.clone(), l.clone()?))).collect();
    let placement = Placement { strategy: st.allocation, region: None, locations };
    let found = st.engine.check_availability_with(lines.clone(), placement).await?;
    let known = lines.iter().zip(&found).map(|((sku, _), a)| a.exists.then(|| sku.clone())).collect();
    let stocks = location_stocks(&st, known).await?;
    let mut all = true;
    let items: Vec<AvailabilityLineView> = body
        .items
        .iter()
        .zip(&found)
        .zip(named.iter().zip(&stocks))
        .map(|((line, a), (named, stock))| {
            let show = shows_locations(named.as_ref(), stock.as_deref());
            let stock = stock.as_deref().unwrap_or_default();
            let quantity = match named {
                Some(l) => stock.iter().find(|s| &s.location == l).map_or(0, LocationStock::available),
                None if a.exists => a.available,
                None => 0,
            };
            let available = a.is_available();
            all &= available;
            let mut v = AvailabilityLineView::named(line.echo());
            v.available = available;
            v.requested_quantity = a.requested;
            v.available_quantity = quantity;
            // Why a reserve of this line would be refused now: its error code.
            v.reason = a.reason.as_ref().map(EngineError::code);
            if let Some(EngineError::MaxPerOrderExceeded { max_per_order, .. }) = &a.reason {
                v.max_per_order = Some(*max_per_order);
            }
            if show {
                let per = stock.iter().map(|s| LocationAvailableView {
                    available: s.available(),
                    location: s.location.as_str().to_owned(),
                });
                v.locations = Some(per.collect());
            }
            v
        })
        .collect();
    Ok(ok(StatusCode::OK, AvailabilityView { available: all, items }))
}

#[utoipa::path(post, path = "/api/v1/inventory/reserve", tag = "reservations", request_body = ReserveBody,
    responses((status = 201, body = Envelope<ReserveView>, description = "reserved: reservationId, orderId, items (reserved: true; allocations [{location, quantity, committed}] when the request names a location, region or allocation strategy, or a unit came from a named location), expiresAt"),
        (status = 200, body = Envelope<ReserveView>, description = "the orderId already had this reservation (idempotent repeat)"),
        (status = 400, description = "VALIDATION_ERROR"), (status = 404, description = "ITEM_NOT_FOUND"),
        (status = 409, description = "INSUFFICIENT_INVENTORY (details.items: requestedQuantity, availableQuantity), MAX_PER_ORDER_EXCEEDED, RESERVATION_PENDING"),
        (status = 422, description = "IDEMPOTENCY_KEY_REUSED: the orderId was used with other items"),
        (status = 429, description = "OVERLOADED"), (status = 503, description = "SERVICE_UNAVAILABLE")))]
pub async fn reserve(State(st): State<AppState>, StrictJson(body): StrictJson<ReserveBody>) -> ApiResult {
    reserve_inner(&st, body).await
}

async fn reserve_inner(st: &AppState, body: ReserveBody) -> ApiResult {
    let order_id = OrderId::parse(&body.order_id, "orderId")?;
    let lines = lines_of(&body.items)?;
    let placement = placement_of(&body, &lines, st.allocation)?;
    let metadata = body.metadata.as_ref().map(Value::to_string);
    let req = ReserveRequest { order_id, lines: lines.clone(), ttl_secs: body.expires_in, metadata, placement };
    // The engine counts the outcome and times it under the HTTP path.
    let outcome = match st.engine.reserve_from(Origin::Api, req).await {
        Ok(o) => o,
        Err(EngineError::InsufficientInventory { items }) => {
            let detail: Vec<ShortfallView> = items
                .iter()
                .map(|s| {
                    let line = lines.iter().position(|(sku, _)| sku.as_str() == s.sku).map(|i| &body.items[i]);
                    ShortfallView::new(line.map(LineIn::echo).unwrap_or_default(), &s.sku, s.requested, s.available)
                })
                .collect();
            let mut err = ApiError::from(EngineError::InsufficientInventory { items });
            err.details = Details::Shortfalls(detail);
            return Err(err);
        }
        Err(e) => return Err(e.into()),
    };
    let r = &outcome.reservation;
    let reserved = matches!(r.status, ReservationStatus::Active | ReservationStatus::Committed);
    // Seed 002's answer, exactly, for a client that never speaks of locations and
    // whose units all sit at the default location; otherwise each line lists where
    // its units are held (lookups always do).
    let location_aware =
        body.region.is_some() || body.allocation.is_some() || body.items.iter().any(|l| l.location.is_some());
    let allocations = r.allocations();
    let items: Vec<ReserveLineView> = body
        .items
        .iter()
        .zip(&lines)
        .map(|(line, (sku, _))| {
            let shown = location_aware || allocations.iter().any(|a| &a.sku == sku && !a.location.is_default());
            let held = shown.then(|| AllocationView::of(&allocations, sku));
            ReserveLineView::new(line.echo(), line.quantity, reserved, held)
        })
        .collect();
    let status = if outcome.created { StatusCode::CREATED } else { StatusCode::OK };
    let view = ReserveView {
        expires_at: rfc3339(r.expires_at),
        items,
        order_id: r.order_id.as_str().to_owned(),
        reservation_id: r.reservation_id,
        status: r.status.as_str(),
    };
    Ok(ok(status, view))
}

#[utoipa::path(post, path = "/api/v1/inventory/commit", tag = "reservations", request_body = CommitBody,
    responses((status = 200, body = Envelope<ReservationView>, description = "committed (or already committed)"), (status = 400, description = "VALIDATION_ERROR"),
        (status = 404, description = "RESERVATION_NOT_FOUND"),
        (status = 409, description = "RESERVATION_EXPIRED, RESERVATION_RELEASED, RESERVATION_PENDING")))]
pub async fn commit(State(st): State<AppState>, StrictJson(body): StrictJson<CommitBody>) -> ApiResult {
    let key = key_of(body.order_id, body.reservation_id)?;
    if let Some(i) = body.items.iter().flatten().position(|l| l.location.is_some()) {
        return Err(ApiError::validation(
            format!("items[{i}].location"),
            "a commit takes what the reservation allocated; name no location",
        ));
    }
    let quantities = body.items.as_deref().map(lines_of).transpose()?;
    let r = st.engine.commit(key, quantities).await?;
    Ok(ok(StatusCode::OK, ReservationView::from(&r)))
}

#[utoipa::path(post, path = "/api/v1/inventory/release", tag = "reservations", request_body = ReleaseBody,
    responses((status = 200, body = Envelope<ReservationView>, description = "released (or already released / expired)"), (status = 400, description = "VALIDATION_ERROR"),
        (status = 404, description = "RESERVATION_NOT_FOUND"), (status = 409, description = "RESERVATION_COMMITTED, RESERVATION_PENDING")))]
pub async fn release(State(st): State<AppState>, StrictJson(body): StrictJson<ReleaseBody>) -> ApiResult {
    let key = key_of(body.order_id, body.reservation_id)?;
    let r = st.engine.release(key, body.reason).await?;
    Ok(ok(StatusCode::OK, ReservationView::from(&r)))
}

#[utoipa::path(post, path = "/api/v1/inventory/extend", tag = "reservations", request_body = ExtendBody,
    responses((status = 200, body = Envelope<ReservationView>, description = "the reservation with its new expiresAt"), (status = 400, description = "VALIDATION_ERROR"),
        (status = 404, description = "RESERVATION_NOT_FOUND"),
        (status = 409, description = "RESERVATION_EXPIRED, RESERVATION_RELEASED, RESERVATION_COMMITTED")))]
pub async fn extend(State(st): State<AppState>, StrictJson(body): StrictJson<ExtendBody>) -> ApiResult {
    let key = key_of(body.order_id, body.reservation_id)?;
    let r = st.engine.extend(key, body.expires_in).await?;
    Ok(ok(StatusCode::OK, ReservationView::from(&r)))
}

/// Looks `id` up as a reservationId, then as an orderId.
async fn find(st: &AppState, id: &str) -> Result<ReservationKey, ApiError> {
    if let Ok(as_id) = ReservationKey::id(id, "id") {
        match st.engine.get_reservation(as_id.clone()).await {
            Ok(_) => return Ok(as_id),
            Err(EngineError::ReservationNotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(ReservationKey::Order(OrderId::parse(id, "id")?))
}

#[utoipa::path(get, path = "/api/v1/inventory/reservations/{id}", tag = "reservations",
    params(("id" = String, Path, description = "reservationId or orderId")),
    responses((status = 200, body = Envelope<ReservationView>, description = "the reservation"), (status = 404, description = "RESERVATION_NOT_FOUND")))]
pub async fn get_reservation(State(st): State<AppState>, PathParam(id): PathParam) -> ApiResult {
    let key = find(&st, &id).await?;
    let r = st.engine.get_reservation(key).await?;
    Ok(ok(StatusCode::OK, ReservationView::from(&r)))
}

#[utoipa::path(post, path = "/api/v1/inventory/reservations/{id}/expire", tag = "reservations",
    params(("id" = String, Path, description = "reservationId or orderId")),
    responses((status = 200, body = Envelope<ReservationView>, description = "expired now"), (status = 401, description = "UNAUTHORIZED"), (status = 403, description = "FORBIDDEN"),
        (status = 404, description = "RESERVATION_NOT_FOUND"), (status = 409, description = "RESERVATION_COMMITTED, RESERVATION_RELEASED")),
    security(("admin" = [])))]
pub async fn expire(_: Admin, State(st): State<AppState>, PathParam(id): PathParam) -> ApiResult {
    let key = find(&st, &id).await?;
    let r = st.engine.expire(key).await?;
    Ok(ok(StatusCode::OK, ReservationView::from(&r)))
}
