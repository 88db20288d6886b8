//! check-availability tells the truth per line (issue 15): a blocked item or a
//! quantity over maxPerOrder is `available: false` with the code reserve answers
//! (`reason`, and `maxPerOrder` for the limit), and the top-level `available` is false.
//! Each refused line is then reserved and refused with that same code.

mod common;
use common::{assert_error, assert_ok, Server};

const ITEMS: &str = "/api/v1/inventory/items";
const CHECK: &str = "/api/v1/inventory/check-availability";

#[test]
fn blocked_and_max_per_order_lines_are_unavailable_with_their_reason() {
    let s = Server::start(&["--durability", "none", "--admin-token", "s3cret"]);
    let call = |method, path: &str, body: Option<&str>| s.call(method, path, body, Some("s3cret"));
    assert_ok(call("PUT", &format!("{ITEMS}/OK"), Some(r#"{"onHand": 5}"#)), 201);
    assert_ok(call("PUT", &format!("{ITEMS}/BLK"), Some(r#"{"onHand": 5}"#)), 201);
    assert_ok(call("PUT", &format!("{ITEMS}/MAX"), Some(r#"{"onHand": 50, "maxPerOrder": 2}"#)), 201);
    assert_ok(call("POST", &format!("{ITEMS}/BLK/block"), None), 200);

    let body = r#"{"items":[{"sku":"OK","quantity":1},{"sku":"BLK","quantity":1},{"sku":"MAX","quantity":3}]}"#;
    let data = assert_ok(s.post(CHECK, body), 200);
    assert_eq!(data["available"], false, "{data}");
    let items = &data["items"];
    assert_eq!(items[0]["available"], true);
    assert!(items[0]["reason"].is_null(), "{data}");
    assert!(items[0].get("maxPerOrder").is_none(), "{data}");

    assert_eq!(items[1]["available"], false, "a blocked item is not available: {data}");
    assert_eq!(items[1]["reason"], "SALES_BLOCKED");
    assert_eq!(items[1]["availableQuantity"], 5, "its units are still counted");

    assert_eq!(items[2]["available"], false, "over maxPerOrder is not available: {data}");
    assert_eq!(items[2]["reason"], "MAX_PER_ORDER_EXCEEDED");
    assert_eq!(items[2]["maxPerOrder"], 2);
    assert_eq!(items[2]["availableQuantity"], 50);

    // Reserve refuses each of them with the code check-availability gave.
    let reserve = |order: &str, line: &str| {
        s.post("/api/v1/inventory/reserve", &format!(r#"{{"orderId":"{order}","items":[{line}]}}"#))
    };
    assert_error(reserve("o-blk", r#"{"sku":"BLK","quantity":1}"#), 409, "SALES_BLOCKED");
    assert_error(reserve("o-max", r#"{"sku":"MAX","quantity":3}"#), 409, "MAX_PER_ORDER_EXCEEDED");

    // At the max and unblocked: available again, and reserve succeeds.
    assert_ok(call("POST", &format!("{ITEMS}/BLK/unblock"), None), 200);
    let body = r#"{"items":[{"sku":"BLK","quantity":1},{"sku":"MAX","quantity":2}]}"#;
    let data = assert_ok(s.post(CHECK, body), 200);
    assert_eq!(data["available"], true, "{data}");
    assert!(data["items"][0]["reason"].is_null() && data["items"][1]["reason"].is_null(), "{data}");
    assert_ok(reserve("o-ok", r#"{"sku":"BLK","quantity":1},{"sku":"MAX","quantity":2}"#), 201);
}
