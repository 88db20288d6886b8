//! Reservation operations of `ShardState`: headers on the home shard (open, activate,
//! abort, commit, release, extend, expire) and holds on item shards (place, release,
//! commit).

use super::ShardState;
use crate::command::Outcome;
use crate::command::ReserveLocal;
use crate::error::{EngineError, Shortfall};
use crate::item::{alerts_for, Item, StockAlert};
use crate::limits::MAX_RESERVATIONS_PER_SHARD;
use crate::location::{allocate, committed_per_allocation, Allocation, Placement};
use crate::one_or_many::OneOrMany;
use crate::reservation::{Hold, Reservation, ReservationKey, ReservationLine, ReservationStatus};
use crate::reservation_id::ReservationId;
use crate::sku::{OrderId, Sku};
use crate::Millis;
use std::collections::HashSet;

/// A hold's allocations as `plan_hold` finds them: none, one (inline), or a list.
enum Allocations {
    None,
    One(Allocation),
    Many(Vec<Allocation>),
}

impl Allocations {
    fn push(&mut self, a: Allocation) {
        match std::mem::replace(self, Allocations::None) {
            Allocations::None => *self = Allocations::One(a),
            Allocations::One(first) => *self = Allocations::Many(vec![first, a]),
            Allocations::Many(mut v) => {
                v.push(a);
                *self = Allocations::Many(v);
            }
        }
    }

    fn done(self) -> OneOrMany<Allocation> {
        match self {
            Allocations::None => OneOrMany::default(),
            Allocations::One(a) => OneOrMany::One(a),
            Allocations::Many(v) => OneOrMany::Many(v.into_boxed_slice()),
        }
    }
}

impl Extend<Allocation> for Allocations {
    fn extend<I: IntoIterator<Item = Allocation>>(&mut self, iter: I) {
        iter.into_iter().for_each(|a| self.push(a));
    }
}

fn status_error(r: &Reservation) -> EngineError {
    let reservation_id = r.reservation_id.to_string();
    match r.status {
        ReservationStatus::Pending => EngineError::ReservationPending { reservation_id },
        ReservationStatus::Committed => EngineError::ReservationCommitted { reservation_id },
        ReservationStatus::Released => EngineError::ReservationReleased { reservation_id },
        ReservationStatus::Expired | ReservationStatus::Active => EngineError::ReservationExpired { reservation_id },
    }
}

impl ShardState {
    // ---- home side: headers -------------------------------------------------------

    /// The answer to a reserve whose orderId already has a header, if it has one:
    /// the existing reservation (same lines), or why not. Checks the limit otherwise.
    fn existing_or_room(&self, order_id: &OrderId, lines: &[(Sku, u64)]) -> Result<Option<Outcome>, EngineError> {
        if let Some(id) = self.by_order.get(order_id) {
            let existing = &*self.reservations[id];
            if !existing.same_lines(lines) {
                return Err(EngineError::IdempotencyKeyReused { key: order_id.to_string() });
            }
            if existing.status == ReservationStatus::Pending {
                return Err(status_error(existing));
            }
            return Ok(Some(Outcome::Existing(existing.clone())));
        }
        if self.reservations.len() >= MAX_RESERVATIONS_PER_SHARD {
            return Err(EngineError::LimitExceeded {
                what: "reservations per shard".into(),
                limit: MAX_RESERVATIONS_PER_SHARD as u64,
            });
        }
        Ok(None)
    }

    pub(super) fn open_reservation(
        &mut self,
        order_id: &OrderId,
        lines: &[(Sku, u64)],
        ttl_secs: u64,
        metadata: &Option<String>,
        now: Millis,
    ) -> Result<Outcome, EngineError> {
        if let Some(existing) = self.existing_or_room(order_id, lines)? {
            return Ok(existing);
        }
        let id = ReservationId::new(now, self.shard, self.next_seq);
        self.new_header(id, order_id, lines, ttl_secs, metadata, now);
        Ok(Outcome::Opened(Reservation::clone(&*self.reservations[&id])))
    }

