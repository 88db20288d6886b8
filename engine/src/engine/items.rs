//! Item operations of the `Engine`: each touches exactly one shard.

use super::Engine;
pub use crate::command::{Adjust, SetItem, Transfer};
use crate::command::{Command, LineAvailability, Outcome, Query, QueryResult, ReturnSold, StockFilter};
use crate::error::EngineError;
use crate::item::{Item, StockAlert};
use crate::limits::{
    check_idempotency_key, MAX_ITEMS_SCANNED_PER_PAGE, MAX_LINES, MAX_PAGE, MAX_QUANTITY, MAX_REASON_LEN,
};
use crate::location::{validate_placement, LocationId, Placement};
use crate::routing::shard_of_sku;
use crate::sku::Sku;

/// An item after a change, and the stock alerts the change raised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemChange {
    pub item: Item,
    pub created: bool,
    pub alerts: Vec<StockAlert>,
}

/// The item a write answered; its alerts are counted in the engine's outcome stats.
fn item_change(engine: &Engine, applied: crate::command::Applied) -> Result<ItemChange, EngineError> {
    engine.stats().alerts(&applied.alerts);
    match applied.outcome {
        Outcome::Item { item, created } => Ok(ItemChange { item, created, alerts: applied.alerts }),
        other => Err(internal(other)),
    }
}

pub(crate) fn internal(outcome: Outcome) -> EngineError {
    EngineError::Unavailable { reason: format!("internal error: unexpected shard outcome {outcome:?}") }
}

/// Checks a list of (sku, quantity) lines: 1..=MAX_LINES, quantities in range, no
/// repeated SKU. Errors name the field as `items[i]...`.
pub(crate) fn validate_lines(lines: &[(Sku, u64)], min_quantity: u64) -> Result<(), EngineError> {
    if lines.is_empty() || lines.len() > MAX_LINES {
        return Err(EngineError::validation("items", format!("must hold 1 to {MAX_LINES} items, got {}", lines.len())));
    }
    for (i, (sku, q)) in lines.iter().enumerate() {
        if !(min_quantity..=MAX_QUANTITY).contains(q) {
            return Err(EngineError::validation(
                &format!("items[{i}].quantity"),
                format!("must be {min_quantity} to {MAX_QUANTITY}, got {q}"),
            ));
        }
        // At most MAX_LINES lines: a scan beats allocating a set.
        if lines[..i].iter().any(|(s, _)| s == sku) {
            return Err(EngineError::validation(&format!("items[{i}].sku"), format!("{sku} appears more than once")));
        }
    }
    Ok(())
}

impl Engine {
    /// Creates or sets an item. An item created without a threshold gets
    /// `EngineConfig::default_low_stock_threshold`: with one configured, the write is
    /// first tried as a create with that threshold (`expected_version` 0: only if
    /// the item does not exist), and as asked when the item exists. The threshold is
    /// in the logged command either way, so replay never reads the configuration.
    /// `maxPerOrder` is 0 (no limit) to [`MAX_QUANTITY`] (a line can ask no more).
    /// Checked here, not in `ShardState::apply`, so a log written before the bound
    /// still replays.
    pub async fn set_item(&self, req: SetItem) -> Result<ItemChange, EngineError> {
        if req.max_per_order.is_some_and(|m| m > MAX_QUANTITY) {
            return Err(EngineError::validation(
                "maxPerOrder",
                format!("must be 0 (no limit) to {MAX_QUANTITY}, got {}", req.max_per_order.unwrap_or(0)),
            ));
        }
        let default_threshold = self.config().default_low_stock_threshold;
        if default_threshold > 0 && req.low_stock_threshold.is_none() && matches!(req.expected_version, None | Some(0))
        {
            let create =
                SetItem { low_stock_threshold: Some(default_threshold), expected_version: Some(0), ..req.clone() };
            match self.set_item_as_asked(create).await {
                Err(EngineError::VersionConflict { .. }) if req.expected_version.is_none() => {}
                other => return other,
            }
        }
        self.set_item_as_asked(req).await
    }

    async fn set_item_as_asked(&self, req: SetItem) -> Result<ItemChange, EngineError> {
        let shard = shard_of_sku(&req.sku, self.shard_count());
        item_change(self, self.command(shard, Command::SetItem(req)).await?)
    }

    /// Moves `quantity` available units between two locations of a SKU (see
    /// [`Transfer`]). Logged like any other change.
    pub async fn transfer(&self, req: Transfer) -> Result<ItemChange, EngineError> {
        if req.note.as_ref().is_some_and(|n| n.len() > MAX_REASON_LEN) {
            return Err(EngineError::validation("note", format!("at most {MAX_REASON_LEN} bytes")));
        }
        let shard = shard_of_sku(&req.sku, self.shard_count());
        item_change(self, self.command(shard, Command::Transfer(req)).await?)
    }

