//! The Kafka publisher as the engine's outbox consumer (issue 13, defect 3): with
//! publishing on, `stockd serve` registers outbox retention with the configured
//! ceiling and policy, the publisher advances the retention floor to what the broker
//! acknowledged, and /health and /metrics show what is held per shard. (Retention,
//! refusal and dropping themselves are tested in engine/tests/outbox.rs, where
//! segments and snapshots can be made small.)

mod common;

use common::{assert_ok, Server};
use rdkafka::mocking::MockCluster;
use serde_json::Value;
use std::time::{Duration, Instant};

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn outbox(server: &Server) -> Value {
    assert_ok(server.get("/health"), 200)["outbox"].clone()
}

#[test]
fn the_publisher_advances_the_retention_floor_and_health_and_metrics_show_it() {
    let mock = MockCluster::new(1).expect("mock cluster");
    for t in ["inventory.reserved", "inventory.adjusted", "inventory.low_stock", "inventory.out_of_stock"] {
        mock.create_topic(t, 1, 1).expect("create topic");
    }
    let servers = mock.bootstrap_servers();
    let args =
        ["--kafka-brokers", &servers, "--kafka-no-consume", "--outbox-max-bytes", "12345", "--outbox-full", "drop"];
    let server = Server::start(&args);
    let o = outbox(&server);
    assert_eq!(o["policy"], "drop");
    assert_eq!(o["maxBytes"], 12345);
    assert_eq!(o["heldBytes"].as_array().unwrap().len(), 4);
    assert_ok(server.put("/api/v1/inventory/items/A", r#"{"onHand":100}"#), 201);
    let body = r#"{"orderId":"o-1","items":[{"sku":"A","quantity":1}]}"#;
    assert_ok(server.post("/api/v1/inventory/reserve", body), 201);
    // Once the broker acknowledged the events, the floor follows the published LSN.
    wait_for("the outbox floor to follow the publisher", || {
        let o = outbox(&server);
        let acked: u64 = o["ackedLsn"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).sum();
        acked >= 2
    });
    let metrics = server.text("/metrics");
    for name in ["stockd_outbox_held_bytes{shard=\"0\"}", "stockd_outbox_events_dropped_total{shard=\"3\"} 0"] {
        assert!(metrics.contains(name), "/metrics lacks {name}:\n{metrics}");
    }
    assert_eq!(server.stop(), Some(0));

    // The default policy never loses events; without Kafka nothing is registered.
    let server = Server::start(&["--kafka-brokers", &servers, "--kafka-no-consume"]);
    assert_eq!(outbox(&server)["policy"], "refuse");
    assert_eq!(server.stop(), Some(0));
    let server = Server::start(&[]);
    assert_eq!(outbox(&server), Value::Null);
    assert!(!server.text("/metrics").contains("stockd_outbox_held_bytes"));
    assert_eq!(server.stop(), Some(0));
}