    /// The fast path: open, hold and activate at once, all or nothing. The state it
    /// leaves is the one `open_reservation`, `place_hold` and `activate` would leave
    /// one after the other; the header is written ACTIVE at once (it never is PENDING,
    /// so it never enters the `pending` set only to leave it again).
    pub(super) fn reserve_local(
        &mut self,
        req: &ReserveLocal,
        now: Millis,
        alerts: &mut Vec<StockAlert>,
    ) -> Result<Outcome, EngineError> {
        let ReserveLocal { order_id, lines, ttl_secs, metadata, placement } = req;
        if let Some(existing) = self.existing_or_room(order_id, lines)? {
            return Ok(existing);
        }
        // The id the header will get. A fresh id has no hold yet (ids are never reused).
        let reservation_id = ReservationId::new(now, self.shard, self.next_seq);
        debug_assert!(!self.holds.contains_key(&reservation_id), "reservation id reused");
        // The only step that can fail, and it changes nothing.
        let allocations = self.plan_hold(lines, placement)?;
        debug_assert!(
            lines
                .iter()
                .all(|(sku, q)| allocations.iter().filter(|a| &a.sku == sku).map(|a| a.quantity).sum::<u64>() == *q),
            "every line allocated in full"
        );
        let expires_at = now + ttl_secs * 1000;
        // Stored compactly when every line is wholly at the default location.
        let all_default = allocations.len() == lines.len() && allocations.iter().all(|a| a.location.is_default());
        let header_allocations = if all_default { Box::default() } else { allocations.as_slice().into() };
        self.hold_planned(reservation_id, order_id, lines, allocations, now, alerts);
        let reservation = Reservation {
            reservation_id,
            order_id: order_id.clone(),
            status: ReservationStatus::Active,
            lines: lines
                .iter()
                .map(|(sku, q)| ReservationLine { sku: self.shared_sku(sku), quantity: *q, committed: 0 })
                .collect(),
            allocations: header_allocations,
            created_at: now,
            expires_at,
            finished_at: None,
            release_reason: None,
            metadata: metadata.as_deref().map(Box::from),
        };
        let answer = reservation.clone();
        self.insert_header(reservation);
        let timed = self.deadlines.insert(expires_at, reservation_id);
        debug_assert!(timed, "a new reservation's deadline is new");
        Ok(Outcome::Reserved(answer))
    }

    /// Files a new header (the next id) under its id, orderId and in the id index.
    fn insert_header(&mut self, reservation: Reservation) {
        let id = reservation.reservation_id;
        debug_assert_eq!(id, ReservationId::new(reservation.created_at, self.shard, self.next_seq));
        debug_assert!(!self.reservations.contains_key(&id), "reservation id reused");
        self.next_seq += 1;
        self.by_order.insert(reservation.order_id.clone(), id);
        self.reservations.insert(id, Box::new(reservation));
        self.by_id.insert(id);
    }

    /// Writes a new PENDING header under `reservation_id`, which must be the next id
    /// (`ReservationId::new(now, shard, next_seq)`, computed once by the caller).
    fn new_header(
        &mut self,
        reservation_id: ReservationId,
        order_id: &OrderId,
        lines: &[(Sku, u64)],
        ttl_secs: u64,
        metadata: &Option<String>,
        now: Millis,
    ) {
        let reservation = Reservation {
            reservation_id,
            order_id: order_id.clone(),
            status: ReservationStatus::Pending,
            lines: lines
                .iter()
                .map(|(sku, q)| ReservationLine { sku: self.shared_sku(sku), quantity: *q, committed: 0 })
                .collect(),
            allocations: Box::default(),
            created_at: now,
            expires_at: now + ttl_secs * 1000,
            finished_at: None,
            release_reason: None,
            metadata: metadata.as_deref().map(Box::from),
        };
        self.insert_header(reservation);
        self.pending.insert((now, reservation_id));
    }

