//! A page of an item's stock transaction history (seed 001), one row per WAL record
//! that changed the item.

use crate::envelope::rfc3339;
use serde::Serialize;
use stockd_engine::{HistoryEntry, HistoryPage};
use utoipa::ToSchema;

/// One row of an item's history: one WAL record that changed the item.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntryView {
    /// When the shard applied the record (RFC 3339).
    pub at: String,
    #[schema(required = true)]
    pub available_after: Option<u64>,
    #[schema(required = true)]
    pub available_before: Option<u64>,
    /// Units in transit, before and after (TRANSFER in transit, RECEIVE).
    #[schema(required = true)]
    pub incoming_after: Option<u64>,
    #[schema(required = true)]
    pub incoming_before: Option<u64>,
    /// The locations (warehouses) whose figures the record changed.
    pub locations: Vec<LocationChangeView>,
    /// The record's log sequence number on the SKU's shard (rows are in LSN order).
    pub lsn: u64,
    /// Figures before and after; null where the item did not exist (before its first
    /// SET, after DELETE).
    #[schema(required = true)]
    pub on_hand_after: Option<u64>,
    #[schema(required = true)]
    pub on_hand_before: Option<u64>,
    #[schema(required = true)]
    pub order_id: Option<String>,
    /// Units reserved (RESERVE), sold (CONFIRM) or given back (RELEASE, EXPIRE); the
    /// signed change of onHand for SET, ADJUST and DELETE.
    pub quantity: i64,
    /// Adjustment reason (and note), release reason, EXPIRED, ABORTED (a reserve that
    /// failed on another item was rolled back), or how a partial commit split.
    #[schema(required = true)]
    pub reason: Option<String>,
    #[schema(required = true)]
    pub reservation_id: Option<String>,
    #[schema(required = true)]
    pub reserved_after: Option<u64>,
    #[schema(required = true)]
    pub reserved_before: Option<u64>,
    /// Units sold, after this row.
    #[schema(required = true)]
    pub sold: Option<u64>,
    /// RESERVE, CONFIRM, RELEASE, EXPIRE, SET, ADJUST, DELETE, BLOCK_SALES,
    /// UNBLOCK_SALES, or the engine's command kind for any other change.
    #[serde(rename = "type")]
    pub kind: String,
}

/// One location's figures before and after a history row.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocationChangeView {
    pub incoming_after: u64,
    pub incoming_before: u64,
    pub location: String,
    pub on_hand_after: u64,
    pub on_hand_before: u64,
    pub reserved_after: u64,
    pub reserved_before: u64,
    pub sold_after: u64,
    pub sold_before: u64,
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
    pub entries: Vec<HistoryEntryView>,
    /// Pass as `after` for the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<u64>,
    /// Present only when part of the requested range was pruned from the WAL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pruned_lsns: Option<PrunedView>,
    pub sku: String,
}

impl From<&HistoryEntry> for HistoryEntryView {
    fn from(e: &HistoryEntry) -> HistoryEntryView {
        let (b, a) = (e.before.as_ref(), e.after.as_ref());
        HistoryEntryView {
            at: rfc3339(e.at),
            available_after: a.map(|f| f.available()),
            available_before: b.map(|f| f.available()),
            incoming_after: a.map(|f| f.incoming),
            incoming_before: b.map(|f| f.incoming),
            locations: e
                .locations
                .iter()
                .map(|l| LocationChangeView {
                    incoming_after: l.incoming.1,
                    incoming_before: l.incoming.0,
                    location: l.location.to_string(),
                    on_hand_after: l.on_hand.1,
                    on_hand_before: l.on_hand.0,
                    reserved_after: l.reserved.1,
                    reserved_before: l.reserved.0,
                    sold_after: l.sold.1,
                    sold_before: l.sold.0,
                })
                .collect(),
            lsn: e.lsn,
            on_hand_after: a.map(|f| f.on_hand),
            on_hand_before: b.map(|f| f.on_hand),
            order_id: e.order_id.clone(),
            quantity: e.quantity,
            reason: e.reason.clone(),
            reservation_id: e.reservation_id.clone(),
            reserved_after: a.map(|f| f.reserved),
            reserved_before: b.map(|f| f.reserved),
            sold: a.map(|f| f.sold),
            kind: e.kind.to_owned(),
        }
    }
}

impl From<&HistoryPage> for HistoryView {
    fn from(p: &HistoryPage) -> HistoryView {
        HistoryView {
            entries: p.entries.iter().map(HistoryEntryView::from).collect(),
            next_cursor: p.next_cursor,
            pruned_lsns: p.pruned.map(|(first, last)| PrunedView { first, last }),
            sku: p.sku.to_string(),
        }
    }
}
