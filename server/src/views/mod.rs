//! The typed bodies of every answer, one file per resource: [`item`], [`location`],
//! [`reservation`], [`availability`], [`history`], [`ops`], and [`error`] (the
//! `details` of an error answer). Each is a `Serialize + ToSchema` struct built from
//! engine values (`From<&Item>`, `From<&Reservation>`, ...), so the HTTP routes, the
//! OpenAPI document (`responses(... body = Envelope<View>)`) and the Kafka events
//! (`kafka/event_views.rs`: [`item::ItemFigures`], [`item::SkuLine`],
//! [`location::LocationView`], [`location::AllocationView`]) share one rendering.
//!
//! Fields are declared in the alphabetical order of their JSON names: the bytes on
//! the wire are those the earlier `serde_json::Value` rendering (a sorted map)
//! produced, and `tests::views_serialize_in_sorted_key_order` holds every view to it.
//! A field that may be absent says so with `skip_serializing_if`; an `Option` without
//! it is always present, as null when empty.

pub mod availability;
pub mod error;
pub mod history;
pub mod item;
pub mod location;
pub mod ops;
pub mod reservation;

pub use availability::{AvailabilityLineView, AvailabilityView, LocationAvailableView};
pub use history::{HistoryEntryView, HistoryView, LocationChangeView, PrunedView};
pub use item::{DeletedView, ItemFigures, ItemPage, ItemView, SkuLine};
pub use location::{AllocationView, LocationView, LocationsView, WarehouseView, WarehousesView};
pub use ops::{FlowsView, HealthView, OutboxView, ReadyView};
pub use reservation::{
    Echo, ExpiredCountView, ReservationLineView, ReservationPage, ReservationView, ReserveLineView, ReserveView,
    ShortfallView,
};

#[cfg(test)]
mod tests {
    use super::error::Details;
    use super::*;
    use serde::Serialize;
    use serde_json::{json, Value};
    use stockd_engine::{Adjust, AdjustReason, Engine, EngineConfig, EngineError, SetItem, Shortfall, Sku};

    /// The bytes of `view` and of its `serde_json::Value` (a sorted map: what the
    /// answers were built as before the views) are the same.
    fn same_bytes(view: &impl Serialize) -> Value {
        let direct = serde_json::to_string(view).unwrap();
        let value = serde_json::to_value(view).unwrap();
        assert_eq!(direct, value.to_string(), "keys out of alphabetical order");
        value
    }

    /// A durable engine (the history is read from its WAL) with one item at two
    /// locations.
    fn engine_item() -> (Engine, stockd_engine::Item, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let (engine, _) = Engine::open(dir.path(), EngineConfig::default(), Default::default()).unwrap();
        let sku = Sku::parse("P-1:red", "sku").unwrap();
        let set = SetItem {
            sku: sku.clone(),
            on_hand: 7,
            low_stock_threshold: Some(3),
            max_per_order: Some(5),
            expected_version: None,
            location: Some(stockd_engine::LocationId::parse("wh-a", "location").unwrap()),
            incoming: Some(2),
        };
        stockd_engine::block_on(engine.set_item(set)).unwrap();
        let adjust = Adjust {
            sku: sku.clone(),
            delta: 4,
            reason: AdjustReason::Restock,
            note: None,
            idempotency_key: None,
            expected_version: None,
            location: Some(stockd_engine::LocationId::parse("wh-b", "location").unwrap()),
        };
        let item = stockd_engine::block_on(engine.adjust(adjust)).unwrap().item;
        (engine, item, dir)
    }

