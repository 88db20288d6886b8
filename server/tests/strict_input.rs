//! Bad input of every kind gets a 4xx JSON envelope naming the field, never a panic
//! or a non-JSON answer.

mod common;
use common::{assert_error, assert_ok, Server};

const INV: &str = "/api/v1/inventory";

#[test]
fn unknown_fields_wrong_types_and_malformed_json() {
    let s = Server::start(&["--durability", "none"]);
    assert_ok(s.put(&format!("{INV}/items/A"), r#"{"onHand": 10}"#), 201);
    let field = |method: &str, path: &str, body: &str| {
        let d = assert_error(s.call(method, &format!("{INV}{path}"), Some(body), None), 400, "VALIDATION_ERROR");
        d["field"].as_str().unwrap().to_owned()
    };
    // Unknown fields, at top level and inside items.
    assert_eq!(
        field("POST", "/reserve", r#"{"orderId":"o","items":[{"sku":"A","quantity":1}],"coupon":"X"}"#),
        "coupon"
    );
    assert_eq!(
        field("POST", "/reserve", r#"{"orderId":"o","items":[{"sku":"A","quantity":1,"price":3}]}"#),
        "items[0].price"
    );
    assert_eq!(field("POST", "/commit", r#"{"orderId":"o","force":true}"#), "force");
    assert_eq!(field("POST", "/release", r#"{"orderId":"o","why":"x"}"#), "why");
    assert_eq!(field("POST", "/extend", r#"{"orderId":"o","expiresIn":5,"ttl":5}"#), "ttl");
    // A reservationId longer than any stockd issues, or empty (the engine's rule).
    let long = "r".repeat(65);
    for id in [long.as_str(), ""] {
        for path in ["/commit", "/release"] {
            assert_eq!(
                field("POST", path, &format!(r#"{{"reservationId":"{id}"}}"#)),
                "reservationId",
                "{path} {id:?}"
            );
        }
    }
    assert_eq!(field("PUT", "/items/A", r#"{"onHand":1,"color":"red"}"#), "color");
    assert_eq!(field("POST", "/items/A/adjust", r#"{"delta":1,"who":"me"}"#), "who");
    // Wrong types.
    assert_eq!(field("POST", "/reserve", r#"{"orderId":5,"items":[]}"#), "orderId");
    assert_eq!(field("POST", "/reserve", r#"{"orderId":"o","items":{}}"#), "items");
    assert_eq!(
        field("POST", "/reserve", r#"{"orderId":"o","items":[{"sku":"A","quantity":"2"}]}"#),
        "items[0].quantity"
    );
    assert_eq!(
        field("POST", "/reserve", r#"{"orderId":"o","items":[{"sku":"A","quantity":-2}]}"#),
        "items[0].quantity"
    );
    assert_eq!(field("PUT", "/items/A", r#"{"onHand":true}"#), "onHand");
    // Malformed JSON, empty body, trailing garbage, not an object.
    for body in ["{", "", "{\"orderId\":\"o\"", "{} {}", "[1,2]", "null", "\u{0}"] {
        let d = assert_error(s.post(&format!("{INV}/reserve"), body), 400, "VALIDATION_ERROR");
        assert!(d["field"].is_string(), "{body:?}: {d}");
    }
    // Still healthy, nothing reserved.
    assert_eq!(assert_ok(s.get(&format!("{INV}/items/A")), 200)["reserved"], 0);
}

#[test]
fn body_limit_content_type_and_unknown_routes() {
    let s = Server::start(&["--durability", "none"]);
    // Over 64 KiB → 413 in the envelope.
    let big = format!(r#"{{"orderId":"o","items":[],"metadata":{{"x":"{}"}}}}"#, "a".repeat(70 * 1024));
    let d = assert_error(s.post(&format!("{INV}/reserve"), &big), 413, "PAYLOAD_TOO_LARGE");
    assert_eq!(d["limit"], 65536);
    // Metadata over 4 KiB (but the body under 64 KiB) → 400 naming metadata.
    assert_ok(s.put(&format!("{INV}/items/A"), r#"{"onHand": 10}"#), 201);
    let meta =
        format!(r#"{{"orderId":"o","items":[{{"sku":"A","quantity":1}}],"metadata":{{"x":"{}"}}}}"#, "a".repeat(5000));
    assert_eq!(assert_error(s.post(&format!("{INV}/reserve"), &meta), 400, "VALIDATION_ERROR")["field"], "metadata");
    // A non-JSON content type → 415 in the envelope.
    let resp = ureq::post(&s.url(&format!("{INV}/reserve"))).set("Content-Type", "text/plain").send_string("{}");
    let Err(ureq::Error::Status(415, r)) = resp else { panic!("expected 415") };
    let body: serde_json::Value = r.into_json().unwrap();
    assert_eq!(body["error"]["code"], "UNSUPPORTED_MEDIA_TYPE");
    // Unknown route and wrong method stay in the envelope.
    assert_error(s.get("/api/v1/inventory/nothing"), 404, "NOT_FOUND");
    assert_error(s.call("DELETE", &format!("{INV}/reserve"), None, None), 405, "METHOD_NOT_ALLOWED");
    // A sku path segment over 128 bytes.
    let long = "a".repeat(200);
    assert_eq!(assert_error(s.get(&format!("{INV}/items/{long}")), 400, "VALIDATION_ERROR")["field"], "sku");
}
