//! The consumer against librdkafka's mock cluster and a real engine, with the
//! test-only [`super::faults`] standing in for an engine stuck on RESERVATION_PENDING
//! or OVERLOADED and for an unproducible dead-letter topic (issue 13, defect 2).

use super::*;
use rdkafka::consumer::BaseConsumer;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, DefaultProducerContext, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::future::Future;

struct Fixture {
    _mock: MockCluster<'static, DefaultProducerContext>,
    servers: String,
    engine: Engine,
    status: Arc<KafkaStatus>,
    stop: Arc<AtomicBool>,
    stop_notify: Arc<tokio::sync::Notify>,
    handle: Option<JoinHandle<()>>,
    _tmp: tempfile::TempDir,
}

/// What a fixture consumes and how its engine runs, beyond the built-in defaults.
struct Setup {
    topics: Vec<String>,
    map: Mapping,
    config: stockd_engine::EngineConfig,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            topics: vec!["order.created".into()],
            map: Mapping::default(),
            config: stockd_engine::EngineConfig { shards: 2, expiry_interval: None, ..Default::default() },
        }
    }
}

impl Fixture {
    fn start(group: &str, partitions: i32, dlq: &str, retry: RetryPolicy) -> Fixture {
        Fixture::start_with(group, partitions, dlq, retry, Setup::default())
    }

    fn start_with(group: &str, partitions: i32, dlq: &str, retry: RetryPolicy, setup: Setup) -> Fixture {
        let mock = MockCluster::new(1).expect("mock cluster");
        for t in &setup.topics {
            mock.create_topic(t, partitions, 1).unwrap();
        }
        mock.create_topic(dlq, 1, 1).unwrap();
        let servers = mock.bootstrap_servers();
        let tmp = tempfile::tempdir().unwrap();
        let (engine, _) = Engine::open(tmp.path(), setup.config, Default::default()).unwrap();
        engine.blocking().set_item(SetItem::on_hand(Sku::parse("S", "sku").unwrap(), 1000)).unwrap();
        let status = Arc::new(KafkaStatus { brokers: servers.clone(), consuming: true, ..Default::default() });
        let stop = Arc::new(AtomicBool::new(false));
        let stop_notify = Arc::new(tokio::sync::Notify::new());
        let handle = start(ConsumerConfig {
            engine: engine.clone(),
            brokers: servers.clone(),
            group: group.to_owned(),
            topics: setup.topics,
            map: setup.map,
            dlq_topic: dlq.to_owned(),
            producer: super::super::producer_config(&servers).create().unwrap(),
            status: status.clone(),
            stop: stop.clone(),
            stop_notify: stop_notify.clone(),
            allocation: AllocationStrategy::default(),
            retry,
            tuning: Default::default(),
        })
        .unwrap();
        Fixture { _mock: mock, servers, engine, status, stop, stop_notify, handle: Some(handle), _tmp: tmp }
    }

    fn reserve(&self, partition: i32, order: &str) {
        let body = json!({"orderId": order, "items": [{"sku": "S", "quantity": 1}]}).to_string();
        self.produce(partition, order, body.as_bytes());
    }

    fn produce(&self, partition: i32, key: &str, payload: &[u8]) {
        self.produce_to("order.created", partition, key, payload)
    }

    fn produce_to(&self, topic: &str, partition: i32, key: &str, payload: &[u8]) {
        let p: BaseProducer = ClientConfig::new().set("bootstrap.servers", &self.servers).create().unwrap();
        p.send(BaseRecord::to(topic).partition(partition).key(key).payload(payload)).map_err(|(e, _)| e).unwrap();
        p.flush(Duration::from_secs(10)).unwrap();
    }

    async fn reserved(&self, order: &str) -> bool {
        let key = ReservationKey::Order(OrderId::parse(order, "orderId").unwrap());
        matches!(self.engine.get_reservation(key).await, Ok(r) if r.status == ReservationStatus::Active)
    }

    /// The group's committed offset (the next offset to read) of a partition.
    fn committed(&self, group: &str, partition: i32) -> i64 {
        self.committed_on("order.created", group, partition)
    }

