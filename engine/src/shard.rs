//! The shard actor: one thread that owns one `ShardState` and its `CommandLog`.
//!
//! Loop: take a batch of requests from the bounded queue → apply each in order →
//! append every state change to the log → one `sync` → reply to all, in order.
//! Nothing is answered before the sync that covers it; reads in a batch are answered
//! after that sync too, so a read never shows state a crash could take back. If an
//! append or sync fails the shard is failed for good (fail-stop): it answers every
//! later request with SERVICE_UNAVAILABLE and never retries the sync.

use crate::clock::Clock;
use crate::command::Outcome;
use crate::command::{Applied, Command, Query, QueryResult};
use crate::command_log::CommandLog;
use crate::durable::{Confirmation, ShippedRecord, CONFIRM_TIMEOUT, STALLED_POLL};
use crate::engine::OrderIndex;
use crate::error::EngineError;
use crate::limits::MAX_BATCH;
use crate::shard_state::ShardState;
use crate::sku::OrderId;
use crate::sync::queue::{BoundedQueue, PushError};
use crate::sync::reply::ReplySender;
use crate::sync::thread::{spawn_named, JoinHandle};
use crate::Millis;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

pub type Reply<T> = ReplySender<Result<T, EngineError>>;

/// A message to a shard. Public for loom-tests/, which drive a real shard loop.
#[doc(hidden)]
pub enum Request {
    Command {
        command: Command,
        reply: Reply<Applied>,
    },
    Query {
        query: Query,
        reply: Reply<QueryResult>,
    },
    /// Many commands in one message (batch submitters): applied in order, covered by
    /// the same sync, answered together.
    Commands {
        commands: Vec<Command>,
        reply: Reply<Vec<Result<Applied, EngineError>>>,
    },
    /// A copy of the whole state (tests, snapshots, invariant checks).
    Clone {
        reply: Reply<ShardState>,
    },
    /// Drop the orderId index entry that names this shard if the shard has no header
    /// for the order: sent when a reserve put the entry in but could not queue its
    /// command (a full queue), so the entry does not outlive the request. Queued
    /// behind whatever that order already has here, so a header in flight is kept.
    ForgetOrder {
        order_id: OrderId,
    },
    /// Records a leader shipped, applied in LSN order by a standby
    /// (`durable::replication`); answers the last LSN applied.
    Replicated {
        records: Vec<ShippedRecord>,
        reply: Reply<u64>,
    },
}

/// What other threads may read about a shard without asking it.
#[derive(Debug, Default)]
pub struct ShardStatus {
    pub durable_lsn: AtomicU64,
    pub failed: AtomicBool,
    pub applied: AtomicU64,
    pub batches: AtomicU64,
    /// Records appended to the log, and syncs that covered them: their ratio is the
    /// mean group-commit batch size.
    pub logged: AtomicU64,
    pub syncs: AtomicU64,
    /// ACTIVE reservations whose header this shard keeps (a gauge).
    pub active_reservations: AtomicU64,
    /// Reservations this shard's headers saw expire (sweep, on access, operator).
    pub expired: AtomicU64,
    /// WAL sync latency: counts per bucket of `SYNC_BUCKETS_MICROS` (last = +Inf),
    /// and the total in microseconds.
    pub sync_buckets: [AtomicU64; SYNC_BUCKETS_MICROS.len() + 1],
    pub sync_micros_total: AtomicU64,
    /// Why the shard stopped acknowledging, once it has.
    pub failure: parking_lot::Mutex<Option<String>>,
    /// Why the replicated log has not confirmed this shard's last batch, while it has
    /// not (`durable::replication`): answers are held back until it does.
    pub stalled: parking_lot::Mutex<Option<String>>,
}

/// The reason inside an error, without the "engine unavailable:" prefix it will get
/// again when the failure is reported.
fn reason_of(e: EngineError) -> String {
    match e {
        EngineError::Unavailable { reason } => reason,
        other => other.to_string(),
    }
}

/// Upper bounds, in microseconds, of the WAL sync latency buckets.
pub const SYNC_BUCKETS_MICROS: [u64; 12] =
    [50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000];

impl ShardStatus {
    fn observe_sync(&self, micros: u64) {
        let i = SYNC_BUCKETS_MICROS.iter().position(|b| micros <= *b).unwrap_or(SYNC_BUCKETS_MICROS.len());
        self.sync_buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sync_micros_total.fetch_add(micros, Ordering::Relaxed);
    }
}

