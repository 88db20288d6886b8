//! Consume → durable → publish throughput of the Kafka front (ignored by default):
//!
//! ```text
//! CARGO_TARGET_DIR=... cargo test -p stockd-server --release --test kafka_throughput -- --ignored --nocapture
//! ```
//!
//! Produces N `order.created` messages to the mock broker, then measures how long the
//! real `stockd` binary takes until every order is reserved (fsynced) and every
//! `inventory.reserved` event is acknowledged by the broker (publish lag 0).

mod common;

use common::{assert_ok, Server};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use serde_json::json;
use std::time::{Duration, Instant};

#[test]
#[ignore = "measurement; run with --ignored --nocapture"]
fn consume_durable_publish_throughput() {
    let n: usize = std::env::var("STOCKD_KAFKA_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(5_000);
    let mock = MockCluster::new(1).unwrap();
    for t in ["order.created", "inventory.reserved", "inventory.adjusted", "stockd.dlq"] {
        mock.create_topic(t, 1, 1).unwrap();
    }
    let servers = mock.bootstrap_servers();
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start_on(tmp.path(), &["--kafka-brokers", &servers, "--kafka-topics", "order.created"]);
    for i in 0..100 {
        assert_ok(server.put(&format!("/api/v1/inventory/items/sku-{i}"), r#"{"onHand":1000000}"#), 201);
    }
    let producer: BaseProducer =
        ClientConfig::new().set("bootstrap.servers", &servers).set("linger.ms", "5").create().unwrap();
    for i in 0..n {
        let body = json!({"eventType": "order.created", "orderId": format!("bench-{i}"),
            "items": [{"sku": format!("sku-{}", i % 100), "quantity": 1}]})
        .to_string();
        let key = format!("bench-{i}");
        loop {
            match producer.send(BaseRecord::to("order.created").key(&key).payload(&body)) {
                Ok(()) => break,
                Err(_) => {
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let started = Instant::now();
    let mut consumed_at = None;
    loop {
        let h = assert_ok(server.get("/health"), 200)["kafka"].clone();
        let applied = h["consumer"]["applied"].as_u64().unwrap_or(0) as usize;
        if applied >= n && consumed_at.is_none() {
            consumed_at = Some(started.elapsed());
        }
        if consumed_at.is_some() && h["publisher"]["lagTotal"] == 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(600), "too slow: {h}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let total = started.elapsed();
    let consumed = consumed_at.unwrap();
    println!(
        "kafka front: {n} order.created → reserved (fsync) in {:.2}s ({:.0}/s); all inventory.reserved acknowledged after {:.2}s ({:.0}/s end to end)",
        consumed.as_secs_f64(),
        n as f64 / consumed.as_secs_f64(),
        total.as_secs_f64(),
        n as f64 / total.as_secs_f64()
    );
    assert_eq!(server.stop(), Some(0));
}
