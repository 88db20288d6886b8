//! Reservation flows of the `Engine`, across shards. See ARCHITECTURE.md, "Cross-shard
//! reservations", for why each step is ordered as it is.
//!
//! reserve: Open (home) → PlaceHold (each item shard, in parallel) → Activate (home).
//!          A failed hold rolls back: ReleaseHold on the shards that held, Abort (home).
//! commit / release / expire: transition the header (home) → CommitHold / ReleaseHold
//!          on the item shards. The header is the truth; recovery re-drives holds.

use super::items::{internal, validate_lines};
use super::stats::{Origin, ReservationOp};
use super::{await_reply, Engine};
use crate::command::ReserveLocal;
use crate::command::{Applied, Command, Outcome, Query, QueryResult};
use crate::error::{EngineError, Shortfall};
use crate::item::StockAlert;
use crate::limits::{MAX_METADATA_LEN, MAX_REASON_LEN, MIN_TTL_SECS};
use crate::location::{validate_placement, Placement};
use crate::reservation::shard_of_reservation_id;
use crate::reservation::{Reservation, ReservationKey, ReservationStatus};
use crate::routing::shard_of_sku;

/// How often a reserve is routed again when the orderId's home moves under it.
const MAX_REROUTES: usize = 16;
use crate::sku::{OrderId, Sku};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveRequest {
    pub order_id: OrderId,
    pub lines: Vec<(Sku, u64)>,
    /// Seconds to live, 1..=`EngineConfig::max_ttl_secs`; `None`:
    /// `EngineConfig::default_ttl_secs`.
    pub ttl_secs: Option<u64>,
    /// Opaque client metadata, at most 4 KiB.
    pub metadata: Option<String>,
    /// Where the units may come from: strategy, delivery region, and the lines that
    /// name their location. `Placement::default()`: by warehouse priority.
    pub placement: Placement,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveOutcome {
    pub reservation: Reservation,
    /// False when the orderId already had this reservation (an idempotent repeat).
    pub created: bool,
    pub alerts: Vec<StockAlert>,
}

/// A requested TTL (`expiresIn`) must be 1..=`max_ttl_secs` (the engine's).
pub(crate) fn validate_ttl(ttl: u64, max_ttl_secs: u64) -> Result<(), EngineError> {
    if !(MIN_TTL_SECS..=max_ttl_secs).contains(&ttl) {
        return Err(EngineError::validation(
            "expiresIn",
            format!("must be {MIN_TTL_SECS} to {max_ttl_secs} seconds, got {ttl}"),
        ));
    }
    Ok(())
}

/// Groups lines by the shard that owns their SKU, keeping request order in each group.
fn by_shard<T: Clone>(lines: &[(Sku, T)], shards: usize) -> Vec<(usize, Vec<(Sku, T)>)> {
    let mut groups: Vec<(usize, Vec<(Sku, T)>)> = Vec::new();
    for (sku, v) in lines {
        let s = shard_of_sku(sku, shards);
        match groups.iter_mut().find(|(g, _)| *g == s) {
            Some((_, g)) => g.push((sku.clone(), v.clone())),
            None => groups.push((s, vec![(sku.clone(), v.clone())])),
        }
    }
    groups
}

/// One answer for a reservation whose holds failed on several shards, independent of
/// how SKUs fall into shards: the highest-precedence error; among equals the one for
/// the earliest line; shortfalls from every shard merged in request order.
fn merge_hold_errors(errors: Vec<EngineError>, lines: &[(Sku, u64)]) -> EngineError {
    let pos = |sku: &str| lines.iter().position(|(s, _)| s.as_str() == sku).unwrap_or(usize::MAX);
    let best = errors.iter().map(EngineError::reserve_rank).min().expect("at least one error");
    let mut errors: Vec<EngineError> = errors.into_iter().filter(|e| e.reserve_rank() == best).collect();
    if let EngineError::InsufficientInventory { .. } = errors[0] {
        let mut items: Vec<Shortfall> = errors
            .into_iter()
            .flat_map(|e| match e {
                EngineError::InsufficientInventory { items } => items,
                _ => Vec::new(),
            })
            .collect();
        items.sort_by_key(|s| pos(&s.sku));
        return EngineError::InsufficientInventory { items };
    }
    errors.sort_by_key(|e| match e {
        EngineError::ItemNotFound { sku }
        | EngineError::SalesBlocked { sku }
        | EngineError::MaxPerOrderExceeded { sku, .. } => pos(sku),
        e => e.line().unwrap_or(usize::MAX),
    });
    errors.swap_remove(0)
}

/// Marks an order's reserve flow as running for as long as this guard lives.
struct LiveFlow<'a> {
    engine: &'a Engine,
    order_id: OrderId,
}

