//! Each seed's order flow end to end on a real Kafka-protocol broker (tansu, started
//! per test by `common::tansu::Tansu`): the real `stockd` binary with the shipped
//! mapping file (`examples/kafka/`), fed that seed's own event JSON (copied in shape
//! from its write-up in ../shared/seeds/), checked through the HTTP API (stock
//! figures, reservations) and through the events it publishes on the topics the file
//! names. A test without tansu fails (it is never skipped).

mod common;

use common::kafka::{create_topics, read_topic, PUBLISHED_TOPICS};
use common::tansu::Tansu;
use common::{assert_ok, wait_for, Server};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

/// The topics stockd publishes to under the built-in `{type}` template.
struct Broker {
    tansu: Tansu,
}

impl Broker {
    /// A fresh tansu with `topics` (and the published ones) created, one partition
    /// each.
    fn start(topics: &[&str]) -> Broker {
        let tansu = Tansu::start();
        let all: Vec<&str> = topics.iter().chain(PUBLISHED_TOPICS).copied().collect();
        create_topics(&tansu.servers, &all);
        Broker { tansu }
    }

    fn servers(&self) -> &str {
        &self.tansu.servers
    }

    fn produce(&self, topic: &str, key: &str, v: &Value) {
        let p: BaseProducer = ClientConfig::new().set("bootstrap.servers", self.servers()).create().unwrap();
        let body = v.to_string();
        p.send(BaseRecord::to(topic).key(key).payload(body.as_bytes())).map_err(|(e, _)| e).expect("send");
        p.flush(Duration::from_secs(30)).expect("flush");
    }

    /// Every message of `topic` (partition 0) from the beginning to its end: the
    /// JSON body and the headers.
    fn read(&self, topic: &str) -> Vec<(Value, HashMap<String, String>)> {
        read_topic(self.servers(), topic).into_iter().map(|g| (g.json(), g.headers)).collect()
    }

    fn events(&self, topic: &str) -> Vec<Value> {
        self.read(topic).into_iter().map(|(v, _)| v).collect()
    }
}

