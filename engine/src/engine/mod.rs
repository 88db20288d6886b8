//! `Engine`: the facade an embedder or the server holds. Routes each request to the
//! shard that owns it (SKU hash for stock, orderId hash for reservation headers),
//! drives the cross-shard reservation protocol, and runs the expiry timer.
//!
//! The async methods are the API; `Engine::blocking()` wraps the same calls for
//! threads that are not in an async runtime.

mod blocking;
mod items;
mod reconciler;
mod reservation_listing;
mod reservations;
mod stats;

pub use blocking::BlockingEngine;
pub use items::{Adjust, ItemChange, ItemPage, SetItem, Transfer};
pub use reconciler::ReconcileReport;

/// What the flows' internal steps, the expiry sweep and the reconciler did since the
/// engine started. `steps_deferred`: times a step found even the reserved queue slots
/// full and waited to try again (never dropped). `reconciled_*`: work the reconciler
/// finished for flows that could not (non-zero only after a failure).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowStats {
    pub sweep_failures: u64,
    pub steps_deferred: u64,
    pub reconciled_settled: u64,
    pub reconciled_aborted: u64,
}
pub use reservation_listing::{ReservationListing, ReservationPage};
pub use reservations::{ReserveOutcome, ReserveRequest};
pub use stats::{LatencyHistogram, Origin, OutcomeStats, Rejections, ReservationOp, RESERVE_LATENCY_BUCKETS_MICROS};

use crate::clock::{Clock, SystemClock};
use crate::command::ReserveLocal;
use crate::command::{Applied, Command, Query, QueryResult};
use crate::command_log::{CommandLog, NoLog};
use crate::error::EngineError;
use crate::limits::{
    DEFAULT_MAX_TTL_SECS, DEFAULT_RETENTION_SECS, DEFAULT_TTL_SECS, MAX_SHARDS, MAX_TTL_CEILING_SECS, MIN_TTL_SECS,
    SHARD_QUEUE_CAPACITY,
};
use crate::shard::{QueueCapacity, Request, ShardHandle, ShardShared, ShardStatus};
use crate::shard_state::ShardState;
use crate::sync::queue::PushError;
use crate::sync::reply::{reply_channel, ReplyReceiver};
use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Settings of an engine. `Default` gives one shard per core, 24 h retention, and a
/// background expiry sweep every 100 ms on the system clock.
#[derive(Clone)]
pub struct EngineConfig {
    pub shards: usize,
    /// How long finished reservations and adjustment keys are remembered.
    pub retention_secs: u64,
    /// How often the background expiry sweep runs; `None` = only by `expire_due()`.
    pub expiry_interval: Option<Duration>,
    pub clock: Arc<dyn Clock>,
    /// The warehouse table (from the warehouses file). `Some`: made the table of every
    /// shard at start, logged if it changed; `None`: the recovered table stays.
    pub warehouses: Option<Vec<crate::location::Warehouse>>,
    /// Client requests one shard's queue holds before it answers OVERLOADED; steps
    /// of flows under way get a quarter as many reserved slots on top
    /// (`shard::QueueCapacity`). Small values are for tests that must fill queues.
    pub queue_capacity: usize,
    /// TTL of a reservation whose request names none, seconds (1..=`max_ttl_secs`).
    pub default_ttl_secs: u64,
    /// Longest TTL a request may ask for, and the cap of extensions
    /// (`created_at + max_ttl_secs`), seconds; 1..=`limits::MAX_TTL_CEILING_SECS`.
    /// The expiry timer is keyed by deadline, so a long TTL costs nothing more.
    pub max_ttl_secs: u64,
    /// Open as a standby (`durable::replication`): no settling steps, sweep or
    /// writes of its own; commands answer NOT_LEADER; `apply_replicated` applies a
    /// leader's records until `promote`.
    pub standby: bool,
    /// Low-stock threshold of an item created without one (`SetItem` with
    /// `low_stock_threshold: None`); 0: no low-stock alerts unless the item sets one.
    /// Resolved before the command is logged, so replay never depends on it.
    pub default_low_stock_threshold: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            shards: std::thread::available_parallelism().map_or(2, |n| n.get()),
            retention_secs: DEFAULT_RETENTION_SECS,
            expiry_interval: Some(Duration::from_millis(100)),
            clock: Arc::new(SystemClock),
            warehouses: None,
            queue_capacity: SHARD_QUEUE_CAPACITY,
            default_ttl_secs: DEFAULT_TTL_SECS,
            max_ttl_secs: DEFAULT_MAX_TTL_SECS,
            standby: false,
            default_low_stock_threshold: 0,
        }
    }
}

