//! Item history served from the write-ahead log (seed 001's stock transactions):
//! this module owns the history query and page types, the walk over a SKU's shard
//! WAL that produces them, and `Engine::item_history`. Row derivation lives in
//! `history/rows.rs`; telling RELEASE from EXPIRE for a hold whose reservation header
//! lives on another shard, in `history/headers.rs`.
//!
//! There is no separate store. The SKU's shard is replayed with a [`WalFollower`] from
//! its oldest retained start point (for a page after a cursor: from the newest
//! snapshot at or below the cursor) up to its durable LSN, so only records on disk are
//! shown. Each record is compared with the item before and after it; a record that
//! changed the item's figures (onHand, reserved, sold) or its existence, or an item
//! command on the SKU that changed state, is one row.
//!
//! Bounds: a page is at most [`MAX_PAGE`] rows and the walk stops as soon as the page
//! is full (or the records pass `to`); at most [`MAX_HISTORY_READS`] reads run at once
//! (more answer OVERLOADED), each on a blocking thread of the engine's coordinator.
//! History before the oldest retained snapshot is gone once the WAL behind it is
//! pruned; a page says which LSNs it could not show ([`HistoryPage::pruned`]).

mod headers;
mod rows;

use super::data_dir::DataDir;
use super::follower::WalFollower;
use crate::command::{Query, QueryResult};
use crate::engine::{await_reply, Engine};
use crate::error::EngineError;
use crate::item::Item;
use crate::limits::MAX_PAGE;
use crate::reservation::{shard_of_reservation_id, Reservation, ReservationKey};
use crate::routing::shard_of_sku;
use crate::sku::Sku;
use crate::Millis;
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::Ordering;

/// Rows in a page when the caller does not say.
pub const DEFAULT_HISTORY_LIMIT: usize = 100;
/// History reads (WAL replays) one engine runs at once.
pub const MAX_HISTORY_READS: usize = 2;

/// Which rows of a SKU's history to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Most rows in the page: 1 to [`MAX_PAGE`] through the engine.
    pub limit: usize,
    /// Only rows with an LSN above this: the previous page's `next_cursor`.
    pub after: Option<u64>,
    /// Only rows at or after this time.
    pub from: Option<Millis>,
    /// Only rows at or before this time.
    pub to: Option<Millis>,
}

impl Default for HistoryQuery {
    fn default() -> Self {
        HistoryQuery { limit: DEFAULT_HISTORY_LIMIT, after: None, from: None, to: None }
    }
}

impl HistoryQuery {
    /// The limits `Engine::item_history` enforces, each error naming its field.
    pub fn validate(&self) -> Result<(), EngineError> {
        if self.limit == 0 || self.limit > MAX_PAGE {
            return Err(EngineError::validation("limit", format!("must be 1 to {MAX_PAGE}")));
        }
        if let (Some(from), Some(to)) = (self.from, self.to) {
            if from > to {
                return Err(EngineError::validation("to", "must not be before from"));
            }
        }
        Ok(())
    }
}

/// An item's stock figures at one point of its history.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    pub on_hand: u64,
    pub reserved: u64,
    pub sold: u64,
    pub incoming: u64,
}

impl Figures {
    pub fn of(item: &Item) -> Figures {
        Figures { on_hand: item.on_hand, reserved: item.reserved, sold: item.sold, incoming: item.incoming }
    }

    pub fn available(&self) -> u64 {
        self.on_hand.saturating_sub(self.reserved)
    }
}

/// One row of a SKU's history: one WAL record that changed the item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub lsn: u64,
    /// The shard whose WAL holds the record (the SKU's shard).
    pub shard: usize,
    /// When the shard applied the record.
    pub at: Millis,
    /// RESERVE, CONFIRM, RELEASE, EXPIRE, SET, ADJUST, DELETE, BLOCK_SALES,
    /// UNBLOCK_SALES, or the command's kind for any other change of the figures.
    pub kind: &'static str,
    /// Units the row moved: reserved (RESERVE), sold (CONFIRM), given back (RELEASE,
    /// EXPIRE); the signed change of onHand for SET, ADJUST and DELETE.
    pub quantity: i64,
    /// The figures before and after; None where the item did not exist.
    pub before: Option<Figures>,
    pub after: Option<Figures>,
    /// Adjustment reason (and note), release reason, "EXPIRED", "ABORTED", or how a
    /// partial commit split.
    pub reason: Option<String>,
    pub order_id: Option<String>,
    pub reservation_id: Option<String>,
    /// The locations whose figures this record changed, in location order.
    pub locations: Vec<LocationChange>,
}

/// One location's figures before and after a history row (0 where it did not exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationChange {
    pub location: crate::location::LocationId,
    pub on_hand: (u64, u64),
    pub reserved: (u64, u64),
    pub sold: (u64, u64),
    pub incoming: (u64, u64),
}

/// A page of a SKU's history, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    pub sku: Sku,
    pub entries: Vec<HistoryEntry>,
    /// Pass as `after` for the next page; None when no rows remain.
    pub next_cursor: Option<u64>,
    /// `(first, last)` LSNs after the cursor that the WAL no longer holds (pruned
    /// after a snapshot): rows among them cannot be shown.
    pub pruned: Option<(u64, u64)>,
    /// Whether the replay saw the SKU at all (it existed, or a record touched it).
    pub seen: bool,
}

/// Looks up reservation headers by id, in bulk; absent ids are unknown.
pub type HeaderLookup<'a> = dyn FnMut(&[String]) -> HashMap<String, Reservation> + 'a;