impl<'a> LiveFlow<'a> {
    fn start(engine: &'a Engine, order_id: OrderId) -> LiveFlow<'a> {
        *engine.reserving().lock().entry(order_id.clone()).or_insert(0) += 1;
        LiveFlow { engine, order_id }
    }
}

impl Drop for LiveFlow<'_> {
    fn drop(&mut self) {
        let mut live = self.engine.reserving().lock();
        if let Some(n) = live.get_mut(&self.order_id) {
            *n -= 1;
            if *n == 0 {
                live.remove(&self.order_id);
            }
        }
    }
}

impl Engine {
    /// The shard that keeps the header of the reservation named by `key`.
    fn home(&self, key: &ReservationKey) -> Result<usize, EngineError> {
        let home = match key {
            ReservationKey::Order(order) => self.orders().get(order).map(|h| *h),
            ReservationKey::Id(id) => shard_of_reservation_id(id).filter(|s| *s < self.shard_count()),
        };
        home.ok_or_else(|| EngineError::ReservationNotFound { key: key.to_string() })
    }

    /// Reserves every line for `order_id`, all or nothing. A repeated orderId with the
    /// same lines answers the original reservation (`created: false`).
    ///
    /// When one shard owns every SKU (always for a one-SKU flash-sale order) the
    /// reservation is made in one step on that shard (`ReserveLocal`: one queue hop,
    /// one group-committed record). Otherwise the cross-shard protocol runs on the
    /// coordinator, so dropping this future never leaves it half done.
    ///
    /// Counted as an [`Origin::Embedded`] call in [`Engine::outcome_stats`];
    /// [`Engine::reserve_from`] names another origin.
    pub async fn reserve(&self, req: ReserveRequest) -> Result<ReserveOutcome, EngineError> {
        self.reserve_from(Origin::Embedded, req).await
    }

    /// [`Engine::reserve`] for a caller that says where the request came from: its
    /// latency is counted under `origin` (the outcome counts are the same for all).
    pub async fn reserve_from(&self, origin: Origin, req: ReserveRequest) -> Result<ReserveOutcome, EngineError> {
        let started = std::time::Instant::now();
        let result = self.reserve_uncounted(req).await;
        self.stats().reserve_latency(origin, started.elapsed());
        self.count_reserve(&result);
        result
    }

    fn count_reserve(&self, result: &Result<ReserveOutcome, EngineError>) {
        match result {
            Ok(outcome) => {
                if outcome.created {
                    self.stats().created();
                }
                self.stats().alerts(&outcome.alerts);
            }
            Err(e) => self.stats().rejected(ReservationOp::Reserve, e),
        }
    }

    async fn reserve_uncounted(&self, req: ReserveRequest) -> Result<ReserveOutcome, EngineError> {
        validate_lines(&req.lines, 1)?;
        validate_placement(&req.placement, &req.lines)?;
        let ttl = req.ttl_secs.unwrap_or(self.config().default_ttl_secs);
        validate_ttl(ttl, self.config().max_ttl_secs)?;
        if req.metadata.as_ref().is_some_and(|m| m.len() > MAX_METADATA_LEN) {
            return Err(EngineError::validation("metadata", format!("at most {MAX_METADATA_LEN} bytes")));
        }
        let first_shard = shard_of_sku(&req.lines[0].0, self.shard_count());
        let one_shard = req.lines.iter().all(|(sku, _)| shard_of_sku(sku, self.shard_count()) == first_shard);
        // The index may move under a racing request; the shard then answers Misrouted.
        for _ in 0..MAX_REROUTES {
            let home = *self.orders().entry(req.order_id.clone()).or_insert(first_shard);
            let result = if one_shard && home == first_shard {
                let command = Command::ReserveLocal(ReserveLocal {
                    order_id: req.order_id.clone(),
                    lines: req.lines.clone(),
                    ttl_secs: ttl,
                    metadata: req.metadata.clone(),
                    placement: req.placement.clone(),
                });
                self.command(home, command).await.and_then(|applied| match applied.outcome {
                    Outcome::Reserved(reservation) => {
                        Ok(ReserveOutcome { reservation, created: true, alerts: applied.alerts })
                    }
                    Outcome::Existing(reservation) => {
                        Ok(ReserveOutcome { reservation, created: false, alerts: Vec::new() })
                    }
                    other => Err(internal(other)),
                })
            } else {
                let req = req.clone();
                self.drive(move |e| async move { e.reserve_flow(req, ttl, home).await }).await
            };
            match result {
                Err(EngineError::Misrouted) => continue,
                Err(e @ EngineError::Overloaded { .. }) => {
                    // The request may never have reached `home`, so the shard could
                    // not drop the index entry made above; ask it to (it keeps the
                    // entry if a header for the order got there after all).
                    self.forget_order(home, req.order_id.clone()).await;
                    return Err(e);
                }
                other => return other,
            }
        }
        Err(EngineError::Unavailable { reason: "the orderId's home shard kept moving; retry".into() })
    }

