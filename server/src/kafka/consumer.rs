//! The consumer. Messages are handled in lanes: the messages of one order (its
//! orderId, else the Kafka key) one after the other in consumed order, different
//! orders concurrently (so one fsync of the engine's group commit covers many
//! messages), at most `--kafka-batch-size` ([`IN_FLIGHT`] by default) at a time. No
//! lane waits for another.
//!
//! For each message: parse (bare payload or seed 002's envelope), map its type to an
//! [`Action`], call the engine (which answers only after the change is fsynced),
//! publish its answer or dead letter if it has one (acknowledged by the broker), and
//! only then count it done. Per partition, the offset stored for commit is the one
//! below the oldest message not done yet (a watermark); librdkafka commits stored
//! offsets every second and on shutdown. So an offset is committed only after what
//! its message caused is durable, and a crash redelivers at most the messages after
//! the last commit, which change nothing the second time (orderId / idempotency
//! keys).
//!
//! - A retryable engine error retries the same message with backoff (50 ms doubling
//!   to 2 s); its offset waits. Bounds ([`RetryPolicy`]): RESERVATION_PENDING (and a
//!   misrouted answer) at most `--kafka-max-retries` times; those and OVERLOADED for
//!   at most `--kafka-max-retry-time` in all (OVERLOADED is the engine's state, not
//!   the message's, so it uses up time but not attempts). Past a bound the message
//!   is dead-lettered with the last error. SERVICE_UNAVAILABLE (the WAL failed, or
//!   the engine is stopping) retries without bound: no message is at fault and
//!   nothing can be applied until a restart, which redelivers it.
//! - A message that cannot be parsed or applied goes to the dead-letter topic with its
//!   original bytes and key, and headers `dlq.topic`, `dlq.partition`, `dlq.offset`,
//!   `dlq.error`; then the consumer goes on.
//! - Producing an answer or a dead letter retries with backoff. When it has failed
//!   for `--kafka-produce-max-retry-time`, the message is *parked*: its lane goes on
//!   (later messages of the order and every other lane proceed), while it keeps
//!   retrying in the background (backoff up to 30 s) and its partition's stored
//!   offset stays below it, so its partition alone stops committing; /health
//!   (`kafka.consumer.blocked`) and /metrics (`stockd_kafka_consumer_blocked`) show
//!   it. It is never dropped: delivered later, or redelivered after a restart. At
//!   most [`MAX_PARKED`] are parked; past that a failing message keeps its lane, and
//!   once [`IN_FLIGHT`] such wait the consumer takes no more (memory stays bounded).
//! - A reserve that fails for stock reasons publishes `inventory.reservation_failed`;
//!   `inventory.confirm_requested` is answered with `inventory.confirmation_failed`,
//!   or `inventory.confirmed` (published from the WAL when this message committed it,
//!   directly when it was committed already).
//! - An order's lines may name their location (`location`, or seed 004's
//!   `warehouseId` / `warehouse_id`) and the order its delivery `region`: they become
//!   the reservation's [`Placement`], with the order's `allocation` strategy if it
//!   names one (else the server's `--allocation`). A bad location, region or
//!   strategy, or a warehouse the table does not list, is dead-lettered.
//! - Health: librdkafka's statistics (every [`ConsumerTuning::stats_interval`], read
//!   on the consumer's own poll) give each assigned partition's lag (high watermark
//!   minus the stored offset) and whether a broker connection is up
//!   ([`ConsumerHealth`]; `stockd_kafka_consumer_lag`, `stockd_kafka_broker_up`).
//! - With `--node-id` the consumer is a static group member (`group.instance.id`):
//!   restarted after a crash it gets its partitions back at once, not after the
//!   session timeout of the member it replaces.
//! - Which action a message makes, and how its fields and item keys are read, is
//!   the [`Mapping`]'s (`--kafka-config`, else the built-in one). A cancellation or
//!   payment failure of an order already committed follows its cancel-after-commit
//!   policy: restock ([`super::returns`]) or dead-letter.

