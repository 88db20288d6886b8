//! The Kafka front (only with `--kafka-brokers`; without it nothing here runs).
//!
//! - [`consumer`]: consumes order / payment / product events (group `stockd`), turns
//!   each into an engine call, and stores its offset for commit only after the engine
//!   answered (it answers after fsync). Unparseable or unappliable messages go to the
//!   dead-letter topic with their origin and the error.
//! - [`publisher`]: the WAL is the outbox. One [`stockd_engine::offline::WalFollower`]
//!   per shard replays the durable records into `inventory.*` events and publishes
//!   them; the last LSN the broker acknowledged per shard is kept in
//!   `DATA/kafka-outbox.offsets`, so a restart resumes from there (at-least-once;
//!   event ids `{shard}-{lsn}-{n}` let consumers drop duplicates).
//!   On a replicated cluster the leader publishes, up to the changelog's confirmed
//!   LSN, and shares its published LSNs with the standbys through Kafka
//!   ([`published`]).
//! - [`mapping`]: the one description both follow (`--kafka-config FILE`, else the
//!   built-in mapping): topics consumed, event type (or a field's value) → action,
//!   how fields and item keys are read, the cancel-after-commit policy, and the topic
//!   of each published event.
//! - [`events`]: the event contract (the actions, the events a WAL record
//!   publishes); [`incoming`]: parsing consumed messages; [`event_views`]: the JSON
//!   renderings of items (with their locations) and reservations (with their
//!   allocations) that events carry; [`returns`]: committed units put back on hand.

pub mod consumer;
pub mod event_views;
pub mod events;
pub mod incoming;
pub mod mapping;
pub mod published;
pub mod publisher;
pub mod returns;

use clap::Args;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use stockd_engine::Engine;
use tokio::task::JoinHandle;

/// Flags of the Kafka front.
#[derive(Debug, Clone, Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers (`host:port,...`). Enables the Kafka front: consuming
    /// order/payment/product events and publishing inventory events from the WAL.
    #[arg(long, env = "STOCKD_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// Consumer group id.
    #[arg(long, env = "STOCKD_KAFKA_GROUP", default_value = "stockd")]
    pub kafka_group: String,
    /// Topics to consume (comma-separated). Default: one topic per mapped event type
    /// (order.created, payment.completed, ...).
    #[arg(long, env = "STOCKD_KAFKA_TOPICS", value_delimiter = ',')]
    pub kafka_topics: Vec<String>,
    /// Event-type mapping overrides, `ACTION=TYPE[,TYPE...]` (repeatable; `;` between
    /// them in the variable). Actions: reserve, commit, confirm, cancel,
    /// payment_failed, restock (alias return), create_item, set_item, ignore.
    #[arg(long, env = "STOCKD_KAFKA_MAP", value_delimiter = ';')]
    pub kafka_map: Vec<String>,
    /// Topic of the events stockd publishes; `{type}` is replaced by the event type
    /// (default `{type}`).
    #[arg(long, env = "STOCKD_KAFKA_PUBLISH_TOPIC")]
    pub kafka_publish_topic: Option<String>,
    /// Dead-letter topic.
    #[arg(long, env = "STOCKD_KAFKA_DLQ_TOPIC", default_value = "stockd.dlq")]
    pub kafka_dlq_topic: String,
    /// Do not publish inventory events from the WAL (consume only).
    #[arg(long, env = "STOCKD_KAFKA_NO_PUBLISH")]
    pub kafka_no_publish: bool,
    /// Do not consume (publish only).
    #[arg(long, env = "STOCKD_KAFKA_NO_CONSUME")]
    pub kafka_no_consume: bool,
    /// Retries of a consumed message the engine answers RESERVATION_PENDING; then it
    /// is dead-lettered with that error.
    #[arg(long, env = "STOCKD_KAFKA_MAX_RETRIES", default_value_t = 20)]
    pub kafka_max_retries: u32,
    /// Time a consumed message may spend retrying RESERVATION_PENDING or OVERLOADED
    /// in all; then it is dead-lettered with the last error. (SERVICE_UNAVAILABLE —
    /// WAL failed, stopping — retries without bound and dead-letters nothing.)
    #[arg(long, env = "STOCKD_KAFKA_MAX_RETRY_TIME", default_value = "120s", value_parser = crate::cli::parse_duration)]
    pub kafka_max_retry_time: std::time::Duration,
    /// Time producing a consumed message's answer or dead letter may keep failing
    /// before the message is parked: its partition stops committing (shown in
    /// /health and /metrics) while every other message goes on, and it keeps
    /// retrying until delivered.
    #[arg(long, env = "STOCKD_KAFKA_PRODUCE_MAX_RETRY_TIME", default_value = "60s", value_parser = crate::cli::parse_duration)]
    pub kafka_produce_max_retry_time: std::time::Duration,
    /// The Kafka mapping file (TOML `.toml`, YAML `.yaml`/`.yml`; see
    /// examples/kafka/): topics consumed, event type or field value → action, how
    /// fields and item keys are read, topics of published events. Read and checked at
    /// start. Replaces --kafka-topics, --kafka-map and --kafka-publish-topic.
    #[arg(long, env = "STOCKD_KAFKA_CONFIG")]
    pub kafka_config: Option<PathBuf>,
    /// A cancellation (or payment failure) of an order already committed: `restock`
    /// puts the committed units back on hand (a RETURN adjustment per order and line,
    /// once), `reject` dead-letters it. Default: the mapping file's
    /// `cancel_after_commit`, else restock.
    #[arg(long, env = "STOCKD_CANCEL_AFTER_COMMIT", value_enum)]
    pub cancel_after_commit: Option<mapping::CancelAfterCommit>,
    /// `client.id` of the consumer and the producer (shown in the broker's logs and
    /// quotas).
    #[arg(long, env = "STOCKD_KAFKA_CLIENT_ID", default_value = "stockd", value_parser = parse_client_id)]
    pub kafka_client_id: String,
    /// Consumed messages handled at once at most (their engine calls share group
    /// commits); past it the consumer takes no more until one is done.
    #[arg(long, env = "STOCKD_KAFKA_BATCH_SIZE", default_value_t = consumer::IN_FLIGHT,
          value_parser = parse_batch_size)]
    pub kafka_batch_size: usize,
}