    pub(super) fn activate(
        &mut self,
        reservation_id: ReservationId,
        allocations: Vec<Allocation>,
    ) -> Result<Outcome, EngineError> {
        let r = self
            .reservations
            .get_mut(&reservation_id)
            .map(Box::as_mut)
            .ok_or_else(|| EngineError::ReservationNotFound { key: reservation_id.to_string() })?;
        if r.status != ReservationStatus::Pending {
            return Ok(Outcome::Reservation { reservation: r.clone(), changed: false });
        }
        for l in &r.lines {
            let allocated: u64 = allocations.iter().filter(|a| a.sku == l.sku).map(|a| a.quantity).sum();
            if allocated != l.quantity {
                return Err(EngineError::validation(
                    "allocations",
                    format!("{} allocated {allocated} of {} reserved", l.sku, l.quantity),
                ));
            }
        }
        if allocations.iter().any(|a| !r.lines.iter().any(|l| l.sku == a.sku)) {
            return Err(EngineError::validation("allocations", "names a SKU the reservation does not hold"));
        }
        // Stored compactly when every line is wholly at the default location.
        let all_default = allocations.len() == r.lines.len() && allocations.iter().all(|a| a.location.is_default());
        r.allocations = if all_default { Box::default() } else { allocations.into_boxed_slice() };
        r.status = ReservationStatus::Active;
        self.deadlines.insert(r.expires_at, r.reservation_id);
        let untracked = self.pending.remove(&(r.created_at, r.reservation_id));
        debug_assert!(untracked, "pending reservation without its deadline entry");
        Ok(Outcome::Reservation { reservation: r.clone(), changed: true })
    }

    pub(super) fn abort(&mut self, reservation_id: ReservationId) -> Outcome {
        match self.reservations.get(&reservation_id).map(Box::as_ref) {
            Some(r) if r.status == ReservationStatus::Pending => {
                let r = self.reservations.remove(&reservation_id).expect("present");
                self.by_order.remove(&r.order_id);
                self.by_id.remove(reservation_id);
                let untracked = self.pending.remove(&(r.created_at, reservation_id));
                debug_assert!(untracked, "pending reservation without its deadline entry");
                Outcome::Reservation { reservation: *r, changed: true }
            }
            Some(r) => Outcome::Reservation { reservation: r.clone(), changed: false },
            None => Outcome::Holds { changed: false },
        }
    }

    /// Moves an ACTIVE reservation to a finished state at `now`, and settles the holds
    /// this same shard keeps for it (holds on other shards are the caller's to settle:
    /// until it reports them settled with `HoldsSettled`, the header is kept).
    fn finish(
        &mut self,
        id: ReservationId,
        status: ReservationStatus,
        reason: Option<&str>,
        now: Millis,
    ) -> Reservation {
        debug_assert!(status.is_finished());
        // Every line held here (always so for a one-shard reservation): nothing is
        // left to settle elsewhere once this shard settles its own hold below.
        let all_local = match (self.reservations.get(&id), self.holds.get(&id)) {
            (Some(r), Some(h)) => r.lines.iter().all(|l| h.allocations.iter().any(|a| a.sku == l.sku)),
            _ => false,
        };
        let r = self.reservations.get_mut(&id).map(Box::as_mut).expect("caller found it");
        debug_assert_eq!(r.status, ReservationStatus::Active);
        let removed = self.deadlines.remove(r.expires_at, id);
        debug_assert!(removed, "active reservation without a timer");
        r.status = status;
        r.finished_at = Some(now);
        r.release_reason = reason.map(Box::from);
        if all_local {
            self.finished.insert((now, id));
        } else {
            self.unsettled.insert((now, id));
        }
        if status == ReservationStatus::Committed {
            for line in &r.lines {
                let per: Vec<u64> =
                    committed_per_allocation(r.allocations.iter().filter(|a| a.sku == line.sku), line.committed)
                        .collect();
                for (a, c) in r.allocations.iter_mut().filter(|a| a.sku == line.sku).zip(per) {
                    a.committed = c;
                }
            }
        }
        let r = r.clone();
        if status == ReservationStatus::Committed {
            let committed: Vec<(Sku, u64)> = r.lines.iter().map(|l| (l.sku.clone(), l.committed)).collect();
            self.commit_hold(id, &committed, now);
        } else {
            self.release_hold(id, now);
        }
        r
    }

