//! The response envelope every route answers with, and the mapping from engine errors
//! to HTTP statuses.
//!
//! Success: `{"data": {...}, "meta": {"timestamp": "..."}, "success": true}`
//! ([`Envelope`] of a view of [`crate::views`]).
//! Error: `{"error": {"code", "details", "message"}, "meta": {...}, "success": false}`
//! ([`ErrorEnvelope`]; `details` is [`crate::views::error::Details`]). Both are
//! serialized straight from typed structs, keys in alphabetical order.
//! The `code` strings are the engine's stable [`EngineError::code`] plus the few the
//! HTTP layer adds (`PAYLOAD_TOO_LARGE`, `UNSUPPORTED_MEDIA_TYPE`, `UNAUTHORIZED`,
//! `FORBIDDEN`, `NOT_FOUND`, `METHOD_NOT_ALLOWED`).

use crate::views::error::Details;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use stockd_engine::{EngineError, Millis};
use utoipa::ToSchema;

/// Renders milliseconds since the epoch as RFC 3339 UTC with milliseconds,
/// e.g. `2023-11-21T15:57:30.123Z`: the timestamp format of every response.
pub fn rfc3339(ms: Millis) -> String {
    stockd_engine::time::format_millis(ms)
}

pub fn now_ms() -> Millis {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as Millis)
}

/// A success answer: `{"data", "meta", "success": true}`. Keys of every view are in
/// alphabetical order, as they always were on the wire.
#[derive(Debug, Serialize, ToSchema)]
pub struct Envelope<T> {
    pub data: T,
    pub meta: Meta,
    /// true.
    pub success: bool,
}

/// `meta` of every answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Meta {
    /// When the answer was made (RFC 3339, milliseconds, UTC).
    pub timestamp: String,
}

impl Meta {
    /// Now, rendered once per millisecond per thread: answers made in the same
    /// millisecond share the text (a copy of it), not the formatting.
    fn now() -> Meta {
        thread_local! {
            static LAST: std::cell::RefCell<(Millis, String)> = const { std::cell::RefCell::new((Millis::MAX, String::new())) };
        }
        let ms = now_ms();
        let timestamp = LAST.with(|last| {
            let mut last = last.borrow_mut();
            if last.0 != ms {
                *last = (ms, rfc3339(ms));
            }
            last.1.clone()
        });
        Meta { timestamp }
    }
}

/// An error answer: `{"error": {code, details, message}, "meta", "success": false}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorView,
    pub meta: Meta,
    /// false.
    pub success: bool,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorView {
    /// A stable code: VALIDATION_ERROR, ITEM_NOT_FOUND, INSUFFICIENT_INVENTORY, ...
    pub code: &'static str,
    /// The fields each code documents (e.g. VALIDATION_ERROR: `field`, `reason`).
    #[schema(value_type = Object)]
    pub details: Details,
    pub message: String,
}

/// A success response: `status` with `data` in the envelope.
pub fn ok(status: StatusCode, data: impl Serialize) -> Response {
    json_response(status, &Envelope { data, meta: Meta::now(), success: true })
}

/// `body` as JSON with `content-type: application/json`: the answer `axum::Json`
/// gives, written into a buffer sized for a typical answer at once (axum's starts at
/// 128 bytes and grows by reallocation).
pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    let mut buf = Vec::with_capacity(768);
    match serde_json::to_writer(&mut buf, body) {
        Ok(()) => {
            let mut resp = Response::new(axum::body::Body::from(buf));
            *resp.status_mut() = status;
            resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        }
        // As axum::Json answers a value it cannot serialize.
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"))],
            e.to_string(),
        )
            .into_response(),
    }
}

/// An error answer. Every rejection in the server ends up as one of these.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Details,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), details: Details::none(), retry_after: None }
    }

    /// Free-form details (the HTTP layer's own errors).
    pub fn with_details(mut self, details: serde_json::Value) -> ApiError {
        self.details = Details::Json(details);
        self
    }

    /// 400 VALIDATION_ERROR naming `field`.
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        let (field, message) = (field.into(), message.into());
        let mut e = ApiError::new(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", format!("invalid {field}: {message}"));
        e.details = Details::Engine(EngineError::Validation { field, message });
        e
    }

    /// 503 NOT_LEADER: this node is a standby; `leader` is where writes go.
    pub fn not_leader(leader: Option<String>) -> ApiError {
        let message = match &leader {
            Some(url) => format!("this node is a standby; send writes to the leader at {url}"),
            None => "this node is a standby and no leader is known yet; retry".to_string(),
        };
        let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "NOT_LEADER", message)
            .with_details(json!({ "leader": leader }));
        e.retry_after = Some(1);
        e
    }

    pub fn unavailable(reason: impl Into<String>) -> ApiError {
        let reason = reason.into();
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVICE_UNAVAILABLE",
            format!("engine unavailable: {reason}"),
        );
        e.details = Details::Engine(EngineError::Unavailable { reason });
        e
    }
}

/// The HTTP status of each engine error code. `LIMIT_EXCEEDED` (a shard is full of
/// items, reservations or adjustment keys) answers 507 Insufficient Storage: the
/// request was fine, the server has no room for it.
pub fn status_of(e: &EngineError) -> StatusCode {
    match e {
        EngineError::Validation { .. } => StatusCode::BAD_REQUEST,
        EngineError::ItemNotFound { .. } | EngineError::ReservationNotFound { .. } => StatusCode::NOT_FOUND,
        EngineError::ItemExists { .. }
        | EngineError::InsufficientInventory { .. }
        | EngineError::ReservationExpired { .. }
        | EngineError::ReservationReleased { .. }
        | EngineError::ReservationCommitted { .. }
        | EngineError::ReservationPending { .. }
        | EngineError::VersionConflict { .. }
        | EngineError::ItemHasReservations { .. }
        | EngineError::NegativeInventory { .. }
        | EngineError::SalesBlocked { .. }
        | EngineError::MaxPerOrderExceeded { .. } => StatusCode::CONFLICT,
        EngineError::IdempotencyKeyReused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        EngineError::LimitExceeded { .. } => StatusCode::INSUFFICIENT_STORAGE,
        EngineError::Overloaded { .. } => StatusCode::TOO_MANY_REQUESTS,
        // Internal to the engine (it retries); should it ever leak, ask for a retry.
        EngineError::Unavailable { .. } | EngineError::Misrouted | EngineError::NotLeader => {
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        let internal = match &e {
            EngineError::Unavailable { reason } => reason.starts_with("internal error"),
            EngineError::Misrouted | EngineError::NotLeader => true,
            _ => false,
        };
        if internal {
            crate::metrics::INVARIANT_VIOLATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::error!(error = %e, "engine reported an internal inconsistency");
        }
        let retry_after = matches!(e, EngineError::Overloaded { .. } | EngineError::Misrouted).then_some(1);
        ApiError {
            status: status_of(&e),
            code: e.code(),
            message: e.to_string(),
            details: Details::Engine(e),
            retry_after,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorEnvelope {
            error: ErrorView { code: self.code, details: self.details, message: self.message },
            meta: Meta::now(),
            success: false,
        };
        let mut resp = json_response(self.status, &body);
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

pub type ApiResult = Result<Response, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_581_050_123), "2023-11-21T15:37:30.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn every_engine_error_has_a_4xx_or_5xx() {
        let e = EngineError::Overloaded { shard: 1 };
        let api = ApiError::from(e);
        assert_eq!(api.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(api.retry_after, Some(1));
    }
}
