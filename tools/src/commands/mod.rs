//! One module per subcommand.

pub mod history;
pub mod inspect;
pub mod replay;
pub mod stats;
pub mod verify;

use stockd_engine::location::{Allocation, AllocationStrategy, Placement, Warehouse};
use stockd_engine::{Adjust, ReserveLocal, ReturnSold, SetItem, Transfer};
use stockd_engine::{Command, ReservationKey, Sku};

/// The fields of a command this build does not know by name (a newer engine's
/// variant), read through its serde form: `{"Variant": {"sku": .., "lines": [[sku, q]],
/// "order_id": ..}}`.
fn generic(command: &Command) -> (Vec<Sku>, Option<String>) {
    let v = serde_json::to_value(command).unwrap_or_default();
    let Some(fields) = v.as_object().and_then(|o| o.values().next()).and_then(|f| f.as_object()) else {
        return (Vec::new(), None);
    };
    let mut skus: Vec<Sku> = Vec::new();
    if let Some(s) = fields.get("sku").and_then(|s| s.as_str()) {
        skus.extend(Sku::parse(s, "sku").ok());
    }
    for l in fields.get("lines").and_then(|l| l.as_array()).into_iter().flatten() {
        skus.extend(l.get(0).and_then(|s| s.as_str()).and_then(|s| Sku::parse(s, "sku").ok()));
    }
    (skus, fields.get("order_id").and_then(|o| o.as_str()).map(str::to_string))
}

/// The SKUs a command names directly.
pub fn skus_of(command: &Command) -> Vec<Sku> {
    skus_ref(command).map_or_else(|| generic(command).0, |v| v.into_iter().cloned().collect())
}

fn skus_ref(command: &Command) -> Option<Vec<&Sku>> {
    Some(match command {
        Command::SetItem(SetItem { sku, .. })
        | Command::AdjustItem(Adjust { sku, .. })
        | Command::DeleteItem { sku, .. }
        | Command::SetSalesBlocked { sku, .. }
        | Command::Transfer(Transfer { sku, .. })
        | Command::ReceiveIncoming { sku, .. }
        | Command::ReturnSold(ReturnSold { sku, .. }) => vec![sku],
        Command::OpenReservation { lines, .. } | Command::PlaceHold { lines, .. } => {
            lines.iter().map(|(s, _)| s).collect()
        }
        Command::CommitHold { committed, .. } => committed.iter().map(|(s, _)| s).collect(),
        Command::CommitReservation { quantities: Some(q), .. } => q.iter().map(|(s, _)| s).collect(),
        Command::ActivateReservation { .. }
        | Command::AbortReservation { .. }
        | Command::ReleaseHold { .. }
        | Command::CommitReservation { .. }
        | Command::ReleaseReservation { .. }
        | Command::ExtendReservation { .. }
        | Command::ExtendReservationWithin { .. }
        | Command::ExpireReservation { .. }
        | Command::ExpireDue { .. }
        | Command::HoldsSettled { .. } => Vec::new(),
        #[allow(unreachable_patterns)]
        _ => return None,
    })
}

/// The reservation id a command names directly (as text: a `ReservationKey::Id` is the
/// client's text, which need not be a valid id).
pub fn reservation_id_of(command: &Command) -> Option<String> {
    match command {
        Command::PlaceHold { reservation_id, .. }
        | Command::ActivateReservation { reservation_id, .. }
        | Command::AbortReservation { reservation_id }
        | Command::ReleaseHold { reservation_id }
        | Command::CommitHold { reservation_id, .. }
        | Command::HoldsSettled { reservation_id } => Some(reservation_id.to_string()),
        Command::CommitReservation { key, .. }
        | Command::ReleaseReservation { key, .. }
        | Command::ExtendReservation { key, .. }
        | Command::ExtendReservationWithin { key, .. }
        | Command::ExpireReservation { key } => match key {
            ReservationKey::Id(id) => Some(id.clone()),
            ReservationKey::Order(_) => None,
        },
        _ => None,
    }
}

/// The orderId a command names directly.
pub fn order_of(command: &Command) -> Option<String> {
    match command {
        Command::OpenReservation { order_id, .. }
        | Command::PlaceHold { order_id, .. }
        | Command::ReturnSold(ReturnSold { order_id, .. }) => Some(order_id.to_string()),
        Command::CommitReservation { key, .. }
        | Command::ReleaseReservation { key, .. }
        | Command::ExtendReservation { key, .. }
        | Command::ExtendReservationWithin { key, .. }
        | Command::ExpireReservation { key } => match key {
            ReservationKey::Order(o) => Some(o.to_string()),
            ReservationKey::Id(_) => None,
        },
        Command::SetItem(_)
        | Command::AdjustItem(_)
        | Command::DeleteItem { .. }
        | Command::ActivateReservation { .. }
        | Command::AbortReservation { .. }
        | Command::ReleaseHold { .. }
        | Command::CommitHold { .. }
        | Command::ExpireDue { .. }
        | Command::HoldsSettled { .. } => None,
        #[allow(unreachable_patterns)]
        _ => generic(command).1,
    }
}

fn lines_str(lines: &[(Sku, u64)]) -> String {
    lines.iter().map(|(s, q)| format!("{s}:{q}")).collect::<Vec<_>>().join(" ")
}