    fn committed_on(&self, topic: &str, group: &str, partition: i32) -> i64 {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.servers)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(topic, partition);
        let got = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
        match got.find_partition(topic, partition).map(|p| p.offset()) {
            Some(Offset::Offset(o)) => o,
            _ => -1,
        }
    }

    /// Every message of the dead-letter topic: (payload, dlq.error).
    fn dead_letters(&self, dlq: &str) -> Vec<(String, String)> {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.servers)
            .set("group.id", "test-reader")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(dlq, 0, Offset::Beginning).unwrap();
        c.assign(&tpl).unwrap();
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match c.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    let error = m
                        .headers()
                        .and_then(|h| h.iter().find(|x| x.key == "dlq.error"))
                        .map(|x| String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned())
                        .unwrap_or_default();
                    out.push((String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(), error));
                }
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => break,
                _ => {}
            }
        }
        out
    }

    async fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        self.stop_notify.notify_waiters();
        let h = self.handle.take().unwrap();
        tokio::time::timeout(Duration::from_secs(30), h).await.expect("consumer stops").unwrap();
        self.engine.shutdown();
    }
}

/// Polls `f` until it returns true; fails the test after `secs`.
async fn wait_for<F: Future<Output = bool>>(secs: u64, what: &str, mut f: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_that_keeps_failing_is_dead_lettered_at_the_cap_and_later_offsets_advance() {
    faults::ENGINE
        .lock()
        .push(("o-cap-pending".into(), |o| EngineError::ReservationPending { reservation_id: o.into() }));
    faults::ENGINE.lock().push(("o-cap-overloaded".into(), |_| EngineError::Overloaded { shard: 0 }));
    let retry = RetryPolicy {
        max_retries: 3,
        max_retry_time: Duration::from_secs(3),
        max_produce_time: Duration::from_secs(30),
    };
    let group = "g-cap";
    let f = Fixture::start(group, 1, "dlq-cap", retry);
    f.reserve(0, "o-cap-pending");
    f.reserve(0, "o-cap-ok-1");
    f.reserve(0, "o-cap-overloaded");
    f.reserve(0, "o-cap-ok-2");
    // The stuck ones hold nobody up.
    wait_for(60, "the orders behind the stuck ones", || async {
        f.reserved("o-cap-ok-1").await && f.reserved("o-cap-ok-2").await
    })
    .await;
    // Both stuck ones end in the DLQ with their last error, and every offset commits.
    wait_for(60, "all four offsets committed", || async { f.committed(group, 0) == 4 }).await;
    let dlq = f.dead_letters("dlq-cap");
    assert_eq!(dlq.len(), 2, "{dlq:?}");
    let pending = dlq.iter().find(|(p, _)| p.contains("o-cap-pending")).expect("o-cap-pending dead-lettered");
    assert!(pending.1.starts_with("RESERVATION_PENDING") && pending.1.contains("4 tries"), "{pending:?}");
    let overloaded = dlq.iter().find(|(p, _)| p.contains("o-cap-overloaded")).expect("o-cap-overloaded dead-lettered");
    assert!(overloaded.1.starts_with("OVERLOADED"), "{overloaded:?}");
    assert_eq!(f.status.retries_exhausted.load(Ordering::Relaxed), 2);
    assert_eq!(f.status.dead_lettered.load(Ordering::Relaxed), 2);
    assert!(!f.reserved("o-cap-pending").await && !f.reserved("o-cap-overloaded").await);
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unproducible_dlq_blocks_only_its_partition_and_loses_nothing() {
    faults::UNPRODUCIBLE.lock().push("dlq-park".into());
    let retry = RetryPolicy {
        max_retries: 3,
        max_retry_time: Duration::from_secs(30),
        max_produce_time: Duration::from_secs(1),
    };
    let group = "g-park";
    let f = Fixture::start(group, 2, "dlq-park", retry);
    f.produce(0, "poison", b"{not json");
    f.reserve(0, "o-park-a");
    f.reserve(1, "o-park-b");
    // The poison message cannot be dead-lettered: it is parked, and the rest goes on.
    wait_for(60, "the other orders", || async { f.reserved("o-park-a").await && f.reserved("o-park-b").await }).await;
    wait_for(60, "partition 1 committed", || async { f.committed(group, 1) == 1 }).await;
    wait_for(30, "the parked message shown", || async {
        f.status.blocked.lock().contains_key(&("order.created".to_owned(), 0, 0))
    })
    .await;
    let health = f.status.health(&f.engine);
    let blocked = &health["consumer"]["blocked"];
    assert_eq!((&blocked[0]["partition"], &blocked[0]["offset"]), (&json!(0), &json!(0)), "{health}");
    assert_eq!(blocked[0]["producingTo"], "dlq-park", "{health}");
    let mut metrics = String::new();
    f.status.render_metrics(&f.engine, &mut metrics);
    assert!(metrics.contains("stockd_kafka_consumer_blocked{topic=\"order.created\",partition=\"0\"} 1"), "{metrics}");
    // Partition 0 commits nothing past the parked message (auto-commit runs every
    // second: give it the chance to be wrong).
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(f.committed(group, 0) <= 0, "partition 0 committed past an undelivered message");
    assert!(f.dead_letters("dlq-park").is_empty());

    // The DLQ comes back: the message is delivered, partition 0 catches up.
    faults::UNPRODUCIBLE.lock().retain(|t| t != "dlq-park");
    wait_for(90, "partition 0 committed", || async { f.committed(group, 0) == 2 }).await;
    let dlq = f.dead_letters("dlq-park");
    assert_eq!(dlq.len(), 1, "{dlq:?}");
    assert_eq!(dlq[0].0, "{not json");
    assert!(f.status.blocked.lock().is_empty());
    f.stop().await;
}

/// Issue 15, "Holds longer than a day": a Kafka order carries its own TTL (a 3-day
/// hold is kept, not dead-lettered), an order without one gets the engine's default
/// (`--default-ttl`), and one over the max or not a whole number of seconds is
/// dead-lettered with a VALIDATION_ERROR naming expiresIn (never silently defaulted).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_order_carries_its_own_ttl_within_the_max_else_the_default() {
    let retry = RetryPolicy {
        max_retries: 3,
        max_retry_time: Duration::from_secs(3),
        max_produce_time: Duration::from_secs(30),
    };
    let group = "g-ttl";
    let f = Fixture::start(group, 1, "dlq-ttl", retry);
    let order = |o: &str, ttl: Option<Value>| {
        let mut body = json!({"orderId": o, "items": [{"sku": "S", "quantity": 1}]});
        if let Some(t) = ttl {
            body["expiresIn"] = t;
        }
        f.produce(0, o, body.to_string().as_bytes());
    };
    order("o-ttl-3d", Some(json!(259_200)));
    order("o-ttl-none", None);
    order("o-ttl-over", Some(json!(f.engine.config().max_ttl_secs + 1)));
    order("o-ttl-text", Some(json!("3d")));
    wait_for(60, "all four offsets committed", || async { f.committed(group, 0) == 4 }).await;
    let engine = &f.engine;
    let lifetime = |o: &'static str| async move {
        let key = ReservationKey::Order(OrderId::parse(o, "orderId").unwrap());
        let r = engine.get_reservation(key).await.unwrap();
        assert_eq!(r.status, ReservationStatus::Active, "{o}");
        r.expires_at - r.created_at
    };
    assert_eq!(lifetime("o-ttl-3d").await, 259_200_000);
    assert_eq!(lifetime("o-ttl-none").await, f.engine.config().default_ttl_secs * 1000);
    let dlq = f.dead_letters("dlq-ttl");
    assert_eq!(dlq.len(), 2, "{dlq:?}");
    for o in ["o-ttl-over", "o-ttl-text"] {
        let (_, error) = dlq.iter().find(|(p, _)| p.contains(o)).unwrap_or_else(|| panic!("{o} not dead-lettered"));
        assert!(error.starts_with("VALIDATION_ERROR") && error.contains("expiresIn"), "{o}: {error}");
        assert!(!f.reserved(o).await, "{o}");
    }
    f.stop().await;
}

