//! Locations over HTTP, on the real binary with seed 004's three warehouses: stock per
//! location, each allocation strategy and the delivery region, a named location,
//! commit and release touching exactly the allocated locations, transfers and
//! receipts, a restart, and items that never name a location.
//!
//! Seed 004's table: wh-sp-001 (southeast, priority 1), wh-rj-001 (southeast, 2),
//! wh-pr-001 (south, 1). Priority order without a region: wh-pr-001, wh-sp-001 (a tie
//! goes by id), then wh-rj-001.

mod common;
use common::{assert_error, assert_ok, Server};
use serde_json::Value;
use std::path::{Path, PathBuf};

const INV: &str = "/api/v1/inventory";

const SEED_004: &str = "\
warehouses:
  - id: wh-sp-001
    name: DC Sao Paulo
    region: southeast
    priority: 1
  - id: wh-rj-001
    name: DC Rio de Janeiro
    region: southeast
    priority: 2
  - id: wh-pr-001
    name: DC Curitiba
    region: south
    priority: 1
";

fn seed_file(dir: &Path) -> PathBuf {
    let path = dir.join("warehouses.yaml");
    std::fs::write(&path, SEED_004).unwrap();
    path
}

/// A server on a fresh data dir with seed 004's warehouses.
fn start(extra: &[&str]) -> (Server, tempfile::TempDir) {
    let conf = tempfile::tempdir().unwrap();
    let file = seed_file(conf.path());
    let mut args = vec!["--durability", "none", "--warehouses", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    (Server::start(&args), conf)
}

/// Stocks `sku` at (location, onHand) pairs.
fn stock(s: &Server, sku: &str, at: &[(&str, u64)]) {
    for (loc, on_hand) in at {
        let (status, body) =
            s.put(&format!("{INV}/items/{sku}/locations/{loc}"), &format!(r#"{{"onHand":{on_hand}}}"#));
        assert!(status == 200 || status == 201, "{body}");
    }
}

/// Reserves `quantity` of `sku` for `order` with extra request fields; returns the
/// line's allocations as (location, quantity, committed).
fn reserve(s: &Server, order: &str, sku: &str, quantity: u64, extra: &str) -> Vec<(String, u64, u64)> {
    let body = format!(r#"{{"orderId":"{order}","items":[{{"sku":"{sku}","quantity":{quantity}}}]{extra}}}"#);
    let data = assert_ok(s.post(&format!("{INV}/reserve"), &body), 201);
    allocs(&data["items"][0])
}

fn allocs(line: &Value) -> Vec<(String, u64, u64)> {
    let list = line["allocations"].as_array().unwrap_or_else(|| panic!("no allocations: {line}"));
    list.iter()
        .map(|a| {
            (
                a["location"].as_str().unwrap().to_owned(),
                a["quantity"].as_u64().unwrap(),
                a["committed"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn a(location: &str, quantity: u64, committed: u64) -> (String, u64, u64) {
    (location.to_owned(), quantity, committed)
}

/// Per location of `sku`: (location, onHand, reserved, sold, incoming); checks
/// available = onHand - reserved and that the item figures are the sums.
fn figures(s: &Server, sku: &str) -> Vec<(String, u64, u64, u64, u64)> {
    let item = assert_ok(s.get(&format!("{INV}/items/{sku}")), 200);
    let n = |v: &Value, k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} missing: {v}"));
    let mut sums = [0u64; 4];
    let out: Vec<_> = item["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            assert_eq!(n(l, "available"), n(l, "onHand") - n(l, "reserved"), "{l}");
            for (i, k) in ["onHand", "reserved", "sold", "incoming"].iter().enumerate() {
                sums[i] += n(l, k);
            }
            (
                l["location"].as_str().unwrap().to_owned(),
                n(l, "onHand"),
                n(l, "reserved"),
                n(l, "sold"),
                n(l, "incoming"),
            )
        })
        .collect();
    assert_eq!(sums, [n(&item, "onHand"), n(&item, "reserved"), n(&item, "sold"), n(&item, "incoming")], "{item}");
    out
}

fn f(location: &str, on_hand: u64, reserved: u64, sold: u64, incoming: u64) -> (String, u64, u64, u64, u64) {
    (location.to_owned(), on_hand, reserved, sold, incoming)
}

#[test]
fn allocation_strategies_region_and_named_locations() {
    let (s, _conf) = start(&[]);
    let w = assert_ok(s.get(&format!("{INV}/warehouses")), 200);
    assert_eq!(w["allocation"], "priority");
    assert_eq!(
        w["warehouses"][1],
        serde_json::json!({"id":"wh-rj-001","name":"DC Rio de Janeiro","region":"southeast","priority":2})
    );

    // priority: the highest-priority location that fills the line, else a split in
    // priority order.
    stock(&s, "PRI", &[("wh-pr-001", 10), ("wh-rj-001", 50), ("wh-sp-001", 5)]);
    assert_eq!(figures(&s, "PRI").len(), 3, "no default location for an item stocked by location");
    assert_eq!(reserve(&s, "pri-1", "PRI", 8, ""), [a("wh-pr-001", 8, 0)]);
    assert_eq!(reserve(&s, "pri-2", "PRI", 20, ""), [a("wh-rj-001", 20, 0)], "pr has 2 left, sp 5");
    assert_eq!(
        reserve(&s, "pri-3", "PRI", 36, ""),
        [a("wh-pr-001", 2, 0), a("wh-sp-001", 5, 0), a("wh-rj-001", 29, 0)]
    );
    let d = assert_error(
        s.post(&format!("{INV}/reserve"), r#"{"orderId":"pri-4","items":[{"sku":"PRI","quantity":2}]}"#),
        409,
        "INSUFFICIENT_INVENTORY",
    );
    assert_eq!(
        (d["items"][0]["requestedQuantity"].as_u64(), d["items"][0]["availableQuantity"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(
        figures(&s, "PRI"),
        [f("wh-pr-001", 10, 10, 0, 0), f("wh-rj-001", 50, 49, 0, 0), f("wh-sp-001", 5, 5, 0, 0)]
    );

    // most-available: the location with the most available, else a split from the most down.
    stock(&s, "MOST", &[("wh-pr-001", 10), ("wh-sp-001", 25), ("wh-rj-001", 30)]);
    let most = r#","allocation":"most-available""#;
    assert_eq!(reserve(&s, "most-1", "MOST", 3, most), [a("wh-rj-001", 3, 0)]);
    assert_eq!(reserve(&s, "most-2", "MOST", 40, most), [a("wh-rj-001", 27, 0), a("wh-sp-001", 13, 0)]);

    // single-location-only: one location that fills the line, in priority order, or 409.
    stock(&s, "ONE", &[("wh-pr-001", 10), ("wh-sp-001", 25), ("wh-rj-001", 30)]);
    let single = r#","allocation":"single-location-only""#;
    assert_eq!(reserve(&s, "one-1", "ONE", 26, single), [a("wh-rj-001", 26, 0)]);
    let body = format!(r#"{{"orderId":"one-2","items":[{{"sku":"ONE","quantity":31}}]{single}}}"#);
    let d = assert_error(s.post(&format!("{INV}/reserve"), &body), 409, "INSUFFICIENT_INVENTORY");
    assert_eq!(d["items"][0]["availableQuantity"], 25, "the most one location has: {d}");
    // The same request under priority splits (39 available over three locations).
    assert_eq!(reserve(&s, "one-3", "ONE", 31, ""), [a("wh-pr-001", 10, 0), a("wh-sp-001", 21, 0)]);

    // region: locations in the delivery region first, then by priority.
    stock(&s, "REG", &[("wh-pr-001", 10), ("wh-rj-001", 50), ("wh-sp-001", 5)]);
    let se = r#","region":"southeast""#;
    let south = r#","region":"south""#;
    assert_eq!(reserve(&s, "reg-1", "REG", 5, se), [a("wh-sp-001", 5, 0)]);
    assert_eq!(reserve(&s, "reg-2", "REG", 8, se), [a("wh-rj-001", 8, 0)], "sp is empty now");
    assert_eq!(reserve(&s, "reg-3", "REG", 12, south), [a("wh-rj-001", 12, 0)], "no south location fills 12");
    assert_eq!(reserve(&s, "reg-4", "REG", 3, south), [a("wh-pr-001", 3, 0)]);
    assert_eq!(
        reserve(&s, "reg-5", "REG", 4, r#","region":"north""#),
        [a("wh-pr-001", 4, 0)],
        "unknown region: priority"
    );

    // A named location is the only one used (`warehouseId` is seed 004's name for it).
    stock(&s, "NAMED", &[("wh-pr-001", 10), ("wh-rj-001", 5)]);
    let line = |order: &str, key: &str, loc: &str, q: u64| {
        format!(r#"{{"orderId":"{order}","items":[{{"sku":"NAMED","quantity":{q},"{key}":"{loc}"}}]}}"#)
    };
    let data = assert_ok(s.post(&format!("{INV}/reserve"), &line("n-1", "location", "wh-rj-001", 3)), 201);
    assert_eq!(allocs(&data["items"][0]), [a("wh-rj-001", 3, 0)]);
    assert_eq!(data["items"][0]["location"], "wh-rj-001", "the line echoes its location");
    let data = assert_ok(s.post(&format!("{INV}/reserve"), &line("n-2", "warehouseId", "wh-rj-001", 2)), 201);
    assert_eq!(allocs(&data["items"][0]), [a("wh-rj-001", 2, 0)]);
    let d = assert_error(
        s.post(&format!("{INV}/reserve"), &line("n-3", "location", "wh-rj-001", 1)),
        409,
        "INSUFFICIENT_INVENTORY",
    );
    assert_eq!(d["items"][0]["availableQuantity"], 0, "rj is empty though pr has 10: {d}");
    let d = assert_error(
        s.post(&format!("{INV}/reserve"), &line("n-4", "location", "wh-xx-001", 1)),
        400,
        "VALIDATION_ERROR",
    );
    assert_eq!(d["field"], "items[0].location", "not a configured warehouse: {d}");

    // check-availability: per location, and at a named location.
    let check = assert_ok(
        s.post(
            &format!("{INV}/check-availability"),
            r#"{"items":[{"sku":"NAMED","quantity":6},{"sku":"NAMED-X","quantity":1},{"sku":"REG","quantity":1,"location":"wh-sp-001"}]}"#,
        ),
        200,
    );
    assert_eq!(check["items"][0]["available"], true);
    assert_eq!(check["items"][0]["availableQuantity"], 10);
    let per = &check["items"][0]["locations"];
    assert_eq!(
        per,
        &serde_json::json!([{"location":"wh-pr-001","available":10},{"location":"wh-rj-001","available":0}])
    );
    assert!(check["items"][1]["locations"].is_null(), "unknown item: seed 002's shape");
    assert_eq!(
        (check["items"][2]["available"].as_bool(), check["items"][2]["availableQuantity"].as_u64()),
        (Some(false), Some(0))
    );
    assert_eq!(check["available"], false);
}

#[test]
fn commit_and_release_touch_exactly_the_allocated_locations() {
    let (s, _conf) = start(&[]);
    stock(&s, "CR", &[("wh-pr-001", 10), ("wh-rj-001", 50), ("wh-sp-001", 5)]);
    assert_ok(s.put(&format!("{INV}/items/PLAIN"), r#"{"onHand": 9}"#), 201);
    // Two SKUs (likely on two shards): a split line and a default-location line.
    let body = r#"{"orderId":"cr-1","items":[{"sku":"CR","quantity":60},{"sku":"PLAIN","quantity":4}]}"#;
    let data = assert_ok(s.post(&format!("{INV}/reserve"), body), 201);
    assert_eq!(allocs(&data["items"][0]), [a("wh-pr-001", 10, 0), a("wh-sp-001", 5, 0), a("wh-rj-001", 45, 0)]);
    assert!(data["items"][1]["allocations"].is_null(), "all from the default location: seed 002's shape");
    assert_eq!(
        figures(&s, "CR"),
        [f("wh-pr-001", 10, 10, 0, 0), f("wh-rj-001", 50, 45, 0, 0), f("wh-sp-001", 5, 5, 0, 0)]
    );

    // A partial commit sells first-allocated units first; the rest goes back.
    let r =
        assert_ok(s.post(&format!("{INV}/commit"), r#"{"orderId":"cr-1","items":[{"sku":"CR","quantity":12}]}"#), 200);
    assert_eq!(r["status"], "COMMITTED");
    assert_eq!(r["items"][0]["committedQuantity"], 12);
    assert_eq!(allocs(&r["items"][0]), [a("wh-pr-001", 10, 10), a("wh-sp-001", 5, 2), a("wh-rj-001", 45, 0)]);
    assert_eq!(allocs(&r["items"][1]), [a("default", 4, 4)]);
    assert_eq!(
        figures(&s, "CR"),
        [f("wh-pr-001", 0, 0, 10, 0), f("wh-rj-001", 50, 0, 0, 0), f("wh-sp-001", 3, 0, 2, 0)]
    );
    assert_eq!(figures(&s, "PLAIN"), [f("default", 5, 0, 4, 0)]);

    // Release gives back exactly the allocated location.
    assert_eq!(reserve(&s, "cr-2", "CR", 7, ""), [a("wh-rj-001", 7, 0)], "pr is empty, sp has 3");
    assert_eq!(figures(&s, "CR")[1], f("wh-rj-001", 50, 7, 0, 0));
    let r = assert_ok(s.post(&format!("{INV}/release"), r#"{"orderId":"cr-2"}"#), 200);
    assert_eq!(allocs(&r["items"][0]), [a("wh-rj-001", 7, 0)]);
    assert_eq!(
        figures(&s, "CR"),
        [f("wh-pr-001", 0, 0, 10, 0), f("wh-rj-001", 50, 0, 0, 0), f("wh-sp-001", 3, 0, 2, 0)]
    );

    // A full commit of a split line; the lookup shows the same allocations.
    assert_eq!(reserve(&s, "cr-3", "CR", 52, ""), [a("wh-sp-001", 3, 0), a("wh-rj-001", 49, 0)]);
    assert_ok(s.post(&format!("{INV}/commit"), r#"{"orderId":"cr-3"}"#), 200);
    let r = assert_ok(s.get(&format!("{INV}/reservations/cr-3")), 200);
    assert_eq!(allocs(&r["items"][0]), [a("wh-sp-001", 3, 3), a("wh-rj-001", 49, 49)]);
    assert_eq!(
        figures(&s, "CR"),
        [f("wh-pr-001", 0, 0, 10, 0), f("wh-rj-001", 1, 0, 49, 0), f("wh-sp-001", 0, 0, 5, 0)]
    );
}

#[test]
fn transfers_in_transit_and_receipts() {
    let (s, _conf) = start(&[]);
    let path = format!("{INV}/items/T/locations/wh-sp-001");
    let item = assert_ok(s.put(&path, r#"{"onHand": 20, "lowStockThreshold": 2}"#), 201);
    assert_eq!(item["locations"][0]["location"], "wh-sp-001");
    assert_ok(s.put(&path, r#"{"onHand": 20}"#), 200);
    let t = format!("{INV}/items/T/transfers");
    let item = assert_ok(s.post(&t, r#"{"from":"wh-sp-001","to":"wh-rj-001","quantity":5,"note":"rebalance"}"#), 200);
    assert_eq!((item["onHand"].as_u64(), item["incoming"].as_u64()), (Some(20), Some(0)));
    assert_eq!(figures(&s, "T"), [f("wh-rj-001", 5, 0, 0, 0), f("wh-sp-001", 15, 0, 0, 0)]);

    // In transit: out of sp's onHand into pr's incoming, not sellable until received.
    let item = assert_ok(s.post(&t, r#"{"from":"wh-sp-001","to":"wh-pr-001","quantity":4,"inTransit":true}"#), 200);
    assert_eq!((item["onHand"].as_u64(), item["incoming"].as_u64()), (Some(16), Some(4)));
    assert_eq!(figures(&s, "T")[0], f("wh-pr-001", 0, 0, 0, 4));
    let named = r#"{"orderId":"t-1","items":[{"sku":"T","quantity":1,"location":"wh-pr-001"}]}"#;
    assert_error(s.post(&format!("{INV}/reserve"), named), 409, "INSUFFICIENT_INVENTORY");
    let r = format!("{INV}/items/T/receipts");
    let item = assert_ok(s.post(&r, r#"{"location":"wh-pr-001","quantity":3}"#), 200);
    assert_eq!((item["onHand"].as_u64(), item["incoming"].as_u64()), (Some(19), Some(1)));
    assert_eq!(figures(&s, "T")[0], f("wh-pr-001", 3, 0, 0, 1));
    assert_eq!(allocs(&assert_ok(s.post(&format!("{INV}/reserve"), named), 201)["items"][0]), [a("wh-pr-001", 1, 0)]);
    assert_eq!(
        assert_error(s.post(&r, r#"{"location":"wh-pr-001","quantity":2}"#), 400, "VALIDATION_ERROR")["field"],
        "quantity"
    );

    // Reserved units do not move; a PUT sets one location's incoming; the list route.
    assert_error(s.post(&t, r#"{"from":"wh-pr-001","to":"wh-sp-001","quantity":3}"#), 409, "INSUFFICIENT_INVENTORY");
    assert_eq!(
        assert_error(s.post(&t, r#"{"from":"wh-pr-001","to":"wh-pr-001","quantity":1}"#), 400, "VALIDATION_ERROR")
            ["field"],
        "to"
    );
    assert_eq!(
        assert_error(s.post(&t, r#"{"from":"wh-pr-001","to":"wh-zz-001","quantity":1}"#), 400, "VALIDATION_ERROR")
            ["field"],
        "to"
    );
    assert_eq!(
        assert_error(s.post(&t, r#"{"from":"wh-zz-001","to":"wh-pr-001","quantity":1}"#), 400, "VALIDATION_ERROR")
            ["field"],
        "from"
    );
    assert_error(
        s.post(&format!("{INV}/items/NOPE/transfers"), r#"{"from":"wh-pr-001","to":"wh-sp-001","quantity":1}"#),
        404,
        "ITEM_NOT_FOUND",
    );
    assert_ok(s.put(&format!("{INV}/items/T/locations/wh-rj-001"), r#"{"onHand": 5, "incoming": 10}"#), 200);
    let list = assert_ok(s.get(&format!("{INV}/items/T/locations")), 200);
    assert_eq!(list["sku"], "T");
    let ids: Vec<&str> =
        list["locations"].as_array().unwrap().iter().map(|l| l["location"].as_str().unwrap()).collect();
    assert_eq!(ids, ["wh-pr-001", "wh-rj-001", "wh-sp-001"]);
    assert_eq!(list["locations"][1]["incoming"], 10);
    assert_eq!(assert_ok(s.get(&format!("{INV}/items/T")), 200)["incoming"], 11);
}

/// A client that retries a transfer or a receipt (a timeout, a redelivery) with its
/// idempotencyKey moves the stock once; the key reused for another request is 422.
#[test]
fn a_retried_transfer_or_receipt_with_its_key_moves_stock_once() {
    let (s, _conf) = start(&[]);
    stock(&s, "K", &[("wh-sp-001", 10)]);
    let t = format!("{INV}/items/K/transfers");
    let body = r#"{"from":"wh-sp-001","to":"wh-pr-001","quantity":4,"inTransit":true,"idempotencyKey":"truck-7"}"#;
    let first = assert_ok(s.post(&t, body), 200);
    let again = assert_ok(s.post(&t, body), 200);
    assert_eq!(again, first, "the first answer again");
    assert_eq!(figures(&s, "K"), [f("wh-pr-001", 0, 0, 0, 4), f("wh-sp-001", 6, 0, 0, 0)]);
    let other = r#"{"from":"wh-sp-001","to":"wh-pr-001","quantity":5,"idempotencyKey":"truck-7"}"#;
    assert_error(s.post(&t, other), 422, "IDEMPOTENCY_KEY_REUSED");
    let r = format!("{INV}/items/K/receipts");
    let receipt = r#"{"location":"wh-pr-001","quantity":3,"idempotencyKey":"grn-1"}"#;
    assert_ok(s.post(&r, receipt), 200);
    assert_ok(s.post(&r, receipt), 200);
    assert_eq!(figures(&s, "K")[0], f("wh-pr-001", 3, 0, 0, 1), "received once");
    // One key space per SKU: an adjustment may not reuse a receipt's key.
    let adjust = r#"{"delta":1,"reason":"RESTOCK","location":"wh-sp-001","idempotencyKey":"grn-1"}"#;
    assert_error(s.post(&format!("{INV}/items/K/adjust"), adjust), 422, "IDEMPOTENCY_KEY_REUSED");
    let empty = r#"{"location":"wh-pr-001","quantity":1,"idempotencyKey":""}"#;
    assert_eq!(assert_error(s.post(&r, empty), 400, "VALIDATION_ERROR")["field"], "idempotencyKey");
    assert_eq!(figures(&s, "K"), [f("wh-pr-001", 3, 0, 0, 1), f("wh-sp-001", 6, 0, 0, 0)]);
}

#[test]
fn a_restart_keeps_locations_warehouses_and_allocations() {
    let conf = tempfile::tempdir().unwrap();
    let file = seed_file(conf.path());
    let data = tempfile::tempdir().unwrap();
    let s = Server::start_on(data.path(), &["--warehouses", file.to_str().unwrap()]);
    stock(&s, "R", &[("wh-pr-001", 10), ("wh-rj-001", 50), ("wh-sp-001", 5)]);
    assert_eq!(reserve(&s, "r-1", "R", 20, ""), [a("wh-rj-001", 20, 0)]);
    assert_eq!(reserve(&s, "r-2", "R", 40, ""), [a("wh-pr-001", 10, 0), a("wh-sp-001", 5, 0), a("wh-rj-001", 25, 0)]);
    assert_ok(
        s.post(
            &format!("{INV}/items/R/transfers"),
            r#"{"from":"wh-rj-001","to":"wh-sp-001","quantity":2,"inTransit":true}"#,
        ),
        200,
    );
    let before = figures(&s, "R");
    assert_eq!(s.stop(), Some(0));

    // No --warehouses this time: the table comes back from the data dir.
    let s = Server::start_on(data.path(), &["--allocation", "most-available"]);
    let w = assert_ok(s.get(&format!("{INV}/warehouses")), 200);
    assert_eq!(w["warehouses"].as_array().unwrap().len(), 3, "{w}");
    assert_eq!(w["allocation"], "most-available");
    assert_eq!(figures(&s, "R"), before);
    let r = assert_ok(s.get(&format!("{INV}/reservations/r-2")), 200);
    assert_eq!(allocs(&r["items"][0]), [a("wh-pr-001", 10, 0), a("wh-sp-001", 5, 0), a("wh-rj-001", 25, 0)]);
    assert_ok(s.post(&format!("{INV}/commit"), r#"{"orderId":"r-2"}"#), 200);
    assert_ok(s.post(&format!("{INV}/release"), r#"{"orderId":"r-1"}"#), 200);
    assert_eq!(
        figures(&s, "R"),
        [f("wh-pr-001", 0, 0, 10, 0), f("wh-rj-001", 23, 0, 25, 0), f("wh-sp-001", 0, 0, 5, 2)]
    );
    assert_ok(s.post(&format!("{INV}/items/R/receipts"), r#"{"location":"wh-sp-001","quantity":2}"#), 200);
    // The server's default strategy now: most-available.
    stock(&s, "R2", &[("wh-pr-001", 3), ("wh-rj-001", 10)]);
    assert_eq!(reserve(&s, "r-3", "R2", 2, ""), [a("wh-rj-001", 2, 0)], "priority would take pr");
    assert_eq!(reserve(&s, "r-4", "R", 2, ""), [a("wh-rj-001", 2, 0)], "rj 23 beats sp 2");
}

#[test]
fn a_location_the_table_dropped_still_sells_its_stock() {
    let conf = tempfile::tempdir().unwrap();
    let file = seed_file(conf.path());
    let data = tempfile::tempdir().unwrap();
    // No table yet: any location id is accepted.
    let s = Server::start_on(data.path(), &[]);
    stock(&s, "OLD", &[("wh-old", 4)]);
    assert_eq!(s.stop(), Some(0));
    // The table now lists seed 004's warehouses only.
    let s = Server::start_on(data.path(), &["--warehouses", file.to_str().unwrap()]);
    let named = |order: &str, location: &str| {
        format!(r#"{{"orderId":"{order}","items":[{{"sku":"OLD","quantity":1,"location":"{location}"}}]}}"#)
    };
    let data = assert_ok(s.post(&format!("{INV}/reserve"), &named("old-1", "wh-old")), 201);
    assert_eq!(allocs(&data["items"][0]), [a("wh-old", 1, 0)]);
    let d = assert_error(s.post(&format!("{INV}/reserve"), &named("old-2", "wh-gone")), 400, "VALIDATION_ERROR");
    assert_eq!(d["field"], "items[0].location", "{d}");
}

#[test]
fn items_that_name_no_location_behave_as_before() {
    let (s, _conf) = start(&[]);
    let item = assert_ok(s.put(&format!("{INV}/items/D"), r#"{"onHand": 10}"#), 201);
    assert_eq!(item["incoming"], 0);
    let default =
        serde_json::json!([{"location":"default","onHand":10,"available":10,"reserved":0,"sold":0,"incoming":0}]);
    assert_eq!(item["locations"], default);
    // Seed 002's shapes, exactly: no allocations in the reserve answer, no locations
    // in check-availability (which adds only `reason`, null when available); the
    // lookup shows the default allocation.
    let data =
        assert_ok(s.post(&format!("{INV}/reserve"), r#"{"orderId":"d-1","items":[{"sku":"D","quantity":3}]}"#), 201);
    assert_eq!(data["items"], serde_json::json!([{"sku":"D","quantity":3,"reserved":true}]));
    let check = assert_ok(s.post(&format!("{INV}/check-availability"), r#"{"items":[{"sku":"D","quantity":3}]}"#), 200);
    assert_eq!(
        check["items"],
        serde_json::json!([{"sku":"D","available":true,"requestedQuantity":3,"availableQuantity":7,"reason":null}])
    );
    assert_eq!(allocs(&assert_ok(s.get(&format!("{INV}/reservations/d-1")), 200)["items"][0]), [a("default", 3, 0)]);
    let item = assert_ok(s.post(&format!("{INV}/items/D/adjust"), r#"{"delta": 5, "reason": "RESTOCK"}"#), 200);
    assert_eq!((item["onHand"].as_u64(), item["available"].as_u64()), (Some(15), Some(12)));
    assert_ok(s.post(&format!("{INV}/commit"), r#"{"orderId":"d-1"}"#), 200);
    assert_eq!(figures(&s, "D"), [f("default", 12, 0, 3, 0)]);
    // The same item may also be stocked at a warehouse; `default` comes last in priority.
    assert_ok(s.put(&format!("{INV}/items/D"), r#"{"onHand": 4, "location": "wh-sp-001", "incoming": 6}"#), 200);
    let body = r#"{"orderId":"d-2","items":[{"sku":"D","quantity":5}]}"#;
    assert!(assert_ok(s.post(&format!("{INV}/reserve"), body), 201)["items"][0]["allocations"].is_null());
    let r = assert_ok(s.get(&format!("{INV}/reservations/d-2")), 200);
    assert_eq!(allocs(&r["items"][0]), [a("default", 5, 0)], "sp has only 4");
    // Naming a region (or a location, or a strategy) makes the answer list allocations.
    let body = r#"{"orderId":"d-2b","items":[{"sku":"D","quantity":1}],"region":"south"}"#;
    let answer = assert_ok(s.post(&format!("{INV}/reserve"), body), 201);
    assert_eq!(allocs(&answer["items"][0]), [a("wh-sp-001", 1, 0)], "none in the region: priority decides");
    assert_eq!(reserve(&s, "d-3", "D", 2, ""), [a("wh-sp-001", 2, 0)]);
    let item = assert_ok(s.post(&format!("{INV}/items/D/adjust"), r#"{"delta": -1, "location": "wh-sp-001"}"#), 200);
    assert_eq!(item["locations"][1]["onHand"], 3);
    // An item stocked at named locations only must be told which one.
    stock(&s, "W", &[("wh-sp-001", 1)]);
    let d = assert_error(s.post(&format!("{INV}/items/W/adjust"), r#"{"delta": 1}"#), 400, "VALIDATION_ERROR");
    assert_eq!(d["field"], "location");
    let d = assert_error(s.put(&format!("{INV}/items/W"), r#"{"onHand": 1}"#), 400, "VALIDATION_ERROR");
    assert_eq!(d["field"], "location");
    let d =
        assert_error(s.put(&format!("{INV}/items/W/locations/wh-zz-001"), r#"{"onHand": 1}"#), 400, "VALIDATION_ERROR");
    assert_eq!(d["field"], "location", "not in the warehouse table");
}
