//! The OpenAPI document gives every response its real schema, and real answers match
//! it field for field (CI also fuzzes the binary against it with schemathesis:
//! scripts/openapi-check.sh). The checker here is deliberately strict where
//! schemathesis is lenient: a field the answer has and the schema does not list fails.

mod common;
use common::Server;
use serde_json::{json, Value};

/// `$ref` → the component it names.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => resolve(doc, &doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")]),
        None => schema,
    }
}

fn type_ok(v: &Value, t: &str) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "string" => v.is_string(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => false,
    }
}

/// Checks `v` against `schema`: types, required fields, no field the schema does not
/// list (for objects that list their properties), recursively. `at` names the place.
fn check(doc: &Value, schema: &Value, v: &Value, at: &str) {
    let schema = resolve(doc, schema);
    if let Some(all) = schema["allOf"].as_array() {
        for s in all {
            check_fields(doc, resolve(doc, s), v, at, false);
        }
        let listed: Vec<&String> =
            all.iter().filter_map(|s| resolve(doc, s)["properties"].as_object()).flat_map(|p| p.keys()).collect();
        if let Some(o) = v.as_object() {
            for k in o.keys() {
                assert!(listed.contains(&k), "{at}.{k}: not in the schema");
            }
        }
        return;
    }
    check_fields(doc, schema, v, at, true);
}

fn check_fields(doc: &Value, schema: &Value, v: &Value, at: &str, closed: bool) {
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !types.is_empty() {
        assert!(types.iter().any(|t| type_ok(v, t)), "{at}: {v} is not of type {types:?}");
    }
    if let Some(required) = schema["required"].as_array() {
        for r in required {
            let r = r.as_str().unwrap();
            assert!(v.get(r).is_some(), "{at}.{r}: required, missing in {v}");
        }
    }
    if let (Some(props), Some(o)) = (schema["properties"].as_object(), v.as_object()) {
        for (k, field) in o {
            match props.get(k) {
                Some(s) => check(doc, s, field, &format!("{at}.{k}")),
                None => assert!(!closed, "{at}.{k}: not in the schema"),
            }
        }
    }
    if let (Some(items), Some(list)) = (schema.get("items"), v.as_array()) {
        for (i, e) in list.iter().enumerate() {
            check(doc, items, e, &format!("{at}[{i}]"));
        }
    }
}

/// The answer `got` to `method path` matches the schema the document gives its status.
fn conforms(doc: &Value, method: &str, path: &str, got: (u16, Value)) -> Value {
    let (status, body) = got;
    let responses = &doc["paths"][path][method]["responses"];
    assert!(responses.is_object(), "{method} {path} is not documented");
    let response = responses.get(status.to_string()).unwrap_or(&responses["default"]);
    let schema = &response["content"]["application/json"]["schema"];
    assert!(schema.is_object(), "{method} {path} {status}: no JSON schema");
    check(doc, schema, &body, &format!("{method} {path} {status}"));
    body
}

#[test]
fn every_response_names_its_schema() {
    let s = Server::start(&["--durability", "none"]);
    let (status, doc) = s.get("/api/v1/openapi.json");
    assert_eq!(status, 200);
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.contains_key("default"), "{method} {path}: no default (error) response");
            for (status, r) in responses {
                let content = r["content"].as_object();
                assert!(content.is_some_and(|c| !c.is_empty()), "{method} {path} {status}: no body schema");
                if path == "/metrics" && status == "200" {
                    assert!(r["content"]["text/plain"].is_object());
                    continue;
                }
                let reference = r["content"]["application/json"]["schema"]["$ref"].as_str().unwrap_or("");
                if status.starts_with('2') {
                    if path != "/api/v1/openapi.json" {
                        assert!(reference.contains("Envelope_"), "{method} {path} {status}: {reference:?}");
                    }
                } else {
                    assert!(reference.ends_with("/ErrorEnvelope"), "{method} {path} {status}: {reference:?}");
                }
            }
        }
    }
    assert_eq!(operations, 26);
}