    #[test]
    fn views_serialize_in_sorted_key_order() {
        let (engine, item, _dir) = engine_item();
        let view = same_bytes(&ItemView::from(&item));
        assert_eq!(
            (&view["available"], &view["maxPerOrder"], &view["sku"]),
            (&json!(11), &json!(5), &json!("P-1:red"))
        );
        same_bytes(&ItemPage { items: vec![ItemView::from(&item)], next_cursor: None });
        same_bytes(&DeletedView { deleted: true, sku: "x".into() });
        same_bytes(&LocationsView {
            locations: item.locations().iter().map(LocationView::from).collect(),
            sku: "x".into(),
            version: 1,
        });
        same_bytes(&WarehousesView {
            allocation: "priority".into(),
            warehouses: vec![WarehouseView { id: "wh-a".into(), name: "A".into(), priority: 1, region: None }],
        });

        let order = stockd_engine::OrderId::parse("o-1", "orderId").unwrap();
        let req = stockd_engine::ReserveRequest {
            order_id: order,
            lines: vec![(item.sku.clone(), 5)],
            ttl_secs: Some(60),
            metadata: Some(r#"{"b":1,"a":[2]}"#.into()),
            placement: Default::default(),
        };
        let r = stockd_engine::block_on(engine.reserve(req)).unwrap().reservation;
        let view = same_bytes(&ReservationView::from(&r));
        let line = &view["items"][0];
        assert_eq!(
            (&line["productId"], &line["variantId"], &line["committedQuantity"]),
            (&json!("P-1"), &json!("red"), &json!(0))
        );
        assert_eq!((&view["finishedAt"], &view["metadata"]["a"]), (&Value::Null, &json!([2])));
        same_bytes(&ReservationPage { next_cursor: Some("c".into()), reservations: vec![ReservationView::from(&r)] });
        let echo = Echo { product_id: Some("P-1"), variant_id: Some("red"), sku: None, location: Some("wh-a") };
        let allocations = AllocationView::of_reservation(&r, &item.sku);
        same_bytes(&ReserveView {
            expires_at: "t".into(),
            items: vec![ReserveLineView::new(echo, 5, true, Some(allocations))],
            order_id: "o-1".into(),
            reservation_id: r.reservation_id,
            status: "ACTIVE",
        });
        let mut line = AvailabilityLineView::named(echo);
        line.locations = Some(vec![LocationAvailableView { available: 1, location: "wh-a".into() }]);
        line.max_per_order = Some(5);
        same_bytes(&AvailabilityView { available: false, items: vec![line] });
        same_bytes(&ExpiredCountView { expired: 2 });
        same_bytes(&ReadyView { ready: true });
        same_bytes(&HealthView {
            durability: "fsync",
            durable_lsn: vec![1, 2],
            flows: FlowsView { reconciled_aborted: 0, reconciled_settled: 0, steps_deferred: 0, sweep_failures: 0 },
            kafka: Some(json!({})),
            outbox: Some(OutboxView {
                acked_lsn: vec![0],
                events_dropped: vec![0],
                held_bytes: vec![0],
                max_bytes: None,
                policy: "refuse",
                refusing: vec![false],
            }),
            replication: None,
            shards: 2,
            status: "ok",
            version: "0",
            wal: "ok",
            wal_reason: None,
        });
        let page = stockd_engine::block_on(engine.item_history(item.sku.clone(), Default::default())).unwrap();
        let view = same_bytes(&HistoryView::from(&page));
        assert_eq!(view["entries"][0]["type"], "SET");
        assert!(view.get("prunedLsns").is_none());
        let entries = view["entries"].as_array().unwrap();
        assert!(entries.iter().any(|e| e["locations"].as_array().is_some_and(|l| !l.is_empty())));
    }

    /// The Kafka item events' figures are the item view's: same names, same values.
    #[test]
    fn item_figures_are_the_item_view_s() {
        let (_engine, item, _dir) = engine_item();
        let view = serde_json::to_value(ItemView::from(&item)).unwrap();
        let figures = same_bytes(&ItemFigures::from(&item));
        let figures = figures.as_object().unwrap();
        assert_eq!(figures.len(), 7);
        for (k, v) in figures {
            assert_eq!(&view[k], v, "{k}");
        }
        let line = same_bytes(&SkuLine::new("P-1:red", 2));
        assert_eq!(line, json!({"productId": "P-1", "quantity": 2, "sku": "P-1:red", "variantId": "red"}));
        assert_eq!(serde_json::to_value(SkuLine::new("P-1", 0)).unwrap().get("variantId"), None);
    }

    /// Each engine error's details, exactly as the answers have always shown them.
    #[test]
    fn engine_error_details() {
        let s = |e: EngineError| serde_json::to_string(&Details::Engine(e)).unwrap();
        let text = |v: &str| v.to_owned();
        assert_eq!(s(EngineError::validation("items[0].sku", "bad")), r#"{"field":"items[0].sku","reason":"bad"}"#);
        assert_eq!(s(EngineError::ItemNotFound { sku: text("A") }), r#"{"sku":"A"}"#);
        assert_eq!(s(EngineError::ItemExists { sku: text("A") }), r#"{"sku":"A"}"#);
        assert_eq!(s(EngineError::SalesBlocked { sku: text("A") }), r#"{"sku":"A"}"#);
        assert_eq!(s(EngineError::ReservationNotFound { key: text("k") }), r#"{"key":"k"}"#);
        assert_eq!(s(EngineError::IdempotencyKeyReused { key: text("k") }), r#"{"key":"k"}"#);
        let short = Shortfall { sku: text("A"), requested: 3, available: 1 };
        assert_eq!(
            s(EngineError::InsufficientInventory { items: vec![short] }),
            r#"{"items":[{"availableQuantity":1,"requestedQuantity":3,"sku":"A"}]}"#
        );
        for e in [
            EngineError::ReservationExpired { reservation_id: text("r") },
            EngineError::ReservationReleased { reservation_id: text("r") },
            EngineError::ReservationCommitted { reservation_id: text("r") },
            EngineError::ReservationPending { reservation_id: text("r") },
        ] {
            assert_eq!(s(e), r#"{"reservationId":"r"}"#);
        }
        assert_eq!(
            s(EngineError::VersionConflict { sku: text("A"), expected: 1, actual: 2 }),
            r#"{"actualVersion":2,"expectedVersion":1,"sku":"A"}"#
        );
        assert_eq!(s(EngineError::ItemHasReservations { sku: text("A"), reserved: 2 }), r#"{"reserved":2,"sku":"A"}"#);
        assert_eq!(
            s(EngineError::NegativeInventory { sku: text("A"), delta: -5, available: 1 }),
            r#"{"available":1,"delta":-5,"sku":"A"}"#
        );
        assert_eq!(
            s(EngineError::MaxPerOrderExceeded { sku: text("A"), requested: 9, max_per_order: 2 }),
            r#"{"maxPerOrder":2,"requestedQuantity":9,"sku":"A"}"#
        );
        assert_eq!(s(EngineError::LimitExceeded { what: text("items"), limit: 9 }), r#"{"limit":9,"what":"items"}"#);
        assert_eq!(s(EngineError::Overloaded { shard: 1 }), r#"{"shard":1}"#);
        assert_eq!(s(EngineError::Unavailable { reason: text("x") }), r#"{"reason":"x"}"#);
        assert_eq!(s(EngineError::NotLeader), "{}");
        assert_eq!(s(EngineError::Misrouted), "{}");
        assert_eq!(serde_json::to_string(&Details::none()).unwrap(), "{}");
    }
}