    /// The header named by `key`, expired on access if its deadline passed.
    /// Returns `Err(outcome)` when it expired here.
    fn active_or_expire(
        &mut self,
        key: &ReservationKey,
        now: Millis,
    ) -> Result<Result<ReservationId, Outcome>, EngineError> {
        let id = self.find_id(key)?;
        let r = &*self.reservations[&id];
        match r.status {
            ReservationStatus::Active if now >= r.expires_at => {
                let r = self.finish(id, ReservationStatus::Expired, Some("EXPIRED"), now);
                Ok(Err(Outcome::ExpiredOnAccess(r)))
            }
            ReservationStatus::Active => Ok(Ok(id)),
            _ => Ok(Ok(id)),
        }
    }

    pub(super) fn commit(
        &mut self,
        key: &ReservationKey,
        quantities: Option<&[(Sku, u64)]>,
        now: Millis,
    ) -> Result<Outcome, EngineError> {
        let id = match self.active_or_expire(key, now)? {
            Ok(id) => id,
            Err(expired) => return Ok(expired),
        };
        let r = &*self.reservations[&id];
        match r.status {
            ReservationStatus::Active => {}
            ReservationStatus::Committed => return Ok(Outcome::Reservation { reservation: r.clone(), changed: false }),
            _ => return Err(status_error(r)),
        }
        let mut committed: Vec<u64> = r.lines.iter().map(|l| l.quantity).collect();
        if let Some(quantities) = quantities {
            let mut seen = HashSet::new();
            for (i, (sku, q)) in quantities.iter().enumerate() {
                let field = format!("items[{i}]");
                if !seen.insert(sku) {
                    return Err(EngineError::validation(&field, format!("{sku} appears twice")));
                }
                let Some(pos) = r.lines.iter().position(|l| &l.sku == sku) else {
                    return Err(EngineError::validation(&field, format!("{sku} is not in this reservation")));
                };
                if *q > r.lines[pos].quantity {
                    return Err(EngineError::validation(
                        &format!("{field}.quantity"),
                        format!("{q} exceeds the {} reserved", r.lines[pos].quantity),
                    ));
                }
                committed[pos] = *q;
            }
        }
        let r = self.reservations.get_mut(&id).map(Box::as_mut).expect("found above");
        for (line, c) in r.lines.iter_mut().zip(committed) {
            line.committed = c;
        }
        let r = self.finish(id, ReservationStatus::Committed, None, now);
        Ok(Outcome::Reservation { reservation: r, changed: true })
    }

    pub(super) fn release(&mut self, key: &ReservationKey, reason: &str, now: Millis) -> Result<Outcome, EngineError> {
        let id = match self.active_or_expire(key, now)? {
            Ok(id) => id,
            // Released after its deadline: it is EXPIRED; the stock goes back either way.
            Err(Outcome::ExpiredOnAccess(r)) => return Ok(Outcome::Reservation { reservation: r, changed: true }),
            Err(other) => return Ok(other),
        };
        let r = &*self.reservations[&id];
        match r.status {
            ReservationStatus::Active => {
                let r = self.finish(id, ReservationStatus::Released, Some(reason), now);
                Ok(Outcome::Reservation { reservation: r, changed: true })
            }
            ReservationStatus::Released | ReservationStatus::Expired => {
                Ok(Outcome::Reservation { reservation: r.clone(), changed: false })
            }
            _ => Err(status_error(r)),
        }
    }

