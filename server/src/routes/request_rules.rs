//! The request schemas of the OpenAPI document state what the server checks: an
//! OpenAPI modifier that finds every schema a request body uses (directly or through
//! `$ref`s), and every path and query parameter, and gives its fields the engine's rules — identifier alphabets and
//! lengths, quantity, on-hand, delta and TTL bounds, line counts — read from
//! `stockd_engine::limits` and the identifier types, so the document cannot drift
//! from the checks. Responses are left alone (a rule there would be a promise about
//! answers, not a check of requests).
//!
//! Rules go by field name, and only onto a field of the matching JSON type; a rule a
//! schema keyword cannot say (a SKU made of `productId:variantId` is at most 128 bytes
//! too; `delta` is not zero; `expiresIn` is at most the server's `--max-ttl`) stays a
//! 400 naming the field.

use std::collections::BTreeSet;
use stockd_engine::limits::{
    MAX_ADJUST_DELTA, MAX_IDEMPOTENCY_KEY_LEN, MAX_LINES, MAX_ON_HAND, MAX_ORDER_ID_LEN, MAX_QUANTITY, MAX_REASON_LEN,
    MAX_RESERVATION_ID_LEN, MAX_SKU_LEN, MAX_TTL_CEILING_SECS, MIN_TTL_SECS,
};
use stockd_engine::location::MAX_LOCATION_LEN;
use stockd_engine::ID_PUNCTUATION;
use utoipa::openapi::schema::{ArrayItems, Schema, SchemaType, Type};
use utoipa::openapi::{OpenApi, RefOr};
use utoipa::Number;

/// What a field of a request body must be.
enum Rule {
    /// A text of `min..=max` bytes, matching `pattern` if given.
    Text { min: usize, max: usize, pattern: Option<String> },
    /// An integer in `min..=max`.
    Integer { min: i64, max: u64 },
    /// An array of `min..=max` elements.
    List { min: usize, max: usize },
}

/// `^[A-Za-z0-9<punctuation>]+$`: the alphabet of SKUs and location ids.
fn id_pattern() -> String {
    let punctuation: String =
        ID_PUNCTUATION.iter().map(|c| if *c == '-' { "\\-".into() } else { c.to_string() }).collect();
    format!("^[A-Za-z0-9{punctuation}]+$")
}

/// The rule of a request field called `name`, if it has one.
fn rule_of(name: &str) -> Option<Rule> {
    let id = |max| Rule::Text { min: 1, max, pattern: Some(id_pattern()) };
    Some(match name {
        "sku" | "productId" | "variantId" => id(MAX_SKU_LEN),
        "location" | "from" | "to" => id(MAX_LOCATION_LEN),
        // Printable ASCII without spaces.
        "orderId" => Rule::Text { min: 1, max: MAX_ORDER_ID_LEN, pattern: Some("^[!-~]+$".into()) },
        "reservationId" => Rule::Text { min: 1, max: MAX_RESERVATION_ID_LEN, pattern: None },
        "idempotencyKey" => Rule::Text { min: 1, max: MAX_IDEMPOTENCY_KEY_LEN, pattern: None },
        "reason" => Rule::Text { min: 1, max: MAX_REASON_LEN, pattern: None },
        "quantity" => Rule::Integer { min: 1, max: MAX_QUANTITY },
        "onHand" | "incoming" | "lowStockThreshold" => Rule::Integer { min: 0, max: MAX_ON_HAND },
        "maxPerOrder" => Rule::Integer { min: 0, max: MAX_QUANTITY },
        "delta" => Rule::Integer { min: -MAX_ADJUST_DELTA, max: MAX_ADJUST_DELTA.unsigned_abs() },
        "expiresIn" => Rule::Integer { min: MIN_TTL_SECS as i64, max: MAX_TTL_CEILING_SECS },
        "items" => Rule::List { min: 1, max: MAX_LINES },
        _ => return None,
    })
}

/// Whether a schema's type includes `t` (a field that may be null lists two types).
fn has_type(schema_type: &SchemaType, t: Type) -> bool {
    match schema_type {
        SchemaType::Type(one) => *one == t,
        SchemaType::Array(many) => many.contains(&t),
        SchemaType::AnyValue => false,
    }
}

fn apply(rule: &Rule, field: &mut Schema) {
    match (rule, field) {
        (Rule::Text { min, max, pattern }, Schema::Object(o)) if has_type(&o.schema_type, Type::String) => {
            o.min_length = Some(*min);
            o.max_length = Some(*max);
            if pattern.is_some() {
                o.pattern = pattern.clone();
            }
        }
        (Rule::Integer { min, max }, Schema::Object(o)) if has_type(&o.schema_type, Type::Integer) => {
            o.minimum = Some(Number::Int(*min as isize));
            o.maximum = Some(Number::UInt(*max as usize));
        }
        (Rule::List { min, max }, Schema::Array(a)) => {
            a.min_items = Some(*min);
            a.max_items = Some(*max);
        }
        _ => {}
    }
}

