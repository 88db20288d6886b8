//! A flash sale on one hot SKU: many concurrent reserves never oversell.

mod common;
use common::{assert_ok, Server};
use std::sync::Arc;

#[test]
fn concurrent_reserves_on_a_hot_sku_never_oversell() {
    const STOCK: u64 = 10;
    const CLIENTS: usize = 32;
    const PER_CLIENT: usize = 4;
    let s = Arc::new(Server::start(&[]));
    assert_ok(s.put("/api/v1/inventory/items/HOT", &format!(r#"{{"onHand": {STOCK}}}"#)), 201);
    let threads: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let s = s.clone();
            std::thread::spawn(move || {
                let mut won = 0u64;
                for k in 0..PER_CLIENT {
                    let body = format!(r#"{{"orderId":"c{c}-{k}","items":[{{"sku":"HOT","quantity":1}}]}}"#);
                    let (status, v) = s.post("/api/v1/inventory/reserve", &body);
                    match status {
                        201 => won += 1,
                        409 => assert_eq!(v["error"]["code"], "INSUFFICIENT_INVENTORY", "{v}"),
                        other => panic!("unexpected {other}: {v}"),
                    }
                }
                won
            })
        })
        .collect();
    let won: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(won, STOCK, "exactly the stock is sold, no more, no less");
    let item = assert_ok(s.get("/api/v1/inventory/items/HOT"), 200);
    assert_eq!((item["reserved"].as_u64(), item["available"].as_u64()), (Some(STOCK), Some(0)));
}