/// Issue 15, seed 003: reserved on `order.created`, deducted on `order.delivered`
/// three days later, through the shipped mapping file, with the engine's clock moved
/// by hand. The server-wide default TTL (4 days, `--default-ttl`) keeps the hold; an
/// order that carried its own 1-hour TTL expires in the sweep and its delivery
/// changes nothing (dead-lettered, RESERVATION_EXPIRED: what every delivery did
/// before issue 15, when holds were capped at a day).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delivery_three_days_after_the_order_commits_under_the_default_ttl() {
    use stockd_engine::ManualClock;
    let clock = ManualClock::new(1_767_225_600_000);
    let seed_003 = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/kafka/seed-003.toml");
    let setup = Setup {
        topics: vec!["order.created".into(), "order.delivered".into()],
        map: Mapping::load(&seed_003).unwrap(),
        config: stockd_engine::EngineConfig {
            shards: 2,
            expiry_interval: None,
            default_ttl_secs: 4 * 86_400,
            clock: Arc::new(clock.clone()),
            ..Default::default()
        },
    };
    let retry = RetryPolicy {
        max_retries: 3,
        max_retry_time: Duration::from_secs(3),
        max_produce_time: Duration::from_secs(30),
    };
    let group = "g-3d";
    let f = Fixture::start_with(group, 1, "dlq-3d", retry, setup);
    let event = |event: &str, order: &str, ttl: Option<u64>| {
        let mut v = json!({ "event": event, "orderId": order, "items": [{ "sku": "S", "quantity": 2 }],
                            "buyerId": "user-123" });
        if let Some(t) = ttl {
            v["expiresIn"] = json!(t);
        }
        v.to_string()
    };
    f.produce_to("order.created", 0, "o-long", event("order.created", "o-long", None).as_bytes());
    f.produce_to("order.created", 0, "o-short", event("order.created", "o-short", Some(3_600)).as_bytes());
    wait_for(60, "both orders consumed", || async { f.committed_on("order.created", group, 0) == 2 }).await;
    let status = |o: &'static str| {
        let engine = f.engine.clone();
        async move {
            let key = ReservationKey::Order(OrderId::parse(o, "orderId").unwrap());
            engine.get_reservation(key).await.unwrap().status
        }
    };
    assert_eq!(
        (status("o-long").await, status("o-short").await),
        (ReservationStatus::Active, ReservationStatus::Active)
    );

    clock.advance_secs(3 * 86_400);
    let expired: Vec<String> = f.engine.expire_due().await.unwrap().iter().map(|r| r.order_id.to_string()).collect();
    assert_eq!(expired, ["o-short"], "only the 1-hour hold is due 3 days later");
    for o in ["o-long", "o-short"] {
        f.produce_to("order.delivered", 0, o, event("order.delivered", o, None).as_bytes());
    }
    wait_for(60, "both deliveries consumed", || async { f.committed_on("order.delivered", group, 0) == 2 }).await;
    assert_eq!(status("o-long").await, ReservationStatus::Committed);
    assert_eq!(status("o-short").await, ReservationStatus::Expired);
    let item = f.engine.get_item(Sku::parse("S", "sku").unwrap()).await.unwrap();
    assert_eq!((item.on_hand, item.reserved, item.sold), (998, 0, 2), "sold once, the expired hold back on sale");
    let dlq = f.dead_letters("dlq-3d");
    assert_eq!(dlq.len(), 1, "{dlq:?}");
    assert!(dlq[0].0.contains("o-short") && dlq[0].1.starts_with("RESERVATION_EXPIRED"), "{dlq:?}");
    f.stop().await;
}