use super::events::{reservation_failed, Action, OutEvent};
use super::incoming::Incoming;
use super::mapping::{CancelAfterCommit, Mapping};
use super::returns::{restock_committed, CANCEL_RETURN_ID};
use super::{now_ms, pause, Blocked, KafkaStatus};
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::statistics::{Partition, Statistics};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stockd_engine::location::{AllocationStrategy, LocationId, Placement};
use stockd_engine::{
    Adjust, AdjustReason, Engine, EngineError, OrderId, Origin, ReservationKey, ReservationStatus, ReserveRequest,
    SetItem, Sku,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub struct ConsumerConfig {
    pub engine: Engine,
    pub brokers: String,
    pub group: String,
    pub topics: Vec<String>,
    /// How messages are read and routed, and where answers go (`--kafka-config`).
    pub map: Mapping,
    pub dlq_topic: String,
    pub producer: FutureProducer,
    pub status: Arc<KafkaStatus>,
    pub stop: Arc<AtomicBool>,
    pub stop_notify: Arc<tokio::sync::Notify>,
    /// The strategy of an order that names none (the server's `--allocation`).
    pub allocation: AllocationStrategy,
    pub retry: RetryPolicy,
    pub tuning: ConsumerTuning,
}

/// Settings of the consumer client (flags of the Kafka front).
#[derive(Debug, Clone)]
pub struct ConsumerTuning {
    /// `client.id` (`--kafka-client-id`).
    pub client_id: String,
    /// `group.instance.id` (`--node-id`): static group membership. A node restarted
    /// with the same id takes its partitions back at once instead of waiting for its
    /// old member's session to time out. (A static member does not leave the group
    /// when it stops: its partitions wait for its return or the session timeout.)
    pub group_instance_id: Option<String>,
    /// Messages handled at once at most (`--kafka-batch-size`): the lanes' messages
    /// share the engine's group commits; past it the consumer takes no more.
    pub in_flight: usize,
    /// How often librdkafka reports its statistics (consumer lag, broker states).
    pub stats_interval: Duration,
}

impl Default for ConsumerTuning {
    fn default() -> Self {
        ConsumerTuning {
            client_id: "stockd".into(),
            group_instance_id: None,
            in_flight: IN_FLIGHT,
            stats_interval: Duration::from_secs(2),
        }
    }
}

/// What librdkafka's statistics and error callbacks say about the consumer, for
/// /health and /metrics. Updated on the consumer's own poll (every
/// `ConsumerTuning::stats_interval`), never by the message handlers.
#[derive(Debug, Default)]
pub struct ConsumerHealth {
    /// Per assigned partition: messages between the broker's high watermark and the
    /// offset stored for commit (else the committed one, else the log start).
    lag: parking_lot::Mutex<std::collections::BTreeMap<(String, i32), i64>>,
    /// Some broker connection is up, as of the last statistics (false before the
    /// first, and after an all-brokers-down error until statistics show one up).
    brokers_up: AtomicBool,
}

impl ConsumerHealth {
    /// (topic, partition) → lag, for the partitions this consumer is assigned.
    pub fn lag(&self) -> Vec<((String, i32), i64)> {
        self.lag.lock().iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    pub fn brokers_up(&self) -> bool {
        self.brokers_up.load(Ordering::Acquire)
    }

    /// Takes a statistics report: every assigned partition's lag (a partition no
    /// longer assigned drops out), and whether a broker connection is up.
    pub fn update(&self, stats: &Statistics) {
        let mut lag = std::collections::BTreeMap::new();
        for (name, topic) in &stats.topics {
            for (id, p) in &topic.partitions {
                // -1 is librdkafka's internal "unassigned" partition.
                if *id < 0 || !p.desired || p.unknown {
                    continue;
                }
                if let Some(l) = partition_lag(p) {
                    lag.insert((name.clone(), *id), l);
                }
            }
        }
        *self.lag.lock() = lag;
        let up = stats.brokers.values().any(|b| b.state == "UP");
        self.brokers_up.store(up, Ordering::Release);
    }

    fn all_brokers_down(&self) {
        self.brokers_up.store(false, Ordering::Release);
    }
}

/// A partition's lag in librdkafka's statistics: high watermark minus the position
/// (the offset stored for commit, else the committed one, else the log start, as
/// `auto.offset.reset=earliest` begins there); None while the watermark or every
/// position is unknown (librdkafka reports those as negative).
pub fn partition_lag(p: &Partition) -> Option<i64> {
    if p.hi_offset < 0 {
        return None;
    }
    let position = [p.stored_offset, p.committed_offset, p.lo_offset].into_iter().find(|o| *o >= 0)?;
    Some((p.hi_offset - position).max(0))
}

/// The consumer's client context: statistics and global errors go to
/// [`ConsumerHealth`].
pub struct HealthContext {
    status: Arc<KafkaStatus>,
}

impl ClientContext for HealthContext {
    fn stats(&self, statistics: Statistics) {
        self.status.consumer_health.update(&statistics);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.status.consumer_health.all_brokers_down();
        }
        tracing::warn!(%error, reason, "kafka consumer client");
    }
}

impl ConsumerContext for HealthContext {}

type Client = StreamConsumer<HealthContext>;

/// How long a message may keep failing (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries of a message the engine answers RESERVATION_PENDING (or misrouted).
    pub max_retries: u32,
    /// Time a message may spend retrying retryable engine errors other than
    /// SERVICE_UNAVAILABLE.
    pub max_retry_time: Duration,
    /// Time producing a message's answer or dead letter may keep failing before the
    /// message is parked.
    pub max_produce_time: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 20,
            max_retry_time: Duration::from_secs(120),
            max_produce_time: Duration::from_secs(60),
        }
    }
}