    /// Reserves many orders at once, for batch submitters (a checkout queue, a load
    /// balancer coalescing requests). Orders whose SKUs all live on one shard travel
    /// to it in one message and share one sync; the rest go through `reserve`. Each
    /// order is still all or nothing on its own; answers come back in request order.
    /// Counted as [`Origin::Embedded`] calls, each with the batch's latency.
    pub async fn reserve_many(&self, requests: Vec<ReserveRequest>) -> Vec<Result<ReserveOutcome, EngineError>> {
        let started = std::time::Instant::now();
        let answers = self.reserve_many_uncounted(requests).await;
        let elapsed = started.elapsed();
        // Counted once per batch (the counters are shared by every caller's thread):
        // the same figures as counting each answer on its own.
        self.stats().reserve_latency_n(Origin::Embedded, elapsed, answers.len() as u64);
        let mut created = 0;
        for a in &answers {
            match a {
                Ok(outcome) => {
                    created += u64::from(outcome.created);
                    if !outcome.alerts.is_empty() {
                        self.stats().alerts(&outcome.alerts);
                    }
                }
                Err(e) => self.stats().rejected(ReservationOp::Reserve, e),
            }
        }
        self.stats().created_n(created);
        answers
    }

    async fn reserve_many_uncounted(&self, requests: Vec<ReserveRequest>) -> Vec<Result<ReserveOutcome, EngineError>> {
        let n = self.shard_count();
        let mut answers: Vec<Option<Result<ReserveOutcome, EngineError>>> = (0..requests.len()).map(|_| None).collect();
        let mut per_shard: Vec<(Vec<usize>, Vec<Command>)> = (0..n).map(|_| (Vec::new(), Vec::new())).collect();
        let mut slow = Vec::new();
        let (default_ttl, max_ttl) = (self.config().default_ttl_secs, self.config().max_ttl_secs);
        // The shard of the last SKU routed: a batch mostly names the same few SKUs, so
        // a text comparison usually saves hashing it again.
        let mut last_route: Option<(&Sku, usize)> = None;
        for (i, req) in requests.iter().enumerate() {
            let valid = validate_lines(&req.lines, 1)
                .and_then(|_| validate_placement(&req.placement, &req.lines))
                .and_then(|_| validate_ttl(req.ttl_secs.unwrap_or(default_ttl), max_ttl))
                .and_then(|_| match &req.metadata {
                    Some(m) if m.len() > MAX_METADATA_LEN => {
                        Err(EngineError::validation("metadata", format!("at most {MAX_METADATA_LEN} bytes")))
                    }
                    _ => Ok(()),
                });
            if let Err(e) = valid {
                answers[i] = Some(Err(e));
                continue;
            }
            let sku = &req.lines[0].0;
            let first = match last_route {
                Some((last, shard)) if last == sku => shard,
                _ => shard_of_sku(sku, n),
            };
            last_route = Some((sku, first));
            let one_shard = req.lines[1..].iter().all(|(sku, _)| shard_of_sku(sku, n) == first);
            let home = *self.orders().entry(req.order_id.clone()).or_insert(first);
            if one_shard && home == first {
                let (idx, commands) = &mut per_shard[home];
                if idx.is_empty() {
                    // Sized once: most batches go to one shard or spread evenly.
                    idx.reserve(requests.len() - i);
                    commands.reserve(requests.len() - i);
                }
                idx.push(i);
                commands.push(Command::ReserveLocal(ReserveLocal {
                    order_id: req.order_id.clone(),
                    lines: req.lines.clone(),
                    ttl_secs: req.ttl_secs.unwrap_or(default_ttl),
                    metadata: req.metadata.clone(),
                    placement: req.placement.clone(),
                }));
            } else {
                slow.push(i);
            }
        }
        let mut waiting = Vec::new();
        for (shard, (idx, commands)) in per_shard.into_iter().enumerate().filter(|(_, (i, _))| !i.is_empty()) {
            match self.send_commands(shard, commands) {
                Ok(rx) => waiting.push((idx, rx)),
                Err(e) => {
                    for i in idx {
                        // Never queued: the shard cannot drop the entry made above.
                        self.forget_order(shard, requests[i].order_id.clone()).await;
                        answers[i] = Some(Err(e.clone()));
                    }
                }
            }
        }
        for (idx, rx) in waiting {
            match await_reply(rx).await {
                Ok(results) => {
                    for (i, result) in idx.into_iter().zip(results) {
                        answers[i] = Some(match result.map(|a| (a.outcome, a.alerts)) {
                            Ok((Outcome::Reserved(reservation), alerts)) => {
                                Ok(ReserveOutcome { reservation, created: true, alerts })
                            }
                            Ok((Outcome::Existing(reservation), _)) => {
                                Ok(ReserveOutcome { reservation, created: false, alerts: Vec::new() })
                            }
                            Ok((other, _)) => Err(internal(other)),
                            // Routed again one by one.
                            Err(EngineError::Misrouted) => {
                                slow.push(i);
                                continue;
                            }
                            Err(e) => Err(e),
                        });
                    }
                }
                Err(e) => idx.into_iter().for_each(|i| answers[i] = Some(Err(e.clone()))),
            }
        }
        for i in slow {
            answers[i] = Some(self.reserve_uncounted(requests[i].clone()).await);
        }
        answers.into_iter().map(|a| a.expect("every request answered")).collect()
    }

