//! The admin token: when configured, item writes and operator actions need
//! `Authorization: Bearer <token>` (401 when missing, 403 when wrong).
//!
//! - The scheme name is matched case-insensitively (`bearer`, `BEARER`: RFC 7235
//!   §2.1), and one or more spaces may separate it from the token.
//! - The comparison leaks neither where the first difference is nor the token's
//!   length: both sides are reduced to an HMAC-SHA-256 tag under a key drawn at
//!   start (so the expected tag is computed once, and the work per request depends
//!   only on the length of what the caller sent), and the two 32-byte tags are
//!   compared in constant time.
//! - An empty or blank token is refused at start ([`AdminToken::new`]), never read as
//!   "no auth".

use crate::app::AppState;
use crate::envelope::ApiError;
use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts, StatusCode};
use hmac::{KeyInit, Mac};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The configured admin token, kept only as its keyed tag.
#[derive(Clone)]
pub struct AdminToken {
    /// HMAC-SHA-256 keyed with this process's random key, ready to absorb a candidate.
    keyed: HmacSha256,
    /// The tag of the configured token.
    expected: [u8; 32],
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

impl AdminToken {
    /// Checks `token` and keeps its tag. Errors name the flag: an empty or blank
    /// token, or one with surrounding whitespace or control characters (no
    /// `Authorization` header can carry those, so it could never match).
    pub fn new(token: &str) -> Result<AdminToken, String> {
        const FLAG: &str = "--admin-token (STOCKD_ADMIN_TOKEN)";
        if token.trim().is_empty() {
            return Err(format!(
                "{FLAG} is empty: give a token, or leave both the flag and the variable unset to serve without auth"
            ));
        }
        if token.trim() != token {
            return Err(format!("{FLAG} has leading or trailing whitespace, which no Authorization header can carry"));
        }
        if token.chars().any(char::is_control) {
            return Err(format!("{FLAG} contains control characters, which no Authorization header can carry"));
        }
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| format!("{FLAG}: no random key for the token compare: {e}"))?;
        let keyed = <HmacSha256 as KeyInit>::new_from_slice(&key).expect("HMAC takes a key of any length");
        let mut mac = keyed.clone();
        mac.update(token.as_bytes());
        let expected: [u8; 32] = mac.finalize().into_bytes().into();
        Ok(AdminToken { keyed, expected })
    }

    /// True when `given` is the token. The time taken depends on `given.len()` only.
    pub fn matches(&self, given: &[u8]) -> bool {
        let mut mac = self.keyed.clone();
        mac.update(given);
        mac.verify_slice(&self.expected).is_ok()
    }
}

/// The token of an `Authorization` header value whose scheme is Bearer (any case).
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, rest) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim_start_matches(' '))
}

/// An extractor that succeeds only for a caller holding the admin token (or always,
/// when no token is configured). Put it first in a handler's arguments so it is
/// checked before the body is parsed.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(expected) = state.admin_token.as_deref() else { return Ok(Admin) };
        let given = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let Some(given) = given else {
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "missing Authorization: Bearer token"));
        };
        // A header of another scheme is compared as an empty token: same path, same
        // answer as a wrong token.
        let token = bearer_token(given).unwrap_or("");
        if expected.matches(token.as_bytes()) {
            Ok(Admin)
        } else {
            Err(ApiError::new(StatusCode::FORBIDDEN, "FORBIDDEN", "wrong admin token"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{bearer_token, AdminToken};

    #[test]
    fn compares() {
        let t = AdminToken::new("secret").unwrap();
        assert!(t.matches(b"secret"));
        assert!(!t.matches(b"secreT"));
        assert!(!t.matches(b"secret1"));
        assert!(!t.matches(b"secre"));
        assert!(!t.matches(b""));
        // Two processes (keys) give different tags for the same token.
        let u = AdminToken::new("secret").unwrap();
        assert_ne!(t.expected, u.expected);
    }

    #[test]
    fn blank_tokens_are_refused() {
        for bad in ["", " ", "\t\n", " secret", "secret\n", "sec\u{7}ret"] {
            let e = AdminToken::new(bad).unwrap_err();
            assert!(e.contains("--admin-token"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn scheme_is_case_insensitive() {
        assert_eq!(bearer_token("Bearer x"), Some("x"));
        assert_eq!(bearer_token("bearer x"), Some("x"));
        assert_eq!(bearer_token("BEARER  x"), Some("x"));
        assert_eq!(bearer_token("Basic x"), None);
        assert_eq!(bearer_token("Bearerx"), None);
        assert_eq!(bearer_token("Bearer"), None);
    }
}