    /// Puts back units an order sold (a return, or a cancellation after commit; see
    /// [`ReturnSold`]): at most what the order sold of the SKU at that location minus
    /// what came back already; a repeat of the same `return_id` changes nothing.
    /// Answers the item and how many units came back (0: nothing left, or a repeat).
    pub async fn return_sold(&self, req: ReturnSold) -> Result<(ItemChange, u64), EngineError> {
        if req.note.as_ref().is_some_and(|n| n.len() > MAX_REASON_LEN) {
            return Err(EngineError::validation("note", format!("at most {MAX_REASON_LEN} bytes")));
        }
        let shard = shard_of_sku(&req.sku, self.shard_count());
        let applied = self.command(shard, Command::ReturnSold(req)).await?;
        self.stats().alerts(&applied.alerts);
        match applied.outcome {
            Outcome::Returned { item, returned } => {
                Ok((ItemChange { item, created: false, alerts: applied.alerts }, returned))
            }
            other => Err(internal(other)),
        }
    }

    /// Receives `quantity` of the units in transit to `location`: incoming → onHand.
    /// With an `idempotency_key`, a retry answers the first result and receives
    /// nothing (see [`Command::ReceiveIncoming`]).
    pub async fn receive(
        &self,
        sku: Sku,
        location: LocationId,
        quantity: u64,
        idempotency_key: Option<String>,
    ) -> Result<ItemChange, EngineError> {
        let shard = shard_of_sku(&sku, self.shard_count());
        let command = Command::ReceiveIncoming { sku, location, quantity, idempotency_key };
        item_change(self, self.command(shard, command).await?)
    }

    pub async fn adjust(&self, req: Adjust) -> Result<ItemChange, EngineError> {
        if req.note.as_ref().is_some_and(|n| n.len() > MAX_REASON_LEN) {
            return Err(EngineError::validation("note", format!("at most {MAX_REASON_LEN} bytes")));
        }
        if let Some(key) = &req.idempotency_key {
            check_idempotency_key(key, "idempotencyKey")?;
        }
        let shard = shard_of_sku(&req.sku, self.shard_count());
        item_change(self, self.command(shard, Command::AdjustItem(req)).await?)
    }

    /// Operator: block (`true`) or unblock new reservations of `sku`. Reservations
    /// already made can still commit or release.
    pub async fn set_sales_blocked(&self, sku: Sku, blocked: bool) -> Result<ItemChange, EngineError> {
        let shard = shard_of_sku(&sku, self.shard_count());
        item_change(self, self.command(shard, Command::SetSalesBlocked { sku, blocked }).await?)
    }

    pub async fn delete_item(&self, sku: Sku, expected_version: Option<u64>) -> Result<(), EngineError> {
        let shard = shard_of_sku(&sku, self.shard_count());
        self.command(shard, Command::DeleteItem { sku, expected_version }).await.map(|_| ())
    }

    pub async fn get_item(&self, sku: Sku) -> Result<Item, EngineError> {
        let shard = shard_of_sku(&sku, self.shard_count());
        match self.query(shard, Query::GetItem { sku }).await? {
            QueryResult::Item(item) => Ok(item),
            _ => Err(EngineError::Unavailable { reason: "internal error: bad query answer".into() }),
        }
    }

    /// Up to `limit` items with sku > `after`, in sku order, across all shards.
    pub async fn list_items(&self, after: Option<Sku>, limit: usize) -> Result<Vec<Item>, EngineError> {
        Ok(self.list_items_where(after, limit, StockFilter::All).await?.items)
    }

    /// One page of the items with sku > `after` that pass `filter`, in sku order,
    /// across all shards. A filtered page may hold fewer than `limit` items (each
    /// shard looks at no more than `MAX_ITEMS_SCANNED_PER_PAGE` items per page) and
    /// still have a `next_after`: listing is over only when `next_after` is `None`.
    pub async fn list_items_where(
        &self,
        after: Option<Sku>,
        limit: usize,
        filter: StockFilter,
    ) -> Result<ItemPage, EngineError> {
        if limit == 0 || limit > MAX_PAGE {
            return Err(EngineError::validation("limit", format!("must be 1 to {MAX_PAGE}")));
        }
        let mut scans = Vec::with_capacity(self.shard_count());
        for shard in 0..self.shard_count() {
            let query =
                Query::ListItems { after: after.clone(), limit, filter, scan_budget: MAX_ITEMS_SCANNED_PER_PAGE };
            match self.query(shard, query).await? {
                QueryResult::Items { items, stopped_at } => scans.push((items, stopped_at)),
                _ => return Err(EngineError::Unavailable { reason: "internal error: bad query answer".into() }),
            }
        }
        Ok(merge_item_scans(scans, limit))
    }

    /// Availability of each line now (no stock is held). Unknown SKUs are reported
    /// with `exists: false`; every line that could not be reserved now has a `reason`.
    pub async fn check_availability(&self, lines: Vec<(Sku, u64)>) -> Result<Vec<LineAvailability>, EngineError> {
        self.check_availability_with(lines, Placement::default()).await
    }