/// A page of `sku`'s history read from the data directory `dir` of a `shards`-shard
/// engine, showing records up to `durable_lsns[shard]` of each shard. `lookup`
/// answers reservation headers from a live engine (`|_| HashMap::new()` offline);
/// headers it does not know are found by replaying their home shard.
pub fn read_history(
    dir: &Path,
    shards: usize,
    durable_lsns: &[u64],
    sku: &Sku,
    query: &HistoryQuery,
    lookup: &mut HeaderLookup<'_>,
) -> Result<HistoryPage, EngineError> {
    if query.limit == 0 {
        return Err(EngineError::validation("limit", "must be at least 1"));
    }
    let shard = shard_of_sku(sku, shards.max(1));
    let replay_failed = |e: String| EngineError::Unavailable { reason: format!("history of {sku}: {e}") };
    let mut follower =
        WalFollower::open(&DataDir::new(dir).shard(shard), shard, query.after.unwrap_or(0)).map_err(replay_failed)?;
    let mut seen = follower.state().item(sku).is_some();
    let mut rows: Vec<rows::Row> = Vec::new();
    let mut next_cursor = None;
    let up_to = durable_lsns.get(shard).copied().unwrap_or(0);
    follower
        .poll_with(
            up_to,
            usize::MAX,
            |now, command, state| rows::Before::take(sku, now, command, state),
            |before, record, state| {
                // A shard's clock never runs backwards: nothing later can be in range.
                if query.to.is_some_and(|to| record.now > to) {
                    return ControlFlow::Break(());
                }
                let Some(row) = rows::derive(sku, shard, before, &record, state) else {
                    return ControlFlow::Continue(());
                };
                seen = true;
                if query.from.is_some_and(|from| record.now < from) {
                    return ControlFlow::Continue(());
                }
                if rows.len() == query.limit {
                    next_cursor = rows.last().map(|r| r.entry.lsn);
                    return ControlFlow::Break(());
                }
                rows.push(row);
                ControlFlow::Continue(())
            },
        )
        .map_err(replay_failed)?;
    headers::resolve(dir, shards, shard, durable_lsns, &mut rows, lookup).map_err(replay_failed)?;
    Ok(HistoryPage {
        sku: sku.clone(),
        entries: rows.into_iter().map(|r| r.entry).collect(),
        next_cursor,
        pruned: follower.gap(),
        seen,
    })
}

/// Holds one of the engine's history-read slots until dropped.
struct ReadSlot(Engine);

impl ReadSlot {
    fn take(engine: &Engine, shard: usize) -> Result<ReadSlot, EngineError> {
        let reads = engine.history_reads();
        if reads.fetch_add(1, Ordering::AcqRel) >= MAX_HISTORY_READS {
            reads.fetch_sub(1, Ordering::AcqRel);
            return Err(EngineError::Overloaded { shard });
        }
        Ok(ReadSlot(engine.clone()))
    }
}

impl Drop for ReadSlot {
    fn drop(&mut self) {
        self.0.history_reads().fetch_sub(1, Ordering::AcqRel);
    }
}

/// The live headers of `ids`, asked of their home shards all at once.
fn live_headers(engine: &Engine, ids: &[String]) -> HashMap<String, Reservation> {
    let mut waiting = Vec::new();
    for id in ids {
        let Some(home) = shard_of_reservation_id(id).filter(|h| *h < engine.shard_count()) else { continue };
        // A full queue or a stopping engine: the replay of the home shard answers.
        if let Ok(rx) = engine.send_query(home, Query::GetReservation { key: ReservationKey::Id(id.clone()) }) {
            waiting.push(rx);
        }
    }
    let mut out = HashMap::new();
    for rx in waiting {
        if let Ok(QueryResult::Reservation(r)) = crate::block_on(await_reply(rx)) {
            out.insert(r.reservation_id.to_string(), r);
        }
    }
    out
}

impl Engine {
    /// A page of `sku`'s stock history, read from its shard's write-ahead log (see
    /// the module docs): oldest first, up to the durable LSN. ITEM_NOT_FOUND when the
    /// SKU has no history and does not exist; a deleted SKU still answers its rows.
    /// SERVICE_UNAVAILABLE for an in-memory engine (it has no log to read).
    pub async fn item_history(&self, sku: Sku, query: HistoryQuery) -> Result<HistoryPage, EngineError> {
        query.validate()?;
        let Some(dir) = self.data_dir().map(Path::to_path_buf) else {
            return Err(EngineError::Unavailable {
                reason: "item history is read from the write-ahead log, and this engine has none (in memory)".into(),
            });
        };
        let durable: Vec<u64> = self.shard_status().iter().map(|s| s.durable_lsn.load(Ordering::Acquire)).collect();
        let shard = shard_of_sku(&sku, self.shard_count());
        let wanted = sku.clone();
        let page = self
            .run_blocking(move |engine| {
                let _slot = ReadSlot::take(&engine, shard)?;
                let mut lookup = |ids: &[String]| live_headers(&engine, ids);
                let n = engine.shard_count();
                match read_history(&dir, n, &durable, &wanted, &query, &mut lookup) {
                    // A snapshot may have pruned a segment under the reader: once more.
                    Err(EngineError::Unavailable { .. }) => {
                        read_history(&dir, n, &durable, &wanted, &query, &mut lookup)
                    }
                    other => other,
                }
            })
            .await??;
        if page.entries.is_empty() && !page.seen {
            // Not in the replayed range (or only after `to`): ITEM_NOT_FOUND unless it
            // exists now.
            self.get_item(sku).await?;
        }
        Ok(page)
    }
}
