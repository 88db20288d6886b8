//! `GET /api/v1/inventory/items/{sku}/history`: an item's stock transaction history
//! (seed 001), served from the write-ahead log by `Engine::item_history` (which
//! replays the SKU's shard on a blocking thread, never on the async workers). This
//! module owns the query parameters and their validation; the page's JSON shape is
//! [`crate::views::history`].
//! Admin token required when one is configured.

use crate::app::AppState;
use crate::auth::Admin;
use crate::envelope::{ok, ApiError, ApiResult, Envelope};
use crate::extract::PathParam;
use crate::query::QueryParams;
use crate::views::HistoryView;
use axum::extract::State;
use axum::http::StatusCode;
use stockd_engine::limits::MAX_PAGE;
use stockd_engine::time::parse_rfc3339;
use stockd_engine::HistoryQuery;
use stockd_engine::Sku;

const PARAMS: [&str; 5] = ["limit", "after", "cursor", "from", "to"];

fn time(q: &QueryParams, name: &str) -> Result<Option<u64>, ApiError> {
    q.text(name)?.map(|v| parse_rfc3339(v).map_err(|e| ApiError::validation(name, e))).transpose()
}

/// The query string as an engine query; every error names its parameter.
pub fn parse_query(q: QueryParams) -> Result<HistoryQuery, ApiError> {
    let q = &q.only(&PARAMS)?;
    let limit = q.whole("limit")?.unwrap_or(stockd_engine::DEFAULT_HISTORY_LIMIT as u64);
    if limit == 0 || limit > MAX_PAGE as u64 {
        return Err(ApiError::validation("limit", format!("must be 1 to {MAX_PAGE}")));
    }
    // `cursor` is accepted too, like the item listing's.
    let after = match (q.whole("after")?, q.whole("cursor")?) {
        (Some(_), Some(_)) => return Err(ApiError::validation("cursor", "give after or cursor, not both")),
        (a, c) => a.or(c),
    };
    let (from, to) = (time(q, "from")?, time(q, "to")?);
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(ApiError::validation("to", "must not be before from"));
        }
    }
    Ok(HistoryQuery { limit: limit as usize, after, from, to })
}

#[utoipa::path(get, path = "/api/v1/inventory/items/{sku}/history", tag = "items",
    params(("sku" = String, Path, description = "SKU, URL-encoded", pattern = "^[A-Za-z0-9._:/-]{1,128}$"),
        ("limit" = Option<u64>, Query, description = "rows per page, 1 to 1000, default 100"),
        ("after" = Option<u64>, Query, description = "only rows with an LSN above this: nextCursor of the previous page (`cursor` is accepted too)"),
        ("from" = Option<String>, Query, description = "only rows at or after this RFC 3339 time"),
        ("to" = Option<String>, Query, description = "only rows at or before this RFC 3339 time")),
    responses((status = 200, body = Envelope<HistoryView>, description = "the item's stock transactions, oldest first, read from the write-ahead log up to what is durable"),
        (status = 400, description = "VALIDATION_ERROR naming the parameter"), (status = 401, description = "UNAUTHORIZED"),
        (status = 403, description = "FORBIDDEN"), (status = 404, description = "ITEM_NOT_FOUND: no such item and no history"),
        (status = 429, description = "OVERLOADED: too many history reads at once")),
    security(("admin" = [])))]
pub async fn item_history(
    _: Admin,
    State(st): State<AppState>,
    PathParam(sku): PathParam,
    q: QueryParams,
) -> ApiResult {
    let sku = Sku::parse(&sku, "sku")?;
    let query = parse_query(q)?;
    let page = st.engine.item_history(sku, query).await?;
    Ok(ok(StatusCode::OK, HistoryView::from(&page)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> QueryParams {
        let text: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        QueryParams::parse(&text.join("&")).unwrap()
    }

    fn field(pairs: &[(&str, &str)]) -> String {
        parse_query(query(pairs)).unwrap_err().details.to_value()["field"].as_str().unwrap().to_owned()
    }

    #[test]
    fn parameters() {
        let parsed = parse_query(query(&[("limit", "5"), ("cursor", "9"), ("from", "2026-01-01T00:00:00Z")])).unwrap();
        assert_eq!((parsed.limit, parsed.after, parsed.from, parsed.to), (5, Some(9), Some(1_767_225_600_000), None));
        assert_eq!(parse_query(QueryParams::default()).unwrap(), HistoryQuery::default());
        assert_eq!(field(&[("after", "9223372036854775808")]), "after");
        assert_eq!(field(&[("from", "")]), "from");
        assert_eq!(field(&[("limit", "0")]), "limit");
        assert_eq!(field(&[("limit", "1001")]), "limit");
        assert_eq!(field(&[("limit", "x")]), "limit");
        assert_eq!(field(&[("after", "-1")]), "after");
        assert_eq!(field(&[("after", "1"), ("cursor", "2")]), "cursor");
        assert_eq!(field(&[("from", "yesterday")]), "from");
        assert_eq!(field(&[("from", "2026-01-02T00:00:00Z"), ("to", "2026-01-01T00:00:00Z")]), "to");
        assert_eq!(field(&[("sort", "desc")]), "sort");
    }
}
