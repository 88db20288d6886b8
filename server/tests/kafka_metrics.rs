//! Metrics of an event-driven deployment (issue 15, "metrics are blind to Kafka"), on
//! a real Kafka-protocol broker (tansu): reservations that arrive only through Kafka
//! show in /metrics as created / committed, with the reserve latency under the
//! `kafka` path, refusals by code, stock alerts, the dead-letter count, the consumer
//! lag per partition (exact, including a partition held back by a parked message),
//! and the broker connection state in /metrics and /health.

mod common;

use common::kafka::create_topics_with;
use common::tansu::Tansu;
use common::{assert_ok, Server};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use serde_json::json;
use std::time::{Duration, Instant};

/// A producer that may send messages up to 4 MB (the broker keeps them).
fn producer(servers: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("message.max.bytes", "4000000")
        .create()
        .expect("test producer")
}

fn send(p: &BaseProducer, topic: &str, partition: i32, key: &str, payload: &[u8]) {
    p.send(BaseRecord::to(topic).partition(partition).key(key).payload(payload)).map_err(|(e, _)| e).expect("send");
    p.flush(Duration::from_secs(10)).expect("flush");
}

fn order(id: &str, sku: &str, quantity: u64) -> Vec<u8> {
    json!({"orderId": id, "items": [{"sku": sku, "quantity": quantity}]}).to_string().into_bytes()
}

/// Waits (at most 60 s) until /metrics holds every line of `lines`; the text then.
fn wait_for_metrics(s: &Server, lines: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = s.text("/metrics");
        let missing: Vec<&&str> = lines.iter().filter(|l| !text.lines().any(|t| t == **l)).collect();
        if missing.is_empty() {
            return text;
        }
        assert!(Instant::now() < deadline, "/metrics still lacks {missing:?}:\n{text}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn reservations_made_through_kafka_only_show_in_metrics() {
    let broker = Tansu::start();
    create_topics_with(
        &broker.servers,
        &["order.created", "payment.completed", "stockd.dlq", "inventory.reservation_failed"],
        2,
    );
    let s = Server::start(&[
        "--kafka-brokers",
        &broker.servers,
        "--kafka-topics",
        "order.created,payment.completed",
        "--kafka-no-publish",
        // A dead letter that cannot be produced parks its message after 1 s.
        "--kafka-produce-max-retry-time",
        "1s",
    ]);
    // Stock is set over HTTP; every reservation comes by Kafka.
    assert_ok(s.put("/api/v1/inventory/items/K", r#"{"onHand": 10, "lowStockThreshold": 4}"#), 201);
    let p = producer(&broker.servers);
    send(&p, "order.created", 0, "k1", &order("k1", "K", 2));
    send(&p, "order.created", 0, "k2", &order("k2", "K", 2));
    send(&p, "order.created", 0, "k3", &order("k3", "K", 2)); // 10 → 4: low stock
    send(&p, "order.created", 0, "k4", &order("k4", "K", 50)); // refused: insufficient
                                                               // Not JSON: dead-lettered.
    send(&p, "order.created", 0, "junk", b"not json");
    // Partition 1: a message done, then one whose dead letter (over the 1 MB the
    // server's producer may send) can never be produced: it is parked and holds its
    // partition's offset, then one more done behind it.
    send(&p, "order.created", 1, "k5", &order("k5", "K", 1));
    send(&p, "order.created", 1, "huge", &vec![b'x'; 1_100_000]);
    send(&p, "order.created", 1, "k6", &order("k6", "K", 1));
    // Paid once its reservation is there (the topics are consumed in no set order).
    wait_for_metrics(&s, &["stockd_reservations_created_total 5"]);
    send(&p, "payment.completed", 0, "k1", &json!({"orderId": "k1"}).to_string().into_bytes());

    let text = wait_for_metrics(
        &s,
        &[
            "stockd_reservations_created_total 5",
            "stockd_reservations_committed_total 1",
            "stockd_kafka_dead_letters_total 1",
            // Offsets stored after each message is done: partition 0 is all done;
            // partition 1 stops below the parked message (offset 1): 3 - 1 = 2.
            r#"stockd_kafka_consumer_lag{topic="order.created",partition="0"} 0"#,
            r#"stockd_kafka_consumer_lag{topic="order.created",partition="1"} 2"#,
            r#"stockd_kafka_consumer_lag{topic="payment.completed",partition="0"} 0"#,
            r#"stockd_kafka_consumer_blocked{topic="order.created",partition="1"} 1"#,
        ],
    );
    for line in [
        // Six reserves answered by the engine, all by the Kafka path.
        r#"stockd_reserve_path_duration_seconds_count{path="kafka"} 6"#,
        r#"stockd_reserve_path_duration_seconds_bucket{path="kafka",le="+Inf"} 6"#,
        r#"stockd_reserve_path_duration_seconds_count{path="http"} 0"#,
        r#"stockd_reserve_path_duration_seconds_count{path="embedded"} 0"#,
        "stockd_reserve_duration_seconds_count 6",
        "stockd_reserve_rejected_total 1",
        r#"stockd_rejections_total{op="reserve",code="INSUFFICIENT_INVENTORY"} 1"#,
        "stockd_low_stock_alerts_total 1",
        "stockd_reservations_active 4",
        "stockd_kafka_broker_up 1",
    ] {
        assert!(text.lines().any(|t| t == line), "/metrics lacks {line:?}:\n{text}");
    }
    let health = assert_ok(s.get("/health"), 200);
    assert_eq!(health["kafka"]["brokerState"], "up", "{health}");
    let lag = health["kafka"]["consumer"]["lag"].as_array().expect("lag list").clone();
    assert!(
        lag.contains(&json!({"topic": "order.created", "partition": 1, "lag": 2})),
        "/health kafka.consumer.lag: {lag:?}"
    );
    // Prometheus reads it all (promtool is installed where these tests run).
    promtool_check_metrics(&text);
}

/// `promtool check metrics` on `text`: the exposition format is valid.
fn promtool_check_metrics(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("this test needs promtool (Debian: apt-get install prometheus)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_broker_that_goes_away_shows_as_down() {
    let broker = Tansu::start();
    create_topics_with(&broker.servers, &["order.created"], 1);
    let s =
        Server::start(&["--kafka-brokers", &broker.servers, "--kafka-topics", "order.created", "--kafka-no-publish"]);
    wait_for_metrics(&s, &["stockd_kafka_broker_up 1"]);
    drop(broker); // killed: every connection refused from now on
    wait_for_metrics(&s, &["stockd_kafka_broker_up 0"]);
    let health = assert_ok(s.get("/health"), 200);
    assert_eq!(health["kafka"]["brokerState"], "down", "{health}");
}