    /// The cross-shard reservation protocol with the header on `home`.
    ///
    /// Open and the holds are client requests: a full queue there answers OVERLOADED
    /// and the flow undoes what it did, so that answer means nothing happened. Once a
    /// hold is placed, every later step (activate, or the rollback: release the holds,
    /// abort the header) is a step of a flow under way (`send_step`): it uses the
    /// queues' reserved slots and is retried until applied, never dropped.
    async fn reserve_flow(&self, req: ReserveRequest, ttl: u64, home: usize) -> Result<ReserveOutcome, EngineError> {
        let n = self.shard_count();
        let open = Command::OpenReservation {
            order_id: req.order_id.clone(),
            lines: req.lines.clone(),
            ttl_secs: ttl,
            metadata: req.metadata,
        };
        // Marked before the header exists, so the reconciler never takes a PENDING
        // header of a live flow for an abandoned one.
        let _live = LiveFlow::start(self, req.order_id.clone());
        let header = match self.command(home, open).await?.outcome {
            Outcome::Opened(r) => r,
            Outcome::Existing(r) => return Ok(ReserveOutcome { reservation: r, created: false, alerts: Vec::new() }),
            other => return Err(internal(other)),
        };
        let id = header.reservation_id;

        // Place every shard's holds in parallel, then wait for all of them.
        let mut waiting = Vec::new();
        let mut errors = Vec::new();
        for (shard, lines) in by_shard(&req.lines, n) {
            let placement = req.placement.for_lines(&lines);
            let hold = Command::PlaceHold { reservation_id: id, order_id: req.order_id.clone(), lines, placement };
            match self.send_command(shard, hold) {
                Ok(rx) => waiting.push((shard, rx)),
                Err(e) => errors.push(e),
            }
        }
        // Shards that hold (or may hold: the answer was lost) stock for this order.
        let mut held = Vec::new();
        let mut alerts = Vec::new();
        let mut allocations = Vec::new();
        // A shard names a bad line by its place among the lines it was given; the
        // caller's request numbers it among all of them.
        let to_request = |shard: usize, j: usize| {
            let mine = req.lines.iter().enumerate().filter(|(_, (sku, _))| shard_of_sku(sku, n) == shard);
            mine.map(|(i, _)| i).nth(j).unwrap_or(j)
        };
        for (shard, rx) in waiting {
            match await_reply(rx).await.map_err(|e| e.renumber_line(|j| to_request(shard, j))) {
                Ok(applied) => {
                    held.push(shard);
                    alerts.extend(applied.alerts);
                    match applied.outcome {
                        Outcome::Placed { allocations: a, .. } => allocations.extend(a),
                        other => errors.push(internal(other)),
                    }
                }
                Err(e @ EngineError::Unavailable { .. }) => {
                    held.push(shard);
                    errors.push(e);
                }
                Err(e) => errors.push(e),
            }
        }

        if errors.is_empty() {
            // In request order, so the header lists its allocations as the lines go.
            allocations.sort_by_key(|a| req.lines.iter().position(|(s, _)| s == &a.sku));
            let activate = Command::ActivateReservation { reservation_id: id, allocations };
            match self.step(home, activate).await {
                Ok(Applied { outcome: Outcome::Reservation { reservation, .. }, .. }) => {
                    return Ok(ReserveOutcome { reservation, created: true, alerts })
                }
                Ok(other) => errors.push(internal(other.outcome)),
                Err(e) => errors.push(e),
            }
        }
        // Roll back: give back what was held, then forget the header. Only a stopping
        // or failed engine makes a step fail; recovery then releases the rest.
        let mut rollbacks = Vec::new();
        for shard in held {
            rollbacks.push(self.send_step(shard, Command::ReleaseHold { reservation_id: id }).await?);
        }
        for rx in rollbacks {
            await_reply(rx).await?;
        }
        self.step(home, Command::AbortReservation { reservation_id: id }).await?;
        Err(merge_hold_errors(errors, &req.lines))
    }

