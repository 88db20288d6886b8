//! `QueryParams`: the query string of a request, checked the same way on every route
//! that takes parameters. The one owner of these rules:
//!
//! - a malformed query string, a parameter the route does not know, or one given more
//!   than once is a 400 `VALIDATION_ERROR` naming it (`details.field`);
//! - a whole number is 0 to `i64::MAX` (the OpenAPI document says `int64`), digits only;
//! - an empty value (`sku=`) is an error, not "absent", except where a route says
//!   otherwise ([`QueryParams::cursor`]: an empty cursor is the first page).
//!
//! A handler takes `QueryParams` as an extractor and states what it accepts with
//! [`QueryParams::only`] before reading any value.

use crate::envelope::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::collections::HashMap;

/// The parameters of one request, by name. See the module docs.
#[derive(Debug, Default)]
pub struct QueryParams(HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        QueryParams::parse(parts.uri.query().unwrap_or(""))
    }
}

impl QueryParams {
    /// Parses a query string (without the `?`).
    pub fn parse(query: &str) -> Result<QueryParams, ApiError> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded_pairs(query).map_err(|e| ApiError::validation("query", e))?;
        let mut map = HashMap::with_capacity(pairs.len());
        for (name, value) in pairs {
            if map.contains_key(&name) {
                return Err(ApiError::validation(name.as_str(), "given more than once"));
            }
            map.insert(name, value);
        }
        Ok(QueryParams(map))
    }

    /// Refuses any parameter not in `known` (the first by name, so the answer is the
    /// same every time).
    pub fn only(self, known: &[&str]) -> Result<QueryParams, ApiError> {
        if let Some(unknown) = self.0.keys().filter(|k| !known.contains(&k.as_str())).min() {
            let known = if known.is_empty() { "none".to_owned() } else { known.join(", ") };
            return Err(ApiError::validation(unknown.as_str(), format!("unknown parameter; this route takes {known}")));
        }
        Ok(self)
    }

    /// A text value; `None` when absent. Empty is an error.
    pub fn text(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.0.get(name).map(String::as_str) {
            Some("") => Err(ApiError::validation(name, "must not be empty (leave the parameter out instead)")),
            other => Ok(other),
        }
    }

    /// A paging cursor: absent and empty both mean "from the start".
    pub fn cursor(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|c| !c.is_empty())
    }

    /// A whole number from 0 to `i64::MAX`; `None` when absent.
    pub fn whole(&self, name: &str) -> Result<Option<u64>, ApiError> {
        let Some(v) = self.0.get(name) else { return Ok(None) };
        let bad = || ApiError::validation(name, format!("must be a whole number from 0 to {}, got {v:?}", i64::MAX));
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        match v.parse::<u64>() {
            Ok(n) if n <= i64::MAX as u64 => Ok(Some(n)),
            _ => Err(bad()),
        }
    }
}

/// `name=value` pairs in order, percent- and `+`-decoded.
fn serde_urlencoded_pairs(query: &str) -> Result<Vec<(String, String)>, String> {
    use axum::extract::Query;
    let uri: axum::http::Uri = format!("/?{query}").parse().map_err(|e| format!("malformed query string: {e}"))?;
    Query::<Vec<(String, String)>>::try_from_uri(&uri).map(|Query(v)| v).map_err(|e| e.body_text())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(e: ApiError) -> String {
        e.details.to_value()["field"].as_str().unwrap().to_owned()
    }

    #[test]
    fn rules() {
        let q = QueryParams::parse("limit=5&cursor=&sku=a%3Ab&note=x+y").unwrap();
        assert_eq!(q.whole("limit").unwrap(), Some(5));
        assert_eq!(q.cursor("cursor"), None);
        assert_eq!(q.text("sku").unwrap(), Some("a:b"));
        assert_eq!(q.text("note").unwrap(), Some("x y"));
        assert_eq!(q.text("absent").unwrap(), None);
        assert_eq!(field(QueryParams::parse("sku=").unwrap().text("sku").unwrap_err()), "sku");
        assert_eq!(field(QueryParams::parse("a=1&a=2").unwrap_err()), "a");
        let q = QueryParams::parse("b=1&a=1&limit=1").unwrap();
        assert_eq!(field(q.only(&["limit"]).unwrap_err()), "a");
        assert!(QueryParams::parse("limit=1").unwrap().only(&["limit"]).is_ok());
        assert_eq!(field(QueryParams::parse("x=1").unwrap().only(&[]).unwrap_err()), "x");
        for bad in ["-1", "+1", "", "1.0", "9223372036854775808", "18446744073709551616", "x"] {
            let q = QueryParams::parse(&format!("n={bad}")).unwrap();
            assert_eq!(field(q.whole("n").unwrap_err()), "n", "{bad:?}");
        }
        let max = QueryParams::parse("n=9223372036854775807").unwrap();
        assert_eq!(max.whole("n").unwrap(), Some(i64::MAX as u64));
    }
}