/// A running shard: its queue, live status and thread. Public for loom-tests/.
#[doc(hidden)]
pub struct ShardHandle {
    pub queue: Arc<BoundedQueue<Request>>,
    pub status: Arc<ShardStatus>,
    pub thread: parking_lot::Mutex<Option<JoinHandle<()>>>,
}

/// What every shard of one engine shares: its queue capacity, clock, failure and
/// standby flags, and the orderId index.
#[derive(Clone)]
pub struct ShardShared {
    pub capacity: QueueCapacity,
    pub clock: Arc<dyn Clock>,
    /// Set when a shard's log failed: the engine refuses writes.
    pub engine_failed: Arc<AtomicBool>,
    pub orders: Arc<OrderIndex>,
    /// The engine's standby flag (`durable::replication`): while it is set the shard
    /// refuses commands (NOT_LEADER) and applies replicated records.
    pub standby: Arc<AtomicBool>,
}

impl ShardHandle {
    /// Starts shard `index` on `state` (recovered up to `log`'s durable LSN; its
    /// clock floor `last_now`), with what the engine's shards share.
    pub fn spawn(
        index: usize,
        state: ShardState,
        log: Box<dyn CommandLog>,
        last_now: Millis,
        shared: &ShardShared,
    ) -> ShardHandle {
        let ShardShared { capacity, clock, engine_failed, orders, standby } = shared.clone();
        let queue = Arc::new(BoundedQueue::with_reserve(capacity.client, capacity.reserved));
        let rx = queue.clone();
        let status = Arc::new(ShardStatus::default());
        status.durable_lsn.store(log.durable_lsn(), Ordering::Release);
        let st = status.clone();
        let thread = spawn_named(format!("stockd-shard-{index}"), move || {
            let _exit = OnExit { queue: &rx, status: st.clone(), engine_failed: engine_failed.clone() };
            let applied_lsn = log.durable_lsn();
            ShardLoop {
                state,
                log,
                clock,
                status: st,
                failure: None,
                last_now,
                engine_failed,
                orders,
                standby,
                stalled: None,
                applied_lsn,
            }
            .run(&rx)
        });
        ShardHandle { queue, status, thread: parking_lot::Mutex::new(Some(thread)) }
    }

    /// Queues a client request; a full queue is refused at once (explicit
    /// backpressure).
    pub fn send(&self, index: usize, request: Request) -> Result<(), EngineError> {
        self.queue.try_push(request).map_err(|e| push_error(index, e))
    }

    /// Queues a step of a flow already under way, using the queue's reserved slots.
    /// `Full` only when those are full too: the caller retries (every such step is
    /// idempotent), it never drops the step.
    #[allow(clippy::result_large_err)] // hands the request back to retry, unboxed
    pub fn send_reserved(&self, request: Request) -> Result<(), PushError<Request>> {
        self.queue.try_push_reserved(request)
    }

    /// Stops the shard once it has answered (and synced) everything queued before.
    pub fn stop(&self) {
        self.queue.close();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

/// Runs when a shard thread ends. After a normal stop the queue is closed and empty
/// already. After a panic (a bug) it closes the queue and drops what is left in it, so
/// every caller waiting on this shard gets an answer (SERVICE_UNAVAILABLE) and every
/// later push is refused, instead of a step retried and awaited forever; and it fails
/// the engine, whose state on this shard is lost.
struct OnExit<'a> {
    queue: &'a BoundedQueue<Request>,
    status: Arc<ShardStatus>,
    engine_failed: Arc<AtomicBool>,
}

impl Drop for OnExit<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            *self.status.failure.lock() = Some("a shard thread stopped on an internal error".into());
            self.status.failed.store(true, Ordering::Release);
            self.engine_failed.store(true, Ordering::Release);
        }
        self.queue.close();
        let mut left = Vec::new();
        while self.queue.pop_batch(&mut left, MAX_BATCH) {
            left.clear(); // dropping a request drops its reply: the caller is answered
        }
    }
}

fn push_error<T>(index: usize, e: PushError<T>) -> EngineError {
    match e {
        PushError::Full(_) => EngineError::Overloaded { shard: index },
        PushError::Closed(_) => EngineError::Unavailable { reason: "engine is shut down".into() },
    }
}