    /// Commits a reservation: all of it, or `quantities` of the SKUs named (the rest
    /// of those lines goes back to available). Repeating a commit answers the same.
    async fn commit_flow(
        &self,
        key: ReservationKey,
        quantities: Option<Vec<(Sku, u64)>>,
    ) -> Result<Reservation, EngineError> {
        // As when it ran on the coordinator: a stopping engine answers that first.
        self.check_open()?;
        if let Some(q) = &quantities {
            validate_lines(q, 0)?;
        }
        let home = self.home(&key)?;
        self.transition_direct(home, Command::CommitReservation { key, quantities }).await
    }

    /// Releases a reservation's stock. Releasing again, or after expiry, answers the
    /// reservation as it is; releasing a committed one is RESERVATION_COMMITTED.
    pub async fn release(&self, key: ReservationKey, reason: Option<String>) -> Result<Reservation, EngineError> {
        let result = self.release_uncounted(key, reason).await;
        self.stats().count(ReservationOp::Release, result)
    }

    async fn release_uncounted(&self, key: ReservationKey, reason: Option<String>) -> Result<Reservation, EngineError> {
        let reason = reason.unwrap_or_else(|| "RELEASED".to_owned());
        if reason.is_empty() || reason.len() > MAX_REASON_LEN {
            return Err(EngineError::validation("reason", format!("must be 1 to {MAX_REASON_LEN} bytes")));
        }
        let home = self.home(&key)?;
        self.transition_direct(home, Command::ReleaseReservation { key, reason }).await
    }

    /// Moves an ACTIVE reservation's deadline to now + `ttl_secs`, at most
    /// `EngineConfig::max_ttl_secs` after its creation (VALIDATION_ERROR `expiresIn`
    /// past it). The cap travels in the logged `ExtendReservationWithin`, so replay
    /// decides as this engine did even if a later process runs with another
    /// `max_ttl_secs`.
    pub async fn extend(&self, key: ReservationKey, ttl_secs: u64) -> Result<Reservation, EngineError> {
        let result = self.extend_uncounted(key, ttl_secs).await;
        self.stats().count(ReservationOp::Extend, result)
    }

    async fn extend_uncounted(&self, key: ReservationKey, ttl_secs: u64) -> Result<Reservation, EngineError> {
        let max_ttl_secs = self.config().max_ttl_secs;
        validate_ttl(ttl_secs, max_ttl_secs)?;
        let home = self.home(&key)?;
        let command = Command::ExtendReservationWithin { key, ttl_secs, max_ttl_secs };
        self.drive(move |e| async move { e.transition(home, command).await }).await
    }

    /// Operator action: expire an ACTIVE reservation now.
    pub async fn expire(&self, key: ReservationKey) -> Result<Reservation, EngineError> {
        let result = match self.home(&key) {
            Ok(home) => {
                self.drive(move |e| async move { e.transition(home, Command::ExpireReservation { key }).await }).await
            }
            Err(e) => Err(e),
        };
        self.stats().count(ReservationOp::Expire, result)
    }