/// What handling a message came to.
#[derive(Debug)]
enum Handled {
    /// Applied (or an idempotent repeat, or nothing to do).
    Done,
    /// Applied or refused; publish this answer before moving on.
    Answer(OutEvent),
    /// Cannot be parsed or applied: to the dead-letter topic.
    DeadLetter(String),
}

fn retryable(e: &EngineError) -> bool {
    matches!(
        e,
        EngineError::Unavailable { .. }
            | EngineError::Overloaded { .. }
            | EngineError::ReservationPending { .. }
            | EngineError::Misrouted
    )
}

pub fn start(cfg: ConsumerConfig) -> Result<JoinHandle<()>, String> {
    let mut client = rdkafka::ClientConfig::new();
    client
        .set("bootstrap.servers", &cfg.brokers)
        .set("group.id", &cfg.group)
        .set("client.id", &cfg.tuning.client_id)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("allow.auto.create.topics", "true")
        .set("topic.metadata.refresh.interval.ms", "2000")
        .set("statistics.interval.ms", cfg.tuning.stats_interval.as_millis().max(1).to_string());
    if let Some(id) = &cfg.tuning.group_instance_id {
        client.set("group.instance.id", id);
    }
    let consumer: Client = client
        .create_with_context(HealthContext { status: cfg.status.clone() })
        .map_err(|e| format!("kafka consumer: {e}"))?;
    let topics: Vec<&str> = cfg.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics).map_err(|e| format!("kafka subscribe {topics:?}: {e}"))?;
    tracing::info!(
        topics = ?cfg.topics, group = %cfg.group, instance = ?cfg.tuning.group_instance_id,
        "kafka consumer subscribed"
    );
    Ok(tokio::spawn(run(cfg, consumer)))
}

/// Messages being handled (or waiting in their lane) at most, by default
/// (`--kafka-batch-size`, [`ConsumerTuning::in_flight`]).
pub const IN_FLIGHT: usize = 512;

/// Parked messages at most (see [`produce_until_acked`]).
pub const MAX_PARKED: usize = 1024;

/// What a message's task tells the loop.
enum Event {
    /// The lane may start its next message (the message is done, parked or
    /// interrupted by stopping).
    LaneFree(String),
    /// The message is done: its offset may be committed.
    Done { topic: String, partition: i32, offset: i64 },
}

/// Per partition: the offsets received and not yet done, and what was stored.
#[derive(Default)]
struct PartitionOffsets {
    pending: BTreeSet<i64>,
    highest: i64,
    stored: Option<i64>,
}

impl PartitionOffsets {
    /// The last offset below which every received message is done.
    fn watermark(&self) -> Option<i64> {
        match self.pending.first() {
            Some(first) => (*first > 0).then(|| first - 1),
            None => Some(self.highest),
        }
    }
}

