//! The Kafka front against a Kafka-protocol broker and the real `stockd` binary.
//!
//! The broker is librdkafka's mock cluster (`rdkafka::mocking::MockCluster`), started
//! inside this test process on a loopback port; `stockd` connects to it like to any
//! broker. Set `STOCKD_TEST_KAFKA_BROKERS=host:port` to run the same tests against a
//! real broker instead: a fresh one that auto-creates topics, and `--test-threads=1`, since the tests then share topics and
//! the consumer group.

mod common;

use common::kafka::read_topic;
use common::{assert_ok, wait_for, Server};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, DefaultProducerContext, Producer};
use rdkafka::ClientConfig;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use stockd_engine::location::{LocationId, Warehouse};
use stockd_engine::{SetItem, Sku, Transfer};

const TOPICS: &[&str] = &[
    "order.created",
    "order.placed",
    "order.checkout.started",
    "payment.completed",
    "payment.authorized",
    "payment.confirmed",
    "order.payment.completed",
    "order.delivered",
    "inventory.confirm_requested",
    "order.cancelled",
    "payment.failed",
    "order.payment.failed",
    "order.returned",
    "product.created",
    "product.onboarding.completed",
    "stockd.dlq",
    "inventory.reserved",
    "inventory.reservation_failed",
    "inventory.released",
    "inventory.confirmed",
    "inventory.confirmation_failed",
    "inventory.adjusted",
    "inventory.item_deleted",
    "inventory.low_stock",
    "inventory.out_of_stock",
    "inventory.transferred",
    "inventory.received",
];

/// A broker for one test: a fresh mock cluster, or the external one named by
/// STOCKD_TEST_KAFKA_BROKERS (shared by the tests, which use distinct order ids).
struct Broker {
    mock: Option<MockCluster<'static, DefaultProducerContext>>,
    servers: String,
}

impl Broker {
    fn start() -> Broker {
        if let Ok(servers) = std::env::var("STOCKD_TEST_KAFKA_BROKERS") {
            return Broker { mock: None, servers };
        }
        let mock = MockCluster::new(1).expect("mock cluster");
        for t in TOPICS {
            mock.create_topic(t, 1, 1).expect("create topic");
        }
        let servers = mock.bootstrap_servers();
        Broker { mock: Some(mock), servers }
    }

    fn producer(&self) -> BaseProducer {
        ClientConfig::new().set("bootstrap.servers", &self.servers).create().expect("test producer")
    }

    fn produce(&self, topic: &str, key: &str, payload: &[u8]) {
        let p = self.producer();
        p.send(BaseRecord::to(topic).key(key).payload(payload)).map_err(|(e, _)| e).expect("send");
        p.flush(Duration::from_secs(10)).expect("flush");
    }

    fn produce_json(&self, topic: &str, key: &str, v: &Value) {
        self.produce(topic, key, v.to_string().as_bytes());
    }
}

fn item(server: &Server, sku: &str) -> Value {
    assert_ok(server.get(&format!("/api/v1/inventory/items/{sku}")), 200)
}

fn health_kafka(server: &Server) -> Value {
    assert_ok(server.get("/health"), 200)["kafka"].clone()
}

/// Waits until the publisher has published everything durable.
fn wait_published(server: &Server) {
    wait_for(30, "publish lag 0", || (health_kafka(server)["publisher"]["lagTotal"] == 0).then_some(()));
}

fn events(servers: &str, topic: &str) -> Vec<Value> {
    read_topic(servers, topic).iter().map(|g| g.json()).collect()
}

fn start_server(dir: &std::path::Path, broker: &Broker, extra: &[&str]) -> Server {
    let mut args = vec!["--kafka-brokers", broker.servers.as_str()];
    args.extend_from_slice(extra);
    Server::start_on(dir, &args)
}