/// `--kafka-batch-size`: 1 to 65,536.
fn parse_batch_size(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=65_536).contains(&n) => Ok(n),
        _ => Err(format!("{s:?} must be a whole number from 1 to 65536")),
    }
}

/// `--kafka-client-id`: 1 to 255 characters of `[A-Za-z0-9._-]` (what Kafka accepts
/// everywhere).
fn parse_client_id(s: &str) -> Result<String, String> {
    let ok = !s.is_empty() && s.len() <= 255 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !ok {
        return Err(format!("{s:?} must be 1 to 255 characters of A-Z, a-z, 0-9, '.', '_', '-'"));
    }
    Ok(s.to_owned())
}

/// A consumed message whose answer or dead letter cannot be produced (parked): its
/// partition commits nothing past it until it is delivered.
#[derive(Debug, Clone)]
pub struct Blocked {
    /// The topic it must be produced to.
    pub to: String,
    /// The last produce error.
    pub error: String,
    pub since_ms: u64,
}

/// Live figures of the Kafka front, for /health.
#[derive(Debug, Default)]
pub struct KafkaStatus {
    pub brokers: String,
    pub consumed: AtomicU64,
    pub applied: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub consumer_errors: AtomicU64,
    /// Retries of consumed messages after a retryable engine error.
    pub retries: AtomicU64,
    /// Messages dead-lettered because they were still failing at the retry cap.
    pub retries_exhausted: AtomicU64,
    /// Failed produce attempts of answers and dead letters.
    pub produce_errors: AtomicU64,
    /// Parked messages: (topic, partition, offset) → why.
    pub blocked: parking_lot::Mutex<std::collections::BTreeMap<(String, i32, i64), Blocked>>,
    /// Per shard: the last LSN the broker acknowledged.
    pub published_lsn: Vec<AtomicU64>,
    pub published: AtomicU64,
    pub publish_errors: AtomicU64,
    pub publishing: bool,
    pub consuming: bool,
    /// Consumer lag per partition and broker connection state (the consumer's
    /// statistics).
    pub consumer_health: consumer::ConsumerHealth,
}