async fn run(cfg: ConsumerConfig, consumer: Client) {
    let cfg = Arc::new(cfg);
    let (events_tx, mut events) = mpsc::unbounded_channel::<Event>();
    let mut offsets: HashMap<(String, i32), PartitionOffsets> = HashMap::new();
    // Lane → the messages waiting behind the one being handled.
    let mut lanes: HashMap<String, VecDeque<OwnedMessage>> = HashMap::new();
    let mut in_flight = 0usize;
    let mut index = 0usize;
    loop {
        if cfg.stop.load(Ordering::Acquire) {
            break;
        }
        tokio::select! {
            biased;
            _ = cfg.stop_notify.notified() => break,
            // A stop asked between the check above and this select is seen here.
            () = tokio::time::sleep(Duration::from_millis(500)) => continue,
            Some(event) = events.recv() => match event {
                Event::LaneFree(lane) => {
                    let next = lanes.get_mut(&lane).and_then(VecDeque::pop_front);
                    in_flight -= 1;
                    match next {
                        Some(msg) => spawn_message(&cfg, &events_tx, lane, msg),
                        None => {
                            lanes.remove(&lane);
                        }
                    }
                }
                Event::Done { topic, partition, offset } => done(&consumer, &mut offsets, topic, partition, offset),
            },
            m = consumer.recv(), if in_flight < cfg.tuning.in_flight => match m {
                Ok(m) => {
                    let msg = m.detach();
                    cfg.status.consumed.fetch_add(1, Ordering::Relaxed);
                    let p = offsets.entry((msg.topic().to_owned(), msg.partition())).or_default();
                    p.pending.insert(msg.offset());
                    p.highest = p.highest.max(msg.offset());
                    in_flight += 1;
                    index = index.wrapping_add(1);
                    let lane = lane_of(&cfg.map, &msg, index);
                    match lanes.get_mut(&lane) {
                        Some(waiting) => waiting.push_back(msg),
                        None => {
                            lanes.insert(lane.clone(), VecDeque::new());
                            spawn_message(&cfg, &events_tx, lane, msg);
                        }
                    }
                }
                Err(e) => {
                    // Unknown topics, broker down, ...: librdkafka recovers by itself.
                    tracing::debug!(error = %e, "kafka consumer");
                    cfg.status.consumer_errors.fetch_add(1, Ordering::Relaxed);
                    if pause(Duration::from_millis(200), &cfg.stop, &cfg.stop_notify).await {
                        break;
                    }
                }
            },
        }
    }
    // What finished before the stop commits; messages not done keep their offsets
    // uncommitted: redelivered after a restart.
    while let Ok(event) = events.try_recv() {
        if let Event::Done { topic, partition, offset } = event {
            done(&consumer, &mut offsets, topic, partition, offset);
        }
    }
    if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
        tracing::debug!(error = %e, "kafka: final offset commit");
    }
    tracing::info!("kafka consumer stopped");
}

/// A message is done: store its partition's new watermark, if it moved.
fn done(
    consumer: &Client,
    offsets: &mut HashMap<(String, i32), PartitionOffsets>,
    topic: String,
    partition: i32,
    offset: i64,
) {
    let Some(p) = offsets.get_mut(&(topic.clone(), partition)) else { return };
    p.pending.remove(&offset);
    let Some(w) = p.watermark().filter(|w| p.stored < Some(*w)) else { return };
    match consumer.store_offset(&topic, partition, w) {
        Ok(()) => p.stored = Some(w),
        Err(e) => tracing::warn!(error = %e, topic, partition, offset = w, "kafka: cannot store offset"),
    }
}

fn spawn_message(cfg: &Arc<ConsumerConfig>, events: &mpsc::UnboundedSender<Event>, lane: String, msg: OwnedMessage) {
    let cfg = cfg.clone();
    let events = events.clone();
    tokio::spawn(async move {
        let mut lane = Some(lane);
        let done = process(&cfg, &msg, &mut || {
            if let Some(l) = lane.take() {
                let _ = events.send(Event::LaneFree(l));
            }
        })
        .await;
        if let Some(l) = lane.take() {
            let _ = events.send(Event::LaneFree(l));
        }
        if done {
            let _ = events.send(Event::Done {
                topic: msg.topic().to_owned(),
                partition: msg.partition(),
                offset: msg.offset(),
            });
        }
    });
}

/// The lane of a message: messages of one order (orderId, else the Kafka key) are
/// handled one after the other in the order consumed; lanes run concurrently, so the
/// engine's group commit shares one fsync among many messages.
fn lane_of(map: &Mapping, msg: &OwnedMessage, index: usize) -> String {
    if let Ok(order) = map.parse(msg.topic(), msg.payload()).and_then(|m| m.order_id()) {
        return format!("order:{order}");
    }
    match msg.key() {
        Some(k) => format!("key:{}", String::from_utf8_lossy(k)),
        None => format!("msg:{index}"),
    }
}