    /// Moves an ACTIVE reservation's deadline to `now + ttl_secs`, refused (VALIDATION_ERROR
    /// `expiresIn`) past `created_at + max_ttl_secs`. `max_ttl_secs` comes from the
    /// command (pure: replay decides as the live shard did).
    pub(super) fn extend(
        &mut self,
        key: &ReservationKey,
        ttl_secs: u64,
        max_ttl_secs: u64,
        now: Millis,
    ) -> Result<Outcome, EngineError> {
        let id = match self.active_or_expire(key, now)? {
            Ok(id) => id,
            Err(expired) => return Ok(expired),
        };
        let r = &*self.reservations[&id];
        if r.status != ReservationStatus::Active {
            return Err(status_error(r));
        }
        // Saturating: a hand-made or fuzzed command must not overflow (the facade
        // bounds both by `MAX_TTL_CEILING_SECS`).
        let new_deadline = now.saturating_add(ttl_secs.saturating_mul(1000));
        let cap = r.created_at.saturating_add(max_ttl_secs.saturating_mul(1000));
        if new_deadline > cap {
            return Err(EngineError::validation(
                "expiresIn",
                format!(
                    "a reservation may live at most {max_ttl_secs} s from its creation; at most {} s remain",
                    cap.saturating_sub(now) / 1000
                ),
            ));
        }
        let r = self.reservations.get_mut(&id).map(Box::as_mut).expect("found above");
        let removed = self.deadlines.remove(r.expires_at, id);
        debug_assert!(removed, "active reservation without a timer");
        r.expires_at = new_deadline;
        self.deadlines.insert(new_deadline, id);
        Ok(Outcome::Reservation { reservation: r.clone(), changed: true })
    }

    pub(super) fn expire_now(&mut self, key: &ReservationKey, now: Millis) -> Result<Outcome, EngineError> {
        let id = self.find_id(key)?;
        let r = &*self.reservations[&id];
        match r.status {
            ReservationStatus::Active => {
                let r = self.finish(id, ReservationStatus::Expired, Some("EXPIRED"), now);
                Ok(Outcome::Reservation { reservation: r, changed: true })
            }
            ReservationStatus::Expired => Ok(Outcome::Reservation { reservation: r.clone(), changed: false }),
            _ => Err(status_error(r)),
        }
    }

    pub(super) fn expire_due(&mut self, retention_ms: u64, now: Millis) -> Outcome {
        // Finishing one reservation touches no other's deadline: the due entries,
        // taken at once, are the ones the earliest-first loop would take one by one.
        let due = self.deadlines.due(now);
        let mut expired = Vec::with_capacity(due.len());
        for (_, id) in due {
            expired.push(self.finish(id, ReservationStatus::Expired, Some("EXPIRED"), now));
        }
        debug_assert!(self.deadlines.due(now).is_empty());
        let cutoff = now.saturating_sub(retention_ms);
        let mut purged_orders = Vec::new();
        while let Some((at, _)) = self.finished.first() {
            if *at > cutoff {
                break;
            }
            let (_, id) = self.finished.pop_first().expect("non-empty");
            let r = self.reservations.remove(&id).expect("tracked reservation exists");
            self.by_order.remove(&r.order_id);
            self.by_id.remove(id);
            purged_orders.push(r.order_id);
        }
        let purged = purged_orders.len()
            + self.purge_adjust_keys(cutoff)
            + self.purge_movement_keys(cutoff)
            + self.purge_returns(cutoff);
        Outcome::Expired { expired, purged, purged_orders }
    }

    /// The facade settled every hold of this finished reservation on other shards:
    /// start its retention clock. Idempotent; a header that is not finished (or not
    /// here) is left alone.
    pub(super) fn holds_settled(&mut self, reservation_id: ReservationId) -> Outcome {
        let Some(r) = self.reservations.get(&reservation_id).map(Box::as_ref) else {
            return Outcome::Holds { changed: false };
        };
        let Some(at) = r.finished_at.filter(|_| r.status.is_finished()) else {
            return Outcome::Holds { changed: false };
        };
        if !self.unsettled.remove(&(at, reservation_id)) {
            return Outcome::Holds { changed: false };
        }
        self.finished.insert((at, reservation_id));
        debug_assert!(self.finished.contains(&(at, reservation_id)));
        Outcome::Holds { changed: true }
    }

