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