/// Handles one message to the end (applied, answered or dead-lettered, and that
/// acknowledged by the broker): true. False when stopping interrupted it.
/// `park` is called when the message stops holding its lane before it is done (its
/// answer or dead letter cannot be produced yet).
async fn process(cfg: &ConsumerConfig, msg: &OwnedMessage, park: &mut (dyn FnMut() + Send)) -> bool {
    let started = Instant::now();
    // Failed tries in all, and those that count against --kafka-max-retries.
    let mut tries = 0u32;
    let mut attempts = 0u32;
    let mut backoff = Duration::from_millis(50);
    let handled = loop {
        let e = match handle(cfg, msg).await {
            Ok(h) => break h,
            Err(e) => e,
        };
        tries += 1;
        let engine_wide = matches!(e, EngineError::Unavailable { .. });
        if matches!(e, EngineError::ReservationPending { .. } | EngineError::Misrouted) {
            attempts += 1;
        }
        if !engine_wide && (attempts > cfg.retry.max_retries || started.elapsed() >= cfg.retry.max_retry_time) {
            cfg.status.retries_exhausted.fetch_add(1, Ordering::Relaxed);
            break Handled::DeadLetter(format!(
                "{}: {e} (still failing after {tries} tries in {} ms)",
                e.code(),
                started.elapsed().as_millis()
            ));
        }
        cfg.status.retries.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(error = %e, topic = msg.topic(), offset = msg.offset(), attempts, "kafka: retryable engine error; retrying");
        if pause(backoff, &cfg.stop, &cfg.stop_notify).await {
            return false;
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    };
    match handled {
        Handled::Done => {
            cfg.status.applied.fetch_add(1, Ordering::Relaxed);
            true
        }
        Handled::Answer(event) => {
            cfg.status.applied.fetch_add(1, Ordering::Relaxed);
            let (topic, body, headers) = (event.topic(&cfg.map.publish), event.body(&cfg.map.publish), event.headers());
            produce_until_acked(cfg, msg, &topic, Some(event.key.as_bytes()), &body, headers, park).await
        }
        Handled::DeadLetter(error) => {
            tracing::warn!(topic = msg.topic(), partition = msg.partition(), offset = msg.offset(), %error, "kafka: message dead-lettered");
            let partition = msg.partition().to_string();
            let offset = msg.offset().to_string();
            let mut headers = OwnedHeaders::new()
                .insert(Header { key: "dlq.topic", value: Some(msg.topic()) })
                .insert(Header { key: "dlq.partition", value: Some(partition.as_str()) })
                .insert(Header { key: "dlq.offset", value: Some(offset.as_str()) })
                .insert(Header { key: "dlq.error", value: Some(error.as_str()) });
            if let Some(original) = msg.headers() {
                for h in original.iter() {
                    headers = headers.insert(Header { key: h.key, value: h.value });
                }
            }
            let body = msg.payload().unwrap_or_default();
            let delivered = produce_until_acked(cfg, msg, &cfg.dlq_topic, msg.key(), body, headers, park).await;
            if delivered {
                cfg.status.dead_lettered.fetch_add(1, Ordering::Relaxed);
            }
            delivered
        }
    }
}

/// Produces to `topic` until the broker acknowledges: true; false when stopping.
/// Past `max_produce_time` of failures the message is parked (`park`, and shown as
/// blocking its partition) and retried every 30 s at most.
async fn produce_until_acked(
    cfg: &ConsumerConfig,
    msg: &OwnedMessage,
    topic: &str,
    key: Option<&[u8]>,
    body: &[u8],
    headers: OwnedHeaders,
    park: &mut (dyn FnMut() + Send),
) -> bool {
    let started = Instant::now();
    let mut backoff = Duration::from_millis(100);
    let mut parked = false;
    let blocked_key = (msg.topic().to_owned(), msg.partition(), msg.offset());
    let result = loop {
        let mut record = FutureRecord::to(topic).payload(body).headers(headers.clone());
        if let Some(k) = key {
            record = record.key(k);
        }
        #[cfg(test)]
        let sent = match faults::unproducible(topic) {
            true => Err(rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::UnknownTopic)),
            false => cfg.producer.send(record, Duration::from_secs(5)).await.map(|_| ()).map_err(|(e, _)| e),
        };
        #[cfg(not(test))]
        let sent = cfg.producer.send(record, Duration::from_secs(5)).await.map(|_| ()).map_err(|(e, _)| e);
        match sent {
            Ok(()) => break true,
            Err(e) => {
                cfg.status.produce_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(topic, error = %e, parked, "kafka: produce failed; retrying");
                // Parked messages are bounded: past MAX_PARKED a failing message
                // keeps its lane and in-flight slot, so the consumer stops taking
                // more once IN_FLIGHT of them wait (memory stays bounded).
                if !parked
                    && started.elapsed() >= cfg.retry.max_produce_time
                    && cfg.status.blocked.lock().len() < MAX_PARKED
                {
                    parked = true;
                    tracing::error!(
                        topic = msg.topic(), partition = msg.partition(), offset = msg.offset(), to = topic, error = %e,
                        "kafka: cannot produce; this message's partition stops committing until it is delivered"
                    );
                    cfg.status.blocked.lock().insert(
                        blocked_key.clone(),
                        Blocked { to: topic.to_owned(), error: e.to_string(), since_ms: now_ms() },
                    );
                    park();
                }
                if parked {
                    if let Some(b) = cfg.status.blocked.lock().get_mut(&blocked_key) {
                        b.error = e.to_string();
                    }
                }
                if pause(backoff, &cfg.stop, &cfg.stop_notify).await {
                    break false;
                }
                let cap = if parked { Duration::from_secs(30) } else { Duration::from_secs(5) };
                backoff = (backoff * 2).min(cap);
            }
        }
    };
    if parked && result {
        cfg.status.blocked.lock().remove(&blocked_key);
        tracing::info!(
            topic = msg.topic(),
            partition = msg.partition(),
            offset = msg.offset(),
            "kafka: parked message delivered"
        );
    }
    result
}

