//! `ShardState`: everything one shard owns, and `apply`, its pure transition function.
//!
//! `apply(command, now)` has no clock, no I/O and no randomness: the same state, command
//! and time always give the same result and the same next state, so the WAL replays it
//! exactly and tests compare it against a plain reference model. A command that fails
//! changes nothing.

mod id_index;
mod items;
mod movement_keys;
mod reservations;
mod returns;
mod timer;

pub(crate) use id_index::IdIndex;
pub use movement_keys::{Movement, MovementKey, MovementRecord};
pub use returns::{ReturnKey, ReturnLedger};
pub(crate) use timer::Deadlines;

use crate::command::{Adjust, Applied, Command, LineAvailability, Outcome, Query, QueryResult, Transfer};
use crate::error::EngineError;
use crate::item::Item;
use crate::location::{LocationId, Warehouse};
use crate::reservation::{Hold, Reservation, ReservationKey, ReservationStatus};
use crate::reservation_id::ReservationId;
use crate::sku::{OrderId, Sku};
use crate::Millis;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The shard's hash maps: aHash (fast, and keyed at random per process, so client-chosen
/// keys cannot be crafted to collide).
pub(crate) type FastMap<K, V> = HashMap<K, V, ahash::RandomState>;

/// A remembered adjustment, so a repeated idempotency key answers the first result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdjustRecord {
    pub delta: i64,
    pub at: Millis,
    pub item_after: Item,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ShardState {
    /// This shard's index; part of every reservation id it issues.
    pub(crate) shard: usize,
    /// Sequence of the next reservation id.
    pub(crate) next_seq: u64,
    /// Items in SKU order (listing and snapshots rely on it). Boxed: B-tree nodes are
    /// only about half full after in-order inserts, and a 24-byte slot per spare entry
    /// costs far less than an inline `Item` would.
    pub(crate) items: BTreeMap<Sku, Box<Item>>,
    /// Item side: stock held per reservation id.
    pub(crate) holds: FastMap<ReservationId, Hold>,
    /// Home side: reservation headers by id, and the orderId index. Boxed: a hash
    /// table keeps about a quarter of its slots empty, and an empty slot for a box
    /// costs 8 bytes, not a whole header's.
    pub(crate) reservations: FastMap<ReservationId, Box<Reservation>>,
    pub(crate) by_order: FastMap<OrderId, ReservationId>,
    /// Deadlines of ACTIVE reservations, read earliest first (the expiry timer; ties in
    /// id order, which is the ids' text order): per-second buckets (`timer.rs`), so a
    /// reservation's timer costs the same whatever its TTL.
    pub(crate) deadlines: Deadlines,
    /// Finished reservations whose holds are all settled, by the time they finished:
    /// the retention clock. Only these are ever forgotten (`ExpireDue`).
    pub(crate) finished: BTreeSet<(Millis, ReservationId)>,
    /// Finished reservations with holds on other shards that are not known to be
    /// settled yet, by the time they finished. A header moves to `finished` when the
    /// facade reports its holds settled (`HoldsSettled`); until then it is never
    /// purged, so a hold can never outlive its header. Derived (not serialized): a
    /// finished header that is not in `finished` is here.
    #[serde(skip)]
    pub(crate) unsettled: BTreeSet<(Millis, ReservationId)>,
    /// PENDING headers by creation time, for the reconciler's deadline. Derived.
    #[serde(skip)]
    pub(crate) pending: BTreeSet<(Millis, ReservationId)>,
    /// Every header's id, in id order: the operator's listing walks it a bounded
    /// number of ids per page (`Query::ListReservations`). 64 ids to a word
    /// (`id_index.rs`). Derived.
    #[serde(skip)]
    pub(crate) by_id: IdIndex,
    /// Adjustment idempotency keys, scoped to their SKU.
    pub(crate) adjust_keys: FastMap<(Sku, String), AdjustRecord>,
    /// Serialized: bincode writes `(at, (sku, key))` as the flat triple it once was.
    pub(crate) adjust_key_times: BTreeSet<(Millis, (Sku, String))>,
    /// Idempotency keys of transfers and receipts (`movement_keys.rs`), scoped to
    /// their SKU. Not in serde's view of the struct: the snapshot codec writes them
    /// next to the state (state version 6; older snapshots read as none).
    #[serde(skip)]
    pub(crate) movement_keys: FastMap<MovementKey, MovementRecord>,
    /// The movement keys by the time they were used (the retention clock). Derived.
    #[serde(skip)]
    pub(crate) movement_key_times: BTreeSet<(Millis, MovementKey)>,
    /// What came back of each order's sales (`ReturnSold`, `returns.rs`). Not in
    /// serde's view of the struct: the snapshot codec writes it next to the state
    /// (state version 5; older snapshots read as an empty ledger).
    #[serde(skip)]
    pub(crate) returns: FastMap<ReturnKey, ReturnLedger>,
    /// The ledger's entries by the time they last changed (the retention clock).
    /// Derived.
    #[serde(skip)]
    pub(crate) return_times: BTreeSet<(Millis, ReturnKey)>,
    /// The warehouse table allocation and location checks read (empty: no
    /// warehouses file; any location id is accepted, all of equal priority).
    pub(crate) warehouses: Vec<Warehouse>,
    /// The latest `now` a state-changing command was applied at: the shard's clock
    /// floor, so time never runs backwards across a restart even when a snapshot
    /// covers the whole WAL (no record left to replay a time from). Set only by
    /// `apply` for commands that changed state (exactly the logged ones, so replay
    /// rebuilds it). Not in serde's view of the struct: the snapshot codec writes it
    /// next to the state (state version 4; a version-3 snapshot reads as 0).
    #[serde(skip)]
    pub(crate) clock_floor: Millis,
}