/// The component names `schema` refers to.
fn refs_in(schema: &RefOr<Schema>, out: &mut Vec<String>) {
    match schema {
        RefOr::Ref(r) => out.extend(r.ref_location.strip_prefix("#/components/schemas/").map(str::to_owned)),
        RefOr::T(Schema::Object(o)) => o.properties.values().for_each(|p| refs_in(p, out)),
        RefOr::T(Schema::Array(a)) => {
            if let ArrayItems::RefOrSchema(items) = &a.items {
                refs_in(items, out)
            }
        }
        RefOr::T(Schema::OneOf(x)) => x.items.iter().for_each(|p| refs_in(p, out)),
        RefOr::T(Schema::AllOf(x)) => x.items.iter().for_each(|p| refs_in(p, out)),
        RefOr::T(Schema::AnyOf(x)) => x.items.iter().for_each(|p| refs_in(p, out)),
        RefOr::T(_) => {}
    }
}

/// The modifier (`modifiers(&RequestRules)` on the document).
pub struct RequestRules;

impl utoipa::Modify for RequestRules {
    fn modify(&self, doc: &mut OpenApi) {
        let mut todo = Vec::new();
        for item in doc.paths.paths.values() {
            let ops = [&item.get, &item.put, &item.post, &item.delete, &item.patch];
            for body in ops.into_iter().flatten().filter_map(|op| op.request_body.as_ref()) {
                body.content.values().filter_map(|c| c.schema.as_ref()).for_each(|s| refs_in(s, &mut todo));
            }
        }
        // Path and query parameters: `{sku}`, and `{id}` (an orderId or a
        // reservationId: printable ASCII either way).
        for item in doc.paths.paths.values_mut() {
            let ops = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for params in ops.into_iter().flatten().filter_map(|op| op.parameters.as_mut()) {
                for p in params {
                    let rule = rule_of(if p.name == "id" { "orderId" } else { p.name.as_str() });
                    if let (Some(rule), Some(RefOr::T(s))) = (rule, p.schema.as_mut()) {
                        apply(&rule, s);
                    }
                }
            }
        }
        let Some(components) = doc.components.as_mut() else { return };
        let mut seen = BTreeSet::new();
        while let Some(name) = todo.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            let Some(RefOr::T(Schema::Object(o))) = components.schemas.get_mut(&name) else { continue };
            for (field, schema) in o.properties.iter_mut() {
                refs_in(schema, &mut todo);
                if let (Some(rule), RefOr::T(s)) = (rule_of(field), schema) {
                    apply(&rule, s);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use utoipa::OpenApi as _;

    fn doc() -> Value {
        serde_json::to_value(crate::routes::ops::ApiDoc::openapi()).unwrap()
    }

    #[test]
    fn request_fields_carry_the_engine_rules_and_responses_do_not() {
        let d = doc();
        let schema = |name: &str, field: &str| d["components"]["schemas"][name]["properties"][field].clone();
        let line_sku = schema("LineIn", "sku");
        assert_eq!((&line_sku["minLength"], &line_sku["maxLength"]), (&Value::from(1), &Value::from(MAX_SKU_LEN)));
        assert_eq!(line_sku["pattern"], "^[A-Za-z0-9._:/\\-]+$");
        let q = schema("LineIn", "quantity");
        assert_eq!((&q["minimum"], &q["maximum"]), (&Value::from(1), &Value::from(MAX_QUANTITY)));
        let items = schema("ReserveBody", "items");
        assert_eq!((&items["minItems"], &items["maxItems"]), (&Value::from(1), &Value::from(MAX_LINES)));
        // A nullable array (commit's items) and a nullable text (commit's orderId).
        assert_eq!(schema("CommitBody", "items")["maxItems"], MAX_LINES);
        assert_eq!(schema("CommitBody", "orderId")["maxLength"], MAX_ORDER_ID_LEN);
        assert_eq!(schema("CommitBody", "reservationId")["maxLength"], MAX_RESERVATION_ID_LEN);
        assert_eq!(schema("AdjustBody", "delta")["minimum"], -MAX_ADJUST_DELTA);
        assert_eq!(schema("TransferBody", "to")["maxLength"], MAX_LOCATION_LEN);
        assert_eq!(schema("PutItemBody", "onHand")["maximum"], MAX_ON_HAND);
        assert_eq!(schema("ReserveBody", "expiresIn")["minimum"], MIN_TTL_SECS);
        // Path parameters.
        let param = |path: &str, name: &str| {
            let ps = d["paths"][path]["get"]["parameters"].as_array().unwrap().clone();
            ps.into_iter().find(|p| p["name"] == name).unwrap()["schema"].clone()
        };
        assert_eq!(param("/api/v1/inventory/items/{sku}", "sku")["maxLength"], MAX_SKU_LEN);
        assert_eq!(param("/api/v1/inventory/reservations/{id}", "id")["pattern"], "^[!-~]+$");
        // Responses keep their schemas as derived.
        assert!(schema("ReservationLineView", "sku").get("pattern").is_none());
        assert!(schema("ItemView", "onHand").get("maximum").is_none());
    }

    #[test]
    fn the_id_pattern_accepts_what_the_engine_accepts() {
        // The pattern's class, read back as a set of characters, against Sku::parse.
        let pattern = id_pattern();
        let class =
            pattern.trim_start_matches("^[").trim_end_matches("]+$").replace("A-Za-z0-9", "").replace("\\-", "-");
        for c in (0u8..128).map(char::from) {
            let in_pattern = c.is_ascii_alphanumeric() || class.contains(c);
            let parsed = stockd_engine::Sku::parse(&c.to_string(), "sku").is_ok();
            assert_eq!(in_pattern, parsed, "{c:?}");
        }
    }
}