/// Lines with the location a line must come from: `SKU:3@wh-1 SKU-2:1`.
fn placed_lines(lines: &[(Sku, u64)], placement: &Placement) -> String {
    let one = |(sku, q): &(Sku, u64)| match placement.location_of(sku) {
        Some(l) => format!("{sku}:{q}@{l}"),
        None => format!("{sku}:{q}"),
    };
    lines.iter().map(one).collect::<Vec<_>>().join(" ")
}

/// The rest of a placement: the delivery region, and a strategy other than the
/// default (priority).
fn placement_rest(placement: &Placement) -> String {
    let mut s = String::new();
    if let Some(r) = &placement.region {
        s.push_str(&format!(" region={r}"));
    }
    if placement.strategy != AllocationStrategy::default() {
        s.push_str(&format!(" strategy={}", placement.strategy.as_str()));
    }
    s
}

/// Where a reservation's units are held: `SKU:2@wh-1 SKU:1@default`.
pub fn allocations_str(allocations: &[Allocation]) -> String {
    allocations.iter().map(|a| format!("{}:{}@{}", a.sku, a.quantity, a.location)).collect::<Vec<_>>().join(" ")
}

fn warehouses_str(warehouses: &[Warehouse]) -> String {
    if warehouses.is_empty() {
        return "warehouses=none".to_string();
    }
    let one = |w: &Warehouse| format!("{}[{},{}]", w.id, w.region.as_deref().unwrap_or("-"), w.priority);
    warehouses.iter().map(one).collect::<Vec<_>>().join(" ")
}

/// The quantities and other figures of a command, as text: locations, placements
/// (`SKU:q@location`, region, strategy) and allocations included.
pub fn quantities_of(command: &Command) -> String {
    match command {
        Command::SetItem(SetItem { on_hand, low_stock_threshold, max_per_order, location, incoming, .. }) => {
            let mut s = format!("onHand={on_hand}");
            if let Some(i) = incoming {
                s.push_str(&format!(" incoming={i}"));
            }
            if let Some(t) = low_stock_threshold {
                s.push_str(&format!(" lowStock={t}"));
            }
            if let Some(m) = max_per_order {
                s.push_str(&format!(" maxPerOrder={m}"));
            }
            if let Some(l) = location {
                s.push_str(&format!(" location={l}"));
            }
            s
        }
        Command::AdjustItem(Adjust { delta, reason, note, location, idempotency_key, .. }) => {
            let mut s = format!("delta={delta:+} reason={}", reason.as_str());
            if let Some(n) = note {
                s.push_str(&format!(" note={n:?}"));
            }
            if let Some(l) = location {
                s.push_str(&format!(" location={l}"));
            }
            s + &key_str(idempotency_key)
        }
        Command::Transfer(Transfer { quantity, from, to, in_transit, note, idempotency_key, .. }) => {
            let mut s = format!("quantity={quantity} from={from} to={to}");
            if *in_transit {
                s.push_str(" in_transit");
            }
            if let Some(n) = note {
                s.push_str(&format!(" note={n:?}"));
            }
            s + &key_str(idempotency_key)
        }
        Command::ReceiveIncoming { quantity, location, idempotency_key, .. } => {
            format!("quantity={quantity} location={location}{}", key_str(idempotency_key))
        }
        Command::SetWarehouses { warehouses } => warehouses_str(warehouses),
        Command::OpenReservation { lines, ttl_secs, .. } => format!("{} ttl={ttl_secs}s", lines_str(lines)),
        Command::ReserveLocal(ReserveLocal { lines, ttl_secs, placement, .. }) => {
            format!("{} ttl={ttl_secs}s{}", placed_lines(lines, placement), placement_rest(placement))
        }
        Command::PlaceHold { lines, placement, .. } => {
            format!("{}{}", placed_lines(lines, placement), placement_rest(placement))
        }
        Command::ActivateReservation { allocations, .. } => allocations_str(allocations),
        Command::CommitHold { committed, .. } => lines_str(committed),
        Command::CommitReservation { quantities: Some(q), .. } => lines_str(q),
        Command::ReleaseReservation { reason, .. } => format!("reason={reason:?}"),
        Command::ExtendReservation { ttl_secs, .. } => format!("ttl={ttl_secs}s"),
        Command::ExtendReservationWithin { ttl_secs, max_ttl_secs, .. } => {
            format!("ttl={ttl_secs}s max_ttl={max_ttl_secs}s")
        }
        Command::ExpireDue { retention_ms } => format!("retention={retention_ms}ms"),
        Command::ReturnSold(ReturnSold { location, sold, quantity, return_id, .. }) => {
            format!("location={location} quantity={quantity} sold={sold} return={return_id:?}")
        }
        Command::DeleteItem { .. }
        | Command::AbortReservation { .. }
        | Command::ReleaseHold { .. }
        | Command::CommitReservation { .. }
        | Command::ExpireReservation { .. }
        | Command::HoldsSettled { .. } => String::new(),
        // A newer command: its serde form.
        #[allow(unreachable_patterns)]
        other => serde_json::to_value(other).map(|v| v.to_string()).unwrap_or_default(),
    }
}

/// ` key=...` for a command's idempotency key, or nothing.
fn key_str(key: &Option<String>) -> String {
    key.as_ref().map_or(String::new(), |k| format!(" key={k:?}"))
}