/// Forgets from `map` every key its retention clock (`(time, key)`, earliest first)
/// holds at or before `cutoff`; returns how many.
pub(crate) fn forget_due<K: Ord + std::hash::Hash, V>(
    clock: &mut BTreeSet<(Millis, K)>,
    map: &mut FastMap<K, V>,
    cutoff: Millis,
) -> usize {
    let mut forgotten = 0;
    while clock.first().is_some_and(|(at, _)| *at <= cutoff) {
        let (_, key) = clock.pop_first().expect("checked non-empty");
        map.remove(&key);
        forgotten += 1;
    }
    debug_assert_eq!(clock.len(), map.len(), "a retention clock holds exactly its map's keys");
    forgotten
}

impl ShardState {
    pub fn new(shard: usize) -> ShardState {
        ShardState { shard, ..ShardState::default() }
    }

    pub fn shard(&self) -> usize {
        self.shard
    }

    /// Applies one command at time `now`. Pure and deterministic; on `Err` nothing
    /// changed.
    pub fn apply(&mut self, command: &Command, now: Millis) -> Result<Applied, EngineError> {
        let mut alerts = Vec::new();
        // A repeated adjustment, transfer or receipt (its key already applied)
        // answers the first result and changes nothing, so it is not logged (nor
        // published) again.
        let keyed_repeat = match command {
            Command::AdjustItem(Adjust { sku, idempotency_key: Some(key), .. }) => {
                self.adjust_keys.contains_key(&(sku.clone(), key.clone()))
            }
            Command::Transfer(Transfer { sku, idempotency_key: Some(key), .. })
            | Command::ReceiveIncoming { sku, idempotency_key: Some(key), .. } => self.is_movement_key(sku, key),
            _ => false,
        };
        let outcome = match command {
            Command::SetItem(set) => self.set_item(set, now, &mut alerts)?,
            Command::AdjustItem(adjust) => self.adjust_item(adjust, now, &mut alerts)?,
            Command::Transfer(transfer) => self.transfer(transfer, now, &mut alerts)?,
            Command::ReceiveIncoming { sku, location, quantity, idempotency_key } => {
                self.receive_incoming(sku, location, *quantity, idempotency_key.as_deref(), now, &mut alerts)?
            }
            Command::SetWarehouses { warehouses } => self.set_warehouses(warehouses)?,
            Command::DeleteItem { sku, expected_version } => self.delete_item(sku, *expected_version)?,
            Command::SetSalesBlocked { sku, blocked } => self.set_sales_blocked(sku, *blocked, now)?,
            Command::OpenReservation { order_id, lines, ttl_secs, metadata } => {
                self.open_reservation(order_id, lines, *ttl_secs, metadata, now)?
            }
            Command::ReserveLocal(reserve) => self.reserve_local(reserve, now, &mut alerts)?,
            Command::PlaceHold { reservation_id, order_id, lines, placement } => {
                self.place_hold(*reservation_id, order_id, lines, placement, now, &mut alerts)?
            }
            Command::ActivateReservation { reservation_id, allocations } => {
                self.activate(*reservation_id, allocations.clone())?
            }
            Command::AbortReservation { reservation_id } => self.abort(*reservation_id),
            Command::ReleaseHold { reservation_id } => self.release_hold(*reservation_id, now),
            Command::CommitHold { reservation_id, committed } => self.commit_hold(*reservation_id, committed, now),
            Command::CommitReservation { key, quantities } => self.commit(key, quantities.as_deref(), now)?,
            Command::ReleaseReservation { key, reason } => self.release(key, reason, now)?,
            // The EXTEND of engines before the TTL was configurable (no longer
            // written): its own fixed cap, so an old log replays exactly. Relaxing
            // it would be replay-safe too: a shard logs a command only when it applied
            // it (`shard.rs`: `changed` after `Ok`), so every logged record passed the
            // 86,400 s check and any larger cap accepts it the same way; only refusals
            // could differ, and a refusal is never logged.
            Command::ExtendReservation { key, ttl_secs } => {
                self.extend(key, *ttl_secs, crate::limits::LEGACY_EXTEND_CAP_SECS, now)?
            }
            Command::ExtendReservationWithin { key, ttl_secs, max_ttl_secs } => {
                self.extend(key, *ttl_secs, *max_ttl_secs, now)?
            }
            Command::ExpireReservation { key } => self.expire_now(key, now)?,
            Command::ExpireDue { retention_ms } => self.expire_due(*retention_ms, now),
            Command::HoldsSettled { reservation_id } => self.holds_settled(*reservation_id),
            Command::ReturnSold(ret) => self.return_sold(ret, now, &mut alerts)?,
        };
        let changed = match &outcome {
            Outcome::Item { .. } => !keyed_repeat,
            Outcome::Deleted { .. } | Outcome::Opened(_) | Outcome::Reserved(_) | Outcome::ExpiredOnAccess(_) => true,
            Outcome::Existing(_) => false,
            Outcome::Reservation { changed, .. }
            | Outcome::Holds { changed }
            | Outcome::Placed { changed, .. }
            | Outcome::Warehouses { changed } => *changed,
            Outcome::Expired { expired, purged, .. } => !expired.is_empty() || *purged > 0,
            Outcome::Returned { returned, .. } => *returned > 0,
        };
        if changed {
            self.clock_floor = self.clock_floor.max(now);
        }
        Ok(Applied { outcome, alerts, changed })
    }

