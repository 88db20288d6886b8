//! The shard actor: one thread that owns one `ShardState` and its `CommandLog`, and,
//! for a log that syncs on another thread (`CommandLog::syncer`: the WAL), a syncer
//! thread of its own.
//!
//! Loop: take a batch of requests from the bounded queue → apply each in order →
//! append every state change to the log → hand the batch's answers to the syncer →
//! take the next batch. The syncer (pipelined group commit) takes every batch handed
//! to it so far (and, when requests were already queued behind the last one, waits
//! for the shard's next batch, up to `MAX_COALESCED_BATCHES`), makes everything
//! appended durable with one `sync` (the WAL ships the records to the replicator
//! first, writes and fdatasyncs them) and, replicated, one `confirm`, and only then
//! releases those batches' answers, in order. So while
//! batch N is being synced (and confirmed), the shard applies and appends batch N+1;
//! the hand-off holds at most `PIPELINE_DEPTH` batches, after which the shard waits
//! (and clients meet a full queue: OVERLOADED, nothing done). Nothing is answered
//! before the sync that covers it and every record appended before it; reads and
//! refusals are answered after that sync too, so an answer never shows state a crash
//! could take back. A log without a syncer (the in-memory `NoLog`, a WAL with
//! `Durability::None` and no replicator) is synced on the shard thread after each
//! batch, with the same rules. If an append or sync fails the shard is failed for
//! good (fail-stop): it answers every later request, and every batch not yet
//! answered, with SERVICE_UNAVAILABLE and never retries the sync.

use crate::clock::Clock;
use crate::command::Outcome;
use crate::command::{Applied, Command, Query, QueryResult};
use crate::command_log::{CommandLog, LogSyncer};
use crate::durable::{Confirmation, ShippedRecord, CONFIRM_TIMEOUT, STALLED_POLL};
use crate::engine::OrderIndex;
use crate::error::EngineError;
use crate::limits::MAX_BATCH;
use crate::shard_state::ShardState;
use crate::sku::OrderId;
use crate::sync::handoff::Handoff;
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
            let mut log = log;
            let applied_lsn = log.durable_lsn();
            let committer = Committer {
                shard: state.shard(),
                status: st.clone(),
                engine_failed: engine_failed.clone(),
                failure: None,
                stalled: None,
            };
            let commit = match log.syncer() {
                Some(syncer) => Commit::Piped(Pipe::spawn(index, committer, syncer, rx.clone())),
                None => Commit::Inline(committer),
            };
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
                commit,
                durable_seen: applied_lsn,
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

    /// Stops the shard once it has answered (and synced) everything queued before; its
    /// syncer thread has stopped too when this returns.
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

/// How many batches the shard may hand to its syncer beyond the one being synced:
/// the shard runs at most this far ahead of the disk (and of the replicated log).
pub const PIPELINE_DEPTH: usize = 2;

/// The most batches one sync waits for (see `Job::Batch::more`): bounds the latency
/// a busy shard adds to the first batch of a sync.
pub const MAX_COALESCED_BATCHES: usize = 4;

/// From a shard thread to its syncer, in order.
enum Job {
    /// A batch's answers. `sync`: the batch appended records, which must be durable
    /// (and confirmed) before its answers, or any later one, are released. `more`:
    /// requests were already queued behind it, so the shard's next batch is on its
    /// way: the syncer waits for it (up to `MAX_COALESCED_BATCHES`) so that one sync
    /// covers both, as the shard's own batching did before the pipeline (with a few
    /// closed-loop clients, syncing eagerly would halve the records per sync).
    Batch { answers: Vec<Answer>, sync: bool, more: bool },
    /// The shard is stalled: ask the replicated log again before its next batch.
    Poll,
}

/// Decides what a batch's answers become once their sync is done: the shard's view of
/// its log's durable outcome (failed, stalled). Owned by the syncer thread (pipelined)
/// or the shard thread (inline); either way it publishes to `ShardStatus`, where the
/// shard thread reads it back before each batch.
struct Committer {
    shard: usize,
    status: Arc<ShardStatus>,
    engine_failed: Arc<AtomicBool>,
    failure: Option<String>,
    stalled: Option<String>,
}

/// Records the shard's failure for everyone: its status and the whole engine.
fn publish_failure(status: &ShardStatus, engine_failed: &AtomicBool, reason: &str) {
    *status.failure.lock() = Some(reason.to_string());
    status.failed.store(true, Ordering::Release);
    engine_failed.store(true, Ordering::Release);
}

/// Adopts a failure found elsewhere: this shard's other thread, or another shard
/// (once any log failed, nobody acknowledges).
fn adopt_failure(status: &ShardStatus, engine_failed: &AtomicBool, failure: &mut Option<String>) {
    if failure.is_some() {
        return;
    }
    if status.failed.load(Ordering::Acquire) {
        *failure = Some(status.failure.lock().clone().unwrap_or_else(|| "the shard's log failed".into()));
    } else if engine_failed.load(Ordering::Acquire) {
        let reason = "another shard's write-ahead log failed; the engine stopped acknowledging".to_string();
        *status.failure.lock() = Some(reason.clone());
        status.failed.store(true, Ordering::Release);
        *failure = Some(reason);
    }
}

