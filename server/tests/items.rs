//! Item routes over HTTP: create/update, read, list with a cursor, adjust, delete,
//! and their error paths.

mod common;
use common::{assert_error, assert_ok, Server};

const ITEMS: &str = "/api/v1/inventory/items";

fn start() -> Server {
    Server::start(&["--durability", "none"])
}

#[test]
fn put_get_update_and_version_conflict() {
    let s = start();
    let data = assert_ok(
        s.put(&format!("{ITEMS}/SKU-1"), r#"{"onHand": 100, "lowStockThreshold": 10, "maxPerOrder": 2}"#),
        201,
    );
    assert_eq!(data["sku"], "SKU-1");
    assert_eq!(data["onHand"], 100);
    assert_eq!(data["maxPerOrder"], 2);
    let v = data["version"].as_u64().unwrap();
    let data =
        assert_ok(s.put(&format!("{ITEMS}/SKU-1"), &format!(r#"{{"onHand": 50, "expectedVersion": {v}}}"#)), 200);
    assert_eq!(data["onHand"], 50);
    assert_eq!(data["lowStockThreshold"], 10, "absent fields keep their value");
    let details = assert_error(
        s.put(&format!("{ITEMS}/SKU-1"), &format!(r#"{{"onHand": 5, "expectedVersion": {v}}}"#)),
        409,
        "VERSION_CONFLICT",
    );
    assert_eq!(details["expectedVersion"], v);

    let item = assert_ok(s.get(&format!("{ITEMS}/SKU-1")), 200);
    for field in
        ["sku", "onHand", "available", "reserved", "sold", "lowStockThreshold", "lowStock", "version", "updatedAt"]
    {
        assert!(!item[field].is_null(), "{field} missing: {item}");
    }
    assert_eq!(item["available"], 50);
    assert_eq!(item["lowStock"], false);
    assert!(common::is_timestamp(&item["updatedAt"]));

    assert_error(s.get(&format!("{ITEMS}/NOPE")), 404, "ITEM_NOT_FOUND");
    let details = assert_error(s.get(&format!("{ITEMS}/bad%20sku")), 400, "VALIDATION_ERROR");
    assert_eq!(details["field"], "sku");
    // A sku with '/' works when URL-encoded.
    assert_ok(s.put(&format!("{ITEMS}/a%2Fb"), r#"{"onHand": 1}"#), 201);
    assert_eq!(assert_ok(s.get(&format!("{ITEMS}/a%2Fb")), 200)["sku"], "a/b");
    // onHand missing / negative.
    assert_eq!(assert_error(s.put(&format!("{ITEMS}/X"), "{}"), 400, "VALIDATION_ERROR")["field"], "onHand");
    // maxPerOrder past the largest quantity a line may ask (here: past int64 too).
    for body in [r#"{"onHand":1,"maxPerOrder":1000000001}"#, r#"{"onHand":1,"maxPerOrder":9223372036854775808}"#] {
        assert_eq!(assert_error(s.put(&format!("{ITEMS}/X"), body), 400, "VALIDATION_ERROR")["field"], "maxPerOrder");
        let at = format!("{ITEMS}/X/locations/default");
        assert_eq!(assert_error(s.put(&at, body), 400, "VALIDATION_ERROR")["field"], "maxPerOrder");
    }
    assert_error(s.get(&format!("{ITEMS}/X")), 404, "ITEM_NOT_FOUND");
    assert_eq!(
        assert_error(s.put(&format!("{ITEMS}/X"), r#"{"onHand":-1}"#), 400, "VALIDATION_ERROR")["field"],
        "onHand"
    );
}

#[test]
fn list_is_paginated_by_cursor() {
    let s = start();
    for sku in ["c", "a", "e", "b", "d"] {
        assert_ok(s.put(&format!("{ITEMS}/{sku}"), r#"{"onHand": 1}"#), 201);
    }
    let page = assert_ok(s.get(&format!("{ITEMS}?limit=2")), 200);
    let skus =
        |p: &serde_json::Value| p["items"].as_array().unwrap().iter().map(|i| i["sku"].clone()).collect::<Vec<_>>();
    assert_eq!(skus(&page), ["a", "b"]);
    assert_eq!(page["nextCursor"], "b");
    let page = assert_ok(s.get(&format!("{ITEMS}?limit=2&cursor=b")), 200);
    assert_eq!(skus(&page), ["c", "d"]);
    let page = assert_ok(s.get(&format!("{ITEMS}?limit=2&cursor=d")), 200);
    assert_eq!(skus(&page), ["e"]);
    assert!(page["nextCursor"].is_null());
    assert_eq!(skus(&assert_ok(s.get(ITEMS), 200)).len(), 5);
    assert_eq!(assert_error(s.get(&format!("{ITEMS}?limit=0")), 400, "VALIDATION_ERROR")["field"], "limit");
    assert_eq!(assert_error(s.get(&format!("{ITEMS}?limit=x")), 400, "VALIDATION_ERROR")["field"], "limit");
    assert_eq!(assert_error(s.get(&format!("{ITEMS}?limit=1001")), 400, "VALIDATION_ERROR")["field"], "limit");
}

#[test]
fn list_filters_low_and_out_of_stock_items() {
    let s = start();
    // available ≤ threshold is low; available 0 is out (and low).
    for (sku, body) in [
        ("plenty", r#"{"onHand": 50, "lowStockThreshold": 5}"#),
        ("low", r#"{"onHand": 3, "lowStockThreshold": 5}"#),
        ("empty", r#"{"onHand": 0, "lowStockThreshold": 5}"#),
        ("edge", r#"{"onHand": 5, "lowStockThreshold": 5}"#),
    ] {
        assert_ok(s.put(&format!("{ITEMS}/{sku}"), body), 201);
    }
    let skus = |query: &str| {
        let page = assert_ok(s.get(&format!("{ITEMS}?{query}")), 200);
        assert!(page["nextCursor"].is_null(), "{page}");
        page["items"].as_array().unwrap().iter().map(|i| i["sku"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    assert_eq!(skus("stock=low"), ["edge", "empty", "low"]);
    assert_eq!(skus("stock=out"), ["empty"]);
    assert_eq!(skus("stock=all"), ["edge", "empty", "low", "plenty"]);
    // Reserving the rest of "low" makes it out of stock.
    let reserve = r#"{"orderId": "o-1", "items": [{"sku": "low", "quantity": 3}]}"#;
    assert_ok(s.post("/api/v1/inventory/reserve", reserve), 201);
    assert_eq!(skus("stock=out"), ["empty", "low"]);
    // Pages of one, following nextCursor.
    let page = assert_ok(s.get(&format!("{ITEMS}?stock=low&limit=1")), 200);
    assert_eq!(page["items"][0]["sku"], "edge");
    assert_eq!(page["nextCursor"], "edge");
    let page = assert_ok(s.get(&format!("{ITEMS}?stock=low&limit=1&cursor=edge")), 200);
    assert_eq!(page["items"][0]["sku"], "empty");
    let empty = assert_error(s.get(&format!("{ITEMS}?stock=")), 400, "VALIDATION_ERROR");
    assert_eq!(empty["field"], "stock");
    let bad = assert_error(s.get(&format!("{ITEMS}?stock=scarce")), 400, "VALIDATION_ERROR");
    assert_eq!(bad["field"], "stock", "{bad}");
}

#[test]
fn adjust_and_its_errors() {
    let s = start();
    assert_ok(s.put(&format!("{ITEMS}/A"), r#"{"onHand": 10}"#), 201);
    let data = assert_ok(
        s.post(&format!("{ITEMS}/A/adjust"), r#"{"delta": -3, "reason": "DAMAGED", "idempotencyKey": "k1"}"#),
        200,
    );
    assert_eq!(data["onHand"], 7);
    // Same key, same request: applied once.
    let data = assert_ok(
        s.post(&format!("{ITEMS}/A/adjust"), r#"{"delta": -3, "reason": "DAMAGED", "idempotencyKey": "k1"}"#),
        200,
    );
    assert_eq!(data["onHand"], 7);
    assert_error(
        s.post(&format!("{ITEMS}/A/adjust"), r#"{"delta": 5, "reason": "RESTOCK", "idempotencyKey": "k1"}"#),
        422,
        "IDEMPOTENCY_KEY_REUSED",
    );
    let d = assert_error(
        s.post(&format!("{ITEMS}/A/adjust"), r#"{"delta": -8, "reason": "LOST"}"#),
        409,
        "NEGATIVE_INVENTORY",
    );
    assert_eq!(d["sku"], "A");
    assert_eq!(
        assert_error(
            s.post(&format!("{ITEMS}/A/adjust"), r#"{"delta": 1, "reason": "GIFT"}"#),
            400,
            "VALIDATION_ERROR"
        )["field"],
        "reason"
    );
    assert_eq!(
        assert_error(s.post(&format!("{ITEMS}/A/adjust"), r#"{"delta": 1.5}"#), 400, "VALIDATION_ERROR")["field"],
        "delta"
    );
    assert_error(
        s.post(&format!("{ITEMS}/NOPE/adjust"), r#"{"delta": 1, "reason": "RESTOCK"}"#),
        404,
        "ITEM_NOT_FOUND",
    );
    assert_eq!(assert_ok(s.post(&format!("{ITEMS}/A/adjust"), r#"{"delta": 3}"#), 200)["onHand"], 10);
}

#[test]
fn delete_and_reserved_stock() {
    let s = start();
    assert_ok(s.put(&format!("{ITEMS}/D"), r#"{"onHand": 10}"#), 201);
    assert_ok(s.post("/api/v1/inventory/reserve", r#"{"orderId":"o1","items":[{"sku":"D","quantity":4}]}"#), 201);
    let d = assert_error(s.call("DELETE", &format!("{ITEMS}/D"), None, None), 409, "ITEM_HAS_RESERVATIONS");
    assert_eq!(d["reserved"], 4);
    assert_error(s.put(&format!("{ITEMS}/D"), r#"{"onHand": 3}"#), 409, "ITEM_HAS_RESERVATIONS");
    assert_error(s.post(&format!("{ITEMS}/D/adjust"), r#"{"delta": -7, "reason": "LOST"}"#), 409, "NEGATIVE_INVENTORY");
    assert_ok(s.post("/api/v1/inventory/release", r#"{"orderId":"o1"}"#), 200);
    assert_error(s.call("DELETE", &format!("{ITEMS}/D?expectedVersion=1"), None, None), 409, "VERSION_CONFLICT");
    // Parameters are checked before anything is deleted: each bad one is named.
    for (query, field) in [
        ("force=true", "force"),
        ("expectedVersion=", "expectedVersion"),
        ("expectedVersion=9223372036854775808", "expectedVersion"),
        ("expectedVersion=2&expectedVersion=3", "expectedVersion"),
    ] {
        let bad = assert_error(s.call("DELETE", &format!("{ITEMS}/D?{query}"), None, None), 400, "VALIDATION_ERROR");
        assert_eq!(bad["field"], field, "{query}");
    }
    assert_ok(s.get(&format!("{ITEMS}/D")), 200);
    let data = assert_ok(s.call("DELETE", &format!("{ITEMS}/D"), None, None), 200);
    assert_eq!(data["deleted"], true);
    assert_error(s.get(&format!("{ITEMS}/D")), 404, "ITEM_NOT_FOUND");
    assert_error(s.call("DELETE", &format!("{ITEMS}/D"), None, None), 404, "ITEM_NOT_FOUND");
}

#[test]
fn admin_token_guards_item_writes_only() {
    let s = Server::start(&["--durability", "none", "--admin-token", "s3cret"]);
    let put = |token| s.call("PUT", &format!("{ITEMS}/T"), Some(r#"{"onHand": 5}"#), token);
    assert_error(put(None), 401, "UNAUTHORIZED");
    assert_error(put(Some("wrong")), 403, "FORBIDDEN");
    assert_error(put(Some("s3cret-and-more")), 403, "FORBIDDEN");
    assert_ok(put(Some("s3cret")), 201);
    // Auth is checked before the body: an unknown field without a token is 401.
    assert_error(s.call("PUT", &format!("{ITEMS}/T"), Some(r#"{"bogus":1}"#), None), 401, "UNAUTHORIZED");
    let adjust = |token| s.call("POST", &format!("{ITEMS}/T/adjust"), Some(r#"{"delta": 1}"#), token);
    assert_error(adjust(None), 401, "UNAUTHORIZED");
    assert_error(adjust(Some("nope")), 403, "FORBIDDEN");
    assert_ok(adjust(Some("s3cret")), 200);
    // Reads, reserve, commit, release and check stay open.
    assert_ok(s.get(&format!("{ITEMS}/T")), 200);
    let r =
        assert_ok(s.post("/api/v1/inventory/reserve", r#"{"orderId":"o1","items":[{"sku":"T","quantity":1}]}"#), 201);
    let id = r["reservationId"].as_str().unwrap().to_owned();
    assert_ok(s.post("/api/v1/inventory/check-availability", r#"{"items":[{"sku":"T","quantity":1}]}"#), 200);
    let expire = |token| s.call("POST", &format!("/api/v1/inventory/reservations/{id}/expire"), None, token);
    assert_error(expire(None), 401, "UNAUTHORIZED");
    assert_error(expire(Some("x")), 403, "FORBIDDEN");
    assert_eq!(assert_ok(expire(Some("s3cret")), 200)["status"], "EXPIRED");
    assert_ok(s.post("/api/v1/inventory/reserve", r#"{"orderId":"o2","items":[{"sku":"T","quantity":1}]}"#), 201);
    assert_ok(s.post("/api/v1/inventory/commit", r#"{"orderId":"o2"}"#), 200);
    let del = |token| s.call("DELETE", &format!("{ITEMS}/T"), None, token);
    assert_error(del(None), 401, "UNAUTHORIZED");
    assert_error(del(Some("bad")), 403, "FORBIDDEN");
    assert_ok(del(Some("s3cret")), 200);
}

#[test]
fn blocking_sales_refuses_new_reservations_only() {
    let s = Server::start(&["--durability", "none", "--admin-token", "s3cret"]);
    let call = |method, path: &str, body: Option<&str>, token| s.call(method, path, body, token);
    assert_ok(call("PUT", &format!("{ITEMS}/B"), Some(r#"{"onHand": 5}"#), Some("s3cret")), 201);
    let reserve = |order: &str| {
        s.post("/api/v1/inventory/reserve", &format!(r#"{{"orderId":"{order}","items":[{{"sku":"B","quantity":1}}]}}"#))
    };
    assert_ok(reserve("before"), 201);
    assert_error(call("POST", &format!("{ITEMS}/B/block"), None, None), 401, "UNAUTHORIZED");
    assert_error(call("POST", &format!("{ITEMS}/B/block"), None, Some("nope")), 403, "FORBIDDEN");
    let item = assert_ok(call("POST", &format!("{ITEMS}/B/block"), None, Some("s3cret")), 200);
    assert_eq!(item["salesBlocked"], true);
    assert_eq!(assert_ok(s.get(&format!("{ITEMS}/B")), 200)["salesBlocked"], true);
    let err = assert_error(reserve("after"), 409, "SALES_BLOCKED");
    assert_eq!(err["sku"], "B");
    // What was reserved before the block can still be committed.
    assert_ok(s.post("/api/v1/inventory/commit", r#"{"orderId":"before"}"#), 200);
    assert_error(call("POST", &format!("{ITEMS}/NOPE/block"), None, Some("s3cret")), 404, "ITEM_NOT_FOUND");
    let item = assert_ok(call("POST", &format!("{ITEMS}/B/unblock"), None, Some("s3cret")), 200);
    assert_eq!(item["salesBlocked"], false);
    assert_ok(reserve("after"), 201);
    let b = assert_ok(s.get(&format!("{ITEMS}/B")), 200);
    assert_eq!((b["onHand"].as_u64(), b["reserved"].as_u64(), b["sold"].as_u64()), (Some(4), Some(1), Some(1)));
}
