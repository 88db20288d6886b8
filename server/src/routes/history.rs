//! `GET /api/v1/inventory/items/{sku}/history`: an item's stock transaction history
//! (seed 001), served from the write-ahead log by `Engine::item_history` (which
//! replays the SKU's shard on a blocking thread, never on the async workers). This
//! module owns the query parameters, their validation and the JSON shape of a page.
//! Admin token required when one is configured.

use crate::app::AppState;
use crate::auth::Admin;
use crate::envelope::{ok, rfc3339, ApiError, ApiResult};
use crate::extract::PathParam;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Serialize;
use std::collections::HashMap;
use stockd_engine::durable::{HistoryEntry, HistoryPage, HistoryQuery};
use stockd_engine::limits::MAX_PAGE;
use stockd_engine::time::parse_rfc3339;
use stockd_engine::Sku;
use utoipa::ToSchema;

/// One row of an item's history: one WAL record that changed the item.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntryView {
    /// The record's log sequence number on the SKU's shard (rows are in LSN order).
    pub lsn: u64,
    /// RESERVE, CONFIRM, RELEASE, EXPIRE, SET, ADJUST, DELETE, BLOCK_SALES,
    /// UNBLOCK_SALES, or the engine's command kind for any other change.
    #[serde(rename = "type")]
    pub kind: String,
    /// Units reserved (RESERVE), sold (CONFIRM) or given back (RELEASE, EXPIRE); the
    /// signed change of onHand for SET, ADJUST and DELETE.
    pub quantity: i64,
    /// Figures before and after; null where the item did not exist (before its first
    /// SET, after DELETE).
    pub on_hand_before: Option<u64>,
    pub on_hand_after: Option<u64>,
    pub available_before: Option<u64>,
    pub available_after: Option<u64>,
    pub reserved_before: Option<u64>,
    pub reserved_after: Option<u64>,
    /// Units sold, after this row.
    pub sold: Option<u64>,
    /// Adjustment reason (and note), release reason, EXPIRED, ABORTED (a reserve that
    /// failed on another item was rolled back), or how a partial commit split.
    pub reason: Option<String>,
    pub order_id: Option<String>,
    pub reservation_id: Option<String>,
    /// When the shard applied the record (RFC 3339).
    pub at: String,
    /// Units in transit, before and after (TRANSFER in transit, RECEIVE).
    pub incoming_before: Option<u64>,
    pub incoming_after: Option<u64>,
    /// The locations (warehouses) whose figures the record changed.
    pub locations: Vec<LocationChangeView>,
}

/// One location's figures before and after a history row.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocationChangeView {
    pub location: String,
    pub on_hand_before: u64,
    pub on_hand_after: u64,
    pub reserved_before: u64,
    pub reserved_after: u64,
    pub sold_before: u64,
    pub sold_after: u64,
    pub incoming_before: u64,
    pub incoming_after: u64,
}

/// LSNs the WAL no longer holds (removed after a snapshot): their rows are missing.
#[derive(Debug, Serialize, ToSchema)]
pub struct PrunedView {
    pub first: u64,
    pub last: u64,
}

/// A page of an item's history, oldest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryView {
    pub sku: String,
    pub entries: Vec<HistoryEntryView>,
    /// Pass as `after` for the next page; null on the last page.
    pub next_cursor: Option<u64>,
    /// Present only when part of the requested range was pruned from the WAL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pruned_lsns: Option<PrunedView>,
}

impl From<&HistoryEntry> for HistoryEntryView {
    fn from(e: &HistoryEntry) -> HistoryEntryView {
        let (b, a) = (e.before.as_ref(), e.after.as_ref());
        HistoryEntryView {
            lsn: e.lsn,
            kind: e.kind.to_owned(),
            quantity: e.quantity,
            on_hand_before: b.map(|f| f.on_hand),
            on_hand_after: a.map(|f| f.on_hand),
            available_before: b.map(|f| f.available()),
            available_after: a.map(|f| f.available()),
            reserved_before: b.map(|f| f.reserved),
            reserved_after: a.map(|f| f.reserved),
            sold: a.map(|f| f.sold),
            reason: e.reason.clone(),
            order_id: e.order_id.clone(),
            reservation_id: e.reservation_id.clone(),
            at: rfc3339(e.at),
            incoming_before: b.map(|f| f.incoming),
            incoming_after: a.map(|f| f.incoming),
            locations: e
                .locations
                .iter()
                .map(|l| LocationChangeView {
                    location: l.location.to_string(),
                    on_hand_before: l.on_hand.0,
                    on_hand_after: l.on_hand.1,
                    reserved_before: l.reserved.0,
                    reserved_after: l.reserved.1,
                    sold_before: l.sold.0,
                    sold_after: l.sold.1,
                    incoming_before: l.incoming.0,
                    incoming_after: l.incoming.1,
                })
                .collect(),
        }
    }
}

