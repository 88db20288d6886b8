//! stockd-ceiling: the reference handler of the comparison (`benches/run-comparison.sh`).
//! A bare axum server answering the routes `stockd-load --target http` uses, with the
//! same request bodies and the same answer shapes (the JSON envelope, the same status
//! codes, an RFC 3339 timestamp in `meta`), from one `Mutex<HashMap>`: no WAL, no
//! shards, no durability. What it reaches on this machine with this generator is the
//! ceiling of HTTP itself, measured in every run beside stockd and its peers.
//!
//! Routes: `PUT /api/v1/inventory/items/{sku}` (`{"onHand": n}`: 201 created / 200
//! updated), `GET /api/v1/inventory/items/{sku}`, `POST /api/v1/inventory/reserve`
//! (`{"orderId", "items": [{"sku", "quantity"}], "expiresIn"}`: 201, 200 for a repeated
//! orderId, 409 INSUFFICIENT_INVENTORY, 404 ITEM_NOT_FOUND), `POST .../commit` and
//! `POST .../release` (`{"orderId"}`: 200, 404 RESERVATION_NOT_FOUND, 409 when the
//! reservation is no longer ACTIVE). Reserve is all or nothing over its lines.
//! Expiry is not modelled (nothing expires within a run).
//!
//!   stockd-ceiling --listen 127.0.0.1:18082 [--workers N]

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Default)]
struct Store {
    items: HashMap<String, Item>,
    reservations: HashMap<String, Reservation>,
    next_id: u64,
}

#[derive(Clone, Copy, Default)]
struct Item {
    on_hand: u64,
    reserved: u64,
    sold: u64,
    version: u64,
}

#[derive(Clone, PartialEq, Eq)]
enum Status {
    Active,
    Committed,
    Released,
}

impl Status {
    fn as_str(&self) -> &'static str {
        match self {
            Status::Active => "ACTIVE",
            Status::Committed => "COMMITTED",
            Status::Released => "RELEASED",
        }
    }
}

#[derive(Clone)]
struct Reservation {
    id: String,
    lines: Vec<(String, u64)>,
    status: Status,
    created_at: u64,
    expires_at: u64,
}

type Shared = Arc<Mutex<Store>>;

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn rfc3339(ms: u64) -> String {
    stockd_engine::time::format_millis(ms)
}

#[derive(Serialize)]
struct Meta {
    timestamp: String,
}

#[derive(Serialize)]
struct Envelope<T> {
    data: T,
    meta: Meta,
    success: bool,
}

#[derive(Serialize)]
struct ErrorView {
    code: &'static str,
    details: serde_json::Value,
    message: String,
}

#[derive(Serialize)]
struct ErrorEnvelope {
    error: ErrorView,
    meta: Meta,
    success: bool,
}

fn ok(status: StatusCode, data: impl Serialize) -> Response {
    (status, Json(Envelope { data, meta: Meta { timestamp: rfc3339(now_ms()) }, success: true })).into_response()
}

fn err(status: StatusCode, code: &'static str, message: String, details: serde_json::Value) -> Response {
    let body = ErrorEnvelope {
        error: ErrorView { code, details, message },
        meta: Meta { timestamp: rfc3339(now_ms()) },
        success: false,
    };
    (status, Json(body)).into_response()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ItemView<'a> {
    available: u64,
    on_hand: u64,
    reserved: u64,
    sku: &'a str,
    sold: u64,
    version: u64,
}