/// The order a command creates a reservation header for, if it does.
fn opening_of(command: &Command) -> Option<&OrderId> {
    match command {
        Command::OpenReservation { order_id, .. }
        | Command::ReserveLocal(crate::command::ReserveLocal { order_id, .. }) => Some(order_id),
        _ => None,
    }
}

/// The two capacity classes of a shard's queue (see `sync::queue`): client requests
/// fill at most `client` slots; steps of flows under way may use `reserved` more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueCapacity {
    pub client: usize,
    pub reserved: usize,
}

impl QueueCapacity {
    /// `client` slots for clients and a quarter as many (at least one) reserved.
    pub fn for_clients(client: usize) -> QueueCapacity {
        QueueCapacity { client, reserved: (client / 4).max(1) }
    }
}

enum Answer {
    Command(Reply<Applied>, Result<Applied, EngineError>),
    Commands(Reply<Vec<Result<Applied, EngineError>>>, Vec<Result<Applied, EngineError>>),
    Query(Reply<QueryResult>, Result<QueryResult, EngineError>),
    Clone(Reply<ShardState>, Box<ShardState>),
    Replicated(Reply<u64>, Result<u64, EngineError>),
}

struct ShardLoop {
    state: ShardState,
    log: Box<dyn CommandLog>,
    clock: Arc<dyn Clock>,
    status: Arc<ShardStatus>,
    failure: Option<String>,
    last_now: Millis,
    /// Set by whichever shard fails first: one failed log stops the whole engine,
    /// since every shard's log lives on the same disk.
    engine_failed: Arc<AtomicBool>,
    /// The facade's orderId → home index, which this shard keeps true for the
    /// headers it owns (see `engine::OrderIndex`).
    orders: Arc<OrderIndex>,
    /// Set while the engine is a standby (`durable::replication`).
    standby: Arc<AtomicBool>,
    /// Why the replicated log has not confirmed this shard's last batch: until it
    /// does, nothing is applied or answered (every answer is SERVICE_UNAVAILABLE).
    stalled: Option<String>,
    /// The last LSN appended to the log (synced or about to be).
    applied_lsn: u64,
}

impl ShardLoop {
    fn run(mut self, queue: &BoundedQueue<Request>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut answers = Vec::with_capacity(MAX_BATCH);
        while queue.pop_batch(&mut batch, MAX_BATCH) {
            // Time never runs backwards inside a shard, whatever the wall clock does.
            let now = self.clock.now().max(self.last_now);
            self.last_now = now;
            self.check_engine();
            if self.stalled.is_some() && self.failure.is_none() {
                let confirmation = self.log.confirm(STALLED_POLL);
                self.take_confirmation(confirmation);
            }
            let mut appended = false;
            for request in batch.drain(..) {
                match request {
                    Request::Command { command, reply } => {
                        let result = self.apply(&command, now, &mut appended);
                        answers.push(Answer::Command(reply, result));
                    }
                    Request::Commands { commands, reply } => {
                        let results = commands.iter().map(|c| self.apply(c, now, &mut appended)).collect();
                        answers.push(Answer::Commands(reply, results));
                    }
                    Request::Query { query, reply } => answers.push(Answer::Query(reply, self.state.query(&query))),
                    Request::Clone { reply } => answers.push(Answer::Clone(reply, Box::new(self.state.clone()))),
                    Request::ForgetOrder { order_id } => {
                        if !self.state.has_order(&order_id) {
                            self.orders.remove_if(&order_id, |_, home| *home == self.state.shard());
                        }
                    }
                    Request::Replicated { records, reply } => {
                        let result = self.apply_replicated(&records, &mut appended);
                        answers.push(Answer::Replicated(reply, result));
                    }
                }
            }
            if appended && self.failure.is_none() {
                self.status.syncs.fetch_add(1, Ordering::Relaxed);
                let started = std::time::Instant::now();
                let synced = self.log.sync();
                self.status.observe_sync(started.elapsed().as_micros() as u64);
                if let Err(e) = synced {
                    tracing::error!(shard = self.state.shard(), error = %e, "WAL sync failed; engine stops acknowledging");
                    self.fail(reason_of(e));
                }
                self.status.durable_lsn.store(self.log.durable_lsn(), Ordering::Release);
                if self.failure.is_none() {
                    let confirmation = self.log.confirm(CONFIRM_TIMEOUT);
                    self.take_confirmation(confirmation);
                }
                if self.failure.is_none() {
                    self.log.after_sync(&self.state);
                }
            }
            self.status.batches.fetch_add(1, Ordering::Relaxed);
            self.status.active_reservations.store(self.state.active_reservations() as u64, Ordering::Relaxed);
            self.reply_all(&mut answers);
        }
        // Closed and drained: everything accepted was answered after its sync.
        self.log.finish();
    }

