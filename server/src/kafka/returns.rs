//! Units an order already committed, put back on hand: a cancellation after commit
//! (under `--cancel-after-commit restock`, the default) and a return (`order.returned`,
//! seed 004's "return stock"). Each is one `ReturnSold` per order, line and location,
//! to the location the units were committed from, bounded by what the order committed
//! there: the engine's return ledger adds partial returns up, never brings back more
//! than was sold, and applies one return (`return_id`: the event's id, else the
//! message's position; `cancel` for a cancellation) once, while stockd still knows the
//! order (`retention_secs`).

use super::incoming::Line;
use stockd_engine::location::LocationId;
use stockd_engine::{Engine, EngineError, Reservation, ReservationStatus, ReturnSold, Sku};

/// The return id of a cancellation after commit: one per order (a repeat of it, or
/// another cancellation, changes nothing; it brings back whatever is left).
pub const CANCEL_RETURN_ID: &str = "cancel";

/// What to put back of committed reservation `r`: every line, or only the lines `only`
/// lists (each at most the quantity it lists), spread over the line's allocations
/// first-allocated first. `(sku, location, units, committed there)`: the engine
/// brings back at most what is left of the last.
pub fn units_to_return(r: &Reservation, only: Option<&[Line]>) -> Vec<(Sku, LocationId, u64, u64)> {
    debug_assert_eq!(r.status, ReservationStatus::Committed);
    let allocations = r.allocations();
    let mut out = Vec::new();
    for line in r.lines.iter().filter(|l| l.committed > 0) {
        let mut left = match only {
            None => line.committed,
            Some(listed) => match listed.iter().find(|l| l.sku == line.sku.as_str()) {
                Some(l) => l.quantity.min(line.committed),
                None => continue,
            },
        };
        for a in allocations.iter().filter(|a| a.sku == line.sku) {
            let n = left.min(a.committed);
            if n > 0 {
                out.push((line.sku.clone(), a.location.clone(), n, a.committed));
                left -= n;
            }
        }
        debug_assert_eq!(left, 0, "the allocations of a line hold its committed units");
    }
    out
}

/// Applies [`units_to_return`] for committed reservation `r` as the return
/// `return_id`. `note` says why.
pub async fn restock_committed(
    engine: &Engine,
    r: &Reservation,
    only: Option<&[Line]>,
    return_id: &str,
    note: &str,
) -> Result<(), EngineError> {
    for (sku, location, quantity, sold) in units_to_return(r, only) {
        engine
            .return_sold(ReturnSold {
                sku,
                location,
                order_id: r.order_id.clone(),
                sold,
                quantity,
                return_id: return_id.to_owned(),
                note: Some(note.to_owned()),
            })
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use stockd_engine::location::Placement;
    use stockd_engine::{Command, OrderId, Outcome, ReservationKey, ReserveLocal, SetItem, ShardState};

    fn loc(s: &str) -> LocationId {
        LocationId::parse(s, "location").unwrap()
    }

    #[test]
    fn returns_follow_the_committed_allocations() {
        let mut st = ShardState::new(0);
        let a = Sku::parse("A", "sku").unwrap();
        let b = Sku::parse("B", "sku").unwrap();
        let set = |sku: &Sku, location: Option<&str>, on_hand| {
            Command::SetItem(SetItem { location: location.map(loc), ..SetItem::on_hand(sku.clone(), on_hand) })
        };
        st.apply(&set(&a, Some("wh-1"), 2), 1).unwrap();
        st.apply(&set(&a, Some("wh-2"), 3), 2).unwrap();
        st.apply(&set(&b, None, 9), 3).unwrap();
        let order = OrderId::parse("o-1", "orderId").unwrap();
        let reserve = Command::ReserveLocal(ReserveLocal {
            order_id: order.clone(),
            lines: vec![(a.clone(), 4), (b.clone(), 3)],
            ttl_secs: 60,
            metadata: None,
            placement: Placement::default(),
        });
        st.apply(&reserve, 4).unwrap();
        let commit = Command::CommitReservation {
            key: ReservationKey::Order(order),
            quantities: Some(vec![(a.clone(), 3), (b.clone(), 3)]),
        };
        let Outcome::Reservation { reservation: r, .. } = st.apply(&commit, 5).unwrap().outcome else { panic!() };
        // No location fills A's 4: held 2 at wh-1, 2 at wh-2; 3 committed: 2 from wh-1, then
        // 1 from wh-2. B: 3 at the default location.
        assert_eq!(
            units_to_return(&r, None),
            vec![
                (a.clone(), loc("wh-1"), 2, 2),
                (a.clone(), loc("wh-2"), 1, 1),
                (b.clone(), LocationId::DEFAULT, 3, 3)
            ]
        );
        let only = [Line { sku: "A".into(), quantity: 9, location: None }];
        assert_eq!(units_to_return(&r, Some(&only)), vec![(a.clone(), loc("wh-1"), 2, 2), (a, loc("wh-2"), 1, 1)]);
        let only = [Line { sku: "B".into(), quantity: 1, location: None }];
        assert_eq!(units_to_return(&r, Some(&only)), vec![(b, LocationId::DEFAULT, 1, 3)]);
    }
}
