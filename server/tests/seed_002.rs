//! Seed 002 (Order Service ↔ Inventory Service) requests, verbatim, against the real
//! server: check-availability, reserve, release. The reserve request is the seed's
//! minus its `// Reservation time in seconds` comment, which is not JSON.

mod common;
use common::{assert_error, assert_ok, is_timestamp, Server};
use serde_json::json;

const P1: &str = "0e8dddc7-9ebf-41f3-b08a-5a3f91f1c3c0:7c9e6679-7425-40de-944b-e07fc1f90ae7";
const P2: &str = "9e3a3ca9-4c41-4c3c-8e82-3b323d9a3e23:4f6a9b7c-0e2d-4f37-9a3c-2e9a4e3b5c1d";

const CHECK: &str = r#"{
  "items": [
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
  ]
}"#;

const RESERVE: &str = r#"{
  "orderId": "f47ac10b-58cc-4372-a567-0e02b2c3d479",
  "items": [
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
  ],
  "expiresIn": 1800,
  "metadata": {
    "userId": "3fa85f64-5717-4562-b3fc-2c963f66afa6"
  }
}"#;

fn stock(s: &Server) {
    assert_ok(s.put(&format!("/api/v1/inventory/items/{P1}"), r#"{"onHand": 15}"#), 201);
    assert_ok(s.put(&format!("/api/v1/inventory/items/{P2}"), r#"{"onHand": 8}"#), 201);
}

#[test]
fn check_availability_as_in_seed_002() {
    let s = Server::start(&["--durability", "none"]);
    stock(&s);
    let data = assert_ok(s.post("/api/v1/inventory/check-availability", CHECK), 200);
    assert_eq!(
        data,
        json!({
            "available": true,
            "items": [
                {
                    "productId": "0e8dddc7-9ebf-41f3-b08a-5a3f91f1c3c0",
                    "variantId": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
                    "available": true,
                    "requestedQuantity": 2,
                    "availableQuantity": 15,
                    "reason": null
                },
                {
                    "productId": "9e3a3ca9-4c41-4c3c-8e82-3b323d9a3e23",
                    "variantId": "4f6a9b7c-0e2d-4f37-9a3c-2e9a4e3b5c1d",
                    "available": true,
                    "requestedQuantity": 1,
                    "availableQuantity": 8,
                    "reason": null
                }
            ]
        })
    );
    // Not enough of one item, and an unknown item: both unavailable.
    let body = r#"{"items":[{"productId":"0e8dddc7-9ebf-41f3-b08a-5a3f91f1c3c0","variantId":"7c9e6679-7425-40de-944b-e07fc1f90ae7","quantity":16},{"productId":"nope","quantity":1}]}"#;
    let data = assert_ok(s.post("/api/v1/inventory/check-availability", body), 200);
    assert_eq!(data["available"], false);
    assert_eq!(data["items"][0]["available"], false);
    assert_eq!(data["items"][0]["availableQuantity"], 15);
    assert_eq!(data["items"][0]["reason"], "INSUFFICIENT_INVENTORY");
    assert_eq!(
        data["items"][1],
        json!({"productId": "nope", "available": false, "requestedQuantity": 1, "availableQuantity": 0, "reason": "ITEM_NOT_FOUND"})
    );
    let details =
        assert_error(s.post("/api/v1/inventory/check-availability", r#"{"items":[]}"#), 400, "VALIDATION_ERROR");
    assert_eq!(details["field"], "items");
}

#[test]
fn reserve_then_release_as_in_seed_002() {
    let s = Server::start(&["--durability", "none"]);
    stock(&s);
    let data = assert_ok(s.post("/api/v1/inventory/reserve", RESERVE), 201);
    let id = data["reservationId"].as_str().unwrap().to_owned();
    assert_eq!(data["orderId"], "f47ac10b-58cc-4372-a567-0e02b2c3d479");
    assert_eq!(
        data["items"],
        json!([
            {"productId": "0e8dddc7-9ebf-41f3-b08a-5a3f91f1c3c0", "variantId": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "quantity": 2, "reserved": true},
            {"productId": "9e3a3ca9-4c41-4c3c-8e82-3b323d9a3e23", "variantId": "4f6a9b7c-0e2d-4f37-9a3c-2e9a4e3b5c1d", "quantity": 1, "reserved": true}
        ])
    );
    assert!(is_timestamp(&data["expiresAt"]), "{data}");

    // The same orderId again: the original reservation, 200.
    let again = assert_ok(s.post("/api/v1/inventory/reserve", RESERVE), 200);
    assert_eq!(again["reservationId"], id.as_str());
    // The same orderId with other items: 422.
    let other = RESERVE.replace("\"quantity\": 1", "\"quantity\": 3");
    assert_error(s.post("/api/v1/inventory/reserve", &other), 422, "IDEMPOTENCY_KEY_REUSED");

    let item = assert_ok(s.get(&format!("/api/v1/inventory/items/{P1}")), 200);
    assert_eq!((item["available"].as_u64(), item["reserved"].as_u64()), (Some(13), Some(2)));
    let r = assert_ok(s.get(&format!("/api/v1/inventory/reservations/{id}")), 200);
    assert_eq!(r["metadata"], json!({"userId": "3fa85f64-5717-4562-b3fc-2c963f66afa6"}));

    // Release exactly as the seed's client sends it: { orderId }.
    let released =
        assert_ok(s.post("/api/v1/inventory/release", r#"{"orderId":"f47ac10b-58cc-4372-a567-0e02b2c3d479"}"#), 200);
    assert_eq!(released["status"], "RELEASED");
    let item = assert_ok(s.get(&format!("/api/v1/inventory/items/{P1}")), 200);
    assert_eq!((item["available"].as_u64(), item["reserved"].as_u64()), (Some(15), Some(0)));
    // Releasing again answers the reservation as it is.
    assert_ok(s.post("/api/v1/inventory/release", r#"{"orderId":"f47ac10b-58cc-4372-a567-0e02b2c3d479"}"#), 200);
}

#[test]
fn insufficient_inventory_names_each_item() {
    let s = Server::start(&["--durability", "none"]);
    stock(&s);
    let body = RESERVE.replace("\"quantity\": 2", "\"quantity\": 20");
    let details = assert_error(s.post("/api/v1/inventory/reserve", &body), 409, "INSUFFICIENT_INVENTORY");
    assert_eq!(
        details["items"],
        json!([{
            "sku": P1,
            "productId": "0e8dddc7-9ebf-41f3-b08a-5a3f91f1c3c0",
            "variantId": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
            "requestedQuantity": 20,
            "availableQuantity": 15
        }])
    );
    // Nothing was held.
    let item = assert_ok(s.get(&format!("/api/v1/inventory/items/{P2}")), 200);
    assert_eq!(item["reserved"], 0);
}