/// `Err` only for retryable engine errors.
async fn handle(cfg: &ConsumerConfig, msg: &OwnedMessage) -> Result<Handled, EngineError> {
    let incoming = match cfg.map.parse(msg.topic(), msg.payload()) {
        Ok(i) => i,
        Err(e) => return Ok(Handled::DeadLetter(e)),
    };
    let action = match cfg.map.route(&incoming) {
        Ok(Some(action)) => action,
        Ok(None) => return Ok(Handled::DeadLetter(format!("unknown event type {:?}", incoming.event_type))),
        Err(e) => return Ok(Handled::DeadLetter(e)),
    };
    let position = format!("kafka-{}-{}-{}", msg.topic(), msg.partition(), msg.offset());
    #[cfg(test)]
    if let Some(e) = incoming.order_id().ok().and_then(|o| faults::engine_error(&o)) {
        return Err(e);
    }
    let result = match action {
        Action::Reserve => reserve(&cfg.engine, &incoming, position, cfg.allocation).await,
        Action::Commit => commit(&cfg.engine, &incoming).await,
        Action::Confirm => confirm(&cfg.engine, &incoming, position).await,
        Action::Cancel => release(cfg, &incoming, "CANCELLED").await,
        Action::PaymentFailed => release(cfg, &incoming, "PAYMENT_FAILED").await,
        Action::Restock => restock(&cfg.engine, &incoming, &position).await,
        Action::CreateItem => create_item(&cfg.engine, &incoming, false).await,
        Action::SetItem => create_item(&cfg.engine, &incoming, true).await,
        Action::Ignore => Ok(Handled::Done),
    };
    match result {
        Ok(h) => Ok(h),
        Err(Failure::Engine(e)) if retryable(&e) => Err(e),
        Err(Failure::Engine(e)) => Ok(Handled::DeadLetter(format!("{}: {e}", e.code()))),
        Err(Failure::Bad(e)) => Ok(Handled::DeadLetter(e)),
    }
}

enum Failure {
    Engine(EngineError),
    Bad(String),
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        Failure::Engine(e)
    }
}

impl From<String> for Failure {
    fn from(e: String) -> Self {
        Failure::Bad(e)
    }
}

fn order_key(incoming: &Incoming) -> Result<ReservationKey, Failure> {
    if let Ok(order) = incoming.order_id() {
        return Ok(ReservationKey::Order(OrderId::parse(&order, "orderId")?));
    }
    match incoming.reservation_id() {
        Some(id) => Ok(ReservationKey::id(id, "reservationId")?),
        None => Err(Failure::Bad(format!("{}: missing orderId", incoming.event_type))),
    }
}

fn metadata(incoming: &Incoming) -> Option<String> {
    let mut m = serde_json::Map::new();
    m.insert("source".into(), json!("kafka"));
    m.insert("eventType".into(), json!(incoming.event_type));
    for field in ["sagaId", "storeId", "userId"] {
        if let Some(v) = incoming.data.get(field).filter(|v| v.is_string() || v.is_number()) {
            m.insert(field.into(), v.clone());
        }
    }
    Some(Value::Object(m).to_string())
}

/// An order line's location (`location`, `warehouseId` or `warehouse_id`), checked.
fn line_location(i: usize, location: Option<&str>) -> Result<Option<LocationId>, Failure> {
    let Some(l) = location else { return Ok(None) };
    Ok(Some(LocationId::parse(l, &format!("items[{i}].location"))?))
}