impl Committer {
    fn fail(&mut self, reason: String) {
        publish_failure(&self.status, &self.engine_failed, &reason);
        self.failure = Some(reason);
    }

    /// Makes everything appended so far durable (one sync), then asks the replicated
    /// log to confirm it (one confirm).
    fn commit(&mut self, log: &mut dyn LogSyncer) {
        adopt_failure(&self.status, &self.engine_failed, &mut self.failure);
        if self.failure.is_some() {
            return;
        }
        self.status.syncs.fetch_add(1, Ordering::Relaxed);
        let started = std::time::Instant::now();
        let synced = log.sync();
        self.status.observe_sync(started.elapsed().as_micros() as u64);
        match synced {
            Ok(lsn) => self.status.durable_lsn.store(lsn, Ordering::Release),
            Err(e) => {
                tracing::error!(shard = self.shard, error = %e, "WAL sync failed; engine stops acknowledging");
                self.fail(reason_of(e));
                return;
            }
        }
        let confirmation = log.confirm(CONFIRM_TIMEOUT);
        self.take_confirmation(confirmation);
    }

    /// A stalled shard asks the replicated log again.
    fn poll(&mut self, log: &mut dyn LogSyncer) {
        if self.stalled.is_some() && self.failure.is_none() {
            let confirmation = log.confirm(STALLED_POLL);
            self.take_confirmation(confirmation);
        }
    }

    /// Acts on what the replicated log said of everything synced so far.
    fn take_confirmation(&mut self, confirmation: Confirmation) {
        match confirmation {
            Confirmation::Confirmed => {
                if self.stalled.take().is_some() {
                    tracing::info!(shard = self.shard, "replication confirmed again; acknowledging");
                    *self.status.stalled.lock() = None;
                }
            }
            Confirmation::Pending(reason) => {
                if self.stalled.is_none() {
                    tracing::warn!(shard = self.shard, %reason, "replication not confirmed; not acknowledging");
                }
                *self.status.stalled.lock() = Some(reason.clone());
                self.stalled = Some(reason);
            }
            Confirmation::Fenced(reason) => {
                tracing::error!(shard = self.shard, %reason, "fenced by a new leader; engine stops acknowledging");
                self.stalled = None;
                *self.status.stalled.lock() = None;
                self.fail(format!("fenced: {reason}"));
            }
        }
    }

    /// Sends a batch's answers, in order: as computed if every record appended so far
    /// is durable and confirmed, SERVICE_UNAVAILABLE if the log failed or is stalled.
    fn release(&mut self, answers: &mut Vec<Answer>) {
        adopt_failure(&self.status, &self.engine_failed, &mut self.failure);
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

/// A log synced on the shard thread, seen as a `LogSyncer`.
struct Inline<'a>(&'a mut dyn CommandLog);

impl LogSyncer for Inline<'_> {
    fn sync(&mut self) -> Result<u64, EngineError> {
        self.0.sync().map(|()| self.0.durable_lsn())
    }

    fn confirm(&mut self, timeout: std::time::Duration) -> Confirmation {
        self.0.confirm(timeout)
    }
}

/// How a shard's batches are made durable and answered.
enum Commit {
    /// On the shard thread, after each batch (a log without a syncer).
    Inline(Committer),
    /// On the shard's syncer thread, while the shard goes on (pipelined).
    Piped(Pipe),
}

/// The shard's side of its syncer thread.
struct Pipe {
    handoff: Arc<Handoff<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Pipe {
    fn spawn(
        index: usize,
        committer: Committer,
        syncer: Box<dyn LogSyncer>,
        requests: Arc<BoundedQueue<Request>>,
    ) -> Pipe {
        let handoff = Arc::new(Handoff::new(PIPELINE_DEPTH));
        let rx = handoff.clone();
        let thread =
            spawn_named(format!("stockd-sync-{index}"), move || syncer_loop(&rx, committer, syncer, &requests));
        Pipe { handoff, thread: Some(thread) }
    }

    /// Hands a batch to the syncer, waiting while `PIPELINE_DEPTH` batches wait.
    fn send(&self, job: Job) {
        // Closed only when the syncer thread stopped on an internal error: dropping
        // the answers answers their callers (SERVICE_UNAVAILABLE).
        let _ = self.handoff.push(job);
    }

    /// Lets the syncer finish everything handed to it, and joins it.
    fn finish(&mut self) {
        self.handoff.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        // After a panic of the shard thread: the syncer drains and stops by itself.
        self.handoff.close();
    }
}

/// The syncer thread: takes every batch handed over so far, makes them durable with
/// one sync (+ one confirm), releases their answers in order.
fn syncer_loop(
    handoff: &Handoff<Job>,
    mut committer: Committer,
    mut log: Box<dyn LogSyncer>,
    requests: &BoundedQueue<Request>,
) {
    struct OnSyncerExit<'a>(&'a Handoff<Job>, Arc<ShardStatus>, Arc<AtomicBool>);
    impl Drop for OnSyncerExit<'_> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                publish_failure(&self.1, &self.2, "a shard's syncer thread stopped on an internal error");
            }
            // The shard never waits on a syncer that is gone.
            self.0.close();
            self.0.done();
        }
    }
    let _exit = OnSyncerExit(handoff, committer.status.clone(), committer.engine_failed.clone());
    let mut jobs = Vec::with_capacity(PIPELINE_DEPTH + 1);
    while handoff.pop_all(&mut jobs) {
        // The shard's next batch is coming (requests were queued behind the last one
        // handed over, or are queued now: clients the last round answered, back
        // already): take it into this sync too, so those clients do not fall into a
        // cohort of their own one sync behind. Every request queued makes the shard
        // hand over one more batch, so this wait ends. Never after a poll: the shard
        // waits for that to be done.
        while jobs.len() < MAX_COALESCED_BATCHES
            && match jobs.last() {
                Some(Job::Batch { more, .. }) => *more || !requests.is_empty(),
                _ => false,
            }
            && handoff.pop_more(&mut jobs)
        {}
        // Every record of these batches was appended before its batch was handed
        // over: one sync now covers them all.
        if jobs.iter().any(|j| matches!(j, Job::Batch { sync: true, .. })) {
            committer.commit(&mut *log);
        }
        for job in jobs.drain(..) {
            match job {
                Job::Batch { mut answers, .. } => committer.release(&mut answers),
                Job::Poll => committer.poll(&mut *log),
            }
        }
        log.housekeeping();
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
    /// Where batches go to be made durable and answered.
    commit: Commit,
    /// The durable LSN the last `after_sync` saw (pipelined).
    durable_seen: u64,
}

