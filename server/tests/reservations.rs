//! Reservation routes over HTTP: reserve → commit (full and partial), release,
//! extend, lookup, operator expire, and every error path.

mod common;
use common::{assert_error, assert_ok, Server};
use serde_json::json;

const INV: &str = "/api/v1/inventory";

fn start() -> Server {
    let s = Server::start(&["--durability", "none"]);
    assert_ok(s.put(&format!("{INV}/items/A"), r#"{"onHand": 10}"#), 201);
    assert_ok(s.put(&format!("{INV}/items/B"), r#"{"onHand": 10, "maxPerOrder": 2}"#), 201);
    s
}

fn item(s: &Server, sku: &str) -> (u64, u64, u64) {
    let i = assert_ok(s.get(&format!("{INV}/items/{sku}")), 200);
    (i["available"].as_u64().unwrap(), i["reserved"].as_u64().unwrap(), i["sold"].as_u64().unwrap())
}

#[test]
fn reserve_commit_and_release_after_commit() {
    let s = start();
    let r = assert_ok(s.post(&format!("{INV}/reserve"), r#"{"orderId":"o1","items":[{"sku":"A","quantity":3}]}"#), 201);
    assert_eq!(r["items"], json!([{"sku": "A", "quantity": 3, "reserved": true}]));
    assert_eq!(item(&s, "A"), (7, 3, 0));
    let id = r["reservationId"].as_str().unwrap();
    let c = assert_ok(s.post(&format!("{INV}/commit"), &format!(r#"{{"reservationId":"{id}"}}"#)), 200);
    assert_eq!(c["status"], "COMMITTED");
    assert_eq!(item(&s, "A"), (7, 0, 3));
    // Committing again is an idempotent repeat; releasing a committed one is 409.
    assert_ok(s.post(&format!("{INV}/commit"), r#"{"orderId":"o1"}"#), 200);
    assert_error(s.post(&format!("{INV}/release"), r#"{"orderId":"o1"}"#), 409, "RESERVATION_COMMITTED");
    // Lookup by reservationId and by orderId.
    assert_eq!(assert_ok(s.get(&format!("{INV}/reservations/{id}")), 200)["status"], "COMMITTED");
    assert_eq!(assert_ok(s.get(&format!("{INV}/reservations/o1")), 200)["reservationId"], id);
    assert_error(s.get(&format!("{INV}/reservations/nope")), 404, "RESERVATION_NOT_FOUND");
}

#[test]
fn partial_commit_returns_the_rest() {
    let s = start();
    assert_ok(
        s.post(
            &format!("{INV}/reserve"),
            r#"{"orderId":"o1","items":[{"sku":"A","quantity":4},{"productId":"B","quantity":2}]}"#,
        ),
        201,
    );
    let c = assert_ok(s.post(&format!("{INV}/commit"), r#"{"orderId":"o1","items":[{"sku":"A","quantity":1}]}"#), 200);
    assert_eq!(c["status"], "COMMITTED");
    assert_eq!(item(&s, "A"), (9, 0, 1));
    assert_eq!(item(&s, "B"), (8, 0, 2), "lines not named commit in full");
}

#[test]
fn release_then_commit_extend_and_expire() {
    let s = start();
    assert_ok(
        s.post(&format!("{INV}/reserve"), r#"{"orderId":"o1","items":[{"sku":"A","quantity":2}],"expiresIn":60}"#),
        201,
    );
    let r = assert_ok(s.post(&format!("{INV}/release"), r#"{"orderId":"o1","reason":"PAYMENT_FAILED"}"#), 200);
    assert_eq!((r["status"].as_str(), r["releaseReason"].as_str()), (Some("RELEASED"), Some("PAYMENT_FAILED")));
    assert_eq!(item(&s, "A"), (10, 0, 0));
    assert_error(s.post(&format!("{INV}/commit"), r#"{"orderId":"o1"}"#), 409, "RESERVATION_RELEASED");
    assert_error(s.post(&format!("{INV}/extend"), r#"{"orderId":"o1","expiresIn":60}"#), 409, "RESERVATION_RELEASED");

    let r = assert_ok(
        s.post(&format!("{INV}/reserve"), r#"{"orderId":"o2","items":[{"sku":"A","quantity":2}],"expiresIn":60}"#),
        201,
    );
    let before = r["expiresAt"].as_str().unwrap().to_owned();
    let e = assert_ok(s.post(&format!("{INV}/extend"), r#"{"orderId":"o2","expiresIn":3600}"#), 200);
    assert!(e["expiresAt"].as_str().unwrap() > before.as_str(), "{e}");
    assert_eq!(assert_ok(s.post(&format!("{INV}/reservations/o2/expire"), ""), 200)["status"], "EXPIRED");
    assert_eq!(item(&s, "A"), (10, 0, 0));
    assert_error(s.post(&format!("{INV}/commit"), r#"{"orderId":"o2"}"#), 409, "RESERVATION_EXPIRED");
    assert_error(s.post(&format!("{INV}/commit"), r#"{"orderId":"nope"}"#), 404, "RESERVATION_NOT_FOUND");
    assert_error(s.post(&format!("{INV}/release"), r#"{"reservationId":"nope"}"#), 404, "RESERVATION_NOT_FOUND");
    assert_error(
        s.post(&format!("{INV}/extend"), r#"{"orderId":"nope","expiresIn":60}"#),
        404,
        "RESERVATION_NOT_FOUND",
    );
    assert_error(s.post(&format!("{INV}/reservations/nope/expire"), ""), 404, "RESERVATION_NOT_FOUND");
}

#[test]
fn reserve_errors() {
    let s = start();
    let reserve = |body: &str| s.post(&format!("{INV}/reserve"), body);
    assert_eq!(
        assert_error(reserve(r#"{"orderId":"o","items":[{"sku":"NOPE","quantity":1}]}"#), 404, "ITEM_NOT_FOUND")["sku"],
        "NOPE"
    );
    let d =
        assert_error(reserve(r#"{"orderId":"o","items":[{"sku":"B","quantity":3}]}"#), 409, "MAX_PER_ORDER_EXCEEDED");
    assert_eq!(d["maxPerOrder"], 2);
    let field = |body: &str| assert_error(reserve(body), 400, "VALIDATION_ERROR")["field"].as_str().unwrap().to_owned();
    assert_eq!(field(r#"{"items":[{"sku":"A","quantity":1}]}"#), "orderId");
    assert_eq!(field(r#"{"orderId":"","items":[{"sku":"A","quantity":1}]}"#), "orderId");
    assert_eq!(field(r#"{"orderId":"o","items":[{"sku":"A","quantity":0}]}"#), "items[0].quantity");
    assert_eq!(field(r#"{"orderId":"o","items":[{"sku":"A","quantity":1000000001}]}"#), "items[0].quantity");
    assert_eq!(
        field(r#"{"orderId":"o","items":[{"sku":"A","quantity":1},{"productId":"A","quantity":1}]}"#),
        "items[1].sku"
    );
    assert_eq!(field(r#"{"orderId":"o","items":[{"sku":"a b","quantity":1}]}"#), "items[0].sku");
    assert_eq!(field(r#"{"orderId":"o","items":[{"sku":"A","productId":"A","quantity":1}]}"#), "items[0].sku");
    assert_eq!(field(r#"{"orderId":"o","items":[{"variantId":"v","quantity":1}]}"#), "items[0].productId");
    assert_eq!(field(r#"{"orderId":"o","items":[]}"#), "items");
    assert_eq!(field(r#"{"orderId":"o","items":[{"sku":"A","quantity":1}],"expiresIn":0}"#), "expiresIn");
    assert_eq!(field(r#"{"orderId":"o","items":[{"sku":"A","quantity":1}],"expiresIn":7776001}"#), "expiresIn");
    let many: Vec<String> = (0..101).map(|i| format!(r#"{{"sku":"S{i}","quantity":1}}"#)).collect();
    assert_eq!(field(&format!(r#"{{"orderId":"o","items":[{}]}}"#, many.join(","))), "items");
    // commit / release / extend need exactly one of orderId, reservationId.
    for route in ["commit", "release"] {
        let f = |body: &str| {
            assert_error(s.post(&format!("{INV}/{route}"), body), 400, "VALIDATION_ERROR")["field"].clone()
        };
        assert_eq!(f("{}"), "orderId");
        assert_eq!(f(r#"{"orderId":"o","reservationId":"r"}"#), "orderId");
    }
    assert_eq!(
        assert_error(s.post(&format!("{INV}/extend"), r#"{"orderId":"o"}"#), 400, "VALIDATION_ERROR")["field"],
        "expiresIn"
    );
    // Nothing was held by any refused request.
    assert_eq!(item(&s, "A"), (10, 0, 0));
}