async fn reserve(
    engine: &Engine,
    incoming: &Incoming,
    position: String,
    default_strategy: AllocationStrategy,
) -> Result<Handled, Failure> {
    let order = incoming.order_id()?;
    let order_id = OrderId::parse(&order, "orderId")?;
    let mut lines = Vec::new();
    // Lines that name their location take it from there only; the others are
    // allocated by the message's strategy (else the server's), the delivery region's
    // warehouses first.
    let strategy = incoming.allocation()?.unwrap_or(default_strategy);
    let mut placement = Placement { strategy, region: incoming.region()?, locations: Vec::new() };
    for (i, l) in incoming.lines()?.into_iter().enumerate() {
        let sku = Sku::parse(&l.sku, &format!("items[{i}].sku"))?;
        if let Some(location) = line_location(i, l.location.as_deref())? {
            placement.locations.push((sku.clone(), location));
        }
        lines.push((sku, l.quantity));
    }
    // Its own TTL (checked against the server's --max-ttl by the engine), else the
    // server's --default-ttl.
    let ttl_secs = incoming.ttl_secs()?;
    let req = ReserveRequest { order_id, lines, ttl_secs, metadata: metadata(incoming), placement };
    // The engine counts the outcome and times it under the Kafka path.
    match engine.reserve_from(Origin::Events, req).await {
        Ok(_) => Ok(Handled::Done),
        Err(
            e @ (EngineError::InsufficientInventory { .. }
            | EngineError::ItemNotFound { .. }
            | EngineError::SalesBlocked { .. }
            | EngineError::MaxPerOrderExceeded { .. }),
        ) => Ok(Handled::Answer(reservation_failed(position, &order, incoming, &e, now_ms()))),
        Err(e) => Err(e.into()),
    }
}

async fn commit(engine: &Engine, incoming: &Incoming) -> Result<Handled, Failure> {
    let key = order_key(incoming)?;
    engine.commit(key, None).await?;
    Ok(Handled::Done)
}

async fn confirm(engine: &Engine, incoming: &Incoming, position: String) -> Result<Handled, Failure> {
    let key = order_key(incoming)?;
    let answer = |event_type: &'static str, data: Value| {
        let order = data["orderId"].as_str().unwrap_or_default().to_owned();
        OutEvent {
            id: position.clone(),
            event_type,
            key: order.clone(),
            correlation_id: Some(order),
            timestamp: now_ms(),
            data,
        }
    };
    let base = |order: &str, reservation: &str| json!({ "orderId": order, "reservationId": reservation });
    let requested_order = incoming.order_id().unwrap_or_default();
    let requested_reservation = incoming.reservation_id().unwrap_or_default();
    match engine.get_reservation(key.clone()).await {
        Ok(r) if r.status == ReservationStatus::Committed => {
            // Already committed: no WAL record will say so again; answer directly.
            return Ok(Handled::Answer(answer(
                "inventory.confirmed",
                base(r.order_id.as_str(), &r.reservation_id.to_string()),
            )));
        }
        Ok(_) => {}
        Err(e) if retryable(&e) => return Err(e.into()),
        Err(_) => {}
    }
    match engine.commit(key, None).await {
        // inventory.confirmed comes from the WAL record of this commit.
        Ok(_) => Ok(Handled::Done),
        Err(e) if retryable(&e) => Err(e.into()),
        Err(e) => {
            let mut data = base(&requested_order, requested_reservation);
            data["reason"] = json!(e.code());
            data["message"] = json!(e.to_string());
            Ok(Handled::Answer(answer("inventory.confirmation_failed", data)))
        }
    }
}

async fn release(cfg: &ConsumerConfig, incoming: &Incoming, reason: &str) -> Result<Handled, Failure> {
    let key = order_key(incoming)?;
    match cfg.engine.release(key.clone(), Some(reason.to_owned())).await {
        Ok(_) => Ok(Handled::Done),
        // Nothing was reserved for this order (e.g. its reserve failed): nothing to do.
        Err(EngineError::ReservationNotFound { .. }) => Ok(Handled::Done),
        // Cancelled after it was committed: the policy (--cancel-after-commit).
        Err(EngineError::ReservationCommitted { reservation_id }) => match cfg.map.cancel_after_commit {
            CancelAfterCommit::Restock => {
                let r = cfg.engine.get_reservation(key).await?;
                let note = format!("{} after commit via kafka", incoming.event_type);
                restock_committed(&cfg.engine, &r, None, CANCEL_RETURN_ID, &note).await?;
                Ok(Handled::Done)
            }
            CancelAfterCommit::Reject => Ok(Handled::DeadLetter(format!(
                "RESERVATION_COMMITTED: {} for reservation {reservation_id}, which is committed \
                 (cancel-after-commit is reject)",
                incoming.event_type
            ))),
        },
        Err(e) => Err(e.into()),
    }
}