#[test]
fn real_answers_match_their_documented_schemas() {
    let s = Server::start(&["--durability", "none"]);
    let (_, doc) = s.get("/api/v1/openapi.json");
    let inv = "/api/v1/inventory";
    let put = |sku: &str, body: &str| s.put(&format!("{inv}/items/{sku}"), body);
    conforms(&doc, "put", "/api/v1/inventory/items/{sku}", put("P-1:red", r#"{"onHand": 10, "maxPerOrder": 8}"#));
    let loc = s.put(&format!("{inv}/items/P-2/locations/wh-a"), r#"{"onHand": 4, "incoming": 2}"#);
    conforms(&doc, "put", "/api/v1/inventory/items/{sku}/locations/{location}", loc);
    conforms(&doc, "get", "/api/v1/inventory/items/{sku}", s.get(&format!("{inv}/items/P-1:red")));
    conforms(&doc, "get", "/api/v1/inventory/items/{sku}", s.get(&format!("{inv}/items/none")));
    conforms(&doc, "get", "/api/v1/inventory/items", s.get(&format!("{inv}/items?limit=1")));
    conforms(&doc, "get", "/api/v1/inventory/items/{sku}/locations", s.get(&format!("{inv}/items/P-2/locations")));
    conforms(&doc, "get", "/api/v1/inventory/warehouses", s.get(&format!("{inv}/warehouses")));

    let check = json!({"items": [{"productId": "P-1", "variantId": "red", "quantity": 9}, {"sku": "P-2", "quantity": 1, "location": "wh-a"}, {"sku": "nope", "quantity": 1}]});
    let got = s.post(&format!("{inv}/check-availability"), &check.to_string());
    let body = conforms(&doc, "post", "/api/v1/inventory/check-availability", got);
    assert_eq!(body["data"]["items"][0]["reason"], "MAX_PER_ORDER_EXCEEDED");

    let reserve = json!({"orderId": "o-1", "items": [{"productId": "P-1", "variantId": "red", "quantity": 3}, {"sku": "P-2", "quantity": 1, "location": "wh-a"}], "metadata": {"cart": [1]}});
    let body =
        conforms(&doc, "post", "/api/v1/inventory/reserve", s.post(&format!("{inv}/reserve"), &reserve.to_string()));
    let id = body["data"]["reservationId"].as_str().unwrap().to_owned();
    conforms(&doc, "post", "/api/v1/inventory/reserve", s.post(&format!("{inv}/reserve"), &reserve.to_string()));
    let short = json!({"orderId": "o-2", "items": [{"productId": "P-1", "variantId": "red", "quantity": 8}]});
    let body =
        conforms(&doc, "post", "/api/v1/inventory/reserve", s.post(&format!("{inv}/reserve"), &short.to_string()));
    assert_eq!(body["error"]["details"]["items"][0]["productId"], "P-1", "{body}");
    let bad = json!({"orderId": "o-3", "items": [{"sku": "bad sku", "quantity": 1}]});
    conforms(&doc, "post", "/api/v1/inventory/reserve", s.post(&format!("{inv}/reserve"), &bad.to_string()));

    let path = "/api/v1/inventory/reservations/{id}";
    conforms(&doc, "get", path, s.get(&format!("{inv}/reservations/{id}")));
    conforms(&doc, "get", path, s.get(&format!("{inv}/reservations/o-1")));
    conforms(&doc, "get", path, s.get(&format!("{inv}/reservations/missing")));
    let extend = json!({"orderId": "o-1", "expiresIn": 600}).to_string();
    conforms(&doc, "post", "/api/v1/inventory/extend", s.post(&format!("{inv}/extend"), &extend));
    let commit = json!({"orderId": "o-1", "items": [{"sku": "P-1:red", "quantity": 1}]}).to_string();
    let body = conforms(&doc, "post", "/api/v1/inventory/commit", s.post(&format!("{inv}/commit"), &commit));
    assert_eq!(body["data"]["status"], "COMMITTED");
    let release = json!({"orderId": "o-1"}).to_string();
    conforms(&doc, "post", "/api/v1/inventory/release", s.post(&format!("{inv}/release"), &release));
    let one = json!({"orderId": "o-4", "items": [{"sku": "P-1:red", "quantity": 1}]}).to_string();
    conforms(&doc, "post", "/api/v1/inventory/reserve", s.post(&format!("{inv}/reserve"), &one));
    conforms(
        &doc,
        "post",
        "/api/v1/inventory/release",
        s.post(&format!("{inv}/release"), &json!({"orderId": "o-4"}).to_string()),
    );
    conforms(&doc, "get", "/api/v1/inventory/reservations", s.get(&format!("{inv}/reservations?limit=5")));
    conforms(
        &doc,
        "post",
        "/api/v1/inventory/reservations/expire-due",
        s.post(&format!("{inv}/reservations/expire-due"), ""),
    );

    let adjust = json!({"delta": 3, "reason": "RESTOCK"}).to_string();
    conforms(
        &doc,
        "post",
        "/api/v1/inventory/items/{sku}/adjust",
        s.post(&format!("{inv}/items/P-1:red/adjust"), &adjust),
    );
    let transfer = json!({"from": "wh-a", "to": "wh-b", "quantity": 1, "inTransit": true}).to_string();
    conforms(
        &doc,
        "post",
        "/api/v1/inventory/items/{sku}/transfers",
        s.post(&format!("{inv}/items/P-2/transfers"), &transfer),
    );
    conforms(&doc, "post", "/api/v1/inventory/items/{sku}/block", s.post(&format!("{inv}/items/P-2/block"), ""));
    conforms(&doc, "get", "/api/v1/inventory/items/{sku}/history", s.get(&format!("{inv}/items/P-1:red/history")));
    conforms(
        &doc,
        "delete",
        "/api/v1/inventory/items/{sku}",
        s.call("DELETE", &format!("{inv}/items/P-1:red"), None, None),
    );
    conforms(&doc, "get", "/health", s.get("/health"));
    conforms(&doc, "get", "/ready", s.get("/ready"));
}