impl ShardLoop {
    fn run(mut self, queue: &BoundedQueue<Request>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while queue.pop_batch(&mut batch, MAX_BATCH) {
            // Time never runs backwards inside a shard, whatever the wall clock does.
            let now = self.clock.now().max(self.last_now);
            self.last_now = now;
            self.refresh();
            if self.stalled.is_some() && self.failure.is_none() {
                self.poll();
                self.refresh();
            }
            self.after_sync();
            let mut appended = false;
            let mut answers = Vec::with_capacity(batch.len());
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
            self.status.batches.fetch_add(1, Ordering::Relaxed);
            self.status.active_reservations.store(self.state.active_reservations() as u64, Ordering::Relaxed);
            // Requests already queued behind this batch: the syncer may wait for the next.
            let more = matches!(self.commit, Commit::Piped(_)) && !queue.is_empty();
            self.commit(answers, appended, more);
        }
        // Closed and drained: everything accepted was answered after its sync.
        if let Commit::Piped(pipe) = &mut self.commit {
            pipe.finish();
            // The syncs of the last batches happened after their `after_sync` chance:
            // a snapshot they made due starts now (and `finish` waits for it).
            self.refresh();
            self.after_sync();
        }
        self.log.finish();
    }

    /// Makes the batch durable and answers it: on the spot (inline), or by handing it
    /// to the syncer thread, which answers once its sync (and confirmation) is done.
    fn commit(&mut self, mut answers: Vec<Answer>, appended: bool, more: bool) {
        match &mut self.commit {
            Commit::Inline(committer) => {
                if appended {
                    committer.commit(&mut Inline(&mut *self.log));
                    adopt_failure(&self.status, &self.engine_failed, &mut self.failure);
                    if self.failure.is_none() {
                        self.log.after_sync(&self.state);
                    }
                }
                committer.release(&mut answers);
            }
            Commit::Piped(pipe) => pipe.send(Job::Batch { answers, sync: appended, more }),
        }
    }

    /// A stalled shard asks the replicated log again (`STALLED_POLL`) before it takes
    /// a batch; pipelined, the syncer asks, once everything handed to it is done.
    fn poll(&mut self) {
        match &mut self.commit {
            Commit::Inline(committer) => committer.poll(&mut Inline(&mut *self.log)),
            Commit::Piped(pipe) => {
                pipe.send(Job::Poll);
                pipe.handoff.wait_idle();
            }
        }
    }

    /// Pipelined: lets the log act on syncs the syncer finished since the last batch
    /// (snapshots, retention). The state it sees may be ahead of the durable LSN; a
    /// snapshot is rebuilt from the WAL at that LSN, never copied from here.
    fn after_sync(&mut self) {
        if !matches!(self.commit, Commit::Piped(_)) || self.failure.is_some() {
            return;
        }
        let durable = self.status.durable_lsn.load(Ordering::Acquire);
        if durable > self.durable_seen {
            self.durable_seen = durable;
            self.log.after_sync(&self.state);
        }
    }

    /// Reads back what the log's committer published: a failure (this shard's syncer,
    /// or any shard of the engine) and whether the replicated log stalled.
    fn refresh(&mut self) {
        adopt_failure(&self.status, &self.engine_failed, &mut self.failure);
        self.stalled = if self.failure.is_some() { None } else { self.status.stalled.lock().clone() };
    }

    fn fail(&mut self, reason: String) {
        publish_failure(&self.status, &self.engine_failed, &reason);
        self.failure = Some(reason);
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
}