impl KafkaStatus {
    /// The `kafka` field of /health: counters and, per shard, the published LSN and
    /// the publish lag (durable LSN − published LSN).
    pub fn health(&self, engine: &Engine) -> Value {
        let durable: Vec<u64> = engine.shard_status().iter().map(|s| s.durable_lsn.load(Ordering::Acquire)).collect();
        let published: Vec<u64> = self.published_lsn.iter().map(|p| p.load(Ordering::Acquire)).collect();
        let lag: Vec<u64> = durable.iter().zip(&published).map(|(d, p)| d.saturating_sub(*p)).collect();
        let consumer_lag: Vec<Value> = self
            .consumer_health
            .lag()
            .into_iter()
            .map(|((topic, partition), lag)| json!({ "topic": topic, "partition": partition, "lag": lag }))
            .collect();
        // Seen through the consumer's connections; without a consumer, unknown.
        let broker_state = match (self.consuming, self.consumer_health.brokers_up()) {
            (false, _) => "unknown",
            (true, true) => "up",
            (true, false) => "down",
        };
        json!({
            "brokers": self.brokers,
            "brokerState": broker_state,
            "consumer": {
                "lag": consumer_lag,
                "enabled": self.consuming,
                "consumed": self.consumed.load(Ordering::Relaxed),
                "applied": self.applied.load(Ordering::Relaxed),
                "deadLettered": self.dead_lettered.load(Ordering::Relaxed),
                "errors": self.consumer_errors.load(Ordering::Relaxed),
                "retries": self.retries.load(Ordering::Relaxed),
                "retriesExhausted": self.retries_exhausted.load(Ordering::Relaxed),
                "produceErrors": self.produce_errors.load(Ordering::Relaxed),
                "blocked": self.blocked_json(),
            },
            "publisher": {
                "enabled": self.publishing,
                "published": self.published.load(Ordering::Relaxed),
                "errors": self.publish_errors.load(Ordering::Relaxed),
                "publishedLsn": published,
                "lag": lag,
                "lagTotal": lag.iter().sum::<u64>(),
            },
        })
    }
}

impl KafkaStatus {
    /// The parked messages, oldest offset first per partition.
    fn blocked_json(&self) -> Value {
        let blocked = self.blocked.lock();
        Value::Array(
            blocked
                .iter()
                .map(|((topic, partition, offset), b)| {
                    json!({
                        "topic": topic, "partition": partition, "offset": offset,
                        "producingTo": b.to, "error": b.error,
                        "since": crate::envelope::rfc3339(b.since_ms),
                    })
                })
                .collect(),
        )
    }