    pub async fn get_reservation(&self, key: ReservationKey) -> Result<Reservation, EngineError> {
        let home = self.home(&key)?;
        match self.query(home, Query::GetReservation { key }).await? {
            QueryResult::Reservation(r) => Ok(r),
            _ => Err(EngineError::Unavailable { reason: "internal error: bad query answer".into() }),
        }
    }

    /// Expires every ACTIVE reservation whose deadline has passed, on every shard, and
    /// gives back their stock. Every shard's sweep and every expired reservation's
    /// holds are seen to, even when one shard fails (the first error is returned
    /// after the rest were done; the reconciler finishes what is left).
    async fn expire_due_flow(&self) -> Result<Vec<Reservation>, EngineError> {
        let retention_ms = self.config().retention_secs * 1000;
        let mut waiting = Vec::new();
        let mut first_error = None;
        for shard in 0..self.shard_count() {
            match self.send_step(shard, Command::ExpireDue { retention_ms }).await {
                Ok(rx) => waiting.push(rx),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        let mut expired = Vec::new();
        for rx in waiting {
            match await_reply(rx).await.map(|a| a.outcome) {
                Ok(Outcome::Expired { expired: e, .. }) => expired.extend(e),
                Ok(other) => {
                    first_error.get_or_insert(internal(other));
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        for r in &expired {
            if let Err(e) = self.settle_holds(r).await {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(expired),
        }
    }

    /// Commits a reservation: all of it, or `quantities` of the SKUs named (the rest
    /// of those lines goes back to available). Repeating a commit answers the same.
    pub async fn commit(
        &self,
        key: ReservationKey,
        quantities: Option<Vec<(Sku, u64)>>,
    ) -> Result<Reservation, EngineError> {
        let result = self.commit_flow(key, quantities).await;
        self.stats().count(ReservationOp::Commit, result)
    }

    /// Expires every ACTIVE reservation whose deadline has passed, on every shard, and
    /// gives back their stock. The background sweep calls this; tests call it after
    /// moving a manual clock. Returns the reservations it expired.
    pub async fn expire_due(&self) -> Result<Vec<Reservation>, EngineError> {
        self.drive(move |e| async move { e.expire_due_flow().await }).await
    }

    /// A header transition on the home shard, then the holds follow it.
    ///
    /// The transition is a client request (OVERLOADED: nothing happened). Once it is
    /// durable it is the answer, whatever happens to the steps after it: holds on
    /// other shards are settled as steps of a flow under way (reserved queue slots,
    /// retried), and if even that fails (the engine is stopping or failed) the
    /// reconciler or recovery settles them; the header is kept until they are.
    async fn transition(&self, home: usize, command: Command) -> Result<Reservation, EngineError> {
        let applied: Applied = self.command(home, command).await?;
        let (reservation, expired_on_access) = self.count_transition(applied)?;
        if let Err(e) = self.settle_holds(&reservation).await {
            tracing::warn!(reservation = %reservation.reservation_id, error = %e, "holds not settled yet; the reconciler will");
        }
        if expired_on_access {
            return Err(EngineError::ReservationExpired { reservation_id: reservation.reservation_id.to_string() });
        }
        Ok(reservation)
    }

    /// [`Engine::transition`] without the hop through the coordinator, for the
    /// caller's own task (commit and release, the hot path): the command goes
    /// straight to the home shard and its answer straight back. The shard applies a
    /// queued command whatever happens to the caller; what must follow its answer
    /// (counting the change, settling holds on other shards) is made to happen too:
    /// should the caller go away before the answer, a [`Handoff`] gives the wait and
    /// the rest to the coordinator; the settling of holds on other shards (a
    /// cross-shard reservation only) runs on the coordinator anyway.
    async fn transition_direct(&self, home: usize, command: Command) -> Result<Reservation, EngineError> {
        let rx = self.send_command(home, command)?;
        let mut handoff = Handoff { engine: self, rx: Some(rx) };
        let answer = handoff.rx.as_mut().expect("set above").await;
        handoff.rx = None; // answered: nothing left to hand off
        let applied =
            answer.map_err(|_| EngineError::Unavailable { reason: "shard stopped before answering".into() })??;
        let (reservation, expired_on_access) = self.count_transition(applied)?;
        if self.holds_elsewhere(&reservation) {
            let r = reservation.clone();
            // On the coordinator, so the holds are settled even if this caller goes away.
            let _ = self
                .drive(move |e| async move {
                    if let Err(err) = e.settle_holds(&r).await {
                        tracing::warn!(reservation = %r.reservation_id, error = %err, "holds not settled yet; the reconciler will");
                    }
                    Ok(())
                })
                .await;
        }
        if expired_on_access {
            return Err(EngineError::ReservationExpired { reservation_id: reservation.reservation_id.to_string() });
        }
        Ok(reservation)
    }

    /// Whether a finished reservation has holds on shards other than its home (which
    /// settles its own in the transition itself).
    fn holds_elsewhere(&self, r: &Reservation) -> bool {
        let home = r.reservation_id.shard();
        let n = self.shard_count();
        matches!(r.status, ReservationStatus::Committed | ReservationStatus::Released | ReservationStatus::Expired)
            && r.lines.iter().any(|l| shard_of_sku(&l.sku, n) != home)
    }

    /// Counts a transition's answer (on whichever task receives it: a caller that
    /// goes away does not lose the count of a change that was made) and returns the
    /// reservation and whether it expired on access.
    fn count_transition(&self, applied: Applied) -> Result<(Reservation, bool), EngineError> {
        Ok(match applied.outcome {
            Outcome::Reservation { reservation, changed } => {
                if changed {
                    match reservation.status {
                        ReservationStatus::Committed => self.stats().committed(),
                        ReservationStatus::Released => self.stats().released(),
                        _ => {}
                    }
                }
                (reservation, false)
            }
            Outcome::ExpiredOnAccess(r) => (r, true),
            other => return Err(internal(other)),
        })
    }

    /// Brings the holds of a finished reservation in line with its header: commit
    /// them if COMMITTED, release them if RELEASED or EXPIRED; then tells the home
    /// shard they are settled (`HoldsSettled`), which starts the header's retention.
    /// Each is a step of a flow under way (reserved queue slots, retried until
    /// applied). Idempotent, so the reconciler may run it again.
    pub(crate) async fn settle_holds(&self, r: &Reservation) -> Result<(), EngineError> {
        let n = self.shard_count();
        // The home shard settled its own holds in the same step as the transition.
        let home = r.reservation_id.shard();
        let lines: Vec<(Sku, u64)> = r.lines.iter().map(|l| (l.sku.clone(), l.committed)).collect();
        let mut waiting = Vec::new();
        for (shard, committed) in by_shard(&lines, n).into_iter().filter(|(s, _)| *s != home) {
            let id = r.reservation_id;
            let command = match r.status {
                ReservationStatus::Committed => Command::CommitHold { reservation_id: id, committed },
                ReservationStatus::Released | ReservationStatus::Expired => Command::ReleaseHold { reservation_id: id },
                ReservationStatus::Active | ReservationStatus::Pending => return Ok(()),
            };
            waiting.push(self.send_step(shard, command).await?);
        }
        if waiting.is_empty() {
            return Ok(()); // all held at home: settled in the transition itself
        }
        for rx in waiting {
            await_reply(rx).await?;
        }
        self.step(home, Command::HoldsSettled { reservation_id: r.reservation_id }).await?;
        Ok(())
    }
}

/// The wait for a transition's answer of [`Engine::transition_direct`]: dropped
/// before the answer came (the caller went away), it hands the wait, the count and
/// the settling of holds to the coordinator, as if the whole transition had run there.
struct Handoff<'a> {
    engine: &'a Engine,
    rx: Option<crate::sync::reply::ReplyReceiver<Result<Applied, EngineError>>>,
}

impl Drop for Handoff<'_> {
    fn drop(&mut self) {
        let Some(rx) = self.rx.take() else { return };
        let Some(runtime) = self.engine.coordinator() else { return };
        let engine = self.engine.clone();
        runtime.spawn(async move {
            if let Ok(Ok(applied)) = rx.await {
                if let Ok((r, _)) = engine.count_transition(applied) {
                    if engine.holds_elsewhere(&r) {
                        if let Err(e) = engine.settle_holds(&r).await {
                            tracing::warn!(reservation = %r.reservation_id, error = %e, "holds not settled yet; the reconciler will");
                        }
                    }
                }
            }
        });
    }
}