/// A return: the units the order committed back on hand (of the lines the event
/// lists, when it lists any); an order still only reserved is released (reason
/// RETURNED); one released or expired has nothing to return. When stockd does not
/// know the order (never reserved here, or forgotten after its retention), the
/// event's items are put back, keyed by the event id, else the orderId, else the
/// message's position.
async fn restock(engine: &Engine, incoming: &Incoming, position: &str) -> Result<Handled, Failure> {
    let note = format!("{} via kafka", incoming.event_type);
    let listed = match incoming.raw_items() {
        Some(_) => Some(incoming.lines()?),
        None => None,
    };
    if let Ok(order) = incoming.order_id() {
        let key = ReservationKey::Order(OrderId::parse(&order, "orderId")?);
        match engine.get_reservation(key.clone()).await {
            Ok(r) => {
                match r.status {
                    ReservationStatus::Committed => {
                        let return_id = incoming.event_id.as_deref().unwrap_or(position);
                        restock_committed(engine, &r, listed.as_deref(), return_id, &note).await?
                    }
                    ReservationStatus::Active => match engine.release(key, Some("RETURNED".to_owned())).await {
                        Ok(_) | Err(EngineError::ReservationNotFound { .. }) => {}
                        // Committed meanwhile: a retry returns what it sold.
                        Err(EngineError::ReservationCommitted { reservation_id }) => {
                            return Err(EngineError::ReservationPending { reservation_id }.into())
                        }
                        Err(e) => return Err(e.into()),
                    },
                    ReservationStatus::Pending => {
                        return Err(
                            EngineError::ReservationPending { reservation_id: r.reservation_id.to_string() }.into()
                        )
                    }
                    ReservationStatus::Released | ReservationStatus::Expired => {}
                }
                return Ok(Handled::Done);
            }
            Err(EngineError::ReservationNotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let scope = incoming.event_id.clone().or_else(|| incoming.order_id().ok()).unwrap_or_else(|| position.to_owned());
    let lines = match listed {
        Some(lines) => lines,
        None => incoming.lines()?,
    };
    for (i, l) in lines.into_iter().enumerate() {
        let delta = i64::try_from(l.quantity).map_err(|_| format!("items[{i}].quantity too large"))?;
        if delta == 0 {
            continue;
        }
        let sku = Sku::parse(&l.sku, &format!("items[{i}].sku"))?;
        // A returned line that names its location goes back there.
        let location = line_location(i, l.location.as_deref())?;
        engine
            .adjust(Adjust {
                sku,
                delta,
                reason: AdjustReason::Return,
                note: Some(note.clone()),
                idempotency_key: Some(format!("return:{scope}:{}", l.sku)),
                expected_version: None,
                location,
            })
            .await?;
    }
    Ok(Handled::Done)
}

/// A product event: its items (variants) created if missing (`create_item`:
/// idempotent on the item key), or their on-hand set (`set_item`).
async fn create_item(engine: &Engine, incoming: &Incoming, update: bool) -> Result<Handled, Failure> {
    for item in incoming.new_items()? {
        let sku = Sku::parse(&item.sku, "sku")?;
        if !update {
            match engine.get_item(sku.clone()).await {
                Ok(_) => continue, // idempotent on its id
                Err(EngineError::ItemNotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        engine
            .set_item(SetItem {
                sku,
                on_hand: item.on_hand,
                low_stock_threshold: item.low_stock_threshold,
                max_per_order: None,
                expected_version: None,
                location: None,
                incoming: None,
            })
            .await?;
    }
    Ok(Handled::Done)
}

#[cfg(test)]
#[path = "consumer_tests.rs"]
mod tests;

/// Test-only faults (compiled into unit tests only): engine answers and unproducible
/// topics, to reach the retry caps and parking without a broken engine or broker.
#[cfg(test)]
pub(crate) mod faults {
    use parking_lot::Mutex;
    use stockd_engine::EngineError;

    /// Makes the error an order's engine calls answer.
    pub type MakeError = fn(&str) -> EngineError;

    /// orderId → the retryable error its engine calls answer.
    pub static ENGINE: Mutex<Vec<(String, MakeError)>> = Mutex::new(Vec::new());
    /// Topics every produce to fails.
    pub static UNPRODUCIBLE: Mutex<Vec<String>> = Mutex::new(Vec::new());

    pub fn engine_error(order: &str) -> Option<EngineError> {
        ENGINE.lock().iter().find(|(o, _)| o == order).map(|(o, f)| f(o))
    }

    pub fn unproducible(topic: &str) -> bool {
        UNPRODUCIBLE.lock().iter().any(|t| t == topic)
    }
}
