//! Idempotency keys of stock movements (`Command::Transfer`, `Command::ReceiveIncoming`):
//! a retried transfer or receipt with the key of one already applied answers the
//! first result and moves nothing; the same key with a different request is
//! IDEMPOTENCY_KEY_REUSED. Keys are scoped to their SKU and share one space with the
//! adjustment keys (`adjust_keys`): a key names one stock change of the SKU, whatever
//! its kind. Forgotten after the retention (`ExpireDue`), like adjustment keys.
//!
//! Not in serde's view of the state: the snapshot codec writes the entries next to
//! it (state version 6); the time index is derived.

use super::ShardState;
use crate::command::Outcome;
use crate::error::EngineError;
use crate::item::Item;
use crate::limits::{check_idempotency_key, MAX_ADJUST_KEYS_PER_SHARD};
use crate::location::LocationId;
use crate::sku::Sku;
use crate::Millis;
use serde::{Deserialize, Serialize};

/// A key's scope and text: (SKU, key).
pub type MovementKey = (Sku, String);

/// The request a key was first used for: a retry must ask for the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Movement {
    Transfer { from: LocationId, to: LocationId, quantity: u64, in_transit: bool },
    Receive { location: LocationId, quantity: u64 },
}

/// A remembered movement: what it asked, when, and the item it left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovementRecord {
    pub movement: Movement,
    pub at: Millis,
    pub item_after: Item,
}

impl ShardState {
    /// Before a keyed movement: `Some(outcome)` when the key was used before for the
    /// same request (the first result: nothing to do), `None` when the movement is to
    /// be applied; IDEMPOTENCY_KEY_REUSED when the key named another change of the SKU.
    pub(super) fn movement_repeat(
        &self,
        sku: &Sku,
        key: Option<&str>,
        movement: &Movement,
    ) -> Result<Option<Outcome>, EngineError> {
        let Some(key) = key else { return Ok(None) };
        check_idempotency_key(key, "idempotencyKey")?;
        let scoped = (sku.clone(), key.to_owned());
        if self.adjust_keys.contains_key(&scoped) {
            return Err(EngineError::IdempotencyKeyReused { key: key.to_owned() });
        }
        match self.movement_keys.get(&scoped) {
            Some(first) if first.movement == *movement => {
                Ok(Some(Outcome::Item { item: first.item_after.clone(), created: false }))
            }
            Some(_) => Err(EngineError::IdempotencyKeyReused { key: key.to_owned() }),
            None if self.remembered_keys() >= MAX_ADJUST_KEYS_PER_SHARD => Err(EngineError::LimitExceeded {
                what: "remembered idempotency keys per shard".into(),
                limit: MAX_ADJUST_KEYS_PER_SHARD as u64,
            }),
            None => Ok(None),
        }
    }

    /// After a keyed movement was applied: remembers it.
    pub(super) fn remember_movement(
        &mut self,
        sku: &Sku,
        key: Option<&str>,
        movement: Movement,
        item_after: &Item,
        now: Millis,
    ) {
        let Some(key) = key else { return };
        let scoped = (sku.clone(), key.to_owned());
        debug_assert!(!self.movement_keys.contains_key(&scoped), "a repeat is answered before it is applied");
        self.movement_key_times.insert((now, scoped.clone()));
        self.movement_keys.insert(scoped, MovementRecord { movement, at: now, item_after: item_after.clone() });
        debug_assert_eq!(self.movement_keys.len(), self.movement_key_times.len());
    }

    /// Whether `key` of `sku` was used by a transfer or a receipt (adjustments
    /// check it: one key space per SKU).
    pub(super) fn is_movement_key(&self, sku: &Sku, key: &str) -> bool {
        self.movement_keys.contains_key(&(sku.clone(), key.to_owned()))
    }

    /// Adjustment and movement keys remembered, together bounded per shard.
    pub(super) fn remembered_keys(&self) -> usize {
        self.adjust_keys.len() + self.movement_keys.len()
    }

    /// Forgets the keys last used at or before `cutoff`; returns how many.
    pub(super) fn purge_movement_keys(&mut self, cutoff: Millis) -> usize {
        super::forget_due(&mut self.movement_key_times, &mut self.movement_keys, cutoff)
    }

    /// The keys' time index, rebuilt from the entries (after a snapshot decode).
    pub(super) fn rebuild_movement_key_times(&mut self) {
        self.movement_key_times = self.movement_keys.iter().map(|(k, r)| (r.at, k.clone())).collect();
    }

    /// The remembered movement keys, for the snapshot codec.
    pub fn movement_keys(&self) -> &super::FastMap<MovementKey, MovementRecord> {
        &self.movement_keys
    }
}
