//! When a shard's WAL fails, mutating routes answer 503 and /health says why. Runs
//! the router in-process over a durable engine with an injected fsync failure (the
//! binary has no fault flag), still talking real HTTP.

mod common;
use common::{assert_error, assert_ok};
use std::sync::Arc;
use stockd_engine::{Durability, Engine, EngineConfig, FaultInjector, StorageConfig};
use stockd_server::app::{router, AppState};

struct InProcess {
    base: String,
    _rt: tokio::runtime::Runtime,
}

impl InProcess {
    fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, serde_json::Value) {
        let req = ureq::request(method, &format!("{}{path}", self.base));
        let res = match body {
            Some(b) => req.set("Content-Type", "application/json").send_string(b),
            None => req.call(),
        };
        let r = match res {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{e}"),
        };
        (r.status(), r.into_json().unwrap())
    }
}

#[test]
fn a_failed_wal_answers_503_and_health_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(FaultInjector::new());
    let storage = StorageConfig { durability: Durability::Fsync, faults: Some(faults.clone()), ..Default::default() };
    let config = EngineConfig { shards: 1, ..Default::default() };
    let (engine, _) = Engine::open(dir.path(), config, storage).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = router(AppState::new(engine.clone(), None, "fsync"));
    rt.spawn(async move { axum::serve(listener, app).await });
    let s = InProcess { base, _rt: rt };

    assert_ok(s.call("PUT", "/api/v1/inventory/items/W", Some(r#"{"onHand": 5}"#)), 201);
    faults.fail_syncs(true);
    let (status, body) = s.call("PUT", "/api/v1/inventory/items/W", Some(r#"{"onHand": 6}"#));
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("SERVICE_UNAVAILABLE")), "{body}");
    assert!(engine.is_failed());
    assert_error(
        s.call("POST", "/api/v1/inventory/reserve", Some(r#"{"orderId":"o","items":[{"sku":"W","quantity":1}]}"#)),
        503,
        "SERVICE_UNAVAILABLE",
    );
    let details = assert_error(s.call("GET", "/health", None), 503, "SERVICE_UNAVAILABLE");
    assert_eq!(details["status"], "failed");
    assert_eq!(details["wal"], "failed");
    assert!(details["walReason"].as_str().unwrap().contains("shard"), "{details}");
    assert_error(s.call("GET", "/ready", None), 503, "SERVICE_UNAVAILABLE");
    engine.shutdown();
}

/// The write gate is a layer of every route that changes state, not a line each
/// handler must remember: while the server is shutting down, every operation of the
/// OpenAPI document other than a read (GET, and check-availability) is refused with
/// 503 before its handler runs, and the reads still answer.
#[test]
fn every_route_that_changes_state_is_behind_the_write_gate() {
    let engine = Engine::in_memory(EngineConfig { shards: 1, ..Default::default() }).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState::new(engine.clone(), None, "none");
    let stopping = state.stopping.clone();
    let app = router(state);
    rt.spawn(async move { axum::serve(listener, app).await });
    let s = InProcess { base, _rt: rt };

    let (_, doc) = s.call("GET", "/api/v1/openapi.json", None);
    stopping.store(true, std::sync::atomic::Ordering::Release);
    let mut gated = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/api/v1/inventory/") {
            continue; // /ready answers 503 while stopping by design
        }
        let path = path.replace("{sku}", "X").replace("{location}", "default").replace("{id}", "o");
        for method in ops.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            let (status, body) = s.call(&method, &path, (method != "GET").then_some("{}"));
            let read = method == "GET" || path.ends_with("/check-availability");
            let message = body["error"]["message"].as_str().unwrap_or_default().to_owned();
            if read {
                assert!(!message.ends_with("shutting down"), "{method} {path} is a read: {body}");
            } else {
                assert_eq!(
                    (status, body["error"]["code"].as_str()),
                    (503, Some("SERVICE_UNAVAILABLE")),
                    "{method} {path}"
                );
                assert!(message.ends_with("shutting down"), "{method} {path}: {body}");
                gated.push(format!("{method} {path}"));
            }
        }
    }
    assert!(gated.len() >= 14, "the document lists every mutating route: {gated:?}");
    engine.shutdown();
}