    /// `sku` sharing the text of this shard's item of that SKU, if it has one: what
    /// headers and holds keep, so a reservation costs a reference count, not a copy
    /// of the request's SKU text.
    fn shared_sku(&self, sku: &Sku) -> Sku {
        self.items.get(sku).map_or_else(|| sku.clone(), |item| item.sku.clone())
    }

    // ---- item side: holds ---------------------------------------------------------

    /// The one rule of whether `lines` can be held now, and where their units would
    /// come from: what `place_hold` applies and what an availability query reports
    /// (per line). Changes nothing. Refusals in a fixed order: validation (repeated
    /// line, quantity 0, unknown named location), then missing items, then sales
    /// blocked, then per-line limits (sold room, maxPerOrder), then stock (reporting
    /// every short line).
    pub(super) fn plan_hold(
        &self,
        lines: &[(Sku, u64)],
        placement: &Placement,
    ) -> Result<OneOrMany<Allocation>, EngineError> {
        // Each line's item, looked up once per use; a one-line reservation (the
        // common one) looks its item up once in all.
        let first = lines.first().and_then(|(sku, _)| self.items.get(sku)).map(Box::as_ref);
        let item_of = |sku: &Sku| -> Option<&Item> {
            if lines.len() == 1 {
                first
            } else {
                self.items.get(sku).map(Box::as_ref)
            }
        };
        for (i, (sku, q)) in lines.iter().enumerate() {
            // Lines are few (at most MAX_LINES): a scan beats allocating a set.
            if lines[..i].iter().any(|(s, _)| s == sku) || *q == 0 {
                return Err(EngineError::validation("items", format!("{sku} repeated or quantity 0")));
            }
        }
        // A named location that is neither stocked nor a configured warehouse is a bad
        // request (checked first: validation outranks every other refusal).
        // Lines in order, so the first bad line is named (`items[i].location`, `i` its
        // place in `lines`); stock placed at a location before the table dropped it can
        // still be sold.
        for (i, (sku, _)) in lines.iter().enumerate() {
            let Some(location) = placement.location_of(sku) else { continue };
            let stocked = item_of(sku).is_some_and(|i| i.stocks(location));
            let known = self.warehouses.is_empty() || self.warehouses.iter().any(|w| &w.id == location);
            if !stocked && !known && !location.is_default() {
                return Err(EngineError::validation(
                    &format!("items[{i}].location"),
                    format!("{location} is not a configured warehouse (line {sku})"),
                ));
            }
        }
        if let Some((sku, _)) = lines.iter().find(|(sku, _)| item_of(sku).is_none()) {
            return Err(EngineError::ItemNotFound { sku: sku.to_string() });
        }
        if let Some((sku, _)) = lines.iter().find(|(sku, _)| item_of(sku).is_some_and(|i| i.sales_blocked)) {
            return Err(EngineError::SalesBlocked { sku: sku.to_string() });
        }
        for (sku, q) in lines {
            let item = item_of(sku).expect("checked above");
            // `sold` only grows: its bound is kept here, so a later commit always fits.
            item.check_sold_room(*q)?;
            if let Some(max) = item.max_per_order {
                if *q > max {
                    return Err(EngineError::MaxPerOrderExceeded {
                        sku: sku.to_string(),
                        requested: *q,
                        max_per_order: max,
                    });
                }
            }
        }
        // Kept inline while there is one (a one-line reservation from one location):
        // the hold takes it as it is, with no list on the heap.
        let mut allocations = Allocations::None;
        let mut short = Vec::new();
        for (sku, q) in lines {
            let item = item_of(sku).expect("checked above");
            let requested = placement.location_of(sku);
            let chosen = item.with_locations(|stocks| match stocks {
                // One location and none named: what `allocate` answers then, without
                // its list (every item nobody placed elsewhere).
                [only] if requested.is_none() => {
                    let available = only.available();
                    if available < *q {
                        return Err(available);
                    }
                    allocations.push(Allocation {
                        sku: item.sku.clone(),
                        location: only.location.clone(),
                        quantity: *q,
                        committed: 0,
                    });
                    Ok(())
                }
                _ => allocate(stocks, *q, requested, placement, &self.warehouses).map(|chosen| {
                    allocations.extend(chosen.into_iter().map(|(location, quantity)| Allocation {
                        sku: item.sku.clone(),
                        location,
                        quantity,
                        committed: 0,
                    }))
                }),
            });
            if let Err(available) = chosen {
                short.push(Shortfall { sku: sku.to_string(), requested: *q, available });
            }
        }
        if !short.is_empty() {
            return Err(EngineError::InsufficientInventory { items: short });
        }
        Ok(allocations.done())
    }

