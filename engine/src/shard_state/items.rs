//! Item operations of `ShardState`: set, adjust, delete.

use super::{AdjustRecord, ShardState};
use crate::command::Outcome;
use crate::error::EngineError;
use crate::item::{alerts_for, Item, StockAlert};
use crate::limits::{MAX_ADJUST_DELTA, MAX_ADJUST_KEYS_PER_SHARD, MAX_ITEMS_PER_SHARD, MAX_ON_HAND};
use crate::sku::Sku;
use crate::Millis;

fn check_version(item: Option<&Item>, sku: &Sku, expected: Option<u64>) -> Result<(), EngineError> {
    let actual = item.map_or(0, |i| i.version);
    match expected {
        Some(e) if e != actual => Err(EngineError::VersionConflict { sku: sku.to_string(), expected: e, actual }),
        _ => Ok(()),
    }
}

impl ShardState {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn set_item(
        &mut self,
        sku: &Sku,
        on_hand: u64,
        low_stock_threshold: Option<u64>,
        max_per_order: Option<u64>,
        expected_version: Option<u64>,
        now: Millis,
        alerts: &mut Vec<StockAlert>,
    ) -> Result<Outcome, EngineError> {
        if on_hand > MAX_ON_HAND {
            return Err(EngineError::validation("onHand", format!("must be at most {MAX_ON_HAND}")));
        }
        if low_stock_threshold.is_some_and(|t| t > MAX_ON_HAND) {
            return Err(EngineError::validation("lowStockThreshold", format!("must be at most {MAX_ON_HAND}")));
        }
        let existing = self.items.get(sku);
        check_version(existing, sku, expected_version)?;
        let max_per_order = |old: Option<u64>| match max_per_order {
            Some(0) => None,
            Some(m) => Some(m),
            None => old,
        };
        match self.items.get_mut(sku) {
            Some(item) => {
                if on_hand < item.reserved {
                    return Err(EngineError::ItemHasReservations { sku: sku.to_string(), reserved: item.reserved });
                }
                let before = item.available();
                item.on_hand = on_hand;
                if let Some(t) = low_stock_threshold {
                    item.low_stock_threshold = t;
                }
                item.max_per_order = max_per_order(item.max_per_order);
                item.touch(now);
                alerts_for(item, before, alerts);
                Ok(Outcome::Item { item: item.clone(), created: false })
            }
            None => {
                if self.items.len() >= MAX_ITEMS_PER_SHARD {
                    return Err(EngineError::LimitExceeded {
                        what: "items per shard".into(),
                        limit: MAX_ITEMS_PER_SHARD as u64,
                    });
                }
                let item = Item {
                    sku: sku.clone(),
                    on_hand,
                    reserved: 0,
                    sold: 0,
                    low_stock_threshold: low_stock_threshold.unwrap_or(0),
                    max_per_order: max_per_order(None),
                    sales_blocked: false,
                    version: 1,
                    created_at: now,
                    updated_at: now,
                };
                debug_assert!(item.check().is_ok());
                self.items.insert(sku.clone(), item.clone());
                Ok(Outcome::Item { item, created: true })
            }
        }
    }

    pub(super) fn adjust_item(
        &mut self,
        sku: &Sku,
        delta: i64,
        idempotency_key: Option<&str>,
        expected_version: Option<u64>,
        now: Millis,
        alerts: &mut Vec<StockAlert>,
    ) -> Result<Outcome, EngineError> {
        if delta == 0 || delta.unsigned_abs() > MAX_ADJUST_DELTA as u64 {
            return Err(EngineError::validation("delta", format!("must be non-zero and within ±{MAX_ADJUST_DELTA}")));
        }
        if let Some(key) = idempotency_key {
            if let Some(rec) = self.adjust_keys.get(&(sku.clone(), key.to_owned())) {
                if rec.delta != delta {
                    return Err(EngineError::IdempotencyKeyReused { key: key.to_owned() });
                }
                // A repeat: answer the first result, change nothing.
                return Ok(Outcome::Item { item: rec.item_after.clone(), created: false });
            }
            if self.adjust_keys.len() >= MAX_ADJUST_KEYS_PER_SHARD {
                return Err(EngineError::LimitExceeded {
                    what: "remembered adjustment keys per shard".into(),
                    limit: MAX_ADJUST_KEYS_PER_SHARD as u64,
                });
            }
        }
        let item = self.items.get_mut(sku).ok_or_else(|| EngineError::ItemNotFound { sku: sku.to_string() })?;
        check_version(Some(item), sku, expected_version)?;
        let before = item.available();
        let on_hand = item.on_hand as i128 + delta as i128;
        if on_hand < item.reserved as i128 {
            return Err(EngineError::NegativeInventory { sku: sku.to_string(), delta, available: before });
        }
        if on_hand > MAX_ON_HAND as i128 {
            return Err(EngineError::validation("delta", format!("onHand would exceed {MAX_ON_HAND}")));
        }
        item.on_hand = on_hand as u64;
        item.touch(now);
        alerts_for(item, before, alerts);
        let item = item.clone();
        if let Some(key) = idempotency_key {
            self.adjust_keys
                .insert((sku.clone(), key.to_owned()), AdjustRecord { delta, at: now, item_after: item.clone() });
            self.adjust_key_times.insert((now, sku.clone(), key.to_owned()));
        }
        Ok(Outcome::Item { item, created: false })
    }

    pub(super) fn delete_item(&mut self, sku: &Sku, expected_version: Option<u64>) -> Result<Outcome, EngineError> {
        let item = self.items.get(sku).ok_or_else(|| EngineError::ItemNotFound { sku: sku.to_string() })?;
        check_version(Some(item), sku, expected_version)?;
        if item.reserved > 0 {
            return Err(EngineError::ItemHasReservations { sku: sku.to_string(), reserved: item.reserved });
        }
        self.items.remove(sku);
        Ok(Outcome::Deleted { sku: sku.clone() })
    }

    pub(super) fn set_sales_blocked(&mut self, sku: &Sku, blocked: bool, now: Millis) -> Result<Outcome, EngineError> {
        let item = self.items.get_mut(sku).ok_or_else(|| EngineError::ItemNotFound { sku: sku.to_string() })?;
        item.sales_blocked = blocked;
        item.touch(now);
        Ok(Outcome::Item { item: item.clone(), created: false })
    }

    /// Forgets adjustment keys recorded at or before `cutoff`; returns how many.
    pub(super) fn purge_adjust_keys(&mut self, cutoff: Millis) -> usize {
        let mut purged = 0;
        while let Some((at, _, _)) = self.adjust_key_times.first() {
            if *at > cutoff {
                break;
            }
            let (_, sku, key) = self.adjust_key_times.pop_first().expect("checked non-empty");
            self.adjust_keys.remove(&(sku, key));
            purged += 1;
        }
        purged
    }
}