impl std::fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineConfig")
            .field("shards", &self.shards)
            .field("retention_secs", &self.retention_secs)
            .field("expiry_interval", &self.expiry_interval)
            .field("warehouses", &self.warehouses)
            .field("queue_capacity", &self.queue_capacity)
            .field("default_ttl_secs", &self.default_ttl_secs)
            .field("max_ttl_secs", &self.max_ttl_secs)
            .field("standby", &self.standby)
            .field("default_low_stock_threshold", &self.default_low_stock_threshold)
            .finish()
    }
}

impl EngineConfig {
    pub(crate) fn validate(&self) -> Result<(), EngineError> {
        if self.shards == 0 || self.shards > MAX_SHARDS {
            return Err(EngineError::validation("shards", format!("must be 1 to {MAX_SHARDS}")));
        }
        if self.queue_capacity == 0 || self.queue_capacity > SHARD_QUEUE_CAPACITY {
            return Err(EngineError::validation("queue_capacity", format!("must be 1 to {SHARD_QUEUE_CAPACITY}")));
        }
        if !(MIN_TTL_SECS..=MAX_TTL_CEILING_SECS).contains(&self.max_ttl_secs) {
            return Err(EngineError::validation(
                "max_ttl_secs",
                format!("must be {MIN_TTL_SECS} to {MAX_TTL_CEILING_SECS} seconds, got {}", self.max_ttl_secs),
            ));
        }
        if !(MIN_TTL_SECS..=self.max_ttl_secs).contains(&self.default_ttl_secs) {
            return Err(EngineError::validation(
                "default_ttl_secs",
                format!(
                    "must be {MIN_TTL_SECS} to max_ttl_secs ({}) seconds, got {}",
                    self.max_ttl_secs, self.default_ttl_secs
                ),
            ));
        }
        if self.default_low_stock_threshold > crate::limits::MAX_ON_HAND {
            return Err(EngineError::validation(
                "default_low_stock_threshold",
                format!("must be at most {}", crate::limits::MAX_ON_HAND),
            ));
        }
        if let Some(w) = &self.warehouses {
            crate::location::validate_warehouses(w)?;
        }
        Ok(())
    }
}

/// orderId → home shard of its reservation header. Volatile: rebuilt from the
/// headers on open. An entry may outlive its header (it then only routes); a header
/// is only ever created on the shard its entry names (checked by that shard), so an
/// orderId never has two live headers.
#[doc(hidden)]
pub type OrderIndex = dashmap::DashMap<crate::sku::OrderId, usize, ahash::RandomState>;

struct Inner {
    shards: Vec<ShardHandle>,
    orders: Arc<OrderIndex>,
    /// Runs multi-step flows (reserve, commit, ...) to completion whatever happens to
    /// the caller's future: a one-worker runtime that only passes messages.
    coordinator: Option<tokio::runtime::Runtime>,
    config: EngineConfig,
    /// The data directory's exclusive lock, held until shutdown.
    dir_lock: Mutex<Option<stockd_fs::FsLock>>,
    /// The data directory (None for an in-memory engine).
    data_dir: Option<PathBuf>,
    /// Item-history reads running now (each replays a shard's WAL; bounded).
    history_reads: AtomicUsize,
    stopping: AtomicBool,
    expirer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Reservations whose reserve flow is running now: the reconciler never aborts
    /// a PENDING header that a live flow will still activate or roll back.
    reserving: Mutex<std::collections::HashMap<crate::sku::OrderId, usize>>,
    /// What the flows and the sweep did that an operator should see (`FlowStats`).
    sweep_failures: std::sync::atomic::AtomicU64,
    steps_deferred: std::sync::atomic::AtomicU64,
    reconciled_settled: std::sync::atomic::AtomicU64,
    reconciled_aborted: std::sync::atomic::AtomicU64,
    /// Outcomes of the API calls, whatever the caller (`stats.rs`).
    stats: stats::Stats,
    /// Wall time (ms) of the last reconciler pass, so the sweep runs it about once a
    /// second, not every 100 ms.
    last_reconcile: std::sync::atomic::AtomicU64,
    /// The outbox consumer's retention floors (`durable/outbox.rs`), set by
    /// `Engine::open` when `StorageConfig::outbox` registers one.
    outbox: std::sync::OnceLock<Arc<crate::durable::OutboxRetention>>,
    /// The filesystem of a durable engine's data directory (`StorageConfig::fs`).
    fs: std::sync::OnceLock<Arc<dyn stockd_fs::Fs>>,
    /// Set while the engine is a standby (`EngineConfig::standby`, until `promote`).
    standby: Arc<AtomicBool>,
}

