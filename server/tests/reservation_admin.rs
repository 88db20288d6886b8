//! The operator's reservation routes (issue 15) against the real binary:
//! `GET /api/v1/inventory/reservations` (admin; filters by status, SKU and age; paged
//! by cursor; bad parameters are 400s naming the parameter) and
//! `POST /api/v1/inventory/reservations/expire-due` (admin; expires what is due now).

mod common;
use common::{assert_error, assert_ok, Server};
use serde_json::Value;
use std::time::Duration;

const TOKEN: &str = "s3cret";
const INV: &str = "/api/v1/inventory";

fn admin(s: &Server, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    s.call(method, path, body, Some(TOKEN))
}

fn reserve(s: &Server, order: &str, sku: &str, ttl: u64) -> String {
    let body = format!(r#"{{"orderId":"{order}","items":[{{"sku":"{sku}","quantity":1}}],"expiresIn":{ttl}}}"#);
    assert_ok(s.post(&format!("{INV}/reserve"), &body), 201)["reservationId"].as_str().unwrap().to_owned()
}

fn orders(page: &Value) -> Vec<String> {
    page["reservations"].as_array().unwrap().iter().map(|r| r["orderId"].as_str().unwrap().to_owned()).collect()
}

/// Every page of a listing (query without `cursor`), in order.
fn list_all(s: &Server, query: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let path = match &cursor {
            Some(c) => format!("{INV}/reservations?{query}&cursor={c}"),
            None => format!("{INV}/reservations?{query}"),
        };
        let page = assert_ok(admin(s, "GET", &path, None), 200);
        out.extend(orders(&page));
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
    panic!("the listing did not end");
}

#[test]
fn listing_needs_the_admin_token_filters_and_pages() {
    // 4 shards (common::Server).
    let s = Server::start(&["--durability", "none", "--admin-token", TOKEN]);
    for sku in ["A", "B"] {
        assert_ok(admin(&s, "PUT", &format!("{INV}/items/{sku}"), Some(r#"{"onHand": 100}"#)), 201);
    }
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push((reserve(&s, &format!("o{i:02}"), if i % 2 == 0 { "A" } else { "B" }, 600), format!("o{i:02}")));
    }
    for i in 0..3 {
        assert_ok(s.post(&format!("{INV}/commit"), &format!(r#"{{"orderId":"o{i:02}"}}"#)), 200);
    }
    ids.sort();
    let homes: std::collections::BTreeSet<&str> = ids.iter().map(|(id, _)| &id[9..13]).collect();
    assert!(homes.len() >= 2, "reservations homed on 2+ shards: {homes:?}");
    let all: Vec<String> = ids.iter().map(|(_, o)| o.clone()).collect();

    assert_error(s.call("GET", &format!("{INV}/reservations"), None, None), 401, "UNAUTHORIZED");
    assert_error(s.call("GET", &format!("{INV}/reservations"), None, Some("nope")), 403, "FORBIDDEN");

    let page = assert_ok(admin(&s, "GET", &format!("{INV}/reservations"), None), 200);
    assert_eq!(orders(&page), all, "default: every reservation, in reservationId order");
    assert!(page["nextCursor"].is_null());
    let first = &page["reservations"][0];
    assert!(first["reservationId"].is_string() && first["status"].is_string() && first["items"].is_array());

    assert_eq!(list_all(&s, "limit=5"), all, "pages of 5 cover everything once");
    assert_eq!(list_all(&s, "limit=1"), all);
    let committed = list_all(&s, "status=COMMITTED&limit=2");
    assert_eq!(committed.len(), 3);
    assert!(committed.iter().all(|o| ["o00", "o01", "o02"].contains(&o.as_str())), "{committed:?}");
    let active_b = list_all(&s, "status=ACTIVE&sku=B");
    let want: Vec<String> =
        all.iter().filter(|o| o[1..].parse::<u32>().unwrap() % 2 == 1 && o.as_str() > "o02").cloned().collect();
    assert_eq!(active_b, want);
    assert!(list_all(&s, "sku=NOPE").is_empty());
    assert!(list_all(&s, "olderThan=3600").is_empty(), "nothing is an hour old");
    assert!(list_all(&s, "olderThan=1h").is_empty(), "nor with a unit");
    assert_eq!(list_all(&s, "olderThan=0s").len(), 12);
    assert_eq!(list_all(&s, "olderThan=0").len(), 12);

    // Bad parameters: 400 naming the parameter.
    for (query, field) in [
        ("status=BOGUS", "status"),
        ("status=active", "status"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=x", "limit"),
        ("olderThan=-1", "olderThan"),
        ("olderThan=soon", "olderThan"),
        ("cursor=abc", "cursor"),
        ("sku=a%20b", "sku"),
        ("colour=red", "colour"),
        ("sku=", "sku"),
        ("status=", "status"),
        ("limit=5&limit=6", "limit"),
    ] {
        let details =
            assert_error(admin(&s, "GET", &format!("{INV}/reservations?{query}"), None), 400, "VALIDATION_ERROR");
        assert_eq!(details["field"], field, "{query}: {details}");
    }
}

#[test]
fn expire_due_expires_what_is_past_due_now() {
    // No background sweep: only expire-due can expire the reservation.
    let s = Server::start(&["--durability", "none", "--admin-token", TOKEN, "--sweep-interval", "off"]);
    assert_ok(admin(&s, "PUT", &format!("{INV}/items/T"), Some(r#"{"onHand": 5}"#)), 201);
    let short = reserve(&s, "short", "T", 1);
    reserve(&s, "long", "T", 600);

    assert_error(s.call("POST", &format!("{INV}/reservations/expire-due"), None, None), 401, "UNAUTHORIZED");
    assert_error(s.call("POST", &format!("{INV}/reservations/expire-due"), None, Some("x")), 403, "FORBIDDEN");

    // The 1 s reservation was made before its answer arrived: 1.1 s after the answer
    // its deadline has passed on the server's clock (the same machine's).
    std::thread::sleep(Duration::from_millis(1_100));
    assert_eq!(assert_ok(s.get(&format!("{INV}/reservations/{short}")), 200)["status"], "ACTIVE", "no sweep ran");
    assert_eq!(orders(&assert_ok(admin(&s, "GET", &format!("{INV}/reservations?status=ACTIVE"), None), 200)).len(), 2);
    assert_eq!(assert_ok(s.get(&format!("{INV}/items/T")), 200)["reserved"], 2);

    let done = assert_ok(admin(&s, "POST", &format!("{INV}/reservations/expire-due"), None), 200);
    assert_eq!(done["expired"], 1, "{done}");
    let expired = assert_ok(admin(&s, "GET", &format!("{INV}/reservations?status=EXPIRED"), None), 200);
    assert_eq!(orders(&expired), ["short"]);
    assert_eq!(orders(&assert_ok(admin(&s, "GET", &format!("{INV}/reservations?status=ACTIVE"), None), 200)), ["long"]);
    assert_eq!(assert_ok(s.get(&format!("{INV}/items/T")), 200)["reserved"], 1, "its unit went back on sale");
    // Nothing else is due: a second run expires nothing.
    assert_eq!(assert_ok(admin(&s, "POST", &format!("{INV}/reservations/expire-due"), None), 200)["expired"], 0);
}
