//! The admin token: when configured, item writes and operator actions need
//! `Authorization: Bearer <token>` (401 when missing, 403 when wrong). Tokens are
//! compared in constant time.

use crate::app::AppState;
use crate::envelope::ApiError;
use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts, StatusCode};

/// An extractor that succeeds only for a caller holding the admin token (or always,
/// when no token is configured). Put it first in a handler's arguments so it is
/// checked before the body is read.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(expected) = state.admin_token.as_deref() else { return Ok(Admin) };
        let given = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let Some(given) = given else {
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "missing Authorization: Bearer token"));
        };
        let token = given.strip_prefix("Bearer ").unwrap_or("");
        if ct_eq(token.as_bytes(), expected.as_bytes()) {
            Ok(Admin)
        } else {
            Err(ApiError::new(StatusCode::FORBIDDEN, "FORBIDDEN", "wrong admin token"))
        }
    }
}

/// Constant-time equality: the time depends only on the lengths, never on where the
/// first difference is.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8 | u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::ct_eq;

    #[test]
    fn compares() {
        assert!(ct_eq(b"secret", b"secret"));
        assert!(!ct_eq(b"secret", b"secreT"));
        assert!(!ct_eq(b"secret", b"secret1"));
        assert!(!ct_eq(b"", b"x"));
        assert!(ct_eq(b"", b""));
    }
}
