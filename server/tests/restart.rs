//! Durability over HTTP: every acknowledged reservation (and its state) is found
//! after the server stops and starts again on the same data dir; also after a kill.

mod common;
use common::{assert_ok, Server};

#[test]
fn acknowledged_reservations_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_on(dir.path(), &[]);
    assert_ok(s.put("/api/v1/inventory/items/R1", r#"{"onHand": 100}"#), 201);
    assert_ok(s.put("/api/v1/inventory/items/R2", r#"{"onHand": 100}"#), 201);
    let mut acked = Vec::new();
    for i in 0..20 {
        let body =
            format!(r#"{{"orderId":"ord-{i}","items":[{{"sku":"R1","quantity":1}},{{"sku":"R2","quantity":2}}]}}"#);
        let r = assert_ok(s.post("/api/v1/inventory/reserve", &body), 201);
        acked.push((format!("ord-{i}"), r["reservationId"].as_str().unwrap().to_owned()));
    }
    assert_ok(s.post("/api/v1/inventory/commit", r#"{"orderId":"ord-0"}"#), 200);
    assert_ok(s.post("/api/v1/inventory/release", r#"{"orderId":"ord-1"}"#), 200);
    assert_eq!(s.stop(), Some(0));

    let s = Server::start_on(dir.path(), &[]);
    for (i, (order, id)) in acked.iter().enumerate() {
        let r = assert_ok(s.get(&format!("/api/v1/inventory/reservations/{id}")), 200);
        assert_eq!(r["orderId"], order.as_str());
        let want = match i {
            0 => "COMMITTED",
            1 => "RELEASED",
            _ => "ACTIVE",
        };
        assert_eq!(r["status"], want, "{r}");
    }
    let r1 = assert_ok(s.get("/api/v1/inventory/items/R1"), 200);
    assert_eq!((r1["reserved"].as_u64(), r1["sold"].as_u64(), r1["available"].as_u64()), (Some(18), Some(1), Some(81)));

    // A kill (no graceful shutdown): acknowledged work is still there.
    assert_ok(
        s.post("/api/v1/inventory/reserve", r#"{"orderId":"after-kill","items":[{"sku":"R1","quantity":5}]}"#),
        201,
    );
    drop(s); // SIGKILL
    let s = Server::start_on(dir.path(), &[]);
    assert_eq!(assert_ok(s.get("/api/v1/inventory/reservations/after-kill"), 200)["status"], "ACTIVE");
    assert_eq!(assert_ok(s.get("/api/v1/inventory/items/R1"), 200)["reserved"], 23);
}

#[test]
fn sigterm_under_load_loses_no_acknowledged_reservation() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_on(dir.path(), &[]);
    assert_ok(s.put("/api/v1/inventory/items/L", r#"{"onHand": 1000000}"#), 201);
    let base = s.base.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let (base, stop) = (base.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for k in 0.. {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) && k > 2000 {
                        break;
                    }
                    let body = format!(r#"{{"orderId":"c{c}-{k}","items":[{{"sku":"L","quantity":1}}]}}"#);
                    let res = ureq::post(&format!("{base}/api/v1/inventory/reserve"))
                        .set("Content-Type", "application/json")
                        .send_string(&body);
                    match res {
                        Ok(r) if r.status() == 201 => acked.push(format!("c{c}-{k}")),
                        // Refused (503 while stopping) or the connection closed: not acknowledged.
                        _ => break,
                    }
                }
                acked
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(s.stop(), Some(0), "SIGTERM under load exits 0");
    let acked: Vec<String> = clients.into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert!(!acked.is_empty());

    let s = Server::start_on(dir.path(), &[]);
    for order in &acked {
        assert_eq!(assert_ok(s.get(&format!("/api/v1/inventory/reservations/{order}")), 200)["status"], "ACTIVE");
    }
    let reserved = assert_ok(s.get("/api/v1/inventory/items/L"), 200)["reserved"].as_u64().unwrap();
    assert!(reserved >= acked.len() as u64, "reserved {reserved} < acknowledged {}", acked.len());
}