    /// The latest time a state-changing command was applied at (0 for a new state):
    /// the floor of the shard's clock after a restart.
    pub fn clock_floor(&self) -> Millis {
        self.clock_floor
    }

    /// Answers a read. Never changes state.
    pub fn query(&self, query: &Query) -> Result<QueryResult, EngineError> {
        match query {
            Query::GetItem { sku } => self
                .items
                .get(sku)
                .map(|i| Item::clone(i))
                .map(QueryResult::Item)
                .ok_or_else(|| EngineError::ItemNotFound { sku: sku.to_string() }),
            Query::ListItems { after, limit, filter, scan_budget } => {
                let range = match after {
                    Some(a) => self.items.range::<Sku, _>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded)),
                    None => self.items.range::<Sku, _>(..),
                };
                debug_assert!(*scan_budget > 0, "a listing must be able to move forward");
                let mut items = Vec::new();
                let mut stopped_at = None;
                let mut last_seen: Option<&Sku> = None;
                for (scanned, (sku, item)) in range.enumerate() {
                    if items.len() == *limit {
                        break;
                    }
                    if scanned == *scan_budget {
                        // The next page starts after the last item looked at.
                        stopped_at = last_seen.cloned();
                        break;
                    }
                    if filter.matches(item) {
                        items.push(Item::clone(item));
                    }
                    last_seen = Some(sku);
                }
                Ok(QueryResult::Items { items, stopped_at })
            }
            Query::Availability { lines, placement } => Ok(QueryResult::Availability(
                lines
                    .iter()
                    .map(|line| {
                        let (sku, q) = line;
                        let item = self.items.get(sku).map(Box::as_ref);
                        let one = std::slice::from_ref(line);
                        LineAvailability {
                            sku: sku.clone(),
                            requested: *q,
                            available: item.map_or(0, Item::available),
                            exists: item.is_some(),
                            reason: self.plan_hold(one, &placement.for_lines(one)).err(),
                        }
                    })
                    .collect(),
            )),
            Query::ListReservations { after, limit, filter, scan_budget } => {
                let range = self.by_id.after(*after);
                debug_assert!(*scan_budget > 0, "a listing must be able to move forward");
                let mut reservations = Vec::new();
                let mut stopped_at = None;
                let mut last_seen = None;
                for (scanned, id) in range.enumerate() {
                    if reservations.len() == *limit {
                        break;
                    }
                    if scanned == *scan_budget {
                        // The next page starts after the last header looked at.
                        stopped_at = last_seen;
                        break;
                    }
                    let r = &*self.reservations[&id];
                    if filter.matches(r) {
                        reservations.push(r.clone());
                    }
                    last_seen = Some(id);
                }
                Ok(QueryResult::ReservationPage { reservations, stopped_at })
            }
            Query::GetReservation { key } => self
                .find(key)
                .map(|r| QueryResult::Reservation(r.clone()))
                .ok_or_else(|| EngineError::ReservationNotFound { key: key.to_string() }),
            Query::Warehouses => Ok(QueryResult::Warehouses(self.warehouses.clone())),
            Query::Unsettled { finished_before, limit } => Ok(QueryResult::Reservations(
                self.unsettled
                    .iter()
                    .take_while(|(at, _)| *at < *finished_before)
                    .take(*limit)
                    .map(|(_, id)| Reservation::clone(&self.reservations[id]))
                    .collect(),
            )),
            Query::StalePending { created_before, limit } => Ok(QueryResult::Reservations(
                self.pending
                    .iter()
                    .take_while(|(at, _)| *at < *created_before)
                    .take(*limit)
                    .map(|(_, id)| Reservation::clone(&self.reservations[id]))
                    .collect(),
            )),
        }
    }

    /// Rebuilds what is derived from the headers and not serialized (`unsettled`,
    /// `pending`), then shares text (`share_text`). Called on every decoded state.
    pub(crate) fn after_decode(&mut self) {
        self.rebuild_return_times();
        self.rebuild_movement_key_times();
        self.unsettled.clear();
        self.pending.clear();
        self.by_id = self.reservations.keys().copied().collect();
        for r in self.reservations.values() {
            match r.status {
                ReservationStatus::Pending => {
                    self.pending.insert((r.created_at, r.reservation_id));
                }
                s if s.is_finished() => {
                    let at = r.finished_at.unwrap_or(r.created_at);
                    if !self.finished.contains(&(at, r.reservation_id)) {
                        self.unsettled.insert((at, r.reservation_id));
                    }
                }
                _ => {}
            }
        }
        self.share_text();
    }

    /// The rule of logs written before `HoldsSettled` existed: every finished header
    /// had its holds settled when it finished, so it is tracked for retention now.
    /// Only replay of such a log calls this (`durable::apply_logged`).
    pub(crate) fn adopt_legacy_settlement(&mut self) {
        if self.unsettled.is_empty() {
            return;
        }
        let all = std::mem::take(&mut self.unsettled);
        self.finished.extend(all);
    }

    /// Finished reservations whose holds on other shards are not known to be settled.
    pub fn unsettled_count(&self) -> usize {
        self.unsettled.len()
    }

    /// Whether this finished header waits for its holds on other shards to be
    /// reported settled (and so may not be forgotten yet).
    pub fn is_unsettled(&self, id: ReservationId) -> bool {
        self.reservations.get(&id).and_then(|r| r.finished_at).is_some_and(|at| self.unsettled.contains(&(at, id)))
    }

    pub fn item(&self, sku: &Sku) -> Option<&Item> {
        self.items.get(sku).map(Box::as_ref)
    }

    pub fn items(&self) -> impl Iterator<Item = &Item> {
        self.items.values().map(Box::as_ref)
    }

    /// The warehouse table in force on this shard.
    pub fn warehouses(&self) -> &[Warehouse] {
        &self.warehouses
    }

    pub fn reservations(&self) -> impl Iterator<Item = &Reservation> {
        self.reservations.values().map(Box::as_ref)
    }

    pub fn holds(&self) -> impl Iterator<Item = (&ReservationId, &Hold)> {
        self.holds.iter()
    }

    pub fn hold(&self, reservation_id: ReservationId) -> Option<&Hold> {
        self.holds.get(&reservation_id)
    }

    /// Whether this shard holds a header for `order`.
    pub fn has_order(&self, order: &OrderId) -> bool {
        self.by_order.contains_key(order)
    }

    /// Every orderId whose header this shard holds.
    pub fn order_ids(&self) -> impl Iterator<Item = &OrderId> {
        self.by_order.keys()
    }

    pub fn reservation(&self, key: &ReservationKey) -> Option<&Reservation> {
        self.find(key)
    }

    /// The header with this id, if this shard keeps it.
    pub fn reservation_by_id(&self, id: ReservationId) -> Option<&Reservation> {
        self.reservations.get(&id).map(Box::as_ref)
    }

    /// How many reservations this shard keeps ACTIVE (one timer entry each).
    pub fn active_reservations(&self) -> usize {
        self.deadlines.len()
    }

    /// Makes headers and holds share text again after a snapshot was decoded (serde
    /// gives every copy its own allocation): SKUs with the item's, a header's orderId
    /// with its index entry, a hold's orderId with its local header. Only memory
    /// changes; the state compares equal before and after.
    pub(crate) fn share_text(&mut self) {
        let items = &self.items;
        let shared = |sku: &Sku| items.get(sku).map_or_else(|| sku.clone(), |item| item.sku.clone());
        for (order, id) in &self.by_order {
            if let Some(header) = self.reservations.get_mut(id) {
                if header.order_id == *order {
                    header.order_id = order.clone();
                }
            }
        }
        for header in self.reservations.values_mut() {
            for line in header.lines.iter_mut() {
                line.sku = shared(&line.sku);
            }
            for a in header.allocations.iter_mut() {
                a.sku = shared(&a.sku);
            }
        }
        for (id, hold) in self.holds.iter_mut() {
            if let Some(header) = self.reservations.get(id) {
                if header.order_id == hold.order_id {
                    hold.order_id = header.order_id.clone();
                }
            }
            for a in hold.allocations.iter_mut() {
                a.sku = shared(&a.sku);
            }
        }
    }

    /// Entries the state holds (items, reservation headers, holds, remembered
    /// idempotency keys): what a snapshot's size and cost grow with.
    pub fn entry_count(&self) -> usize {
        self.items.len() + self.reservations.len() + self.holds.len() + self.remembered_keys()
    }

    /// What came back of each order's sales (`ReturnSold`), for tools and tests.
    pub fn return_ledger(&self) -> &FastMap<ReturnKey, ReturnLedger> {
        &self.returns
    }

    /// The earliest deadline of an ACTIVE reservation, for the expiry timer.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.deadlines.first().map(|(t, _)| t)
    }

    fn find(&self, key: &ReservationKey) -> Option<&Reservation> {
        let id = match key {
            // A text that is not an id names no reservation.
            ReservationKey::Id(text) => ReservationId::parse(text)?,
            ReservationKey::Order(order) => *self.by_order.get(order)?,
        };
        self.reservations.get(&id).map(Box::as_ref)
    }

    fn find_id(&self, key: &ReservationKey) -> Result<ReservationId, EngineError> {
        self.find(key)
            .map(|r| r.reservation_id)
            .ok_or_else(|| EngineError::ReservationNotFound { key: key.to_string() })
    }

    /// Checks every invariant of the shard by a full scan. Recovery and `verify` run
    /// it in all builds; tests run it after every step.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut held: HashMap<(&Sku, &LocationId), u64> = HashMap::new();
        for (id, hold) in &self.holds {
            for a in &hold.allocations {
                if !self.items.get(&a.sku).map(Box::as_ref).is_some_and(|i| i.stocks(&a.location)) {
                    return Err(format!("hold {id} names missing item {} at {}", a.sku, a.location));
                }
                if a.quantity == 0 {
                    return Err(format!("hold {id} holds 0 of {} at {}", a.sku, a.location));
                }
                *held.entry((&a.sku, &a.location)).or_default() += a.quantity;
            }
        }
        for item in self.items.values().map(Box::as_ref) {
            item.check()?;
            for l in item.locations().iter() {
                let h = held.get(&(&item.sku, &l.location)).copied().unwrap_or(0);
                if h != l.reserved {
                    return Err(format!(
                        "{} at {}: reserved {} but holds sum to {h}",
                        item.sku, l.location, l.reserved
                    ));
                }
            }
        }
        for (order, id) in &self.by_order {
            match self.reservations.get(id).map(Box::as_ref) {
                Some(r) if &r.order_id == order => {}
                _ => return Err(format!("orderId index {order} -> {id} is dangling")),
            }
        }
        if self.by_order.len() != self.reservations.len() {
            return Err("orderId index and reservations differ in size".into());
        }
        if self.by_id.len() != self.reservations.len()
            || !self.by_id.iter().all(|id| self.reservations.contains_key(&id))
        {
            return Err("id index and reservations differ".into());
        }
        let mut active = 0;
        let mut finished = 0;
        let mut pending = 0;
        for r in self.reservations.values() {
            match r.status {
                ReservationStatus::Active => {
                    active += 1;
                    if !self.deadlines.contains(r.expires_at, r.reservation_id) {
                        return Err(format!("active reservation {} has no timer", r.reservation_id));
                    }
                }
                ReservationStatus::Pending => {
                    pending += 1;
                    if !self.pending.contains(&(r.created_at, r.reservation_id)) {
                        return Err(format!("pending reservation {} not tracked for its deadline", r.reservation_id));
                    }
                }
                s if s.is_finished() => {
                    finished += 1;
                    let at = r.finished_at.ok_or_else(|| format!("{} finished without a time", r.reservation_id))?;
                    let key = (at, r.reservation_id);
                    if self.finished.contains(&key) == self.unsettled.contains(&key) {
                        return Err(format!(
                            "finished reservation {} must be tracked either for retention or as unsettled",
                            r.reservation_id
                        ));
                    }
                }
                _ => {}
            }
            for l in &r.lines {
                if l.committed > l.quantity {
                    return Err(format!("{}: committed {} > reserved {}", r.reservation_id, l.committed, l.quantity));
                }
            }
        }
        if active != self.deadlines.len()
            || finished != self.finished.len() + self.unsettled.len()
            || pending != self.pending.len()
        {
            return Err("timer sets do not match reservation states".into());
        }
        Ok(())
    }
}
