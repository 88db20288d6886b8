//! The consumer. It takes the messages already there (up to 512) as a batch and
//! handles them in lanes: the messages of one order (its orderId, else the Kafka key)
//! one after the other in consumed order, different orders concurrently (so one fsync
//! of the engine's group commit covers many messages). Offsets of a batch are stored
//! only when every message of it has been handled.
//!
//! For each message: parse (bare payload or seed 002's envelope), map its type to an
//! [`Action`], call the engine (which answers only after the change is fsynced), then
//! store the offset; librdkafka commits stored offsets every second and on shutdown.
//! So an offset is committed only after the change it caused is durable, and a crash
//! redelivers at most the messages after the last commit, which change nothing the
//! second time (orderId / idempotency keys).
//!
//! - A retryable engine error (shutting down, overloaded, WAL failing) retries the
//!   same message with backoff; its offset is not stored.
//! - A message that cannot be parsed or applied goes to the dead-letter topic with its
//!   original bytes and key, and headers `dlq.topic`, `dlq.partition`, `dlq.offset`,
//!   `dlq.error`; then the consumer goes on.
//! - A reserve that fails for stock reasons publishes `inventory.reservation_failed`;
//!   `inventory.confirm_requested` is answered with `inventory.confirmation_failed`,
//!   or `inventory.confirmed` (published from the WAL when this message committed it,
//!   directly when it was committed already).
//! - An order's lines may name their location (`location`, or seed 004's
//!   `warehouseId` / `warehouse_id`) and the order its delivery `region`: they become
//!   the reservation's [`Placement`], with the order's `allocation` strategy if it
//!   names one (else the server's `--allocation`). A bad location, region or
//!   strategy, or a warehouse the table does not list, is dead-lettered.

use super::events::{reservation_failed, Action, EventMap, OutEvent};
use super::incoming::{parse_message, sku_of, Incoming};
use super::{now_ms, pause, KafkaStatus};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use stockd_engine::location::{AllocationStrategy, LocationId, Placement};
use stockd_engine::{
    Adjust, AdjustReason, Engine, EngineError, OrderId, ReservationKey, ReservationStatus, ReserveRequest, SetItem, Sku,
};
use tokio::task::JoinHandle;

pub struct ConsumerConfig {
    pub engine: Engine,
    pub brokers: String,
    pub group: String,
    pub topics: Vec<String>,
    pub map: EventMap,
    pub dlq_topic: String,
    pub publish_topic: String,
    pub producer: FutureProducer,
    pub status: Arc<KafkaStatus>,
    pub stop: Arc<AtomicBool>,
    pub stop_notify: Arc<tokio::sync::Notify>,
    /// The strategy of an order that names none (the server's `--allocation`).
    pub allocation: AllocationStrategy,
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
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &cfg.brokers)
        .set("group.id", &cfg.group)
        .set("client.id", "stockd")
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("allow.auto.create.topics", "true")
        .set("topic.metadata.refresh.interval.ms", "2000")
        .create()
        .map_err(|e| format!("kafka consumer: {e}"))?;
    let topics: Vec<&str> = cfg.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics).map_err(|e| format!("kafka subscribe {topics:?}: {e}"))?;
    tracing::info!(topics = ?cfg.topics, group = %cfg.group, "kafka consumer subscribed");
    Ok(tokio::spawn(run(cfg, consumer)))
}

/// Messages taken from the consumer at most per batch.
const BATCH: usize = 512;

async fn run(cfg: ConsumerConfig, consumer: StreamConsumer) {
    let cfg = Arc::new(cfg);
    loop {
        if cfg.stop.load(Ordering::Acquire) {
            break;
        }
        let first: OwnedMessage = tokio::select! {
            m = consumer.recv() => match m {
                Ok(m) => m.detach(),
                Err(e) => {
                    // Unknown topics, broker down, ...: librdkafka recovers by itself.
                    tracing::debug!(error = %e, "kafka consumer");
                    cfg.status.consumer_errors.fetch_add(1, Ordering::Relaxed);
                    if pause(Duration::from_millis(200), &cfg.stop, &cfg.stop_notify).await {
                        break;
                    }
                    continue;
                }
            },
            _ = cfg.stop_notify.notified() => break,
        };
        // Take what is already there, up to BATCH.
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match tokio::time::timeout(Duration::from_millis(1), consumer.recv()).await {
                Ok(Ok(m)) => batch.push(m.detach()),
                _ => break,
            }
        }
        cfg.status.consumed.fetch_add(batch.len() as u64, Ordering::Relaxed);
        if !process_batch(&cfg, &batch).await {
            break; // stopping: no offset of this batch is stored; it is redelivered
        }
        for msg in &batch {
            if let Err(e) = consumer.store_offset(msg.topic(), msg.partition(), msg.offset()) {
                tracing::warn!(error = %e, topic = msg.topic(), offset = msg.offset(), "kafka: cannot store offset");
            }
        }
    }
    if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
        tracing::debug!(error = %e, "kafka: final offset commit");
    }
    tracing::info!("kafka consumer stopped");
}