/// The stock engine. Cheap to clone; all clones share the same shards.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// An engine that keeps everything in memory: nothing survives the process.
    /// For tests and benchmarks; use `Engine::open` for a durable one.
    pub fn in_memory(config: EngineConfig) -> Result<Engine, EngineError> {
        config.validate()?;
        if config.standby {
            return Err(EngineError::validation("standby", "a standby needs a data directory (Engine::open)"));
        }
        let states = (0..config.shards).map(ShardState::new).collect();
        let logs = (0..config.shards).map(|_| Box::new(NoLog) as Box<dyn CommandLog>).collect();
        let last_nows = vec![0; config.shards];
        let warehouses = config.warehouses.clone();
        let engine = Engine::start(states, logs, last_nows, config, None, None);
        engine.start_sweep();
        if let Some(w) = warehouses {
            crate::block_on(engine.set_warehouses(w))?;
        }
        Ok(engine)
    }

    /// Makes `warehouses` the table every shard allocates with (a logged change on
    /// each shard whose table differs).
    pub async fn set_warehouses(&self, warehouses: Vec<crate::location::Warehouse>) -> Result<(), EngineError> {
        crate::location::validate_warehouses(&warehouses)?;
        for shard in 0..self.shard_count() {
            self.command(shard, Command::SetWarehouses { warehouses: warehouses.clone() }).await?;
        }
        Ok(())
    }

    /// The warehouse table in force (every shard has the same one).
    pub async fn warehouses(&self) -> Result<Vec<crate::location::Warehouse>, EngineError> {
        match self.query(0, crate::command::Query::Warehouses).await? {
            crate::command::QueryResult::Warehouses(w) => Ok(w),
            _ => Err(EngineError::Unavailable { reason: "internal error: bad query answer".into() }),
        }
    }

    /// Starts shard threads over recovered states and their logs (no sweep yet:
    /// `start_sweep`).
    pub(crate) fn start(
        states: Vec<ShardState>,
        logs: Vec<Box<dyn CommandLog>>,
        last_nows: Vec<crate::Millis>,
        config: EngineConfig,
        dir_lock: Option<stockd_fs::FsLock>,
        data_dir: Option<PathBuf>,
    ) -> Engine {
        assert_eq!(states.len(), config.shards);
        assert_eq!(logs.len(), config.shards);
        let failed = Arc::new(AtomicBool::new(false));
        let standby = Arc::new(AtomicBool::new(config.standby));
        let capacity = QueueCapacity::for_clients(config.queue_capacity);
        let orders: Arc<OrderIndex> = Arc::new(OrderIndex::default());
        for state in &states {
            for order in state.order_ids() {
                orders.insert(order.clone(), state.shard());
            }
        }
        let shared = ShardShared {
            capacity,
            clock: config.clock.clone(),
            engine_failed: failed.clone(),
            orders: orders.clone(),
            standby: standby.clone(),
        };
        let shards = states
            .into_iter()
            .zip(logs)
            .zip(last_nows)
            .enumerate()
            .map(|(i, ((state, log), last_now))| ShardHandle::spawn(i, state, log, last_now, &shared))
            .collect();
        let engine = Engine {
            inner: Arc::new(Inner {
                shards,
                orders,
                coordinator: Some(
                    tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(1)
                        .enable_time()
                        .thread_name("stockd-coordinator")
                        .build()
                        .expect("start the coordinator runtime"),
                ),
                config,
                dir_lock: Mutex::new(dir_lock),
                data_dir,
                history_reads: AtomicUsize::new(0),
                stopping: AtomicBool::new(false),
                expirer: Mutex::new(None),
                reserving: Mutex::new(Default::default()),
                sweep_failures: Default::default(),
                steps_deferred: Default::default(),
                reconciled_settled: Default::default(),
                reconciled_aborted: Default::default(),
                stats: Default::default(),
                last_reconcile: Default::default(),
                outbox: std::sync::OnceLock::new(),
                fs: std::sync::OnceLock::new(),
                standby,
            }),
        };
        engine
    }

    /// Starts the background expiry sweep (and with it the reconciler), if the
    /// config has an interval. Called once the engine is ready for requests: after
    /// recovery, so a sweep never runs against a state recovery is still settling.
    pub(crate) fn start_sweep(&self) {
        if let Some(every) = self.inner.config.expiry_interval {
            let weak = Arc::downgrade(&self.inner);
            let handle = std::thread::Builder::new()
                .name("stockd-expiry".into())
                .spawn(move || loop {
                    std::thread::sleep(every);
                    let Some(inner) = weak.upgrade() else { return };
                    if inner.stopping.load(Ordering::Acquire) {
                        return;
                    }
                    let engine = Engine { inner };
                    if let Err(e) = crate::block_on(engine.sweep()) {
                        engine.inner.sweep_failures.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %e, "expiry sweep failed");
                    }
                })
                .expect("spawn expiry thread");
            *self.inner.expirer.lock() = Some(handle);
        }
    }

    /// The retention floors of the outbox consumer registered at open
    /// (`StorageConfig::outbox`), through which it advances its acknowledged LSN per
    /// shard; None when none was registered (or in memory).
    pub fn outbox(&self) -> Option<&Arc<crate::durable::OutboxRetention>> {
        self.inner.outbox.get()
    }

    pub(crate) fn set_outbox(&self, outbox: Arc<crate::durable::OutboxRetention>) {
        let _ = self.inner.outbox.set(outbox);
    }

    /// The filesystem the data directory is reached through (`StorageConfig::fs`;
    /// the real one for an in-memory engine): files an embedder keeps beside the
    /// engine's (the Kafka outbox offsets) go through the same seam.
    pub fn fs(&self) -> Arc<dyn stockd_fs::Fs> {
        self.inner.fs.get().cloned().unwrap_or_else(stockd_fs::real)
    }

    pub(crate) fn inner_standby(&self) -> &AtomicBool {
        &self.inner.standby
    }

    /// Whether this engine is a standby (`EngineConfig::standby`, until `promote`).
    pub fn is_standby(&self) -> bool {
        self.inner.standby.load(Ordering::Acquire)
    }

    /// Applies records a leader shipped for `shard` (a standby only; LSN ascending;
    /// records at or below the shard's last LSN are skipped), durably: answers the
    /// shard's last LSN once they are synced. A gap or a record that does not apply
    /// stops the engine (the copy diverged). See `durable::replication`.
    pub async fn apply_replicated(
        &self,
        shard: usize,
        records: Vec<crate::durable::ShippedRecord>,
    ) -> Result<u64, EngineError> {
        self.check_open()?;
        let handle = self.inner.shards.get(shard).ok_or_else(|| EngineError::validation("shard", "no such shard"))?;
        let (tx, rx) = reply_channel();
        let mut request = Request::Replicated { records, reply: tx };
        // The copy must not be refused for load: wait for room as a step does.
        let mut pause = Duration::from_micros(200);
        loop {
            match handle.send_reserved(request) {
                Ok(()) => break,
                Err(PushError::Full(r)) => {
                    request = r;
                    pause_for(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(PushError::Closed(_)) => return Err(shut_down()),
            }
        }
        await_reply(rx).await
    }

    pub(crate) fn set_fs(&self, fs: Arc<dyn stockd_fs::Fs>) {
        let _ = self.inner.fs.set(fs);
    }

    pub(crate) fn orders(&self) -> &OrderIndex {
        &self.inner.orders
    }

    pub fn shard_count(&self) -> usize {
        self.inner.shards.len()
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The data directory of a durable engine (`Engine::open`); None in memory.
    pub fn data_dir(&self) -> Option<&Path> {
        self.inner.data_dir.as_deref()
    }

    pub(crate) fn history_reads(&self) -> &AtomicUsize {
        &self.inner.history_reads
    }

    /// Live figures of each shard (durable LSN, failed flag, counters).
    pub fn shard_status(&self) -> Vec<Arc<ShardStatus>> {
        self.inner.shards.iter().map(|s| s.status.clone()).collect()
    }

    /// Counters of the flows' internal steps, the sweep and the reconciler since
    /// start (for /health and /metrics).
    pub fn flow_stats(&self) -> FlowStats {
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        FlowStats {
            sweep_failures: get(&self.inner.sweep_failures),
            steps_deferred: get(&self.inner.steps_deferred),
            reconciled_settled: get(&self.inner.reconciled_settled),
            reconciled_aborted: get(&self.inner.reconciled_aborted),
        }
    }

    /// What the API answered since start, whatever the caller: reservations created,
    /// committed, released and expired, refusals by operation and code, stock alerts,
    /// reserve latency per [`Origin`] (see `stats.rs`).
    pub fn outcome_stats(&self) -> OutcomeStats {
        let expired = self.inner.shards.iter().map(|s| s.status.expired.load(Ordering::Relaxed)).sum();
        self.inner.stats.snapshot(expired)
    }

    pub(crate) fn stats(&self) -> &stats::Stats {
        &self.inner.stats
    }

    pub(crate) fn count_reconciled(&self, report: ReconcileReport) {
        self.inner.reconciled_settled.fetch_add(report.settled as u64, Ordering::Relaxed);
        self.inner.reconciled_aborted.fetch_add(report.aborted as u64, Ordering::Relaxed);
    }

    /// Entries in the orderId → home index (for tests: an entry must not outlive a
    /// reserve that never reached its shard).
    #[doc(hidden)]
    pub fn order_index_len(&self) -> usize {
        self.inner.orders.len()
    }

    pub(crate) fn reserving(&self) -> &Mutex<std::collections::HashMap<crate::sku::OrderId, usize>> {
        &self.inner.reserving
    }

    pub(crate) fn last_reconcile(&self) -> &std::sync::atomic::AtomicU64 {
        &self.inner.last_reconcile
    }

    /// True when some shard's log has failed and it no longer acknowledges.
    pub fn is_failed(&self) -> bool {
        self.inner.shards.iter().any(|s| s.status.failed.load(Ordering::Acquire))
    }

    /// The blocking face of this engine.
    pub fn blocking(&self) -> BlockingEngine<'_> {
        BlockingEngine::new(self)
    }

    /// Stops the expiry sweep and every shard after it has finished (and synced)
    /// what was queued before. Later calls answer SERVICE_UNAVAILABLE.
    pub fn shutdown(&self) {
        if self.inner.stopping.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(h) = self.inner.expirer.lock().take() {
            if h.thread().id() != std::thread::current().id() {
                let _ = h.join();
            }
        }
        stop_shards(&self.inner.shards);
        // Every shard has synced and stopped: another engine may have the directory.
        self.inner.dir_lock.lock().take();
    }

    // ---- sending to shards ------------------------------------------------------

    fn check_open(&self) -> Result<(), EngineError> {
        if self.inner.stopping.load(Ordering::Acquire) {
            return Err(EngineError::Unavailable { reason: "engine is shutting down".into() });
        }
        Ok(())
    }

    pub(crate) fn send_command(
        &self,
        shard: usize,
        command: Command,
    ) -> Result<ReplyReceiver<Result<Applied, EngineError>>, EngineError> {
        self.check_open()?;
        let (reply, rx) = reply_channel();
        self.inner.shards[shard].send(shard, Request::Command { command, reply })?;
        Ok(rx)
    }

    /// Queues `command` as a step of a flow already under way (reserved queue slots):
    /// when even those are full it waits and tries again, so the step is delayed,
    /// never dropped. Fails only when the engine is shutting down or has failed.
    pub(crate) async fn send_step(
        &self,
        shard: usize,
        command: Command,
    ) -> Result<ReplyReceiver<Result<Applied, EngineError>>, EngineError> {
        let (reply, rx) = reply_channel();
        let mut request = Request::Command { command, reply };
        let mut pause = Duration::from_micros(200);
        loop {
            match self.inner.shards[shard].send_reserved(request) {
                Ok(()) => return Ok(rx),
                Err(PushError::Full(back)) => {
                    request = back;
                    self.inner.steps_deferred.fetch_add(1, Ordering::Relaxed);
                    pause_for(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(PushError::Closed(_)) => return Err(shut_down()),
            }
        }
    }

    /// `send_step` and its answer.
    pub(crate) async fn step(&self, shard: usize, command: Command) -> Result<Applied, EngineError> {
        await_reply(self.send_step(shard, command).await?).await
    }

    /// A read for a flow under way (reserved slots, retried like `send_step`).
    pub(crate) async fn step_query(&self, shard: usize, query: Query) -> Result<QueryResult, EngineError> {
        let (reply, rx) = reply_channel();
        let mut request = Request::Query { query, reply };
        let mut pause = Duration::from_micros(200);
        loop {
            match self.inner.shards[shard].send_reserved(request) {
                Ok(()) => return await_reply(rx).await,
                Err(PushError::Full(back)) => {
                    request = back;
                    self.inner.steps_deferred.fetch_add(1, Ordering::Relaxed);
                    pause_for(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(PushError::Closed(_)) => return Err(shut_down()),
            }
        }
    }

    /// Asks `shard` to drop its orderId index entry for `order_id` unless it has a
    /// header for it (a reserve put the entry in, then found the queue full), and
    /// waits until the shard has the request. Runs on the coordinator, so a caller
    /// that goes away does not leave the entry behind.
    pub(crate) async fn forget_order(&self, shard: usize, order_id: crate::sku::OrderId) {
        let forget = move |engine: Engine| async move {
            let mut request = Request::ForgetOrder { order_id };
            let mut pause = Duration::from_micros(200);
            loop {
                match engine.inner.shards[shard].send_reserved(request) {
                    Err(PushError::Full(back)) => {
                        request = back;
                        pause_for(pause).await;
                        pause = (pause * 2).min(Duration::from_millis(20));
                    }
                    // Queued, or the engine is stopping (the index goes with it).
                    _ => return Ok(()),
                }
            }
        };
        let _ = self.drive(forget).await;
    }

    /// Runs `flow` on the coordinator and waits for its answer. Dropping the returned
    /// future does not cancel the flow: a reservation is never left half placed or
    /// half settled because a caller went away.
    pub(crate) async fn drive<T, F, Fut>(&self, flow: F) -> Result<T, EngineError>
    where
        T: Send + 'static,
        F: FnOnce(Engine) -> Fut,
        Fut: std::future::Future<Output = Result<T, EngineError>> + Send + 'static,
    {
        self.check_open()?;
        let runtime = self.inner.coordinator.as_ref().expect("coordinator lives as long as the engine");
        let task = runtime.spawn(flow(self.clone()));
        task.await.map_err(|e| EngineError::Unavailable { reason: format!("coordinator task failed: {e}") })?
    }

    /// The coordinator runtime (None once the engine is being dropped).
    pub(crate) fn coordinator(&self) -> Option<&tokio::runtime::Runtime> {
        self.inner.coordinator.as_ref()
    }

    /// Runs `work` (file I/O, a WAL replay) on a blocking thread of the coordinator
    /// runtime and waits for it: never on a shard thread or the caller's executor.
    pub(crate) async fn run_blocking<T, F>(&self, work: F) -> Result<T, EngineError>
    where
        T: Send + 'static,
        F: FnOnce(Engine) -> T + Send + 'static,
    {
        self.check_open()?;
        let runtime = self.inner.coordinator.as_ref().expect("coordinator lives as long as the engine");
        let engine = self.clone();
        let task = runtime.spawn_blocking(move || work(engine));
        task.await.map_err(|e| EngineError::Unavailable { reason: format!("blocking task failed: {e}") })
    }

    /// Applies one command on one shard as a client request, bypassing the flows
    /// that normally send it: for tests that must build what a flow cut short
    /// leaves behind (a PENDING header with holds; a finished header whose holds on
    /// other shards were never settled). Not part of the API.
    #[doc(hidden)]
    pub async fn apply_on_shard(&self, shard: usize, command: Command) -> Result<Applied, EngineError> {
        if let Command::OpenReservation { order_id, .. } | Command::ReserveLocal(ReserveLocal { order_id, .. }) =
            &command
        {
            self.orders().entry(order_id.clone()).or_insert(shard); // as `reserve` routes it
        }
        self.command(shard, command).await
    }

    pub(crate) async fn command(&self, shard: usize, command: Command) -> Result<Applied, EngineError> {
        let rx = self.send_command(shard, command)?;
        await_reply(rx).await
    }

    /// Sends many commands to one shard in one message; one answer per command.
    #[allow(clippy::type_complexity)]
    pub(crate) fn send_commands(
        &self,
        shard: usize,
        commands: Vec<Command>,
    ) -> Result<ReplyReceiver<Result<Vec<Result<Applied, EngineError>>, EngineError>>, EngineError> {
        self.check_open()?;
        let (reply, rx) = reply_channel();
        self.inner.shards[shard].send(shard, Request::Commands { commands, reply })?;
        Ok(rx)
    }

    pub(crate) async fn query(&self, shard: usize, query: Query) -> Result<QueryResult, EngineError> {
        await_reply(self.send_query(shard, query)?).await
    }

    /// Sends a read to a shard; the answer comes on the returned receiver.
    pub(crate) fn send_query(
        &self,
        shard: usize,
        query: Query,
    ) -> Result<ReplyReceiver<Result<QueryResult, EngineError>>, EngineError> {
        self.check_open()?;
        let (reply, rx) = reply_channel();
        self.inner.shards[shard].send(shard, Request::Query { query, reply })?;
        Ok(rx)
    }

    /// A copy of every shard's state, each taken between two batches.
    pub async fn shard_states(&self) -> Result<Vec<ShardState>, EngineError> {
        let mut rxs = Vec::new();
        for (i, shard) in self.inner.shards.iter().enumerate() {
            let (reply, rx) = reply_channel();
            shard.send(i, Request::Clone { reply })?;
            rxs.push(rx);
        }
        let mut out = Vec::new();
        for rx in rxs {
            out.push(await_reply(rx).await?);
        }
        Ok(out)
    }

    /// Checks every invariant of every shard and across shards (each ACTIVE header's
    /// lines are held; every hold belongs to a live header). Meaningful when no
    /// request is in flight.
    pub async fn check_invariants(&self) -> Result<(), String> {
        let states = self.shard_states().await.map_err(|e| e.to_string())?;
        crate::invariants::check_all(&states)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::Release);
        // Never blocks, so dropping the last Engine inside async code is fine.
        if let Some(rt) = self.coordinator.take() {
            rt.shutdown_background();
        }
        stop_shards(&self.shards);
    }
}

/// Closes every shard's queue at once (no shard takes new work while another is still
/// open), then waits for each to drain, sync and stop.
fn stop_shards(shards: &[ShardHandle]) {
    for shard in shards {
        shard.queue.close();
    }
    for shard in shards {
        shard.stop();
    }
}

fn shut_down() -> EngineError {
    EngineError::Unavailable { reason: "engine is shut down".into() }
}

/// Waits `d` without blocking a tokio worker when there is one (flows run on the
/// coordinator); elsewhere (recovery's `block_on`) the thread sleeps.
async fn pause_for(d: Duration) {
    if tokio::runtime::Handle::try_current().is_ok() {
        tokio::time::sleep(d).await;
    } else {
        std::thread::sleep(d);
    }
}

pub(crate) async fn await_reply<T>(rx: ReplyReceiver<Result<T, EngineError>>) -> Result<T, EngineError> {
    rx.await.map_err(|_canceled| EngineError::Unavailable { reason: "shard stopped before answering".into() })?
}