impl From<&HistoryPage> for HistoryView {
    fn from(p: &HistoryPage) -> HistoryView {
        HistoryView {
            sku: p.sku.to_string(),
            entries: p.entries.iter().map(HistoryEntryView::from).collect(),
            next_cursor: p.next_cursor,
            pruned_lsns: p.pruned.map(|(first, last)| PrunedView { first, last }),
        }
    }
}

const PARAMS: [&str; 5] = ["limit", "after", "cursor", "from", "to"];

fn whole(q: &HashMap<String, String>, name: &str) -> Result<Option<u64>, ApiError> {
    q.get(name)
        .map(|v| v.parse::<u64>().map_err(|_| ApiError::validation(name, format!("must be a whole number, got {v:?}"))))
        .transpose()
}

fn time(q: &HashMap<String, String>, name: &str) -> Result<Option<u64>, ApiError> {
    q.get(name).map(|v| parse_rfc3339(v).map_err(|e| ApiError::validation(name, e))).transpose()
}

/// The query string as an engine query; every error names its parameter.
pub fn parse_query(q: &HashMap<String, String>) -> Result<HistoryQuery, ApiError> {
    if let Some(unknown) = q.keys().filter(|k| !PARAMS.contains(&k.as_str())).min() {
        return Err(ApiError::validation(unknown.as_str(), format!("unknown parameter; use {}", PARAMS.join(", "))));
    }
    let limit = whole(q, "limit")?.unwrap_or(stockd_engine::durable::history::DEFAULT_HISTORY_LIMIT as u64);
    if limit == 0 || limit > MAX_PAGE as u64 {
        return Err(ApiError::validation("limit", format!("must be 1 to {MAX_PAGE}")));
    }
    // `cursor` is accepted too, like the item listing's.
    let after = match (whole(q, "after")?, whole(q, "cursor")?) {
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
    params(("sku" = String, Path, description = "SKU, URL-encoded"),
        ("limit" = Option<u64>, Query, description = "rows per page, 1 to 1000, default 100"),
        ("after" = Option<u64>, Query, description = "only rows with an LSN above this: nextCursor of the previous page (`cursor` is accepted too)"),
        ("from" = Option<String>, Query, description = "only rows at or after this RFC 3339 time"),
        ("to" = Option<String>, Query, description = "only rows at or before this RFC 3339 time")),
    responses((status = 200, body = HistoryView, description = "the item's stock transactions, oldest first, read from the write-ahead log up to what is durable"),
        (status = 400, description = "VALIDATION_ERROR naming the parameter"), (status = 401, description = "UNAUTHORIZED"),
        (status = 403, description = "FORBIDDEN"), (status = 404, description = "ITEM_NOT_FOUND: no such item and no history"),
        (status = 429, description = "OVERLOADED: too many history reads at once")),
    security(("admin" = [])))]
pub async fn item_history(
    _: Admin,
    State(st): State<AppState>,
    PathParam(sku): PathParam,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> ApiResult {
    let Query(q) = query.map_err(|e| ApiError::validation("query", e.body_text()))?;
    let sku = Sku::parse(&sku, "sku")?;
    let query = parse_query(&q)?;
    let page = st.engine.item_history(sku, query).await?;
    Ok(ok(StatusCode::OK, HistoryView::from(&page)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(pairs: &[(&str, &str)]) -> String {
        let q = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        parse_query(&q).unwrap_err().details["field"].as_str().unwrap().to_owned()
    }

    #[test]
    fn parameters() {
        let q: HashMap<String, String> = [("limit", "5"), ("cursor", "9"), ("from", "2026-01-01T00:00:00Z")]
            .map(|(k, v)| (k.into(), v.into()))
            .into();
        let parsed = parse_query(&q).unwrap();
        assert_eq!((parsed.limit, parsed.after, parsed.from, parsed.to), (5, Some(9), Some(1_767_225_600_000), None));
        assert_eq!(parse_query(&HashMap::new()).unwrap(), HistoryQuery::default());
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