    /// Prometheus lines for /metrics: consumer counters and the publish lag per shard.
    pub fn render_metrics(&self, engine: &Engine, out: &mut String) {
        use std::fmt::Write;
        let counters = [
            ("stockd_kafka_consumed_total", "Kafka messages consumed.", &self.consumed),
            ("stockd_kafka_applied_total", "Kafka messages applied to the engine.", &self.applied),
            ("stockd_kafka_dead_lettered_total", "Kafka messages sent to the dead-letter topic.", &self.dead_lettered),
            ("stockd_kafka_consumer_retries_total", "Retries after a retryable engine error.", &self.retries),
            (
                "stockd_kafka_consumer_retries_exhausted_total",
                "Messages dead-lettered because they still failed at the retry cap.",
                &self.retries_exhausted,
            ),
            (
                "stockd_kafka_consumer_produce_errors_total",
                "Failed produce attempts of the consumer's answers and dead letters.",
                &self.produce_errors,
            ),
            ("stockd_kafka_published_total", "Inventory events the broker acknowledged.", &self.published),
            ("stockd_kafka_publish_errors_total", "Failed publish attempts.", &self.publish_errors),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", v.load(Ordering::Relaxed));
        }
        let _ = writeln!(
            out,
            "# HELP stockd_kafka_consumer_blocked Parked messages (answer or dead letter not producible) per partition; \
             the partition commits no offset past them."
        );
        let _ = writeln!(out, "# TYPE stockd_kafka_consumer_blocked gauge");
        let mut per_partition: std::collections::BTreeMap<(&str, i32), u64> = std::collections::BTreeMap::new();
        let blocked = self.blocked.lock();
        for (topic, partition, _) in blocked.keys() {
            *per_partition.entry((topic.as_str(), *partition)).or_default() += 1;
        }
        for ((topic, partition), n) in &per_partition {
            let _ = writeln!(out, "stockd_kafka_consumer_blocked{{topic=\"{topic}\",partition=\"{partition}\"}} {n}");
        }
        drop(blocked);
        let _ = writeln!(
            out,
            "# HELP stockd_kafka_dead_letters_total Consumed messages sent to the dead-letter topic (acknowledged)."
        );
        let _ = writeln!(
            out,
            "# TYPE stockd_kafka_dead_letters_total counter\nstockd_kafka_dead_letters_total {}",
            self.dead_lettered.load(Ordering::Relaxed)
        );
        if self.consuming {
            let _ = writeln!(
                out,
                "# HELP stockd_kafka_consumer_lag Messages between the broker's high watermark and the offset stored \
                 for commit, per assigned partition (librdkafka statistics)."
            );
            let _ = writeln!(out, "# TYPE stockd_kafka_consumer_lag gauge");
            for ((topic, partition), lag) in self.consumer_health.lag() {
                let _ = writeln!(out, "stockd_kafka_consumer_lag{{topic=\"{topic}\",partition=\"{partition}\"}} {lag}");
            }
            let _ = writeln!(
                out,
                "# HELP stockd_kafka_broker_up 1 while the consumer has a broker connection up (librdkafka \
                 statistics), else 0."
            );
            let _ = writeln!(
                out,
                "# TYPE stockd_kafka_broker_up gauge\nstockd_kafka_broker_up {}",
                u8::from(self.consumer_health.brokers_up())
            );
        }
        let _ = writeln!(
            out,
            "# HELP stockd_kafka_publish_lag WAL records durable but not yet acknowledged by the broker, per shard."
        );
        let _ = writeln!(out, "# TYPE stockd_kafka_publish_lag gauge");
        for (i, (s, p)) in engine.shard_status().iter().zip(&self.published_lsn).enumerate() {
            let lag = s.durable_lsn.load(Ordering::Acquire).saturating_sub(p.load(Ordering::Acquire));
            let _ = writeln!(out, "stockd_kafka_publish_lag{{shard=\"{i}\"}} {lag}");
        }
    }
}

/// The running Kafka tasks.
pub struct Kafka {
    pub status: Arc<KafkaStatus>,
    stop: Arc<AtomicBool>,
    stop_notify: Arc<tokio::sync::Notify>,
    tasks: Vec<JoinHandle<()>>,
}

/// Checks the Kafka flags before anything starts: the mapping (`--kafka-config`) is
/// read and checked, and a mapping without `--kafka-brokers` is refused (it would do
/// nothing).
pub fn check_args(args: &KafkaArgs) -> Result<(), String> {
    mapping::Mapping::from_args(args)?;
    let brokers = args.kafka_brokers.as_deref().map(str::trim).filter(|b| !b.is_empty());
    match (&args.kafka_config, brokers) {
        (Some(path), None) => Err(format!("kafka config {}: --kafka-config needs --kafka-brokers", path.display())),
        _ => Ok(()),
    }
}

/// Producer settings shared by the publisher and the consumer's answers.
pub(crate) fn producer_config(brokers: &str) -> rdkafka::ClientConfig {
    let mut c = rdkafka::ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("client.id", "stockd")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000");
    c
}

