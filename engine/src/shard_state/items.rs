//! Item operations of `ShardState`: set, adjust, delete, block sales, and the
//! location operations (transfer, receive, the warehouse table).

use super::{AdjustRecord, Movement, ShardState};
use crate::command::{Adjust, Outcome, SetItem, Transfer};
use crate::error::EngineError;
use crate::error::Shortfall;
use crate::item::{alerts_for, Item, StockAlert};
use crate::limits::{MAX_ADJUST_DELTA, MAX_ADJUST_KEYS_PER_SHARD, MAX_ITEMS_PER_SHARD, MAX_ON_HAND, MAX_QUANTITY};
use crate::location::{validate_warehouses, LocationId, Warehouse};
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
    /// The location a command names, or the default one. An item stocked only at named
    /// locations has no default one to fall back on: the caller must name one.
    fn resolve_location(item: Option<&Item>, location: Option<&LocationId>) -> Result<LocationId, EngineError> {
        match (location, item) {
            (Some(l), _) => Ok(l.clone()),
            (None, Some(item)) if !item.stocks(&LocationId::DEFAULT) => Err(EngineError::validation(
                "location",
                format!("{} is stocked at named locations only; name one", item.sku),
            )),
            (None, _) => Ok(LocationId::DEFAULT),
        }
    }

    /// Refuses a location the item does not stock yet when a warehouse table is in
    /// force and does not list it (`default` is always allowed). `field` is the
    /// request field that names it.
    pub(super) fn check_new_location(
        &self,
        item: Option<&Item>,
        location: &LocationId,
        field: &str,
    ) -> Result<(), EngineError> {
        let stocked = item.is_some_and(|i| i.stocks(location));
        if stocked || location.is_default() || self.warehouses.is_empty() {
            return Ok(());
        }
        if self.warehouses.iter().any(|w| &w.id == location) {
            return Ok(());
        }
        Err(EngineError::validation(field, format!("{location} is not a configured warehouse")))
    }

    pub(super) fn set_item(
        &mut self,
        req: &SetItem,
        now: Millis,
        alerts: &mut Vec<StockAlert>,
    ) -> Result<Outcome, EngineError> {
        let SetItem { sku, on_hand, low_stock_threshold, max_per_order, expected_version, location, incoming } = req;
        let (on_hand, low_stock_threshold, max_per_order, incoming) =
            (*on_hand, *low_stock_threshold, *max_per_order, *incoming);
        if on_hand > MAX_ON_HAND {
            return Err(EngineError::validation("onHand", format!("must be at most {MAX_ON_HAND}")));
        }
        if incoming.is_some_and(|i| i > MAX_ON_HAND) {
            return Err(EngineError::validation("incoming", format!("must be at most {MAX_ON_HAND}")));
        }
        if low_stock_threshold.is_some_and(|t| t > MAX_ON_HAND) {
            return Err(EngineError::validation("lowStockThreshold", format!("must be at most {MAX_ON_HAND}")));
        }
        let existing = self.items.get(sku).map(Box::as_ref);
        check_version(existing, sku, *expected_version)?;
        let location = Self::resolve_location(existing, location.as_ref())?;
        self.check_new_location(existing, &location, "location")?;
        let created = existing.is_none();
        if created && self.items.len() >= MAX_ITEMS_PER_SHARD {
            return Err(EngineError::LimitExceeded {
                what: "items per shard".into(),
                limit: MAX_ITEMS_PER_SHARD as u64,
            });
        }
        // Every check that reads the item comes before the first change.
        if let Some(item) = existing {
            let at = item.index_of(&location).map(|i| item.at(i));
            let reserved = at.map_or(0, |l| l.reserved);
            if on_hand < reserved {
                return Err(EngineError::ItemHasReservations { sku: sku.to_string(), reserved });
            }
            // The item's sums over its locations, after the change.
            let on_hand_after = item.on_hand - at.map_or(0, |l| l.on_hand) + on_hand;
            if on_hand_after > MAX_ON_HAND {
                return Err(EngineError::validation(
                    "onHand",
                    format!("the item's onHand over its locations would be {on_hand_after}, over {MAX_ON_HAND}"),
                ));
            }
            if let Some(incoming) = incoming {
                let incoming_after = item.incoming - at.map_or(0, |l| l.incoming) + incoming;
                if incoming_after > MAX_ON_HAND {
                    return Err(EngineError::validation(
                        "incoming",
                        format!("the item's incoming over its locations would be {incoming_after}, over {MAX_ON_HAND}"),
                    ));
                }
            }
            if at.is_none() && item.location_count() >= crate::location::MAX_LOCATIONS_PER_ITEM {
                return Err(EngineError::LimitExceeded {
                    what: format!("locations of {sku}"),
                    limit: crate::location::MAX_LOCATIONS_PER_ITEM as u64,
                });
            }
        }
        let item: &mut Item =
            self.items.entry(sku.clone()).or_insert_with(|| Box::new(Item::new(sku.clone(), location.clone(), now)));
        let before = item.available();
        let i = item.location_index(&location).expect("room checked above");
        item.set_on_hand_at(i, on_hand);
        if let Some(incoming) = incoming {
            item.set_incoming_at(i, incoming);
        }
        if let Some(t) = low_stock_threshold {
            item.low_stock_threshold = t;
        }
        item.max_per_order = match max_per_order {
            Some(0) => None,
            Some(m) => Some(m),
            None => item.max_per_order,
        };
        if created {
            debug_assert!(item.check().is_ok(), "{:?}", item.check());
        } else {
            item.touch(now);
            alerts_for(item, before, alerts);
        }
        Ok(Outcome::Item { item: item.clone(), created })
    }

    pub(super) fn adjust_item(
        &mut self,
        req: &Adjust,
        now: Millis,
        alerts: &mut Vec<StockAlert>,
    ) -> Result<Outcome, EngineError> {
        let Adjust { sku, delta, idempotency_key, expected_version, location, .. } = req;
        let (delta, idempotency_key) = (*delta, idempotency_key.as_deref());
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
            // One key space per SKU: a transfer's or a receipt's key is taken.
            if self.is_movement_key(sku, key) {
                return Err(EngineError::IdempotencyKeyReused { key: key.to_owned() });
            }
            if self.remembered_keys() >= MAX_ADJUST_KEYS_PER_SHARD {
                return Err(EngineError::LimitExceeded {
                    what: "remembered idempotency keys per shard".into(),
                    limit: MAX_ADJUST_KEYS_PER_SHARD as u64,
                });
            }
        }
        let existing =
            self.items.get(sku).map(Box::as_ref).ok_or_else(|| EngineError::ItemNotFound { sku: sku.to_string() })?;
        check_version(Some(existing), sku, *expected_version)?;
        let location = Self::resolve_location(Some(existing), location.as_ref())?;
        let before = existing.available();
        match existing.location(&location) {
            // Only a restock may open a new location; it must be a known one.
            None if delta < 0 => {
                return Err(EngineError::NegativeInventory { sku: sku.to_string(), delta, available: 0 });
            }
            None => self.check_new_location(Some(existing), &location, "location")?,
            Some(at) if (at.on_hand as i128 + delta as i128) < at.reserved as i128 => {
                return Err(EngineError::NegativeInventory { sku: sku.to_string(), delta, available: at.available() });
            }
            Some(_) => {}
        }
        self.adjust_known(req, location, before, now, alerts)
    }

    /// The change part of `adjust_item` at `location` (resolved), after every check
    /// but the total's bound; `before` is the item's available before the change.
    fn adjust_known(
        &mut self,
        req: &Adjust,
        location: LocationId,
        before: u64,
        now: Millis,
        alerts: &mut Vec<StockAlert>,
    ) -> Result<Outcome, EngineError> {
        let (sku, delta, idempotency_key) = (&req.sku, req.delta, req.idempotency_key.as_deref());
        let item = self.items.get_mut(sku).map(Box::as_mut).expect("caller found it");
        if item.on_hand as i128 + delta as i128 > MAX_ON_HAND as i128 {
            return Err(EngineError::validation("delta", format!("onHand would exceed {MAX_ON_HAND}")));
        }
        let i = item.location_index(&location)?;
        let at = item.at(i).on_hand;
        item.set_on_hand_at(i, (at as i128 + delta as i128) as u64);
        item.touch(now);
        alerts_for(item, before, alerts);
        let item = item.clone();
        if let Some(key) = idempotency_key {
            self.adjust_keys
                .insert((sku.clone(), key.to_owned()), AdjustRecord { delta, at: now, item_after: item.clone() });
            self.adjust_key_times.insert((now, (sku.clone(), key.to_owned())));
        }
        Ok(Outcome::Item { item, created: false })
    }

    pub(super) fn delete_item(&mut self, sku: &Sku, expected_version: Option<u64>) -> Result<Outcome, EngineError> {
        let item =
            self.items.get(sku).map(Box::as_ref).ok_or_else(|| EngineError::ItemNotFound { sku: sku.to_string() })?;
        check_version(Some(item), sku, expected_version)?;
        if item.reserved > 0 {
            return Err(EngineError::ItemHasReservations { sku: sku.to_string(), reserved: item.reserved });
        }
        self.items.remove(sku);
        Ok(Outcome::Deleted { sku: sku.clone() })
    }

    pub(super) fn set_sales_blocked(&mut self, sku: &Sku, blocked: bool, now: Millis) -> Result<Outcome, EngineError> {
        let item = self
            .items
            .get_mut(sku)
            .map(Box::as_mut)
            .ok_or_else(|| EngineError::ItemNotFound { sku: sku.to_string() })?;
        item.sales_blocked = blocked;
        item.touch(now);
        Ok(Outcome::Item { item: item.clone(), created: false })
    }

    pub(super) fn transfer(
        &mut self,
        req: &Transfer,
        now: Millis,
        alerts: &mut Vec<StockAlert>,
    ) -> Result<Outcome, EngineError> {
        let Transfer { sku, from, to, quantity, in_transit, idempotency_key, .. } = req;
        let (quantity, in_transit, key) = (*quantity, *in_transit, idempotency_key.as_deref());
        if quantity == 0 || quantity > MAX_QUANTITY {
            return Err(EngineError::validation("quantity", format!("must be 1 to {MAX_QUANTITY}")));
        }
        if from == to {
            return Err(EngineError::validation("to", "must differ from `from`"));
        }
        let movement = Movement::Transfer { from: from.clone(), to: to.clone(), quantity, in_transit };
        if let Some(first) = self.movement_repeat(sku, key, &movement)? {
            return Ok(first);
        }
        let item =
            self.items.get(sku).map(Box::as_ref).ok_or_else(|| EngineError::ItemNotFound { sku: sku.to_string() })?;
        let available = item
            .location(from)
            .map(|l| l.available())
            .ok_or_else(|| EngineError::validation("from", format!("{sku} is not stocked at {from}")))?;
        if available < quantity {
            return Err(EngineError::InsufficientInventory {
                items: vec![Shortfall { sku: sku.to_string(), requested: quantity, available }],
            });
        }
        self.check_new_location(Some(item), to, "to")?;
        if !item.stocks(to) && item.location_count() >= crate::location::MAX_LOCATIONS_PER_ITEM {
            return Err(EngineError::LimitExceeded {
                what: format!("locations of {sku}"),
                limit: crate::location::MAX_LOCATIONS_PER_ITEM as u64,
            });
        }
        // Not in transit the item's onHand is unchanged; in transit its incoming grows.
        if in_transit && item.incoming + quantity > MAX_ON_HAND {
            return Err(EngineError::validation(
                "incoming",
                format!("the item's incoming would be {}, over {MAX_ON_HAND}", item.incoming + quantity),
            ));
        }
        let item = self.items.get_mut(sku).map(Box::as_mut).expect("found above");
        let before = item.available();
        let t = item.location_index(to).expect("room checked above");
        let f = item.index_of(from).expect("checked above");
        let from_on_hand = item.at(f).on_hand;
        item.set_on_hand_at(f, from_on_hand - quantity);
        if in_transit {
            let incoming = item.at(t).incoming;
            item.set_incoming_at(t, incoming + quantity);
        } else {
            let on_hand = item.at(t).on_hand;
            item.set_on_hand_at(t, on_hand + quantity);
        }
        item.touch(now);
        alerts_for(item, before, alerts);
        let item = item.clone();
        self.remember_movement(sku, key, movement, &item, now);
        Ok(Outcome::Item { item, created: false })
    }

    pub(super) fn receive_incoming(
        &mut self,
        sku: &Sku,
        location: &LocationId,
        quantity: u64,
        key: Option<&str>,
        now: Millis,
        alerts: &mut Vec<StockAlert>,
    ) -> Result<Outcome, EngineError> {
        if quantity == 0 || quantity > MAX_QUANTITY {
            return Err(EngineError::validation("quantity", format!("must be 1 to {MAX_QUANTITY}")));
        }
        let movement = Movement::Receive { location: location.clone(), quantity };
        if let Some(first) = self.movement_repeat(sku, key, &movement)? {
            return Ok(first);
        }
        let item = self
            .items
            .get_mut(sku)
            .map(Box::as_mut)
            .ok_or_else(|| EngineError::ItemNotFound { sku: sku.to_string() })?;
        let Some(i) = item.index_of(location) else {
            return Err(EngineError::validation("location", format!("{sku} is not stocked at {location}")));
        };
        let l = item.at(i);
        if quantity > l.incoming {
            return Err(EngineError::validation(
                "quantity",
                format!("{quantity} exceeds the {} incoming at {location}", l.incoming),
            ));
        }
        if item.on_hand + quantity > MAX_ON_HAND {
            return Err(EngineError::validation(
                "onHand",
                format!("the item's onHand would be {}, over {MAX_ON_HAND}", item.on_hand + quantity),
            ));
        }
        let (incoming, on_hand) = (l.incoming, l.on_hand);
        let before = item.available();
        item.set_incoming_at(i, incoming - quantity);
        item.set_on_hand_at(i, on_hand + quantity);
        item.touch(now);
        alerts_for(item, before, alerts);
        let item = item.clone();
        self.remember_movement(sku, key, movement, &item, now);
        Ok(Outcome::Item { item, created: false })
    }

    pub(super) fn set_warehouses(&mut self, warehouses: &[Warehouse]) -> Result<Outcome, EngineError> {
        validate_warehouses(warehouses)?;
        if self.warehouses == warehouses {
            return Ok(Outcome::Warehouses { changed: false });
        }
        self.warehouses = warehouses.to_vec();
        Ok(Outcome::Warehouses { changed: true })
    }

    /// Forgets adjustment keys recorded at or before `cutoff`; returns how many.
    pub(super) fn purge_adjust_keys(&mut self, cutoff: Millis) -> usize {
        super::forget_due(&mut self.adjust_key_times, &mut self.adjust_keys, cutoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Command, ReserveLocal};
    use crate::limits::MAX_SOLD;
    use crate::reservation::ReservationKey;
    use crate::sku::OrderId;

    fn reserve(state: &mut ShardState, order: &str, sku: &Sku, q: u64) -> Result<crate::command::Applied, EngineError> {
        let command = Command::ReserveLocal(ReserveLocal {
            order_id: OrderId::parse(order, "orderId").unwrap(),
            lines: vec![(sku.clone(), q)],
            ttl_secs: 60,
            metadata: None,
            placement: Default::default(),
        });
        state.apply(&command, 1_000)
    }

    /// `sold` only grows, so its bound is kept at reserve time: a reservation that
    /// would take `sold + reserved` past `MAX_SOLD` is refused naming `sold`, and a
    /// commit of what was reserved always fits and passes the full check.
    #[test]
    fn sold_is_bounded_at_reserve_time_and_a_commit_always_fits() {
        let mut state = ShardState::new(0);
        let sku = Sku::parse("S", "sku").unwrap();
        let set = Command::SetItem(SetItem::on_hand(sku.clone(), 100));
        state.apply(&set, 1_000).unwrap();
        // As if MAX_SOLD - 10 units had been sold over the item's life.
        state.items.get_mut(&sku).unwrap().sold = MAX_SOLD - 10;
        state.check_invariants().unwrap();
        reserve(&mut state, "o-1", &sku, 6).unwrap();
        let before = state.clone();
        match reserve(&mut state, "o-2", &sku, 5) {
            Err(EngineError::Validation { field, .. }) => assert_eq!(field, "sold"),
            other => panic!("expected a refusal naming sold, got {other:?}"),
        }
        assert_eq!(state, before, "a refused reservation changes nothing");
        reserve(&mut state, "o-2", &sku, 4).unwrap();
        state.check_invariants().unwrap();
        for o in ["o-1", "o-2"] {
            let key = ReservationKey::Order(OrderId::parse(o, "orderId").unwrap());
            state.apply(&Command::CommitReservation { key, quantities: None }, 1_000).unwrap();
        }
        assert_eq!(state.items[&sku].sold, MAX_SOLD);
        state.check_invariants().unwrap();
        // One more unit can never be held again.
        assert!(reserve(&mut state, "o-3", &sku, 1).is_err());
        // The full check flags a state past the bound (as a corrupt snapshot would be).
        state.items.get_mut(&sku).unwrap().sold = MAX_SOLD + 1;
        assert!(state.check_invariants().is_err());
    }
}
