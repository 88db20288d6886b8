//! /health, /ready, /metrics, the OpenAPI document, and flag handling.

mod common;
use common::{assert_ok, Server};
use std::process::Command;

/// Every route the server answers; the OpenAPI document must list each one.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/api/v1/inventory/items"),
    ("put", "/api/v1/inventory/items/{sku}"),
    ("get", "/api/v1/inventory/items/{sku}"),
    ("delete", "/api/v1/inventory/items/{sku}"),
    ("post", "/api/v1/inventory/items/{sku}/adjust"),
    ("post", "/api/v1/inventory/items/{sku}/block"),
    ("post", "/api/v1/inventory/items/{sku}/unblock"),
    ("get", "/api/v1/inventory/items/{sku}/history"),
    ("get", "/api/v1/inventory/items/{sku}/locations"),
    ("put", "/api/v1/inventory/items/{sku}/locations/{location}"),
    ("post", "/api/v1/inventory/items/{sku}/transfers"),
    ("post", "/api/v1/inventory/items/{sku}/receipts"),
    ("get", "/api/v1/inventory/warehouses"),
    ("post", "/api/v1/inventory/check-availability"),
    ("post", "/api/v1/inventory/reserve"),
    ("post", "/api/v1/inventory/commit"),
    ("post", "/api/v1/inventory/release"),
    ("post", "/api/v1/inventory/extend"),
    ("get", "/api/v1/inventory/reservations"),
    ("post", "/api/v1/inventory/reservations/expire-due"),
    ("get", "/api/v1/inventory/reservations/{id}"),
    ("post", "/api/v1/inventory/reservations/{id}/expire"),
    ("get", "/health"),
    ("get", "/ready"),
    ("get", "/metrics"),
    ("get", "/api/v1/openapi.json"),
];

#[test]
fn health_ready_and_metrics() {
    let s = Server::start(&[]);
    let h = assert_ok(s.get("/health"), 200);
    assert_eq!(h["status"], "ok");
    assert_eq!(h["wal"], "ok");
    assert_eq!(h["shards"], 4);
    assert_eq!(h["durability"], "fsync");
    assert_eq!(h["durableLsn"].as_array().unwrap().len(), 4);
    assert!(h["version"].is_string());
    // No flow was cut short and the sweep never failed.
    for field in ["sweepFailures", "reconciledSettled", "reconciledAborted"] {
        assert_eq!(h["flows"][field], 0, "{field}: {h}");
    }
    assert!(h["flows"]["stepsDeferred"].is_u64(), "{h}");
    assert_eq!(assert_ok(s.get("/ready"), 200)["ready"], true);

    assert_ok(s.put("/api/v1/inventory/items/M", r#"{"onHand": 3, "lowStockThreshold": 1}"#), 201);
    assert_ok(s.post("/api/v1/inventory/reserve", r#"{"orderId":"m1","items":[{"sku":"M","quantity":2}]}"#), 201);
    assert_ok(s.post("/api/v1/inventory/reserve", r#"{"orderId":"m2","items":[{"sku":"M","quantity":1}]}"#), 201);
    s.post("/api/v1/inventory/reserve", r#"{"orderId":"m3","items":[{"sku":"M","quantity":1}]}"#);
    assert_ok(s.post("/api/v1/inventory/release", r#"{"orderId":"m2"}"#), 200);
    let text = s.text("/metrics");
    for needle in [
        r#"stockd_http_requests_total{method="POST",route="/api/v1/inventory/reserve",status="201"} 2"#,
        r#"stockd_http_requests_total{method="POST",route="/api/v1/inventory/reserve",status="409"} 1"#,
        "stockd_reserve_duration_seconds_count 3",
        "stockd_reserve_duration_seconds_bucket{le=\"+Inf\"} 3",
        "stockd_reservations_active 1",
        "stockd_reservations_released_total 1",
        "stockd_low_stock_alerts_total 1",
        "stockd_out_of_stock_alerts_total 1",
        "stockd_invariant_violations 0",
        "stockd_oversell_detected_total 0",
        "stockd_wal_durable_lsn{shard=\"3\"}",
        "stockd_shard_failed{shard=\"0\"} 0",
        "stockd_reservations_expired_total 0",
        "stockd_wal_sync_duration_seconds_bucket{le=\"+Inf\"}",
        "stockd_sweep_failures_total 0",
        "stockd_flow_steps_deferred_total 0",
        "stockd_reconciler_settled_total 0",
        "stockd_reconciler_aborted_total 0",
    ] {
        assert!(text.contains(needle), "metrics lack {needle:?}:\n{text}");
    }
    let lsns = assert_ok(s.get("/health"), 200)["durableLsn"].clone();
    assert!(lsns.as_array().unwrap().iter().any(|l| l.as_u64().unwrap() > 0), "{lsns}");
    assert_eq!(s.stop(), Some(0), "SIGTERM exits 0");
}

#[test]
fn openapi_lists_every_route() {
    let s = Server::start(&["--durability", "none"]);
    let (status, doc) = s.get("/api/v1/openapi.json");
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    for (method, path) in ROUTES {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} missing from the OpenAPI document");
    }
    let documented: usize = doc["paths"].as_object().unwrap().values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(documented, ROUTES.len(), "the document lists a route the server lacks");
    assert!(doc["components"]["schemas"]["ReserveBody"].is_object());
}

#[test]
fn bad_flags_exit_non_zero_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["serve", "--durability", "maybe"],
        vec!["serve", "--shards", "0"],
        vec!["serve", "--listen", "not-an-address"],
        vec!["serve", "--log-format", "xml"],
        vec!["frobnicate"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_stockd"))
            .args(&args)
            .arg("--data-dir")
            .arg(dir.path())
            .env_remove("STOCKD_LISTEN")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(!out.stderr.is_empty(), "{args:?} printed no message");
    }
    // Listening on a port in use fails with a message, too.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_stockd"))
        .args(["serve", "--durability", "none", "--listen", &taken.local_addr().unwrap().to_string(), "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bind"));
}

#[test]
fn json_logs() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_stockd"))
        .args(["serve", "--durability", "none", "--listen", "127.0.0.1:0", "--log-format", "json", "--data-dir"])
        .arg(dir.path())
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    assert!(line.starts_with("listening on 127.0.0.1:"), "{line}");
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "SIGINT exits 0");
    let logs = String::from_utf8_lossy(&out.stderr);
    let first = logs.lines().find(|l| l.contains("stockd listening")).expect("a listening log line");
    let v: serde_json::Value = serde_json::from_str(first).expect("JSON log line");
    assert_eq!(v["level"], "INFO");
}