/// The lane of a message: messages of one order (orderId, else the Kafka key) are
/// handled one after the other in the order consumed; lanes run concurrently, so the
/// engine's group commit shares one fsync among many messages.
fn lane_of(msg: &OwnedMessage, index: usize) -> String {
    if let Ok(order) = parse_message(msg.topic(), msg.payload()).and_then(|m| m.order_id()) {
        return format!("order:{order}");
    }
    match msg.key() {
        Some(k) => format!("key:{}", String::from_utf8_lossy(k)),
        None => format!("msg:{index}"),
    }
}

/// Handles a batch to the end; false when stopping interrupted it.
async fn process_batch(cfg: &Arc<ConsumerConfig>, batch: &[OwnedMessage]) -> bool {
    let mut lanes: Vec<(String, Vec<OwnedMessage>)> = Vec::new();
    for (i, msg) in batch.iter().enumerate() {
        let lane = lane_of(msg, i);
        match lanes.iter_mut().find(|(l, _)| *l == lane) {
            Some((_, msgs)) => msgs.push(msg.clone()),
            None => lanes.push((lane, vec![msg.clone()])),
        }
    }
    let mut set = tokio::task::JoinSet::new();
    for (_, msgs) in lanes {
        let cfg = cfg.clone();
        set.spawn(async move {
            for m in &msgs {
                if !process(&cfg, m).await {
                    return false;
                }
            }
            true
        });
    }
    let mut all = true;
    while let Some(done) = set.join_next().await {
        all &= done.unwrap_or(false);
    }
    all
}

