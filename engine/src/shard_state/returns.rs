//! Units an order sold, back on hand (`Command::ReturnSold`), and the return ledger
//! that bounds them: per (SKU, location, order), how many units came back and by
//! which returns. A return brings back at most what the order sold there minus what
//! came back already, and a return id is applied once, so partial returns add up, a
//! redelivered return changes nothing, and a cancellation after a partial return
//! brings back exactly the rest. The ledger is forgotten with the order, after the
//! retention (`ExpireDue`), like adjustment keys.

use super::ShardState;
use crate::command::{Outcome, ReturnSold};
use crate::error::EngineError;
use crate::item::{alerts_for, StockAlert};
use crate::limits::{check_idempotency_key, MAX_ADJUST_KEYS_PER_SHARD, MAX_ON_HAND, MAX_QUANTITY};
use crate::location::LocationId;
use crate::sku::{OrderId, Sku};
use crate::Millis;
use serde::{Deserialize, Serialize};

/// Which order's sale a ledger entry counts: (SKU, location, order).
pub type ReturnKey = (Sku, LocationId, OrderId);

/// What came back of one order's sale of one SKU at one location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnLedger {
    /// Units back on hand, in all.
    pub returned: u64,
    /// When it last changed (the retention clock).
    pub at: Millis,
    /// Each return applied: its id and the units it brought back.
    pub returns: Vec<(String, u64)>,
}

impl ShardState {
    pub(super) fn return_sold(
        &mut self,
        req: &ReturnSold,
        now: Millis,
        alerts: &mut Vec<StockAlert>,
    ) -> Result<Outcome, EngineError> {
        let ReturnSold { sku, location, order_id, sold, quantity, return_id, .. } = req;
        if *quantity == 0 || *quantity > MAX_QUANTITY {
            return Err(EngineError::validation("quantity", format!("must be 1 to {MAX_QUANTITY}")));
        }
        if *sold == 0 || *sold > MAX_ON_HAND {
            return Err(EngineError::validation("sold", format!("must be 1 to {MAX_ON_HAND}")));
        }
        check_idempotency_key(return_id, "returnId")?;
        let item =
            self.items.get(sku).map(Box::as_ref).ok_or_else(|| EngineError::ItemNotFound { sku: sku.to_string() })?;
        let key: ReturnKey = (sku.clone(), location.clone(), order_id.clone());
        let ledger = self.returns.get(&key);
        let already = ledger.map_or(0, |l| l.returned);
        let repeat = ledger.is_some_and(|l| l.returns.iter().any(|(id, _)| id == return_id));
        let n = if repeat { 0 } else { (*quantity).min(sold.saturating_sub(already)) };
        if n == 0 {
            // A repeat, or nothing left of the sale: nothing changes (not logged).
            return Ok(Outcome::Returned { item: item.clone(), returned: 0 });
        }
        if ledger.is_none() && self.returns.len() >= MAX_ADJUST_KEYS_PER_SHARD {
            return Err(EngineError::LimitExceeded {
                what: "remembered returns per shard".into(),
                limit: MAX_ADJUST_KEYS_PER_SHARD as u64,
            });
        }
        if item.on_hand + n > MAX_ON_HAND {
            return Err(EngineError::validation("quantity", format!("onHand would exceed {MAX_ON_HAND}")));
        }
        if !item.stocks(location) {
            self.check_new_location(Some(item), location, "location")?;
        }
        let before = item.available();
        let item = self.items.get_mut(sku).map(Box::as_mut).expect("found above");
        let i = item.location_index(location)?;
        let at = item.at(i).on_hand;
        item.set_on_hand_at(i, at + n);
        item.touch(now);
        alerts_for(item, before, alerts);
        let item = item.clone();
        let ledger = self.returns.entry(key.clone()).or_insert_with(|| ReturnLedger {
            returned: 0,
            at: now,
            returns: Vec::new(),
        });
        self.return_times.remove(&(ledger.at, key.clone()));
        ledger.returned += n;
        ledger.at = now;
        ledger.returns.push((return_id.clone(), n));
        debug_assert!(ledger.returned <= *sold, "a sale never comes back more than once");
        self.return_times.insert((now, key));
        Ok(Outcome::Returned { item, returned: n })
    }

    /// Forgets ledger entries last changed at or before `cutoff`; returns how many.
    pub(super) fn purge_returns(&mut self, cutoff: Millis) -> usize {
        super::forget_due(&mut self.return_times, &mut self.returns, cutoff)
    }

    /// The ledger's time index, rebuilt from the ledger (after a snapshot decode).
    pub(super) fn rebuild_return_times(&mut self) {
        self.return_times = self.returns.iter().map(|(k, l)| (l.at, k.clone())).collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Command, SetItem};

    fn ret(order: &str, sold: u64, quantity: u64, id: &str) -> Command {
        Command::ReturnSold(ReturnSold {
            sku: Sku::parse("A", "sku").unwrap(),
            location: LocationId::DEFAULT,
            order_id: OrderId::parse(order, "orderId").unwrap(),
            sold,
            quantity,
            return_id: id.into(),
            note: None,
        })
    }

    fn returned(st: &mut ShardState, c: &Command, now: Millis) -> (u64, u64, bool) {
        let applied = st.apply(c, now).unwrap();
        let Outcome::Returned { item, returned } = applied.outcome else { panic!("{:?}", applied.outcome) };
        st.check_invariants().unwrap();
        (returned, item.on_hand, applied.changed)
    }

    #[test]
    fn partial_returns_add_up_to_what_was_sold_and_a_repeat_changes_nothing() {
        let mut st = ShardState::new(0);
        st.apply(&Command::SetItem(SetItem::on_hand(Sku::parse("A", "sku").unwrap(), 10)), 1).unwrap();
        // o-1 sold 5: a return of 2, the same return again, another of 2, then a
        // cancellation asking for all 5 brings back the last 1.
        assert_eq!(returned(&mut st, &ret("o-1", 5, 2, "r-1"), 2), (2, 12, true));
        assert_eq!(returned(&mut st, &ret("o-1", 5, 2, "r-1"), 3), (0, 12, false), "a repeat");
        assert_eq!(returned(&mut st, &ret("o-1", 5, 2, "r-2"), 4), (2, 14, true), "another partial return");
        assert_eq!(returned(&mut st, &ret("o-1", 5, 5, "cancel"), 5), (1, 15, true), "the rest");
        assert_eq!(returned(&mut st, &ret("o-1", 5, 1, "r-3"), 6), (0, 15, false), "nothing left");
        // Another order's sale has its own ledger.
        assert_eq!(returned(&mut st, &ret("o-2", 3, 9, "cancel"), 7), (3, 18, true));
        // Bad input changes nothing and names the field.
        for (c, field) in
            [(ret("o-3", 5, 0, "x"), "quantity"), (ret("o-3", 0, 1, "x"), "sold"), (ret("o-3", 5, 1, ""), "returnId")]
        {
            let e = st.apply(&c, 8).unwrap_err();
            assert!(matches!(&e, EngineError::Validation { field: f, .. } if f == field), "{e:?}");
        }
        // Forgotten with the retention: the ledger entries last changed at or before it.
        assert_eq!(st.purge_returns(6), 1, "o-1's entry (last changed at 5)");
        assert_eq!(st.returns.len(), 1);
        assert_eq!(st.return_times.len(), 1);
    }
}
