//! `StrictJson<T>`: the JSON body extractor every route uses. Unlike `axum::Json` it
//! never answers outside the envelope: a missing or non-JSON `Content-Type` (415),
//! a body over the limit (413 `PAYLOAD_TOO_LARGE`), malformed JSON, wrong types,
//! missing or unknown fields (400 `VALIDATION_ERROR`, `details.field` naming the
//! field by its JSON path, e.g. `items[2].quantity`).
//!
//! Also [`PathParam`] and [`PathParams`], `Path<String>` and `Path<(String, String)>`
//! whose rejections are in the envelope.

use crate::envelope::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::{header, request::Parts, StatusCode};
use serde::de::DeserializeOwned;

/// Largest request body accepted, bytes (64 KiB).
pub const MAX_BODY: usize = 64 * 1024;

pub struct StrictJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for StrictJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        // The usual `application/json` is accepted without copying the header.
        let plain_json = |ct: &header::HeaderValue| {
            ct.to_str()
                .is_ok_and(|ct| ct.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json"))
        };
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE).filter(|ct| !plain_json(ct)) {
            let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
            let mime = ct.split(';').next().unwrap_or("").trim();
            if !(mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))) {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "UNSUPPORTED_MEDIA_TYPE",
                    format!("Content-Type must be application/json, got {mime:?}"),
                ));
            }
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "PAYLOAD_TOO_LARGE",
                    format!("request body is over {MAX_BODY} bytes"),
                )
                .with_details(serde_json::json!({ "limit": MAX_BODY }))
            } else {
                ApiError::validation("body", rejection.body_text())
            }
        })?;
        parse(&bytes).map(StrictJson)
    }
}

/// Deserializes `bytes`, naming the offending field on failure.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // A valid body (the usual case) is read without tracking the path; only a body
    // that fails is read again with `serde_path_to_error` to name the field.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        field_error(&path, &inner)
    })?;
    de.end().map_err(|e| field_error(".", &e))?;
    Ok(value)
}

fn field_error(path: &str, e: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    let msg = e.to_string();
    if matches!(e.classify(), Category::Syntax | Category::Eof | Category::Io) {
        return ApiError::validation("body", format!("malformed JSON: {msg}"));
    }
    // "unknown field `x`, ...", "missing field `x`" and "duplicate field `x`" (also a
    // field given under its name and an alias) point at the parent object.
    let named = ["unknown field `", "missing field `", "duplicate field `"]
        .iter()
        .find_map(|p| msg.strip_prefix(p))
        .and_then(|rest| rest.split('`').next());
    let field = match (named, path) {
        (Some(name), "." | "") => name.to_owned(),
        // serde_path_to_error already names an unknown field; a missing or repeated one it does not.
        (Some(name), p) if p == name || p.ends_with(&format!(".{name}")) => p.to_owned(),
        (Some(name), parent) => format!("{parent}.{name}"),
        (None, "." | "") => "body".to_owned(),
        (None, p) => p.to_owned(),
    };
    let reason = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
    ApiError::validation(field, reason)
}

/// One path segment as a `String`, rejected in the envelope.
pub struct PathParam(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(s)| PathParam(s))
            .map_err(|e| ApiError::validation("path", e.body_text()))
    }
}

/// Two path segments (`/items/{sku}/locations/{location}`), rejected in the envelope.
pub struct PathParams(pub String, pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map(|Path((a, b))| PathParams(a, b))
            .map_err(|e| ApiError::validation("path", e.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Line {
        sku: String,
        quantity: u64,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Body {
        order_id: String,
        items: Vec<Line>,
    }

    fn field(body: &str) -> String {
        let e = parse::<Body>(body.as_bytes()).unwrap_err();
        e.details.to_value()["field"].as_str().unwrap().to_owned()
    }

    #[test]
    fn names_the_field() {
        assert_eq!(field(r#"{"orderId":"a","items":[{"sku":"x","quantity":-1}]}"#), "items[0].quantity");
        assert_eq!(field(r#"{"orderId":"a","items":[{"sku":"x","quantity":1,"color":1}]}"#), "items[0].color");
        assert_eq!(field(r#"{"orderId":"a","items":[{"sku":"x"}]}"#), "items[0].quantity");
        assert_eq!(field(r#"{"items":[]}"#), "orderId");
        assert_eq!(field(r#"{"orderId":"a","items":[],"bogus":true}"#), "bogus");
        assert_eq!(field(r#"{"orderId":"#), "body");
        assert_eq!(field(r#"{"orderId":"a","items":[]} x"#), "body");
        assert_eq!(field(r#"{"orderId":"a","orderId":"b","items":[]}"#), "orderId");
        assert_eq!(field(r#"{"orderId":"a","items":[{"sku":"x","sku":"y","quantity":1}]}"#), "items[0].sku");
    }
}