fn item_view<'a>(sku: &'a str, i: &Item) -> ItemView<'a> {
    ItemView {
        available: i.on_hand - i.reserved,
        on_hand: i.on_hand,
        reserved: i.reserved,
        sku,
        sold: i.sold,
        version: i.version,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PutItem {
    on_hand: u64,
}

async fn put_item(State(st): State<Shared>, Path(sku): Path<String>, Json(body): Json<PutItem>) -> Response {
    let mut store = st.lock().expect("store lock");
    let (created, item) = match store.items.get_mut(&sku) {
        Some(i) if body.on_hand < i.reserved => {
            let message = format!("onHand {} is below reserved {}", body.on_hand, i.reserved);
            return err(StatusCode::CONFLICT, "ITEM_HAS_RESERVATIONS", message, serde_json::Value::Null);
        }
        Some(i) => {
            i.on_hand = body.on_hand;
            i.version += 1;
            (false, *i)
        }
        None => {
            let i = Item { on_hand: body.on_hand, version: 1, ..Item::default() };
            store.items.insert(sku.clone(), i);
            (true, i)
        }
    };
    drop(store);
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    ok(status, item_view(&sku, &item))
}

async fn get_item(State(st): State<Shared>, Path(sku): Path<String>) -> Response {
    let item = st.lock().expect("store lock").items.get(&sku).copied();
    match item {
        Some(i) => ok(StatusCode::OK, item_view(&sku, &i)),
        None => not_found_item(&sku),
    }
}

fn not_found_item(sku: &str) -> Response {
    err(StatusCode::NOT_FOUND, "ITEM_NOT_FOUND", format!("item {sku} not found"), serde_json::json!({ "sku": sku }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LineIn {
    sku: String,
    quantity: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ReserveBody {
    order_id: String,
    items: Vec<LineIn>,
    expires_in: Option<u64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReserveLineView<'a> {
    quantity: u64,
    reserved: bool,
    sku: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReserveView<'a> {
    expires_at: String,
    items: Vec<ReserveLineView<'a>>,
    order_id: &'a str,
    reservation_id: &'a str,
    status: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ShortfallView<'a> {
    available_quantity: u64,
    requested_quantity: u64,
    sku: &'a str,
}

async fn reserve(State(st): State<Shared>, Json(body): Json<ReserveBody>) -> Response {
    if body.items.is_empty() || body.items.iter().any(|l| l.quantity == 0) {
        let details = serde_json::json!({ "field": "items", "reason": "at least one line, each quantity >= 1" });
        return err(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", "invalid items".into(), details);
    }
    let now = now_ms();
    let mut store = st.lock().expect("store lock");
    if let Some(r) = store.reservations.get(&body.order_id) {
        let r = r.clone();
        drop(store);
        return reserve_answer(StatusCode::OK, &body.order_id, &r);
    }
    // All or nothing: check every line, then take.
    let mut missing = None;
    let mut short = Vec::new();
    for l in &body.items {
        match store.items.get(&l.sku) {
            None => {
                missing = Some(l.sku.as_str());
                break;
            }
            Some(i) if i.on_hand - i.reserved < l.quantity => short.push((l, i.on_hand - i.reserved)),
            Some(_) => {}
        }
    }
    if let Some(sku) = missing {
        drop(store);
        return not_found_item(sku);
    }
    if !short.is_empty() {
        drop(store);
        let details: Vec<ShortfallView> = short
            .iter()
            .map(|(l, a)| ShortfallView { available_quantity: *a, requested_quantity: l.quantity, sku: &l.sku })
            .collect();
        let details = serde_json::json!({ "items": details });
        return err(StatusCode::CONFLICT, "INSUFFICIENT_INVENTORY", "insufficient inventory".into(), details);
    }
    for l in &body.items {
        let item = store.items.get_mut(&l.sku).expect("checked above");
        item.reserved += l.quantity;
        item.version += 1;
    }
    store.next_id += 1;
    let r = Reservation {
        id: format!("res-{:016x}", store.next_id),
        lines: body.items.iter().map(|l| (l.sku.clone(), l.quantity)).collect(),
        status: Status::Active,
        created_at: now,
        expires_at: now + body.expires_in.unwrap_or(900) * 1000,
    };
    store.reservations.insert(body.order_id.clone(), r.clone());
    drop(store);
    reserve_answer(StatusCode::CREATED, &body.order_id, &r)
}

fn reserve_answer(status: StatusCode, order_id: &str, r: &Reservation) -> Response {
    let items = r.lines.iter().map(|(sku, q)| ReserveLineView { quantity: *q, reserved: true, sku }).collect();
    let view = ReserveView {
        expires_at: rfc3339(r.expires_at),
        items,
        order_id,
        reservation_id: &r.id,
        status: r.status.as_str(),
    };
    ok(status, view)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct KeyBody {
    order_id: String,
    #[allow(dead_code)]
    reason: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LineView<'a> {
    committed_quantity: u64,
    quantity: u64,
    sku: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReservationView<'a> {
    created_at: String,
    expires_at: String,
    finished_at: Option<String>,
    items: Vec<LineView<'a>>,
    order_id: &'a str,
    reservation_id: &'a str,
    status: &'static str,
}

/// ACTIVE → `to`, moving the held units (commit: to sold; release: back to available).
/// Repeating the same transition answers the reservation as it is.
fn settle(st: &Shared, order_id: &str, to: Status) -> Response {
    let now = now_ms();
    let mut store = st.lock().expect("store lock");
    let Some(r) = store.reservations.get(order_id).cloned() else {
        drop(store);
        let details = serde_json::json!({ "key": order_id });
        return err(StatusCode::NOT_FOUND, "RESERVATION_NOT_FOUND", format!("no reservation {order_id}"), details);
    };
    if r.status == Status::Active {
        for (sku, q) in &r.lines {
            let item = store.items.get_mut(sku).expect("a held item exists");
            item.reserved -= q;
            if to == Status::Committed {
                item.on_hand -= q;
                item.sold += q;
            }
            item.version += 1;
        }
        store.reservations.get_mut(order_id).expect("read above").status = to.clone();
    } else if r.status != to {
        drop(store);
        let code = if r.status == Status::Committed { "RESERVATION_COMMITTED" } else { "RESERVATION_RELEASED" };
        let details = serde_json::json!({ "reservationId": r.id });
        return err(StatusCode::CONFLICT, code, format!("reservation is {}", r.status.as_str()), details);
    }
    drop(store);
    let committed = to == Status::Committed;
    let view = ReservationView {
        created_at: rfc3339(r.created_at),
        expires_at: rfc3339(r.expires_at),
        finished_at: Some(rfc3339(now)),
        items: r
            .lines
            .iter()
            .map(|(sku, q)| LineView { committed_quantity: if committed { *q } else { 0 }, quantity: *q, sku })
            .collect(),
        order_id,
        reservation_id: &r.id,
        status: to.as_str(),
    };
    ok(StatusCode::OK, view)
}

async fn commit(State(st): State<Shared>, Json(body): Json<KeyBody>) -> Response {
    settle(&st, &body.order_id, Status::Committed)
}

async fn release(State(st): State<Shared>, Json(body): Json<KeyBody>) -> Response {
    settle(&st, &body.order_id, Status::Released)
}

fn router() -> Router {
    let inventory = Router::new()
        .route("/items/{sku}", put(put_item).get(get_item))
        .route("/reserve", post(reserve))
        .route("/commit", post(commit))
        .route("/release", post(release));
    Router::new().nest("/api/v1/inventory", inventory).with_state(Shared::default())
}

fn main() {
    let mut listen = "127.0.0.1:18082".to_owned();
    let mut workers = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--listen", Some(v)) => listen = v,
            ("--workers", Some(v)) => match v.parse::<usize>() {
                Ok(n) if n > 0 => workers = Some(n),
                _ => fail(&format!("--workers: a whole number >= 1, got {v:?}")),
            },
            _ => fail("usage: stockd-ceiling [--listen HOST:PORT] [--workers N]"),
        }
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(n) = workers {
        rt.worker_threads(n);
    }
    let rt = rt.build().unwrap_or_else(|e| fail(&format!("tokio runtime: {e}")));
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .unwrap_or_else(|e| fail(&format!("cannot listen on {listen}: {e}")));
        // TCP_NODELAY on every accepted connection, as stockd does.
        let listener = axum::serve::ListenerExt::tap_io(listener, |s| {
            let _ = s.set_nodelay(true);
        });
        eprintln!("stockd-ceiling: listening on {listen}");
        if let Err(e) = axum::serve(listener, router()).await {
            fail(&format!("serve: {e}"));
        }
    });
}

fn fail(msg: &str) -> ! {
    eprintln!("stockd-ceiling: {msg}");
    std::process::exit(2)
}