    pub(super) fn place_hold(
        &mut self,
        reservation_id: ReservationId,
        order_id: &OrderId,
        lines: &[(Sku, u64)],
        placement: &Placement,
        now: Millis,
        alerts: &mut Vec<StockAlert>,
    ) -> Result<Outcome, EngineError> {
        if let Some(hold) = self.holds.get(&reservation_id) {
            return Ok(Outcome::Placed { allocations: hold.allocations.to_vec(), changed: false });
        }
        let allocations = self.plan_hold(lines, placement)?;
        let placed = allocations.to_vec();
        self.hold_planned(reservation_id, order_id, lines, allocations, now, alerts);
        Ok(Outcome::Placed { allocations: placed, changed: true })
    }

    /// Applies a hold `plan_hold` planned for `lines`: reserves the units and files
    /// the hold under `reservation_id`.
    fn hold_planned(
        &mut self,
        reservation_id: ReservationId,
        order_id: &OrderId,
        lines: &[(Sku, u64)],
        allocations: OneOrMany<Allocation>,
        now: Millis,
        alerts: &mut Vec<StockAlert>,
    ) {
        for (sku, _) in lines {
            let item = self.items.get_mut(sku).map(Box::as_mut).expect("checked above");
            let before = item.available();
            for a in allocations.iter().filter(|a| &a.sku == sku) {
                let i = item.index_of(&a.location).expect("allocated from the item's locations");
                item.reserve_at(i, a.quantity);
            }
            item.touch(now);
            alerts_for(item, before, alerts);
        }
        let new = self.holds.insert(reservation_id, Hold { order_id: order_id.clone(), allocations });
        debug_assert!(new.is_none(), "a hold is placed once");
    }

    pub(super) fn release_hold(&mut self, reservation_id: ReservationId, now: Millis) -> Outcome {
        let Some(hold) = self.holds.remove(&reservation_id) else {
            return Outcome::Holds { changed: false };
        };
        for a in &hold.allocations {
            let item = self.items.get_mut(&a.sku).map(Box::as_mut).expect("held items cannot be deleted");
            let i = item.index_of(&a.location).expect("held locations cannot be removed");
            item.unreserve_at(i, a.quantity);
            item.touch(now);
        }
        Outcome::Holds { changed: true }
    }

    pub(super) fn commit_hold(
        &mut self,
        reservation_id: ReservationId,
        committed: &[(Sku, u64)],
        now: Millis,
    ) -> Outcome {
        let Some(hold) = self.holds.remove(&reservation_id) else {
            return Outcome::Holds { changed: false };
        };
        let mut done: Vec<&Sku> = Vec::new();
        for first in &hold.allocations {
            if done.contains(&&first.sku) {
                continue;
            }
            done.push(&first.sku);
            let sku = &first.sku;
            let held = hold.allocations.iter().filter(|a| &a.sku == sku);
            let total: u64 = held.clone().map(|a| a.quantity).sum();
            let c = committed.iter().find(|(s, _)| s == sku).map_or(total, |(_, c)| *c).min(total);
            let item = self.items.get_mut(sku).map(Box::as_mut).expect("held items cannot be deleted");
            for (a, sold) in held.clone().zip(committed_per_allocation(held, c)) {
                let i = item.index_of(&a.location).expect("held locations cannot be removed");
                item.sell_at(i, a.quantity, sold);
            }
            item.touch(now);
        }
        Outcome::Holds { changed: true }
    }
}