fn example(name: &str) -> String {
    format!("{}/../examples/kafka/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The real binary with the shipped mapping file `name`.
fn start(broker: &Broker, name: &str, extra: &[&str]) -> Server {
    let config = example(name);
    let mut args = vec!["--kafka-brokers", broker.servers(), "--kafka-config", config.as_str()];
    args.extend_from_slice(extra);
    Server::start(&args)
}

fn item(server: &Server, sku: &str) -> Value {
    assert_ok(server.get(&format!("/api/v1/inventory/items/{sku}")), 200)
}

/// The figures of an item: (onHand, reserved, available, sold).
fn figures(server: &Server, sku: &str) -> (u64, u64, u64, u64) {
    let i = item(server, sku);
    let n = |f: &str| i[f].as_u64().unwrap_or_else(|| panic!("{f} in {i}"));
    (n("onHand"), n("reserved"), n("available"), n("sold"))
}

#[track_caller]
fn wait_figures(server: &Server, sku: &str, want: (u64, u64, u64, u64)) {
    wait_for(120, &format!("{sku} at (onHand, reserved, available, sold) = {want:?}"), || {
        (figures(server, sku) == want).then_some(())
    });
}

fn reservation(server: &Server, order: &str) -> Value {
    assert_ok(server.get(&format!("/api/v1/inventory/reservations/{order}")), 200)
}

fn consumer_health(server: &Server) -> Value {
    assert_ok(server.get("/health"), 200)["kafka"]["consumer"].clone()
}

/// Waits until the consumer has applied `n` messages in all (those that change
/// nothing included), so a check after it sees what they did.
#[track_caller]
fn wait_applied(server: &Server, n: u64) {
    wait_for(120, &format!("{n} messages applied"), || {
        (consumer_health(server)["applied"].as_u64() >= Some(n)).then_some(())
    });
}

/// Waits until the publisher has published everything durable.
fn wait_published(server: &Server) {
    wait_for(60, "publish lag 0", || {
        (assert_ok(server.get("/health"), 200)["kafka"]["publisher"]["lagTotal"] == 0).then_some(())
    });
}

/// An RFC 3339 UTC time with milliseconds, as milliseconds since the epoch.
fn epoch_ms(v: &Value) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    let n = |a: usize, b: usize| s[a..b].parse::<i64>().unwrap();
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    // Days from civil (Howard Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 24 + n(11, 13)) * 60 + n(14, 16)) * 60_000 + n(17, 19) * 1000 + n(20, 23)
}

// ---- seed 000 -----------------------------------------------------------------------

const S0_PRODUCT: &str = "507f1f77bcf86cd799439012";

/// Seed 000: `product.onboarding.completed.topic` creates the item (keyed by its
/// productId, since orders name only that), `order.checkout.started.topic` reserves,
/// `order.payment.completed.topic` commits, `order.payment.failed.topic` releases, and
/// a checkout that cannot be reserved publishes seed 000's failure event on
/// `order.reservation.failed.topic`.
#[test]
fn seed_000_onboarding_checkout_payment() {
    let topics = [
        "product.onboarding.completed.topic",
        "order.checkout.started.topic",
        "order.payment.completed.topic",
        "order.payment.failed.topic",
        "order.reservation.failed.topic",
    ];
    let broker = Broker::start(&topics);
    let server = start(&broker, "seed-000.toml", &[]);

    // The seed's onboarding event, verbatim.
    let onboarding = json!({
      "productId": "507f1f77bcf86cd799439012",
      "storeId": "507f1f77bcf86cd799439011",
      "ownerId": "507f1f77bcf86cd799439013",
      "sku": "SHOES-RUN-001",
      "title": "Running Shoes",
      "image": "https://example.com/shoes.jpg",
      "availableStock": 100,
      "thresholdStock": 10,
      "ownerName": "Store Owner",
      "idempotencyId": "product-onboard-123"
    });
    broker.produce("product.onboarding.completed.topic", S0_PRODUCT, &onboarding);
    wait_for(120, "the onboarded item", || {
        (server.get(&format!("/api/v1/inventory/items/{S0_PRODUCT}")).0 == 200).then_some(())
    });
    assert_eq!(figures(&server, S0_PRODUCT), (100, 0, 100, 0));
    assert_eq!(item(&server, S0_PRODUCT)["lowStockThreshold"], 10);
    // Keyed by productId, not by its sku.
    assert_eq!(server.get("/api/v1/inventory/items/SHOES-RUN-001").0, 404);

    // Checkout (the seed's event, verbatim) reserves the item its productId names.
    let checkout = |order: &str, saga: &str, quantity: u64| {
        json!({
          "orderId": order,
          "storeId": "507f1f77bcf86cd799439011",
          "userId": "507f1f77bcf86cd799439013",
          "sagaId": saga,
          "items": [
            {
              "productId": "507f1f77bcf86cd799439012",
              "productTitle": "Running Shoes",
              "quantity": quantity,
              "price": 79.99
            }
          ],
          "totalPrice": 159.98
        })
    };
    let payment = |order: &str, saga: &str, quantity: u64, failed: bool| {
        let mut v = json!({
          "orderId": order,
          "sagaId": saga,
          "items": [{ "productId": "507f1f77bcf86cd799439012", "quantity": quantity }],
          "storeId": "507f1f77bcf86cd799439011"
        });
        if failed {
            v["reason"] = json!("Card declined");
        }
        v
    };
    let (o1, s1) = ("507f1f77bcf86cd799439020", "order-1706356200000-user-123-req-456");
    broker.produce("order.checkout.started.topic", o1, &checkout(o1, s1, 2));
    wait_figures(&server, S0_PRODUCT, (100, 2, 98, 0));
    let r = reservation(&server, o1);
    assert_eq!(
        (&r["status"], &r["items"][0]["productId"], &r["items"][0]["quantity"]),
        (&json!("ACTIVE"), &json!(S0_PRODUCT), &json!(2)),
        "{r}"
    );
    // Payment completed: committed (onHand 98, reserved 0; available unchanged).
    broker.produce("order.payment.completed.topic", o1, &payment(o1, s1, 2, false));
    wait_figures(&server, S0_PRODUCT, (98, 0, 98, 2));
    assert_eq!(reservation(&server, o1)["status"], "COMMITTED");

    // Another checkout whose payment fails: released.
    let (o2, s2) = ("507f1f77bcf86cd799439021", "order-1706356300000-user-123-req-457");
    broker.produce("order.checkout.started.topic", o2, &checkout(o2, s2, 3));
    wait_figures(&server, S0_PRODUCT, (98, 3, 95, 2));
    broker.produce("order.payment.failed.topic", o2, &payment(o2, s2, 3, true));
    wait_figures(&server, S0_PRODUCT, (98, 0, 98, 2));
    assert_eq!(reservation(&server, o2)["status"], "RELEASED");

    // A checkout for more than there is: nothing reserved, and seed 000's failure
    // event on order.reservation.failed.topic, bare as seed 000 publishes it (the
    // event's id and type in the headers).
    let (o3, s3) = ("507f1f77bcf86cd799439022", "order-1706356400000-user-123-req-458");
    broker.produce("order.checkout.started.topic", o3, &checkout(o3, s3, 500));
    let (failed, headers) = wait_for(120, "order.reservation.failed.topic", || {
        broker.read("order.reservation.failed.topic").into_iter().find(|(e, _)| e["orderId"] == o3)
    });
    assert_eq!(headers.get("type").map(String::as_str), Some("inventory.reservation_failed"), "{headers:?}");
    assert!(headers.get("id").is_some_and(|id| !id.is_empty()), "{headers:?}");
    assert!(failed.get("data").is_none() && failed.get("type").is_none(), "no envelope: {failed}");
    let d = &failed;
    assert_eq!(
        (&d["sagaId"], &d["userId"], &d["storeId"]),
        (&json!(s3), &json!("507f1f77bcf86cd799439013"), &json!("507f1f77bcf86cd799439011")),
        "{failed}"
    );
    assert_eq!(d["reason"], "INSUFFICIENT_INVENTORY", "{failed}");
    let item0 = &d["failedItems"][0];
    assert_eq!(
        (&item0["productId"], &item0["productTitle"], &item0["reason"]),
        (&json!(S0_PRODUCT), &json!("Running Shoes"), &json!("INSUFFICIENT_INVENTORY")),
        "{failed}"
    );
    assert!(d["failedAt"].is_string(), "{failed}");
    assert_eq!(figures(&server, S0_PRODUCT), (98, 0, 98, 2));
    assert_eq!(server.get(&format!("/api/v1/inventory/reservations/{o3}")).0, 404);

    // What stockd published, on the topics of their types.
    wait_published(&server);
    let reserved = broker.events("inventory.reserved");
    for o in [o1, o2] {
        assert_eq!(reserved.iter().filter(|e| e["data"]["orderId"] == o).count(), 1, "{o}: {reserved:?}");
    }
    let confirmed = broker.events("inventory.confirmed");
    assert_eq!(confirmed.len(), 1, "{confirmed:?}");
    assert_eq!(
        (&confirmed[0]["data"]["orderId"], &confirmed[0]["data"]["items"][0]["committed"]),
        (&json!(o1), &json!(2))
    );
    let released = broker.events("inventory.released");
    assert_eq!(released.len(), 1, "{released:?}");
    assert_eq!(
        (&released[0]["data"]["orderId"], &released[0]["data"]["reason"]),
        (&json!(o2), &json!("PAYMENT_FAILED"))
    );
    assert_eq!(consumer_health(&server)["deadLettered"], 0);
    assert_eq!(server.stop(), Some(0));
}

// ---- seed 001 -----------------------------------------------------------------------

/// Seed 001 names its Kafka events (order.placed, payment.authorized, payment.failed,
/// order.cancelled; inventory.low-stock published) but shows no JSON: the shape here is
/// the one `examples/kafka/seed-001.toml` assumes, `{"orderId", "items": [{"productId",
/// "quantity"}]}`.
#[test]
fn seed_001_placed_authorized_failed_with_assumed_shapes() {
    let broker = Broker::start(&[
        "order.placed",
        "payment.authorized",
        "payment.failed",
        "order.cancelled",
        "inventory.low-stock",
    ]);
    let server = start(&broker, "seed-001.toml", &[]);
    assert_ok(server.put("/api/v1/inventory/items/prod-a", r#"{"onHand": 5, "lowStockThreshold": 2}"#), 201);
    let order =
        |id: &str, quantity: u64| json!({ "orderId": id, "items": [{ "productId": "prod-a", "quantity": quantity }] });
    broker.produce("order.placed", "o-1", &order("o-1", 3));
    wait_figures(&server, "prod-a", (5, 3, 2, 0));
    broker.produce("payment.authorized", "o-1", &json!({ "orderId": "o-1" }));
    wait_figures(&server, "prod-a", (2, 0, 2, 3));
    broker.produce("order.placed", "o-2", &order("o-2", 1));
    wait_figures(&server, "prod-a", (2, 1, 1, 3));
    broker.produce("payment.failed", "o-2", &json!({ "orderId": "o-2" }));
    wait_figures(&server, "prod-a", (2, 0, 2, 3));
    // The low-stock alert (available 5 → 2, threshold 2) on seed 001's hyphenated topic.
    wait_published(&server);
    let low = broker.events("inventory.low-stock");
    assert!(
        !low.is_empty() && low.iter().all(|e| e["type"] == "inventory.low_stock" && e["data"]["sku"] == "prod-a"),
        "{low:?}"
    );
    assert!(broker.events("inventory.low_stock").is_empty());
    assert_eq!(consumer_health(&server)["deadLettered"], 0);
    assert_eq!(server.stop(), Some(0));
}

// ---- seed 002 -----------------------------------------------------------------------

const P1: &str = "0e8dddc7-9ebf-41f3-b08a-5a3f91f1c3c0:7c9e6679-7425-40de-944b-e07fc1f90ae7";
const P2: &str = "9e3a3ca9-4c41-4c3c-8e82-3b323d9a3e23:4f6a9b7c-0e2d-4f37-9a3c-2e9a4e3b5c1d";
const S2_ORDER: &str = "f47ac10b-58cc-4372-a567-0e02b2c3d479";

/// Seed 002's two lines (productId, variantId, quantity).
fn s2_items() -> Value {
    json!([
      {
        "productId": "0e8dddc7-9ebf-41f3-b08a-5a3f91f1c3c0",
        "variantId": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
        "quantity": 2
      },
      {
        "productId": "9e3a3ca9-4c41-4c3c-8e82-3b323d9a3e23",
        "variantId": "4f6a9b7c-0e2d-4f37-9a3c-2e9a4e3b5c1d",
        "quantity": 1
      }
    ])
}

/// Seed 002: HTTP reserve, then `order.created` (a repeat of that reservation),
/// `inventory.confirm_requested` in seed 002's envelope (commits, publishes
/// `inventory.confirmed`), `order.cancelled` (releases another order), and
/// `order.returned` (the committed units back on hand, once; a later cancellation of
/// the returned order changes nothing more); partial returns add up and a
/// cancellation after them brings back only the rest.
#[test]
fn seed_002_confirm_cancel_return() {
    let broker = Broker::start(&["order.created", "order.cancelled", "order.returned", "inventory.confirm_requested"]);
    let server = start(&broker, "seed-002.yaml", &[]);
    assert_ok(server.put(&format!("/api/v1/inventory/items/{P1}"), r#"{"onHand": 15}"#), 201);
    assert_ok(server.put(&format!("/api/v1/inventory/items/{P2}"), r#"{"onHand": 8}"#), 201);

    // The seed's reserve request (its expiresIn comment is not JSON).
    let reserve = json!({ "orderId": S2_ORDER, "items": s2_items(), "expiresIn": 1800,
                          "metadata": { "userId": "3fa85f64-5717-4562-b3fc-2c963f66afa6" } });
    let data = assert_ok(server.post("/api/v1/inventory/reserve", &reserve.to_string()), 201);
    let reservation_id = data["reservationId"].as_str().unwrap().to_owned();

    // order.created, the seed's event: the same order and items, so a repeat.
    let created = |order: &str| {
        json!({
          "eventType": "order.created",
          "orderId": order,
          "userId": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
          "items": s2_items(),
          "reservationId": reservation_id,
          "timestamp": "2023-11-21T15:27:30.123Z"
        })
    };
    broker.produce("order.created", S2_ORDER, &created(S2_ORDER));
    wait_applied(&server, 1);
    assert_eq!(figures(&server, P1), (15, 2, 13, 0));
    assert_eq!(figures(&server, P2), (8, 1, 7, 0));

    // inventory.confirm_requested, as the Order Service publishes it.
    let confirm = json!({
      "id": "6e0f5f0e-4c8b-4f6e-9d8f-0d6c1b1f1a01",
      "type": "inventory.confirm_requested",
      "source": "order-service",
      "dataVersion": "1.0",
      "timestamp": "2023-11-21T15:27:31.000Z",
      "correlationId": S2_ORDER,
      "data": { "orderId": S2_ORDER, "reservationId": reservation_id }
    });
    broker.produce("inventory.confirm_requested", S2_ORDER, &confirm);
    wait_figures(&server, P1, (13, 0, 13, 2));
    wait_figures(&server, P2, (7, 0, 7, 1));
    let confirmed = wait_for(120, "inventory.confirmed", || {
        broker.events("inventory.confirmed").into_iter().find(|e| e["data"]["orderId"] == S2_ORDER)
    });
    assert_eq!(confirmed["data"]["reservationId"], reservation_id.as_str(), "{confirmed}");
    assert_eq!(
        (&confirmed["type"], &confirmed["source"], &confirmed["correlationId"]),
        (&json!("inventory.confirmed"), &json!("stockd"), &json!(S2_ORDER))
    );

    // Another order, reserved by its order.created event, then cancelled (the seed's
    // cancellation event).
    let o2 = "2c5e8f3a-7b1d-4e9a-8c6f-1d2e3f4a5b6c";
    broker.produce("order.created", o2, &created(o2));
    wait_figures(&server, P1, (13, 2, 11, 2));
    let cancelled = |order: &str| {
        json!({
          "eventType": "order.cancelled",
          "orderId": order,
          "userId": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
          "items": s2_items(),
          "reason": "CUSTOMER_CANCELLED",
          "timestamp": "2023-11-21T16:15:45.789Z"
        })
    };
    broker.produce("order.cancelled", o2, &cancelled(o2));
    wait_figures(&server, P1, (13, 0, 13, 2));
    wait_figures(&server, P2, (7, 0, 7, 1));
    assert_eq!(reservation(&server, o2)["status"], "RELEASED");

    // The committed order returned, the event delivered twice: its units back once.
    let returned = json!({
      "eventType": "order.returned",
      "orderId": S2_ORDER,
      "userId": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
      "items": s2_items(),
      "reason": "CUSTOMER_RETURNED",
      "timestamp": "2023-11-25T10:00:00.000Z"
    });
    broker.produce("order.returned", S2_ORDER, &returned);
    broker.produce("order.returned", S2_ORDER, &returned);
    wait_figures(&server, P1, (15, 0, 15, 2));
    wait_figures(&server, P2, (8, 0, 8, 1));
    // And a cancellation of that order afterwards (committed: restock): the same
    // order and lines, so nothing more comes back.
    broker.produce("order.cancelled", S2_ORDER, &cancelled(S2_ORDER));
    wait_applied(&server, 7);
    assert_eq!(figures(&server, P1), (15, 0, 15, 2));
    assert_eq!(figures(&server, P2), (8, 0, 8, 1));

    // Partial returns add up: a third order (P1 × 2, P2 × 1) committed, then two
    // returns of one P1 unit each (two events, the same quantity), then a
    // cancellation: it brings back only what is left (P2's unit), never more than
    // the order bought.
    let o3 = "7d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6";
    let reserve3 = json!({ "orderId": o3, "items": s2_items() });
    assert_ok(server.post("/api/v1/inventory/reserve", &reserve3.to_string()), 201);
    assert_ok(server.post("/api/v1/inventory/commit", &json!({ "orderId": o3 }).to_string()), 200);
    assert_eq!((figures(&server, P1), figures(&server, P2)), ((13, 0, 13, 4), (7, 0, 7, 2)));
    let one_p1 = json!({ "eventType": "order.returned", "orderId": o3, "reason": "DAMAGED_IN_TRANSIT",
                         "items": [{ "productId": "0e8dddc7-9ebf-41f3-b08a-5a3f91f1c3c0",
                                     "variantId": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "quantity": 1 }] });
    broker.produce("order.returned", o3, &one_p1);
    wait_figures(&server, P1, (14, 0, 14, 4));
    broker.produce("order.returned", o3, &one_p1);
    wait_figures(&server, P1, (15, 0, 15, 4));
    broker.produce("order.cancelled", o3, &cancelled(o3));
    wait_figures(&server, P2, (8, 0, 8, 2));
    wait_applied(&server, 10);
    assert_eq!(figures(&server, P1), (15, 0, 15, 4), "P1's two units came back already");

    wait_published(&server);
    let released = broker.events("inventory.released");
    assert_eq!(released.len(), 1, "{released:?}");
    assert_eq!((&released[0]["data"]["orderId"], &released[0]["data"]["reason"]), (&json!(o2), &json!("CANCELLED")));
    let returns: Vec<Value> =
        broker.events("inventory.adjusted").into_iter().filter(|e| e["data"]["reason"] == "RETURN").collect();
    let mut got: Vec<(String, String, i64)> = returns
        .iter()
        .map(|e| {
            let d = &e["data"];
            (
                d["orderId"].as_str().unwrap().to_owned(),
                d["sku"].as_str().unwrap().to_owned(),
                d["delta"].as_i64().unwrap(),
            )
        })
        .collect();
    got.sort();
    let mut want = vec![
        (S2_ORDER.to_owned(), P1.to_owned(), 2),
        (S2_ORDER.to_owned(), P2.to_owned(), 1),
        (o3.to_owned(), P1.to_owned(), 1),
        (o3.to_owned(), P1.to_owned(), 1),
        (o3.to_owned(), P2.to_owned(), 1),
    ];
    want.sort();
    assert_eq!(got, want, "each RETURN once: {returns:?}");
    assert_eq!(consumer_health(&server)["deadLettered"], 0);
    assert_eq!(server.stop(), Some(0));
}

// ---- seed 003 -----------------------------------------------------------------------

fn s3_event(event: &str, order: &str, items: Value) -> Value {
    json!({ "event": event, "orderId": order, "items": items, "buyerId": "user-123", "timestamp": "2025-01-01T00:00:00.000Z" })
}

/// Seed 003: `order.created` reserves, `order.updated` is routed by `status`
/// (delivered → commit, cancelled → release, shipped → nothing), `order.delivered`
/// commits, `order.cancelled` of a delivered order puts its units back; stockd
/// publishes bare events, one per line, as seed 003 does.
///
/// "Delivered 3 days later", simulated: the binary's clock cannot be moved, so the
/// test proves the hold outlives 3 days instead of waiting them. The server runs with
/// `--default-ttl 4d` (seed 003's orders carry no TTL); the reservation's deadline is
/// exactly 4 days after its creation, a sweep asked for now (`expire-due`) leaves it
/// ACTIVE, and the delivery then commits it. That a hold expires at its deadline and
/// not before is the engine's own tested rule (server/tests/ttl.rs).
#[test]
fn seed_003_created_delivered_days_later_cancelled_updated() {
    let broker =
        Broker::start(&["order.created", "order.updated", "order.cancelled", "order.delivered", "inventory.deducted"]);
    let server = start(&broker, "seed-003.toml", &["--default-ttl", "4d", "--max-ttl", "90d"]);
    assert_ok(server.put("/api/v1/inventory/items/PROD-001", r#"{"onHand": 100}"#), 201);
    assert_ok(server.put("/api/v1/inventory/items/PROD-002", r#"{"onHand": 50}"#), 201);

    let line = |sku: &str, quantity: u64| json!([{ "sku": sku, "quantity": quantity, "unitPrice": 50.00 }]);
    broker.produce("order.created", "order-456", &s3_event("order.created", "order-456", line("PROD-001", 5)));
    wait_figures(&server, "PROD-001", (100, 5, 95, 0));
    let r = reservation(&server, "order-456");
    assert_eq!(r["status"], "ACTIVE");
    let ttl_ms = epoch_ms(&r["expiresAt"]) - epoch_ms(&r["createdAt"]);
    assert_eq!(ttl_ms, 4 * 86_400_000, "the server's --default-ttl: {r}");
    assert!(ttl_ms > 3 * 86_400_000, "outlives a delivery 3 days later");
    let swept = assert_ok(server.post("/api/v1/inventory/reservations/expire-due", "{}"), 200);
    assert_eq!(swept["expired"], 0);
    assert_eq!(reservation(&server, "order-456")["status"], "ACTIVE");

    // Delivered (order.updated, status delivered), and the same change as
    // order.delivered: committed once.
    let mut delivered = s3_event("order.updated", "order-456", line("PROD-001", 5));
    delivered["status"] = json!("delivered");
    broker.produce("order.updated", "order-456", &delivered);
    broker.produce("order.delivered", "order-456", &s3_event("order.delivered", "order-456", line("PROD-001", 5)));
    wait_figures(&server, "PROD-001", (95, 0, 95, 5));
    assert_eq!(reservation(&server, "order-456")["status"], "COMMITTED");

    // Created, then cancelled by order.updated: released.
    broker.produce("order.created", "order-457", &s3_event("order.created", "order-457", line("PROD-002", 3)));
    wait_figures(&server, "PROD-002", (50, 3, 47, 0));
    let mut cancelled = s3_event("order.updated", "order-457", line("PROD-002", 3));
    cancelled["status"] = json!("cancelled");
    broker.produce("order.updated", "order-457", &cancelled);
    wait_figures(&server, "PROD-002", (50, 0, 50, 0));
    assert_eq!(reservation(&server, "order-457")["status"], "RELEASED");

    // Updated to shipped (no stock change), then delivered.
    broker.produce("order.created", "order-458", &s3_event("order.created", "order-458", line("PROD-001", 2)));
    wait_figures(&server, "PROD-001", (95, 2, 93, 5));
    let mut shipped = json!({ "event": "order.updated", "orderId": "order-458", "status": "shipped" });
    broker.produce("order.updated", "order-458", &shipped);
    shipped["status"] = json!("paid");
    broker.produce("order.updated", "order-458", &shipped);
    broker.produce("order.delivered", "order-458", &s3_event("order.delivered", "order-458", line("PROD-001", 2)));
    wait_figures(&server, "PROD-001", (93, 0, 93, 7));

    // order-456 cancelled after its delivery: restocked (RETURN), once.
    let c = s3_event("order.cancelled", "order-456", line("PROD-001", 5));
    broker.produce("order.cancelled", "order-456", &c);
    broker.produce("order.cancelled", "order-456", &c);
    wait_figures(&server, "PROD-001", (98, 0, 98, 7));
    wait_applied(&server, 11);
    assert_eq!(figures(&server, "PROD-001"), (98, 0, 98, 7));

    // What stockd published, as seed 003 publishes: bare events, one per SKU line,
    // the type in the "type" header.
    wait_published(&server);
    let line = |e: &Value| {
        (
            e["orderId"].as_str().unwrap().to_owned(),
            e["sku"].as_str().unwrap().to_owned(),
            e["quantity"].as_u64().unwrap(),
        )
    };
    let reserved = broker.read("inventory.reserved");
    assert!(reserved.iter().all(|(e, h)| h["type"] == "inventory.reserved" && e.get("data").is_none()), "{reserved:?}");
    // (Sorted: the shards publish side by side.)
    let mut got: Vec<_> = reserved.iter().map(|(e, _)| line(e)).collect();
    got.sort();
    let want = [("order-456", "PROD-001", 5), ("order-457", "PROD-002", 3), ("order-458", "PROD-001", 2)];
    assert_eq!(got, want.map(|(o, s, q)| (o.to_owned(), s.to_owned(), q)), "{reserved:?}");
    // Deductions on seed 003's topic.
    let deducted = broker.read("inventory.deducted");
    assert!(deducted.iter().all(|(_, h)| h["type"] == "inventory.confirmed"), "{deducted:?}");
    let mut got: Vec<_> = deducted.iter().map(|(e, _)| line(e)).collect();
    got.sort();
    assert_eq!(got, [("order-456".into(), "PROD-001".into(), 5), ("order-458".into(), "PROD-001".into(), 2)]);
    assert!(broker.events("inventory.confirmed").is_empty());
    let released = broker.events("inventory.released");
    assert_eq!(released.len(), 1, "{released:?}");
    assert_eq!(line(&released[0]), ("order-457".into(), "PROD-002".into(), 3));
    assert_eq!(released[0]["reason"], "CANCELLED");
    let returns: Vec<Value> =
        broker.events("inventory.adjusted").into_iter().filter(|e| e["reason"] == "RETURN").collect();
    assert_eq!(returns.len(), 1, "{returns:?}");
    assert_eq!((&returns[0]["sku"], &returns[0]["delta"]), (&json!("PROD-001"), &json!(5)));
    assert_eq!(consumer_health(&server)["deadLettered"], 0);
    assert_eq!(server.stop(), Some(0));
}

// ---- seed 004 -----------------------------------------------------------------------

const S4_PRODUCT: &str = "b7e2c1d4-5f6a-4b8c-9d0e-1f2a3b4c5d6e";
const S4_TOPICS: &[&str] =
    &["order.created", "payment.confirmed", "payment.failed", "order.cancelled", "inventory.events"];

fn s4_order(order: &str, quantity: u64, warehouse: Option<&str>) -> Value {
    let mut line = json!({ "product_id": S4_PRODUCT, "quantity": quantity });
    if let Some(w) = warehouse {
        line["warehouse_id"] = json!(w);
    }
    json!({ "order_id": order, "items": [line] })
}

/// (onHand, reserved, sold) of the product at `warehouse`.
fn at(server: &Server, warehouse: &str) -> (u64, u64, u64) {
    let i = item(server, S4_PRODUCT);
    let l = i["locations"].as_array().unwrap().iter().find(|l| l["location"] == warehouse).cloned();
    let l = l.unwrap_or_else(|| panic!("{warehouse} in {i}"));
    (l["onHand"].as_u64().unwrap(), l["reserved"].as_u64().unwrap(), l["sold"].as_u64().unwrap())
}

#[track_caller]
fn wait_at(server: &Server, warehouse: &str, want: (u64, u64, u64)) {
    wait_for(120, &format!("{warehouse} at (onHand, reserved, sold) = {want:?}"), || {
        (at(server, warehouse) == want).then_some(())
    });
}

fn stock_s4(server: &Server) {
    for (wh, n) in [("wh-sp-001", 10), ("wh-rj-001", 5)] {
        let (s, _) = server
            .put(&format!("/api/v1/inventory/items/{S4_PRODUCT}/locations/{wh}"), &format!(r#"{{"onHand": {n}}}"#));
        assert!(s == 200 || s == 201, "{wh}: {s}");
    }
}

/// Seed 004: its warehouse table (`--warehouses`), orders whose lines name their
/// `warehouse_id` (taken from there only) or none (allocated by priority), payment
/// confirmed (commit) / failed (release), and `order.cancelled` after commit: the
/// units go back to the warehouse they came from ("return stock"). Every event is
/// published to seed 004's one exchange, `inventory.events`.
#[test]
fn seed_004_orders_with_warehouse_ids() {
    let broker = Broker::start(S4_TOPICS);
    let warehouses = example("seed-004-warehouses.yaml");
    let server = start(&broker, "seed-004.yaml", &["--warehouses", &warehouses]);
    stock_s4(&server);

    // From Rio only, though São Paulo has priority 1.
    broker.produce("order.created", "ord-1", &s4_order("ord-1", 4, Some("wh-rj-001")));
    wait_at(&server, "wh-rj-001", (5, 4, 0));
    assert_eq!(at(&server, "wh-sp-001"), (10, 0, 0));
    broker.produce("payment.confirmed", "ord-1", &json!({ "order_id": "ord-1" }));
    wait_at(&server, "wh-rj-001", (1, 0, 4));
    // Cancelled after payment: back to Rio.
    broker.produce("order.cancelled", "ord-1", &json!({ "order_id": "ord-1" }));
    wait_at(&server, "wh-rj-001", (5, 0, 4));
    assert_eq!(at(&server, "wh-sp-001"), (10, 0, 0));

    // No warehouse named: São Paulo (priority 1). Payment failed: released.
    broker.produce("order.created", "ord-2", &s4_order("ord-2", 3, None));
    wait_at(&server, "wh-sp-001", (10, 3, 0));
    broker.produce("payment.failed", "ord-2", &json!({ "order_id": "ord-2", "reason": "card_declined" }));
    wait_at(&server, "wh-sp-001", (10, 0, 0));

    // A warehouse the table does not list: dead-lettered, nothing reserved.
    broker.produce("order.created", "ord-3", &s4_order("ord-3", 1, Some("wh-xx-999")));
    let dlq = wait_for(120, "ord-3 dead-lettered", || {
        broker.read("stockd.dlq").into_iter().find(|(v, _)| v["order_id"] == "ord-3")
    });
    assert!(dlq.1["dlq.error"].contains("wh-xx-999"), "{:?}", dlq.1);
    assert_eq!(server.get("/api/v1/inventory/reservations/ord-3").0, 404);

    wait_published(&server);
    let events = broker.read("inventory.events");
    let types: Vec<(&str, &str)> = events
        .iter()
        .filter(|(v, _)| v["data"]["orderId"].is_string() || v["data"]["reason"] == "RETURN")
        .map(|(v, h)| (v["type"].as_str().unwrap(), h["type"].as_str()))
        .collect();
    assert_eq!(
        types,
        [
            ("inventory.reserved", "inventory.reserved"),
            ("inventory.confirmed", "inventory.confirmed"),
            ("inventory.adjusted", "inventory.adjusted"),
            ("inventory.reserved", "inventory.reserved"),
            ("inventory.released", "inventory.released"),
        ],
        "{events:?}"
    );
    let ret = events.iter().find(|(v, _)| v["data"]["reason"] == "RETURN").unwrap();
    assert_eq!((&ret.0["data"]["location"], &ret.0["data"]["delta"]), (&json!("wh-rj-001"), &json!(4)));
    assert_eq!(server.stop(), Some(0));
}

/// Seed 004 with `--cancel-after-commit reject`: a cancellation of a paid order goes
/// to the dead-letter topic with the reason, and the sale stands.
#[test]
fn seed_004_cancel_after_commit_reject() {
    let broker = Broker::start(S4_TOPICS);
    let warehouses = example("seed-004-warehouses.yaml");
    let server = start(&broker, "seed-004.yaml", &["--warehouses", &warehouses, "--cancel-after-commit", "reject"]);
    stock_s4(&server);
    broker.produce("order.created", "ord-9", &s4_order("ord-9", 2, Some("wh-sp-001")));
    wait_at(&server, "wh-sp-001", (10, 2, 0));
    broker.produce("payment.confirmed", "ord-9", &json!({ "order_id": "ord-9" }));
    wait_at(&server, "wh-sp-001", (8, 0, 2));
    broker.produce("order.cancelled", "ord-9", &json!({ "order_id": "ord-9" }));
    let dlq = wait_for(120, "ord-9's cancellation dead-lettered", || {
        broker.read("stockd.dlq").into_iter().find(|(v, _)| v["order_id"] == "ord-9")
    });
    let error = &dlq.1["dlq.error"];
    assert!(error.starts_with("RESERVATION_COMMITTED") && error.contains("reject"), "{error}");
    assert_eq!(dlq.1["dlq.topic"], "order.cancelled");
    assert_eq!(at(&server, "wh-sp-001"), (8, 0, 2));
    assert_eq!(reservation(&server, "ord-9")["status"], "COMMITTED");
    assert_eq!(server.stop(), Some(0));
}

/// A mapping file with a bad value stops the server at start, naming the file and
/// the field (no broker needed: the file is checked before anything starts).
#[test]
fn a_bad_mapping_file_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[events]\n\"order.created\" = \"reserv\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stockd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--kafka-brokers", "127.0.0.1:9", "--kafka-config"])
        .arg(&path)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("kafka config {}: events.order.created: unknown action \"reserv\"", path.display())),
        "{err}"
    );
    assert!(!dir.path().join("data").exists(), "stopped before opening the data dir");
    // Without --kafka-brokers the file would do nothing: refused too.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stockd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--kafka-config"])
        .arg(example("seed-000.toml"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--kafka-config needs --kafka-brokers"));
}

/// A mapping of one's own (YAML, written here): `set_item` creates then sets an
/// item's on-hand, a routed event whose field holds a value with no route and no
/// `otherwise` is dead-lettered with why, and a routed `ignore` changes nothing.
#[test]
fn a_custom_mapping_sets_items_and_dead_letters_unrouted_values() {
    let broker = Broker::start(&["catalog", "orders"]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.yaml");
    std::fs::write(
        &path,
        "topics: [catalog, orders]\n\
         fields:\n  event_type: kind\n  item_key: \"{code}\"\n  on_hand: stock\n\
         events:\n  product.updated: set_item\n  order.placed: reserve\n\
         \x20 order.changed:\n    route_by: status\n    routes: {paid: commit, shipped: ignore}\n",
    )
    .unwrap();
    let config = path.display().to_string();
    let server = Server::start(&["--kafka-brokers", broker.servers(), "--kafka-config", &config]);
    broker.produce("catalog", "c1", &json!({ "kind": "product.updated", "code": "C-1", "stock": 7 }));
    wait_for(120, "C-1 created", || (server.get("/api/v1/inventory/items/C-1").0 == 200).then_some(()));
    assert_eq!(figures(&server, "C-1"), (7, 0, 7, 0));
    broker.produce("catalog", "c1", &json!({ "kind": "product.updated", "code": "C-1", "stock": 4 }));
    wait_figures(&server, "C-1", (4, 0, 4, 0));
    broker.produce(
        "orders",
        "o",
        &json!({ "kind": "order.placed", "orderId": "o", "items": [{ "code": "C-1", "quantity": 1 }] }),
    );
    wait_figures(&server, "C-1", (4, 1, 3, 0));
    broker.produce("orders", "o", &json!({ "kind": "order.changed", "orderId": "o", "status": "shipped" }));
    broker.produce("orders", "o", &json!({ "kind": "order.changed", "orderId": "o", "status": "lost" }));
    let dlq = wait_for(120, "the unrouted status dead-lettered", || {
        broker.read("stockd.dlq").into_iter().find(|(v, _)| v["status"] == "lost")
    });
    assert!(dlq.1["dlq.error"].contains("status \"lost\" has no route"), "{:?}", dlq.1);
    broker.produce("orders", "o", &json!({ "kind": "order.changed", "orderId": "o", "status": "paid" }));
    wait_figures(&server, "C-1", (3, 0, 3, 1));
    assert_eq!(consumer_health(&server)["deadLettered"], 1);
    assert_eq!(server.stop(), Some(0));
}