/// Handles one message to the end (applied, answered or dead-lettered). False when
/// stopping interrupted it.
async fn process(cfg: &ConsumerConfig, msg: &OwnedMessage) -> bool {
    let mut backoff = Duration::from_millis(50);
    let handled = loop {
        match handle(cfg, msg).await {
            Ok(h) => break h,
            Err(e) => {
                tracing::warn!(error = %e, topic = msg.topic(), offset = msg.offset(), "kafka: retryable engine error; retrying");
                if pause(backoff, &cfg.stop, &cfg.stop_notify).await {
                    return false;
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    };
    match handled {
        Handled::Done => {
            cfg.status.applied.fetch_add(1, Ordering::Relaxed);
            true
        }
        Handled::Answer(event) => {
            cfg.status.applied.fetch_add(1, Ordering::Relaxed);
            let topic = event.topic(&cfg.publish_topic);
            let body = serde_json::to_vec(&event.envelope()).expect("JSON of a Value");
            let headers = OwnedHeaders::new()
                .insert(Header { key: "id", value: Some(event.id.as_str()) })
                .insert(Header { key: "type", value: Some(event.event_type) });
            produce_until_acked(cfg, &topic, Some(event.key.as_bytes()), &body, headers).await
        }
        Handled::DeadLetter(error) => {
            tracing::warn!(topic = msg.topic(), partition = msg.partition(), offset = msg.offset(), %error, "kafka: message dead-lettered");
            cfg.status.dead_lettered.fetch_add(1, Ordering::Relaxed);
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
            produce_until_acked(cfg, &cfg.dlq_topic, msg.key(), body, headers).await
        }
    }
}

async fn produce_until_acked(
    cfg: &ConsumerConfig,
    topic: &str,
    key: Option<&[u8]>,
    body: &[u8],
    headers: OwnedHeaders,
) -> bool {
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut record = FutureRecord::to(topic).payload(body).headers(headers.clone());
        if let Some(k) = key {
            record = record.key(k);
        }
        match cfg.producer.send(record, Duration::from_secs(5)).await {
            Ok(_) => return true,
            Err((e, _)) => {
                tracing::warn!(topic, error = %e, "kafka: produce failed; retrying");
                if pause(backoff, &cfg.stop, &cfg.stop_notify).await {
                    return false;
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// `Err` only for retryable engine errors.
async fn handle(cfg: &ConsumerConfig, msg: &OwnedMessage) -> Result<Handled, EngineError> {
    let incoming = match parse_message(msg.topic(), msg.payload()) {
        Ok(i) => i,
        Err(e) => return Ok(Handled::DeadLetter(e)),
    };
    let Some(action) = cfg.map.action(&incoming.event_type) else {
        return Ok(Handled::DeadLetter(format!("unknown event type {:?}", incoming.event_type)));
    };
    let position = format!("kafka-{}-{}-{}", msg.topic(), msg.partition(), msg.offset());
    let result = match action {
        Action::Reserve => reserve(&cfg.engine, &incoming, position, cfg.allocation).await,
        Action::Commit => commit(&cfg.engine, &incoming).await,
        Action::Confirm => confirm(&cfg.engine, &incoming, position).await,
        Action::Cancel => release(&cfg.engine, &incoming, "CANCELLED").await,
        Action::PaymentFailed => release(&cfg.engine, &incoming, "PAYMENT_FAILED").await,
        Action::Restock => restock(&cfg.engine, &incoming, &position).await,
        Action::CreateItem => create_item(&cfg.engine, &incoming).await,
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
    match incoming.data.get("reservationId").and_then(Value::as_str) {
        Some(id) => Ok(ReservationKey::Id(id.to_owned())),
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
    let ttl_secs = incoming.data.get("expiresIn").and_then(Value::as_u64);
    let req = ReserveRequest { order_id, lines, ttl_secs, metadata: metadata(incoming), placement };
    match engine.reserve(req).await {
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
    let requested_reservation = incoming.data.get("reservationId").and_then(Value::as_str).unwrap_or_default();
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

async fn release(engine: &Engine, incoming: &Incoming, reason: &str) -> Result<Handled, Failure> {
    let key = order_key(incoming)?;
    match engine.release(key, Some(reason.to_owned())).await {
        Ok(_) => Ok(Handled::Done),
        // Nothing was reserved for this order (e.g. its reserve failed): nothing to do.
        Err(EngineError::ReservationNotFound { .. }) => Ok(Handled::Done),
        Err(e) => Err(e.into()),
    }
}

async fn restock(engine: &Engine, incoming: &Incoming, position: &str) -> Result<Handled, Failure> {
    let scope = incoming.event_id.clone().or_else(|| incoming.order_id().ok()).unwrap_or_else(|| position.to_owned());
    for (i, l) in incoming.lines()?.into_iter().enumerate() {
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
                note: Some(format!("{} via kafka", incoming.event_type)),
                idempotency_key: Some(format!("return:{scope}:{}", l.sku)),
                expected_version: None,
                location,
            })
            .await?;
    }
    Ok(Handled::Done)
}

async fn create_item(engine: &Engine, incoming: &Incoming) -> Result<Handled, Failure> {
    let data = &incoming.data;
    let parents = [data.clone()];
    let variants: Vec<Value> = match data.get("variants").and_then(Value::as_array) {
        Some(vs) if !vs.is_empty() => vs
            .iter()
            .map(|v| {
                let mut v = v.clone();
                if v.get("productId").is_none() && v.get("sku").is_none() {
                    v["productId"] = data.get("productId").cloned().unwrap_or(Value::Null);
                }
                if v.get("variantId").is_none() {
                    if let Some(id) = v.get("id").cloned() {
                        v["variantId"] = id;
                    }
                }
                v
            })
            .collect(),
        _ => parents.to_vec(),
    };
    for (i, v) in variants.iter().enumerate() {
        let sku = sku_of(v).ok_or_else(|| format!("{}: variant {i} needs sku or productId", incoming.event_type))?;
        let sku = Sku::parse(&sku, "sku")?;
        match engine.get_item(sku.clone()).await {
            Ok(_) => continue, // idempotent on its id
            Err(EngineError::ItemNotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let number = |names: &[&str]| names.iter().find_map(|n| v.get(*n).and_then(Value::as_u64));
        let on_hand = number(&["availableStock", "quantity", "stock", "onHand", "initialStock"]).unwrap_or(0);
        let threshold = number(&["thresholdStock", "lowStockThreshold"]);
        engine
            .set_item(SetItem {
                sku,
                on_hand,
                low_stock_threshold: threshold,
                max_per_order: None,
                expected_version: None,
                location: None,
                incoming: None,
            })
            .await?;
    }
    Ok(Handled::Done)
}