/// What [`Kafka::start`] starts.
pub struct FrontConfig<'a> {
    pub args: &'a KafkaArgs,
    pub brokers: &'a str,
    pub engine: Engine,
    /// Holds the shards' WAL (read by the publishers) and the outbox offsets file.
    pub data_dir: PathBuf,
    /// The strategy of a consumed order that names none (`--allocation`).
    pub allocation: stockd_engine::location::AllocationStrategy,
    /// Makes the consumer a static group member (`group.instance.id`): `--node-id` on
    /// one node; one id handed from leader to leader on a replicated cluster.
    pub group_instance_id: Option<String>,
    /// From [`KafkaStatus::new`]: what /health and /metrics read.
    pub status: Arc<KafkaStatus>,
    /// On a replicated cluster's leader (`replication/front.rs`).
    pub replicated: Option<publisher::ReplicatedPublishing>,
}

impl KafkaStatus {
    /// The status of a front `args` describe (before it starts: a replicated node
    /// shows it from the start and starts the front when it leads).
    pub fn new(args: &KafkaArgs, brokers: &str, shards: usize) -> Arc<KafkaStatus> {
        Arc::new(KafkaStatus {
            brokers: brokers.to_owned(),
            published_lsn: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            publishing: !args.kafka_no_publish,
            consuming: !args.kafka_no_consume,
            ..KafkaStatus::default()
        })
    }
}

impl Kafka {
    /// Starts the consumer and the publishers `cfg.args` ask for.
    pub fn start(cfg: FrontConfig<'_>) -> Result<Kafka, String> {
        let FrontConfig { args, brokers, engine, data_dir, allocation, group_instance_id, status, replicated } = cfg;
        let map = mapping::Mapping::from_args(args)?;
        let producer: rdkafka::producer::FutureProducer = producer_config(brokers)
            .set("client.id", &args.kafka_client_id)
            .create()
            .map_err(|e| format!("kafka producer: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop_notify = Arc::new(tokio::sync::Notify::new());
        let mut tasks = Vec::new();
        if !args.kafka_no_publish {
            let handles = publisher::start(publisher::PublisherConfig {
                engine: engine.clone(),
                data_dir,
                producer: producer.clone(),
                publishing: map.publish.clone(),
                status: status.clone(),
                stop: stop.clone(),
                stop_notify: stop_notify.clone(),
                replicated,
            })?;
            tasks.extend(handles);
        }
        if !args.kafka_no_consume {
            let handle = consumer::start(consumer::ConsumerConfig {
                engine,
                brokers: brokers.to_owned(),
                group: args.kafka_group.clone(),
                topics: map.topics.clone(),
                map,
                dlq_topic: args.kafka_dlq_topic.clone(),
                producer,
                status: status.clone(),
                stop: stop.clone(),
                stop_notify: stop_notify.clone(),
                allocation,
                retry: consumer::RetryPolicy {
                    max_retries: args.kafka_max_retries,
                    max_retry_time: args.kafka_max_retry_time,
                    max_produce_time: args.kafka_produce_max_retry_time,
                },
                tuning: consumer::ConsumerTuning {
                    client_id: args.kafka_client_id.clone(),
                    group_instance_id,
                    in_flight: args.kafka_batch_size,
                    ..Default::default()
                },
            })?;
            tasks.push(handle);
        }
        Ok(Kafka { status, stop, stop_notify, tasks })
    }

    /// Stops consuming (committing what was stored) and publishing (after the batch in
    /// flight), waiting at most `within`.
    pub async fn shutdown(self, within: std::time::Duration) {
        self.stop.store(true, Ordering::Release);
        self.stop_notify.notify_waiters();
        let all = async {
            for t in self.tasks {
                let _ = t.await;
            }
        };
        if tokio::time::timeout(within, all).await.is_err() {
            tracing::warn!("kafka tasks did not stop in time");
        }
    }
}

/// Milliseconds since the epoch, now.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Sleeps `d` or until stop is asked; true if stop was asked.
pub(crate) async fn pause(d: std::time::Duration, stop: &AtomicBool, notify: &tokio::sync::Notify) -> bool {
    if stop.load(Ordering::Acquire) {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = notify.notified() => {}
    }
    stop.load(Ordering::Acquire)
}
