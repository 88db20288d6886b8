//! The router: every route, the shared state, the fallbacks that keep even a 404 or
//! 405 inside the JSON envelope, and the body limit.

use crate::envelope::ApiError;
use crate::extract::MAX_BODY;
use crate::metrics::Metrics;
use crate::routes::{history, items, locations, ops, reservation_admin, reservations};
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post, put, MethodRouter};
use axum::Router;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use stockd_engine::location::AllocationStrategy;
use stockd_engine::Engine;

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub admin_token: Option<Arc<crate::auth::AdminToken>>,
    pub metrics: Arc<Metrics>,
    pub stopping: Arc<AtomicBool>,
    pub durability: &'static str,
    /// Set when the Kafka front runs (`--kafka-brokers`); /health then shows it.
    pub kafka: Option<Arc<crate::kafka::KafkaStatus>>,
    /// The allocation strategy of a reserve that names none (`--allocation`).
    pub allocation: AllocationStrategy,
    /// Set with `--replication kafka`: a standby refuses writes (NOT_LEADER).
    pub replication: Option<Arc<crate::replication::Replication>>,
}

impl AppState {
    /// `admin_token`: checked at start ([`crate::auth::AdminToken::new`]); `None`
    /// serves without auth.
    pub fn new(engine: Engine, admin_token: Option<crate::auth::AdminToken>, durability: &'static str) -> AppState {
        AppState {
            engine,
            admin_token: admin_token.map(Arc::new),
            metrics: Arc::new(Metrics::default()),
            stopping: Arc::new(AtomicBool::new(false)),
            durability,
            kafka: None,
            allocation: AllocationStrategy::default(),
            replication: None,
        }
    }

    /// Whether writes are taken now: 503 once a shard's WAL has failed or while
    /// shutting down, NOT_LEADER on a standby. The write gate of every mutating route
    /// ([`write_gate`]) and the answer of /ready.
    pub fn writable(&self) -> Result<(), ApiError> {
        if self.engine.is_failed() {
            return Err(ApiError::unavailable(ops::wal_failure(&self.engine).unwrap_or_else(|| "WAL failed".into())));
        }
        if self.stopping.load(Ordering::Acquire) {
            return Err(ApiError::unavailable("shutting down"));
        }
        if let Some(r) = &self.replication {
            if !r.ready() {
                return Err(ApiError::not_leader(r.leader_url()));
            }
        }
        Ok(())
    }
}

/// The router with the default request deadline (30 s); [`router_with`] sets it.
pub fn router(state: AppState) -> Router {
    router_with(state, std::time::Duration::from_secs(30))
}

/// The router; `request_timeout` bounds each request from its head to its answer
/// ([`crate::http::deadline`]).
pub fn router_with(state: AppState, request_timeout: std::time::Duration) -> Router {
    // Every route that changes state is wrapped in `w`: the write gate runs
    // before its handler, so no handler can forget it.
    let w = |routes: MethodRouter<AppState>| {
        routes.route_layer(axum::middleware::from_fn_with_state(state.clone(), write_gate))
    };
    let inventory = Router::new()
        .route("/items", get(items::list_items))
        .route("/items/{sku}", get(items::get_item).merge(w(put(items::put_item).delete(items::delete_item))))
        .route("/items/{sku}/adjust", w(post(items::adjust_item)))
        .route("/items/{sku}/block", w(post(items::block_item)))
        .route("/items/{sku}/unblock", w(post(items::unblock_item)))
        .route("/items/{sku}/history", get(history::item_history))
        .route("/items/{sku}/locations", get(locations::list_locations))
        .route("/items/{sku}/locations/{location}", w(put(locations::put_location)))
        .route("/items/{sku}/transfers", w(post(locations::transfer)))
        .route("/items/{sku}/receipts", w(post(locations::receive)))
        .route("/warehouses", get(locations::warehouses))
        // A read, though a POST.
        .route("/check-availability", post(reservations::check_availability))
        .route("/reserve", w(post(reservations::reserve)))
        .route("/commit", w(post(reservations::commit)))
        .route("/release", w(post(reservations::release)))
        .route("/extend", w(post(reservations::extend)))
        .route("/reservations", get(reservation_admin::list_reservations))
        .route("/reservations/expire-due", w(post(reservation_admin::expire_due)))
        .route("/reservations/{id}", get(reservations::get_reservation))
        .route("/reservations/{id}/expire", w(post(reservations::expire)));
    let router = Router::new()
        .nest("/api/v1/inventory", inventory)
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .route("/api/v1/openapi.json", get(ops::openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY));
    let front = crate::http::Front::new(&state, request_timeout);
    router.layer(axum::middleware::from_fn_with_state(front, crate::http::front)).with_state(state)
}

/// The route layer of every mutating route: refuses the request with
/// [`AppState::writable`]'s answer before the handler (and its extractors: auth, path,
/// body) runs, so nothing is attempted while writes are not taken.
pub async fn write_gate(
    axum::extract::State(st): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    match st.writable() {
        Ok(()) => next.run(request).await,
        Err(e) => axum::response::IntoResponse::into_response(e),
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", "method not allowed on this route")
}

/// With replication on, every answer says which role answered and, on a standby, how
/// far behind the changelog it is (`x-stockd-replication-lag`: messages not yet
/// read, all shards). Called by [`crate::http::front`] on every answer.
pub(crate) fn add_replication_headers(
    replication: Option<&crate::replication::Replication>,
    response: &mut axum::response::Response,
) {
    if let Some(r) = replication {
        let headers = response.headers_mut();
        headers.insert("x-stockd-role", axum::http::HeaderValue::from_static(r.role_name()));
        if !r.is_leader() {
            headers.insert("x-stockd-replication-lag", axum::http::HeaderValue::from(r.shared.lag_records()));
        }
    }
}