    fn fail(&mut self, reason: String) {
        *self.status.failure.lock() = Some(reason.clone());
        self.failure = Some(reason);
        self.status.failed.store(true, Ordering::Release);
        self.engine_failed.store(true, Ordering::Release);
    }

    /// Acts on what the replicated log said of everything appended so far.
    fn take_confirmation(&mut self, confirmation: Confirmation) {
        match confirmation {
            Confirmation::Confirmed => {
                if self.stalled.take().is_some() {
                    tracing::info!(shard = self.state.shard(), "replication confirmed again; acknowledging");
                    *self.status.stalled.lock() = None;
                }
            }
            Confirmation::Pending(reason) => {
                if self.stalled.is_none() {
                    tracing::warn!(shard = self.state.shard(), %reason, "replication not confirmed; not acknowledging");
                }
                *self.status.stalled.lock() = Some(reason.clone());
                self.stalled = Some(reason);
            }
            Confirmation::Fenced(reason) => {
                tracing::error!(shard = self.state.shard(), %reason, "fenced by a new leader; engine stops acknowledging");
                self.stalled = None;
                *self.status.stalled.lock() = None;
                self.fail(format!("fenced: {reason}"));
            }
        }
    }

    /// Applies records a leader shipped (a standby), in LSN order, through the same
    /// replay step as recovery, and appends each at the same LSN. A record at or below
    /// the last applied LSN was applied already; a gap, a record that fails to apply
    /// or a local LSN out of step is divergence: the engine stops for good.
    fn apply_replicated(&mut self, records: &[ShippedRecord], appended: &mut bool) -> Result<u64, EngineError> {
        if let Some(reason) = &self.failure {
            return Err(EngineError::Unavailable { reason: reason.clone() });
        }
        if !self.standby.load(Ordering::Acquire) {
            return Err(EngineError::Unavailable { reason: "replicated records reach a standby only".into() });
        }
        for record in records {
            if record.lsn <= self.applied_lsn {
                continue;
            }
            if let Err(reason) = self.apply_one_replicated(record, appended) {
                tracing::error!(shard = self.state.shard(), lsn = record.lsn, %reason, "replica diverged; engine stops");
                self.fail(reason.clone());
                return Err(EngineError::Unavailable { reason });
            }
        }
        Ok(self.applied_lsn)
    }

    fn apply_one_replicated(&mut self, record: &ShippedRecord, appended: &mut bool) -> Result<(), String> {
        if record.lsn != self.applied_lsn + 1 {
            return Err(format!("replicated log jumps from LSN {} to {}", self.applied_lsn, record.lsn));
        }
        let logged = crate::durable::decode_record(record.record_type, &record.payload)
            .map_err(|e| format!("replicated record {}: {e}", record.lsn))?;
        self.last_now = self.last_now.max(logged.now);
        let command = &logged.command;
        let opening = opening_of(command);
        let result = logged.apply_to(&mut self.state);
        if let (Ok(_), Some(order)) = (&result, opening) {
            self.orders.insert(order.clone(), self.state.shard());
        }
        self.update_index(command, opening, &result);
        result.map_err(|e| format!("replicated record {} ({}) failed to apply: {e}", record.lsn, command.kind()))?;
        self.status.applied.fetch_add(1, Ordering::Relaxed);
        self.status.logged.fetch_add(1, Ordering::Relaxed);
        *appended = true;
        self.log.append_replica(record.lsn, logged.now, command).map_err(reason_of)?;
        self.applied_lsn = record.lsn;
        Ok(())
    }