    /// `check_availability` under a placement (named locations, strategy, region):
    /// each line's `reason` is what a reserve of that line alone with this placement
    /// would answer.
    pub async fn check_availability_with(
        &self,
        lines: Vec<(Sku, u64)>,
        placement: Placement,
    ) -> Result<Vec<LineAvailability>, EngineError> {
        validate_lines(&lines, 1)?;
        validate_placement(&placement, &lines)?;
        let n = self.shard_count();
        let mut out: Vec<Option<LineAvailability>> = vec![None; lines.len()];
        let mut by_shard: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, (sku, _)) in lines.iter().enumerate() {
            by_shard[shard_of_sku(sku, n)].push(i);
        }
        for (shard, idx) in by_shard.into_iter().enumerate().filter(|(_, v)| !v.is_empty()) {
            let part: Vec<(Sku, u64)> = idx.iter().map(|i| lines[*i].clone()).collect();
            let placement = placement.for_lines(&part);
            match self.query(shard, Query::Availability { lines: part, placement }).await? {
                QueryResult::Availability(found) => {
                    for (i, a) in idx.into_iter().zip(found) {
                        out[i] = Some(a);
                    }
                }
                _ => return Err(EngineError::Unavailable { reason: "internal error: bad query answer".into() }),
            }
        }
        Ok(out.into_iter().map(|a| a.expect("every line answered")).collect())
    }
}

/// A page of a listing: the items, and where the next page starts (`None`: the
/// listing is complete).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemPage {
    pub items: Vec<Item>,
    pub next_after: Option<Sku>,
}

/// Merges the shards' answers to one listing query into a page. A shard that ran out
/// of scan budget stopped at some SKU; items past the lowest such SKU are left for the
/// next page, since that shard has not looked there yet.
fn merge_item_scans(scans: Vec<(Vec<Item>, Option<Sku>)>, limit: usize) -> ItemPage {
    let (items, next_after) = merge_scans(scans, limit, |i: &Item| i.sku.clone());
    ItemPage { items, next_after }
}

/// The rule of every bounded listing across shards: each shard answered its matches
/// after the cursor, in key order, and the key it stopped at when its scan budget ran
/// out. Matches past the lowest such key are left for the next page (that shard has
/// not looked there yet). Answers the page and where the next one starts (`None`: the
/// listing is complete).
pub(crate) fn merge_scans<T, K: Ord + Clone>(
    scans: Vec<(Vec<T>, Option<K>)>,
    limit: usize,
    key: impl Fn(&T) -> K,
) -> (Vec<T>, Option<K>) {
    let cutoff = scans.iter().filter_map(|(_, stopped)| stopped.clone()).min();
    let mut found: Vec<T> = scans
        .into_iter()
        .flat_map(|(found, _)| found)
        .filter(|t| cutoff.as_ref().is_none_or(|c| &key(t) <= c))
        .collect();
    found.sort_by_key(|t| key(t));
    let next_after = if found.len() >= limit {
        found.truncate(limit);
        found.last().map(&key)
    } else {
        cutoff
    };
    (found, next_after)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(sku: &str) -> Item {
        let set = Command::SetItem(SetItem::on_hand(Sku::parse(sku, "sku").unwrap(), 1));
        match crate::ShardState::new(0).apply(&set, 1_000).unwrap().outcome {
            Outcome::Item { item, .. } => item,
            other => panic!("{other:?}"),
        }
    }

    fn skus(page: &ItemPage) -> Vec<&str> {
        page.items.iter().map(|i| i.sku.as_str()).collect()
    }

    #[test]
    fn a_page_never_passes_a_shard_that_stopped_early() {
        // Shard 0 looked only up to "c" (budget); shard 1 scanned to its end.
        let scans = vec![(vec![item("a")], Some(Sku::parse("c", "sku").unwrap())), (vec![item("b"), item("d")], None)];
        let page = merge_item_scans(scans, 10);
        assert_eq!(skus(&page), ["a", "b"], "d waits until shard 0 has looked past c");
        assert_eq!(page.next_after.as_ref().map(Sku::as_str), Some("c"));
    }

    #[test]
    fn a_full_page_ends_at_its_last_item_and_a_finished_listing_has_no_cursor() {
        let scans = vec![(vec![item("a"), item("c")], None), (vec![item("b"), item("d")], None)];
        let page = merge_item_scans(scans.clone(), 3);
        assert_eq!(skus(&page), ["a", "b", "c"]);
        assert_eq!(page.next_after.as_ref().map(Sku::as_str), Some("c"));
        let page = merge_item_scans(scans, 10);
        assert_eq!(skus(&page), ["a", "b", "c", "d"]);
        assert_eq!(page.next_after, None);
    }
}