/// Lag and broker state from librdkafka's statistics (issue 15): high watermark minus
/// the stored offset, else the committed one, else the log start; only assigned
/// partitions; a partition no longer assigned drops out; up while a broker is UP.
#[test]
fn lag_and_broker_state_come_from_the_statistics() {
    use rdkafka::statistics::{Broker, Partition, Statistics, Topic};
    let part = |hi: i64, stored: i64, committed: i64, lo: i64| Partition {
        desired: true,
        hi_offset: hi,
        stored_offset: stored,
        committed_offset: committed,
        lo_offset: lo,
        ..Default::default()
    };
    assert_eq!(partition_lag(&part(10, 7, 3, 0)), Some(3), "stored first");
    assert_eq!(partition_lag(&part(10, -1001, 4, 0)), Some(6), "else committed");
    assert_eq!(partition_lag(&part(10, -1001, -1001, 2)), Some(8), "else the log start");
    assert_eq!(partition_lag(&part(-1001, 5, 5, 0)), None, "no watermark yet");
    assert_eq!(partition_lag(&part(10, -1001, -1001, -1001)), None, "no position yet");
    assert_eq!(partition_lag(&part(4, 6, 6, 0)), Some(0), "never negative");

    let stats = |partitions: Vec<(i32, Partition)>, broker_state: &str| {
        let mut s = Statistics::default();
        s.topics.insert(
            "order.created".into(),
            Topic { topic: "order.created".into(), partitions: partitions.into_iter().collect(), ..Default::default() },
        );
        s.brokers.insert("b/1".into(), Broker { state: broker_state.into(), ..Default::default() });
        s
    };
    let health = ConsumerHealth::default();
    assert!(!health.brokers_up(), "down until the first statistics");
    let not_assigned = Partition { desired: false, ..part(9, 1, 1, 0) };
    health.update(&stats(
        vec![(0, part(10, 10, 8, 0)), (1, part(5, 2, 2, 0)), (2, not_assigned), (-1, part(1, 0, 0, 0))],
        "UP",
    ));
    assert!(health.brokers_up());
    let key = |p: i32| ("order.created".to_owned(), p);
    assert_eq!(health.lag(), vec![(key(0), 0), (key(1), 3)]);
    health.update(&stats(vec![(1, part(6, 2, 2, 0))], "CONNECT"));
    assert!(!health.brokers_up());
    assert_eq!(health.lag(), vec![(key(1), 4)], "partition 0 was revoked");
    health.update(&stats(vec![], "UP"));
    health.all_brokers_down();
    assert!(!health.brokers_up());
}