#[test]
fn consumed_events_drive_the_engine_and_inventory_events_come_out() {
    let broker = Broker::start();
    let tmp = tempfile::tempdir().unwrap();
    let retry_flags =
        ["--kafka-max-retries", "5", "--kafka-max-retry-time", "30s", "--kafka-produce-max-retry-time", "20s"];
    let server = start_server(tmp.path(), &broker, &retry_flags);
    assert_eq!(health_kafka(&server)["brokers"], broker.servers.as_str());
    assert_ok(server.put("/api/v1/inventory/items/p1:v1", r#"{"onHand":10,"lowStockThreshold":3}"#), 201);
    assert_ok(server.put("/api/v1/inventory/items/p2", r#"{"onHand":5}"#), 201);

    // order.created, delivered twice: reserves once.
    let created = json!({
        "eventType": "order.created", "orderId": "o-1", "userId": "u",
        "items": [{"productId": "p1", "variantId": "v1", "quantity": 2}],
    });
    broker.produce_json("order.created", "o-1", &created);
    broker.produce_json("order.created", "o-1", &created);
    // A poison message, then a good one (seed 002's envelope) on the same partition.
    broker.produce("order.created", "bad", b"{not json");
    let envelope = json!({
        "id": "evt-2", "type": "order.created", "source": "order-service", "dataVersion": "1.0",
        "timestamp": "2023-11-21T15:27:30.123Z", "correlationId": "o-2",
        "data": {"orderId": "o-2", "items": [{"sku": "p2", "quantity": 1}]},
    });
    broker.produce_json("order.created", "o-2", &envelope);
    wait_for(60, "o-2 reserved", || (item(&server, "p2")["reserved"] == 1).then_some(()));
    let p1 = item(&server, "p1:v1");
    assert_eq!((p1["reserved"].as_u64(), p1["available"].as_u64()), (Some(2), Some(8)), "{p1}");
    let r = assert_ok(server.get("/api/v1/inventory/reservations/o-1"), 200);
    assert_eq!(r["status"], "ACTIVE", "{r}");

    // The poison message is in the DLQ with its origin.
    let dlq = wait_for(30, "the DLQ message", || {
        let got = read_topic(&broker.servers, "stockd.dlq");
        (!got.is_empty()).then_some(got)
    });
    assert_eq!(dlq.len(), 1, "{dlq:?}");
    assert_eq!(dlq[0].payload, b"{not json");
    assert_eq!(dlq[0].headers.get("dlq.topic").map(String::as_str), Some("order.created"));
    assert_eq!(dlq[0].headers.get("dlq.partition").map(String::as_str), Some("0"));
    assert_eq!(dlq[0].headers.get("dlq.offset").map(String::as_str), Some("2"));
    assert!(dlq[0].headers.get("dlq.error").is_some_and(|e| e.contains("JSON")), "{dlq:?}");

    // Cancellation releases; payment completed commits.
    broker.produce_json(
        "order.cancelled",
        "o-2",
        &json!({"eventType": "order.cancelled", "orderId": "o-2", "reason": "CUSTOMER_CANCELLED"}),
    );
    broker.produce_json("payment.completed", "o-1", &json!({"orderId": "o-1", "sagaId": "s-1"}));
    wait_for(60, "o-2 released", || (item(&server, "p2")["reserved"] == 0).then_some(()));
    wait_for(60, "o-1 committed", || (item(&server, "p1:v1")["sold"] == 2).then_some(()));
    let p1 = item(&server, "p1:v1");
    assert_eq!((p1["onHand"].as_u64(), p1["reserved"].as_u64()), (Some(8), Some(0)), "{p1}");

    // A reserve that cannot be met: inventory.reservation_failed with the shortfall.
    broker.produce_json("order.placed", "o-3", &json!({"orderId": "o-3", "items": [{"sku": "p2", "quantity": 99}]}));
    let failed = wait_for(60, "reservation_failed", || {
        let e = events(&broker.servers, "inventory.reservation_failed");
        (!e.is_empty()).then_some(e)
    });
    assert_eq!(failed[0]["data"]["orderId"], "o-3", "{failed:?}");
    assert_eq!(failed[0]["data"]["reason"], "INSUFFICIENT_INVENTORY");
    assert_eq!(failed[0]["data"]["failedItems"][0]["sku"], "p2");
    assert_eq!(failed[0]["data"]["failedItems"][0]["available"], 5);

    // An HTTP reserve that crosses the low-stock threshold (available 8 → 2 <= 3).
    assert_ok(
        server.post("/api/v1/inventory/reserve", r#"{"orderId":"o-4","items":[{"sku":"p1:v1","quantity":6}]}"#),
        201,
    );
    wait_published(&server);

    let reserved = events(&broker.servers, "inventory.reserved");
    let by_order = |evs: &[Value], order: &str| -> Vec<Value> {
        evs.iter().filter(|e| e["data"]["orderId"] == order).cloned().collect()
    };
    assert_eq!(by_order(&reserved, "o-1").len(), 1, "a redelivered order.created publishes nothing: {reserved:?}");
    assert_eq!(by_order(&reserved, "o-2").len(), 1);
    assert_eq!(by_order(&reserved, "o-4").len(), 1);
    let o1 = &by_order(&reserved, "o-1")[0];
    assert_eq!(o1["type"], "inventory.reserved");
    assert_eq!(o1["source"], "stockd");
    assert_eq!(o1["dataVersion"], "1.0");
    assert_eq!(o1["correlationId"], "o-1");
    assert_eq!(o1["data"]["items"][0]["productId"], "p1");
    assert_eq!(o1["data"]["items"][0]["variantId"], "v1");
    assert_eq!(o1["data"]["items"][0]["quantity"], 2);
    let released = events(&broker.servers, "inventory.released");
    assert_eq!(by_order(&released, "o-2").len(), 1, "{released:?}");
    assert_eq!(by_order(&released, "o-2")[0]["data"]["reason"], "CANCELLED");
    let confirmed = events(&broker.servers, "inventory.confirmed");
    assert_eq!(by_order(&confirmed, "o-1").len(), 1, "{confirmed:?}");
    let low = events(&broker.servers, "inventory.low_stock");
    assert!(low.iter().any(|e| e["data"]["sku"] == "p1:v1" && e["data"]["available"] == 2), "{low:?}");
    let adjusted = events(&broker.servers, "inventory.adjusted");
    assert!(adjusted.iter().any(|e| e["data"]["sku"] == "p2" && e["data"]["reason"] == "CREATED"), "{adjusted:?}");

    // Every published id is unique, and ids name the WAL position.
    let mut ids = BTreeMap::new();
    for t in
        ["inventory.reserved", "inventory.released", "inventory.confirmed", "inventory.adjusted", "inventory.low_stock"]
    {
        for e in events(&broker.servers, t) {
            *ids.entry(e["id"].as_str().unwrap().to_owned()).or_insert(0) += 1;
        }
    }
    assert!(ids.values().all(|n| *n == 1), "{ids:?}");
    let h = health_kafka(&server);
    assert_eq!(h["consumer"]["deadLettered"], 1, "{h}");
    // Nothing retried to its cap, nothing parked.
    assert_eq!((&h["consumer"]["retriesExhausted"], &h["consumer"]["blocked"]), (&json!(0), &json!([])), "{h}");
    assert_eq!(server.stop(), Some(0));
}

#[test]
fn returns_products_and_confirmations() {
    let broker = Broker::start();
    let tmp = tempfile::tempdir().unwrap();
    let server = start_server(tmp.path(), &broker, &[]);
    // product.onboarding.completed creates the item (seed 000), once.
    let product = json!({"productId": "prod-1", "sku": "SHOES-1", "availableStock": 4, "thresholdStock": 1});
    broker.produce_json("product.onboarding.completed", "prod-1", &product);
    wait_for(60, "item created", || {
        let (s, b) = server.get("/api/v1/inventory/items/SHOES-1");
        (s == 200).then_some(b)
    });
    assert_ok(server.put("/api/v1/inventory/items/SHOES-1", r#"{"onHand":6}"#), 200);
    broker.produce_json("product.onboarding.completed", "prod-1", &product);
    // inventory.confirm_requested (seed 002's envelope) for an order reserved by event.
    broker.produce_json(
        "order.checkout.started",
        "o-9",
        &json!({"orderId": "o-9", "items": [{"sku": "SHOES-1", "quantity": 2}]}),
    );
    // Kafka orders messages within a partition only: wait for the reserve before
    // asking to confirm it on another topic.
    wait_for(60, "o-9 reserved", || (item(&server, "SHOES-1")["reserved"] == 2).then_some(()));
    let confirm = |id: &str, order: &str| {
        json!({"id": id, "type": "inventory.confirm_requested", "source": "order-service", "dataVersion": "1.0",
               "timestamp": "2023-11-21T15:27:30.123Z", "correlationId": order, "data": {"orderId": order, "reservationId": "r"}})
    };
    broker.produce_json("inventory.confirm_requested", "o-9", &confirm("c-1", "o-9"));
    broker.produce_json("inventory.confirm_requested", "o-none", &confirm("c-2", "o-none"));
    wait_for(60, "o-9 committed", || (item(&server, "SHOES-1")["sold"] == 2).then_some(()));
    assert_eq!(item(&server, "SHOES-1")["onHand"], 4, "the second product event changed nothing");
    // Returned: back on hand, once even when delivered twice.
    let returned =
        json!({"eventType": "order.returned", "orderId": "o-9", "items": [{"sku": "SHOES-1", "quantity": 2}]});
    broker.produce_json("order.returned", "o-9", &returned);
    broker.produce_json("order.returned", "o-9", &returned);
    let failed = wait_for(60, "confirmation_failed", || {
        let e = events(&broker.servers, "inventory.confirmation_failed");
        (!e.is_empty()).then_some(e)
    });
    assert_eq!(failed[0]["data"]["orderId"], "o-none");
    assert_eq!(failed[0]["data"]["reason"], "RESERVATION_NOT_FOUND");
    wait_for(60, "restocked", || (item(&server, "SHOES-1")["onHand"] == 6).then_some(()));
    wait_for(30, "both returns consumed", || {
        (health_kafka(&server)["consumer"]["applied"].as_u64() >= Some(7)).then_some(())
    });
    assert_eq!(item(&server, "SHOES-1")["onHand"], 6, "a redelivered return restocks once");
    wait_published(&server);
    let confirmed = events(&broker.servers, "inventory.confirmed");
    assert_eq!(confirmed.iter().filter(|e| e["data"]["orderId"] == "o-9").count(), 1, "{confirmed:?}");
    assert_eq!(server.stop(), Some(0));
}

#[test]
fn broker_outage_and_restart_lose_and_repeat_nothing() {
    let broker = Broker::start();
    let tmp = tempfile::tempdir().unwrap();
    let server = start_server(tmp.path(), &broker, &["--kafka-no-consume"]);
    assert_ok(server.put("/api/v1/inventory/items/A", r#"{"onHand":100}"#), 201);
    let reserve = |s: &Server, order: &str| {
        let body = format!(r#"{{"orderId":"{order}","items":[{{"sku":"A","quantity":1}}]}}"#);
        assert_ok(s.post("/api/v1/inventory/reserve", &body), 201);
    };
    reserve(&server, "r-1");
    reserve(&server, "r-2");
    wait_published(&server);
    let first: Vec<Value> = events(&broker.servers, "inventory.reserved")
        .into_iter()
        .filter(|e| e["data"]["orderId"].as_str().is_some_and(|o| o.starts_with("r-")))
        .collect();
    assert_eq!(first.len(), 2, "{first:?}");

    // The broker goes away: HTTP keeps working, the backlog waits and then drains.
    if let Some(mock) = &broker.mock {
        mock.broker_down(1).unwrap();
        reserve(&server, "r-3");
        std::thread::sleep(Duration::from_millis(500));
        let lag = health_kafka(&server)["publisher"]["lagTotal"].as_u64().unwrap();
        assert!(lag > 0, "nothing can be acknowledged while the broker is down");
        let metrics = server.text("/metrics");
        let shown: u64 = metrics
            .lines()
            .filter(|l| l.starts_with("stockd_kafka_publish_lag{"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum();
        assert!(shown > 0, "/metrics must show the publish lag:\n{metrics}");
        mock.broker_up(1).unwrap();
    } else {
        reserve(&server, "r-3");
    }
    wait_published(&server);
    assert_eq!(server.stop(), Some(0));
    let offsets = std::fs::read_to_string(tmp.path().join("kafka-outbox.offsets")).unwrap();
    assert!(offsets.lines().any(|l| !l.starts_with('#')), "{offsets}");

    // Restart: publishing resumes after the recorded LSN.
    let server = start_server(tmp.path(), &broker, &["--kafka-no-consume"]);
    reserve(&server, "r-4");
    wait_published(&server);
    let all: Vec<Value> = events(&broker.servers, "inventory.reserved")
        .into_iter()
        .filter(|e| e["data"]["orderId"].as_str().is_some_and(|o| o.starts_with("r-")))
        .collect();
    let mut ids: Vec<&str> = all.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let orders: Vec<&str> = all.iter().map(|e| e["data"]["orderId"].as_str().unwrap()).collect();
    assert_eq!(orders, ["r-1", "r-2", "r-3", "r-4"], "no event lost, none repeated");
    ids.dedup();
    assert_eq!(ids.len(), 4);
    assert_eq!(server.stop(), Some(0));
}

/// Seed 004's warehouses.
fn seed_004_warehouses() -> Vec<Warehouse> {
    let wh = |id: &str, region: &str, priority| Warehouse {
        id: LocationId::parse(id, "id").unwrap(),
        name: id.to_uppercase(),
        region: Some(region.into()),
        priority,
    };
    vec![wh("wh-sp-001", "southeast", 1), wh("wh-rj-001", "southeast", 2), wh("wh-pr-001", "south", 1)]
}

/// Stocks two SKUs at seed 004's warehouses and moves some W-1 units in transit and
/// receives them, with the engine itself (the HTTP API has no transfer yet), before
/// `stockd` starts on the same data dir and publishes it all from the WAL.
fn stock_at_locations(dir: &std::path::Path) {
    let config = stockd_engine::EngineConfig {
        shards: 4,
        expiry_interval: None,
        warehouses: Some(seed_004_warehouses()),
        ..Default::default()
    };
    let (engine, _) = stockd_engine::Engine::open(dir, config, Default::default()).unwrap();
    let b = engine.blocking();
    let sku = |s: &str| Sku::parse(s, "sku").unwrap();
    let loc = |s: &str| LocationId::parse(s, "location").unwrap();
    for (s, l, on_hand) in
        [("W-1", "wh-sp-001", 6), ("W-1", "wh-pr-001", 6), ("W-2", "wh-pr-001", 5), ("W-2", "wh-rj-001", 5)]
    {
        b.set_item(SetItem {
            sku: sku(s),
            on_hand,
            low_stock_threshold: None,
            max_per_order: None,
            expected_version: None,
            location: Some(loc(l)),
            incoming: None,
        })
        .unwrap();
    }
    let transfer = Transfer {
        sku: sku("W-1"),
        from: loc("wh-pr-001"),
        to: loc("wh-rj-001"),
        quantity: 2,
        in_transit: true,
        note: Some("rebalance".into()),
        idempotency_key: None,
    };
    stockd_engine::block_on(engine.transfer(transfer)).unwrap();
    stockd_engine::block_on(engine.receive(sku("W-1"), loc("wh-rj-001"), 2, None)).unwrap();
    engine.shutdown();
}

#[test]
fn locations_in_orders_and_in_published_events() {
    let broker = Broker::start();
    let tmp = tempfile::tempdir().unwrap();
    stock_at_locations(tmp.path());
    let server = start_server(tmp.path(), &broker, &[]);
    // W-1 from the warehouse the line names (seed 004's warehouseId); W-2 by priority,
    // the delivery region first: wh-rj-001 (southeast) before wh-pr-001 (priority 1).
    let order = json!({
        "eventType": "order.created", "orderId": "o-loc-1", "region": "southeast",
        "items": [{"sku": "W-1", "quantity": 3, "warehouseId": "wh-pr-001"}, {"sku": "W-2", "quantity": 2}],
    });
    broker.produce_json("order.created", "o-loc-1", &order);
    // A malformed location and a warehouse the table does not list: dead-lettered.
    for (o, l) in [("o-loc-2", "not a place"), ("o-loc-3", "wh-xx-999")] {
        let bad = json!({"orderId": o, "items": [{"sku": "W-1", "quantity": 1, "location": l}]});
        broker.produce_json("order.created", o, &bad);
    }
    wait_for(60, "o-loc-1 reserved", || (item(&server, "W-2")["reserved"] == 2).then_some(()));
    broker.produce_json("payment.completed", "o-loc-1", &json!({"orderId": "o-loc-1"}));
    wait_for(60, "o-loc-1 committed", || (item(&server, "W-1")["sold"] == 3).then_some(()));
    // W-1 now has 6 available at wh-sp-001 (priority 1), 3 at wh-pr-001 (priority 1);
    // stock 20 at wh-rj-001 (priority 2): by the order's strategy, most-available
    // takes wh-rj-001 where priority (the server's default) would take wh-sp-001.
    // An unknown strategy is dead-lettered.
    assert_ok(server.put("/api/v1/inventory/items/W-1/locations/wh-rj-001", r#"{"onHand": 20}"#), 200);
    let most = json!({"orderId": "o-loc-4", "allocation": "most-available", "items": [{"sku": "W-1", "quantity": 2}]});
    broker.produce_json("order.created", "o-loc-4", &most);
    let cheapest = json!({"orderId": "o-loc-5", "allocation": "cheapest", "items": [{"sku": "W-1", "quantity": 1}]});
    broker.produce_json("order.created", "o-loc-5", &cheapest);
    wait_for(60, "o-loc-4 reserved", || (item(&server, "W-1")["reserved"] == 2).then_some(()));
    let dlq = wait_for(30, "three DLQ messages", || {
        let got = read_topic(&broker.servers, "stockd.dlq");
        (got.len() >= 3).then_some(got)
    });
    let errors: Vec<String> = dlq.iter().map(|d| d.headers.get("dlq.error").cloned().unwrap_or_default()).collect();
    let location_errors = errors.iter().filter(|e| e.contains("VALIDATION_ERROR") && e.contains("location")).count();
    assert_eq!(location_errors, 2, "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("allocation") && e.contains("cheapest")), "{errors:?}");
    wait_published(&server);

    let allocations = |e: &Value, sku: &str| {
        let items = e["data"]["items"].as_array().unwrap();
        items.iter().find(|i| i["sku"] == sku).unwrap()["allocations"].clone()
    };
    let reserved: Vec<Value> = events(&broker.servers, "inventory.reserved")
        .into_iter()
        .filter(|e| e["data"]["orderId"] == "o-loc-1")
        .collect();
    assert_eq!(reserved.len(), 1, "{reserved:?}");
    assert_eq!(allocations(&reserved[0], "W-1"), json!([{"location": "wh-pr-001", "quantity": 3, "committed": 0}]));
    assert_eq!(allocations(&reserved[0], "W-2"), json!([{"location": "wh-rj-001", "quantity": 2, "committed": 0}]));
    let by_most_available: Vec<Value> = events(&broker.servers, "inventory.reserved")
        .into_iter()
        .filter(|e| e["data"]["orderId"] == "o-loc-4")
        .collect();
    assert_eq!(
        allocations(&by_most_available[0], "W-1"),
        json!([{"location": "wh-rj-001", "quantity": 2, "committed": 0}])
    );
    let confirmed: Vec<Value> = events(&broker.servers, "inventory.confirmed")
        .into_iter()
        .filter(|e| e["data"]["orderId"] == "o-loc-1")
        .collect();
    assert_eq!(allocations(&confirmed[0], "W-1"), json!([{"location": "wh-pr-001", "quantity": 3, "committed": 3}]));

    let transferred = events(&broker.servers, "inventory.transferred");
    assert_eq!(transferred.len(), 1, "{transferred:?}");
    let t = &transferred[0]["data"];
    assert_eq!((&t["sku"], &t["from"], &t["to"]), (&json!("W-1"), &json!("wh-pr-001"), &json!("wh-rj-001")));
    assert_eq!((&t["quantity"], &t["inTransit"], &t["note"]), (&json!(2), &json!(true), &json!("rebalance")));
    assert_eq!((&t["onHand"], &t["incoming"]), (&json!(10), &json!(2)), "{t}");
    let rj = json!({"location": "wh-rj-001", "onHand": 0, "available": 0, "reserved": 0, "sold": 0, "incoming": 2});
    assert!(t["locations"].as_array().unwrap().contains(&rj), "{t}");
    let received = events(&broker.servers, "inventory.received");
    assert_eq!(received.len(), 1, "{received:?}");
    let r = &received[0]["data"];
    assert_eq!((&r["sku"], &r["location"], &r["quantity"]), (&json!("W-1"), &json!("wh-rj-001"), &json!(2)));
    assert_eq!((&r["onHand"], &r["incoming"]), (&json!(12), &json!(0)), "{r}");
    let adjusted = events(&broker.servers, "inventory.adjusted");
    let set_rj = adjusted.iter().find(|e| e["data"]["sku"] == "W-2" && e["data"]["location"] == "wh-rj-001").unwrap();
    assert_eq!(set_rj["data"]["locations"].as_array().map(Vec::len), Some(2), "{set_rj}");
    assert_eq!(server.stop(), Some(0));
}

#[test]
fn without_brokers_there_is_no_kafka() {
    let server = Server::start(&[]);
    let h = assert_ok(server.get("/health"), 200);
    assert!(h.get("kafka").is_none(), "{h}");
    // Headers API used by the DLQ test compiles against this rdkafka version.
    let _ = OwnedHeaders::new().insert(Header { key: "k", value: Some("v") });
}
