//! Seed-system defaults settable by flag and environment (issue 15): a server-wide
//! low-stock threshold for items created without one (`--low-stock-threshold`), the
//! retention of finished reservations (`--retention`), the node's id (`--node-id`),
//! the Kafka client id and consumer batch size; bad values stop the start with a
//! message naming the flag. And the HTTP path of the engine-fed metrics.

mod common;
use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

const INV: &str = "/api/v1/inventory";

fn metric(text: &str, line_prefix: &str) -> Option<String> {
    text.lines().find_map(|l| l.strip_prefix(line_prefix).map(|v| v.trim().to_owned()))
}

#[test]
fn a_default_low_stock_threshold_for_items_created_without_one() {
    let s = Server::start(&["--durability", "none", "--low-stock-threshold", "5"]);
    let created = assert_ok(s.put(&format!("{INV}/items/D"), r#"{"onHand": 10}"#), 201);
    assert_eq!(created["lowStockThreshold"], 5, "{created}");
    let own = assert_ok(s.put(&format!("{INV}/items/OWN"), r#"{"onHand": 10, "lowStockThreshold": 1}"#), 201);
    assert_eq!(own["lowStockThreshold"], 1, "{own}");
    // An update that names no threshold keeps the item's own.
    let updated = assert_ok(s.put(&format!("{INV}/items/OWN"), r#"{"onHand": 12}"#), 200);
    assert_eq!(updated["lowStockThreshold"], 1, "{updated}");
    // 10 → 5 crosses the default threshold: one low-stock alert, counted by the engine.
    assert_ok(s.post(&format!("{INV}/reserve"), r#"{"orderId":"d1","items":[{"sku":"D","quantity":5}]}"#), 201);
    let item = assert_ok(s.get(&format!("{INV}/items/D")), 200);
    assert_eq!(item["lowStock"], true, "{item}");
    let text = s.text("/metrics");
    assert_eq!(metric(&text, "stockd_low_stock_alerts_total "), Some("1".into()), "{text}");
    // The reserve was timed under the HTTP path.
    assert_eq!(metric(&text, r#"stockd_reserve_path_duration_seconds_count{path="http"} "#), Some("1".into()));
    assert_eq!(metric(&text, r#"stockd_reserve_path_duration_seconds_count{path="kafka"} "#), Some("0".into()));
    assert_eq!(metric(&text, "stockd_reservations_created_total "), Some("1".into()));
}

#[test]
fn without_the_flag_items_get_no_threshold() {
    let s = Server::start(&["--durability", "none"]);
    let created = assert_ok(s.put(&format!("{INV}/items/Z"), r#"{"onHand": 10}"#), 201);
    assert_eq!(created["lowStockThreshold"], 0, "{created}");
}

#[test]
fn finished_reservations_are_forgotten_after_the_retention() {
    let s = Server::start(&["--durability", "none", "--retention", "1s", "--sweep-interval", "100ms"]);
    assert_ok(s.put(&format!("{INV}/items/R"), r#"{"onHand": 10}"#), 201);
    assert_ok(s.post(&format!("{INV}/reserve"), r#"{"orderId":"r1","items":[{"sku":"R","quantity":1}]}"#), 201);
    assert_ok(s.post(&format!("{INV}/release"), r#"{"orderId":"r1"}"#), 200);
    assert_ok(s.get(&format!("{INV}/reservations/r1")), 200);
    // The default (24 h) would keep it for a day; 1 s of retention forgets it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = s.get(&format!("{INV}/reservations/r1"));
        if status == 404 {
            assert_eq!(body["error"]["code"], "RESERVATION_NOT_FOUND", "{body}");
            break;
        }
        assert_eq!(status, 200, "{body}");
        assert!(Instant::now() < deadline, "r1 still remembered 30 s after its release: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn bad_values_stop_the_start_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let long = "n".repeat(65);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--node-id", ""], "--node-id"),
        (vec!["--node-id", "node 1"], "--node-id"),
        (vec!["--node-id", "node/1"], "--node-id"),
        (vec!["--node-id", &long], "--node-id"),
        (vec!["--low-stock-threshold=-1"], "--low-stock-threshold"),
        (vec!["--low-stock-threshold", "1000000000001"], "--low-stock-threshold"),
        (vec!["--retention", "0"], "--retention"),
        (vec!["--retention", "366d"], "--retention"),
        (vec!["--kafka-batch-size", "0"], "--kafka-batch-size"),
        (vec!["--kafka-batch-size", "many"], "--kafka-batch-size"),
        (vec!["--kafka-client-id", "a b"], "--kafka-client-id"),
    ];
    for (args, flag) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_stockd"))
            .args(["serve", "--durability", "none", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .args(&args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} started");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(flag), "{args:?}: the message does not name {flag}: {err}");
    }
    // The same through the environment.
    let out = Command::new(env!("CARGO_BIN_EXE_stockd"))
        .args(["serve", "--durability", "none", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("STOCKD_NODE_ID", "no spaces please")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--node-id"));
}

#[test]
fn good_values_start() {
    let s = Server::start(&[
        "--durability",
        "none",
        "--node-id",
        "node-1.eu_west",
        "--kafka-client-id",
        "shop.stockd-1",
        "--kafka-batch-size",
        "64",
        "--retention",
        "7d",
        "--low-stock-threshold",
        "0",
    ]);
    assert_ok(s.get("/health"), 200);
}