    /// Adopts another shard's failure: once any log failed, nobody acknowledges.
    fn check_engine(&mut self) {
        if self.failure.is_none() && self.engine_failed.load(Ordering::Acquire) {
            let reason = "another shard's write-ahead log failed; the engine stopped acknowledging".to_string();
            *self.status.failure.lock() = Some(reason.clone());
            self.failure = Some(reason);
            self.status.failed.store(true, Ordering::Release);
        }
    }

    fn apply(&mut self, command: &Command, now: Millis, appended: &mut bool) -> Result<Applied, EngineError> {
        if let Some(reason) = &self.failure {
            return Err(EngineError::Unavailable { reason: reason.clone() });
        }
        if let Some(reason) = &self.stalled {
            return Err(EngineError::Unavailable { reason: format!("replication unavailable: {reason}") });
        }
        let opening = opening_of(command);
        if self.standby.load(Ordering::Acquire) {
            // The facade put the order in the index before sending: take it out again.
            self.update_index(command, opening, &Err(EngineError::NotLeader));
            return Err(EngineError::NotLeader);
        }
        if let Some(order) = opening {
            // A header may only be created where the index says its order lives.
            if self.orders.get(order).map(|home| *home) != Some(self.state.shard()) {
                return Err(EngineError::Misrouted);
            }
        }
        let result = self.log.admit(command).and_then(|()| self.state.apply(command, now));
        self.update_index(command, opening, &result);
        let applied = result?;
        self.status.applied.fetch_add(1, Ordering::Relaxed);
        let expired = match &applied.outcome {
            Outcome::Expired { expired, .. } => expired.len() as u64,
            Outcome::ExpiredOnAccess(_) => 1,
            Outcome::Reservation { reservation, changed: true }
                if reservation.status == crate::reservation::ReservationStatus::Expired =>
            {
                1
            }
            _ => 0,
        };
        if expired > 0 {
            self.status.expired.fetch_add(expired, Ordering::Relaxed);
        }
        if applied.changed {
            *appended = true;
            self.status.logged.fetch_add(1, Ordering::Relaxed);
            match self.log.append(now, command) {
                Ok(()) => self.applied_lsn += 1,
                Err(e) => {
                    // The state is now ahead of the log: stop answering for good.
                    tracing::error!(shard = self.state.shard(), error = %e, "WAL append failed; engine stops acknowledging");
                    self.fail(reason_of(e));
                }
            }
        }
        Ok(applied)
    }

    /// Drops index entries that point here for orders this shard no longer (or never)
    /// had a header for: after a failed open, an abort, or a retention purge.
    fn update_index(&self, command: &Command, opening: Option<&OrderId>, result: &Result<Applied, EngineError>) {
        let forget = |order: &OrderId| {
            if !self.state.has_order(order) {
                self.orders.remove_if(order, |_, home| *home == self.state.shard());
            }
        };
        match (result, command) {
            (Err(_), _) => {
                if let Some(order) = opening {
                    forget(order);
                }
            }
            (Ok(a), Command::AbortReservation { .. }) => {
                if let Outcome::Reservation { reservation, changed: true } = &a.outcome {
                    forget(&reservation.order_id);
                }
            }
            (Ok(a), Command::ExpireDue { .. }) => {
                if let Outcome::Expired { purged_orders, .. } = &a.outcome {
                    purged_orders.iter().for_each(forget);
                }
            }
            _ => {}
        }
    }

    fn reply_all(&mut self, answers: &mut Vec<Answer>) {
        self.check_engine();
        let failed = match (&self.failure, &self.stalled) {
            (Some(reason), _) => Some(EngineError::Unavailable { reason: reason.clone() }),
            (None, Some(reason)) => {
                Some(EngineError::Unavailable { reason: format!("replication unavailable: {reason}") })
            }
            (None, None) => None,
        };
        for answer in answers.drain(..) {
            // A dropped receiver (caller gave up) is not an error for the shard.
            match answer {
                Answer::Command(reply, result) => {
                    reply.send(failed.clone().map_or(result, Err));
                }
                Answer::Commands(reply, results) => {
                    reply.send(failed.clone().map_or(Ok(results), Err));
                }
                Answer::Query(reply, result) => {
                    reply.send(failed.clone().map_or(result, Err));
                }
                Answer::Clone(reply, state) => {
                    reply.send(failed.clone().map_or(Ok(*state), Err));
                }
                Answer::Replicated(reply, result) => {
                    reply.send(failed.clone().map_or(result, Err));
                }
            }
        }
    }
}
