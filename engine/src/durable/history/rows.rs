//! Row derivation for item history: whether one replayed WAL record is a row of a
//! SKU's history, and its type, quantity, reason and ids.
//!
//! Quantities come from the change in the item's figures (onHand, reserved, sold)
//! before and after the record, never from a command's or a hold's lines. The type
//! comes from the command for item commands and item-side hold steps, and from the
//! status the reservation reached for steps of a reservation whose header shares
//! the shard (one-step reserve, commit, release, expire, expiry sweep, a commit that
//! found the deadline passed).

use super::{Figures, HistoryEntry, LocationChange};
use crate::command::{Adjust, ReturnSold, SetItem, Transfer};
use crate::command::{AdjustReason, Command, Outcome};
use crate::durable::follower::FollowedRecord;
use crate::location::LocationStock;
use crate::reservation::{Reservation, ReservationStatus};
use crate::reservation_id::ReservationId;
use crate::shard_state::ShardState;
use crate::sku::Sku;
use crate::Millis;

/// What is taken from the shard state just before a record is applied.
pub(super) struct Before {
    item: Option<Figures>,
    locations: Vec<LocationStock>,
    /// The orderId of the hold a CommitHold / ReleaseHold settles.
    hold_order: Option<String>,
    /// ExpireDue: the one due reservation holding stock on this shard, if exactly one.
    due_hold: Option<ReservationId>,
}

impl Before {
    pub(super) fn take(sku: &Sku, now: Millis, command: &Command, state: &ShardState) -> Before {
        let hold_order = match command {
            Command::CommitHold { reservation_id, .. } | Command::ReleaseHold { reservation_id } => {
                state.hold(*reservation_id).map(|h| h.order_id.to_string())
            }
            _ => None,
        };
        let due_hold = match command {
            Command::ExpireDue { .. } => {
                let due = state.deadlines.due(now);
                let mut due = due.iter().filter(|(_, id)| state.holds.contains_key(id));
                match (due.next(), due.next()) {
                    (Some((_, id)), None) => Some(*id),
                    _ => None,
                }
            }
            _ => None,
        };
        let item = state.item(sku);
        Before {
            item: item.map(Figures::of),
            locations: item.map(|i| i.locations().into_owned()).unwrap_or_default(),
            hold_order,
            due_hold,
        }
    }
}

/// A row, and whether its RELEASE vs EXPIRE still depends on a header found elsewhere.
pub(super) struct Row {
    pub(super) entry: HistoryEntry,
    pub(super) resolve: bool,
}

/// The locations whose figures differ between `before` and `after` (both sorted by id).
fn location_changes(before: &[LocationStock], after: &[LocationStock]) -> Vec<LocationChange> {
    let mut ids: Vec<&crate::location::LocationId> = before.iter().chain(after).map(|l| &l.location).collect();
    ids.sort();
    ids.dedup();
    let zero = |id: &crate::location::LocationId| LocationStock::new(id.clone());
    ids.into_iter()
        .filter_map(|id| {
            let b = before.iter().find(|l| &l.location == id).cloned().unwrap_or_else(|| zero(id));
            let a = after.iter().find(|l| &l.location == id).cloned().unwrap_or_else(|| zero(id));
            (b != a).then(|| LocationChange {
                location: id.clone(),
                on_hand: (b.on_hand, a.on_hand),
                reserved: (b.reserved, a.reserved),
                sold: (b.sold, a.sold),
                incoming: (b.incoming, a.incoming),
            })
        })
        .collect()
}

fn change(before: u64, after: u64) -> i64 {
    after as i64 - before as i64
}

fn adjust_reason(reason: AdjustReason, note: &Option<String>) -> String {
    match note {
        Some(n) => format!("{} ({n})", reason.as_str()),
        None => reason.as_str().to_owned(),
    }
}

/// Types a row settled by a reservation whose header reached `status`: true when
/// the status decides it.
pub(super) fn label(e: &mut HistoryEntry, status: ReservationStatus, reason: Option<&str>) -> bool {
    match status {
        ReservationStatus::Expired => {
            e.kind = "EXPIRE";
            e.reason = Some("EXPIRED".into());
        }
        ReservationStatus::Released => {
            e.kind = "RELEASE";
            e.reason = reason.map(str::to_owned);
        }
        // The header never became ACTIVE: a reserve failed on another shard and its
        // holds were rolled back.
        ReservationStatus::Pending => {
            e.kind = "RELEASE";
            e.reason = Some("ABORTED".into());
        }
        ReservationStatus::Active | ReservationStatus::Committed => return false,
    }
    true
}

/// A commit: `quantity` units sold; when fewer than were held, the rest went back.
fn confirm(e: &mut HistoryEntry, b: Figures, a: Figures) {
    let sold = change(b.sold, a.sold);
    let released = change(a.reserved, b.reserved);
    e.kind = "CONFIRM";
    e.quantity = sold;
    if released > sold {
        e.reason = Some(format!("{sold} of {released} committed, {} released", released - sold));
    }
}

fn ids_of(e: &mut HistoryEntry, r: &Reservation) {
    e.order_id = Some(r.order_id.to_string());
    e.reservation_id = Some(r.reservation_id.to_string());
}

/// The row `record` makes in `sku`'s history, if any. `state` is the shard state just
/// after the record.
pub(super) fn derive(
    sku: &Sku,
    shard: usize,
    before: Before,
    record: &FollowedRecord,
    state: &ShardState,
) -> Option<Row> {
    let after = state.item(sku).map(Figures::of);
    let names_sku = match &record.command {
        Command::SetItem(SetItem { sku: s, .. })
        | Command::AdjustItem(Adjust { sku: s, .. })
        | Command::DeleteItem { sku: s, .. }
        | Command::SetSalesBlocked { sku: s, .. }
        | Command::Transfer(Transfer { sku: s, .. })
        | Command::ReceiveIncoming { sku: s, .. }
        | Command::ReturnSold(ReturnSold { sku: s, .. }) => s == sku,
        _ => false,
    };
    if before.item == after && !(names_sku && record.applied.changed) {
        return None;
    }
    let (b, a) = (before.item.unwrap_or_default(), after.unwrap_or_default());
    let on_hand = change(b.on_hand, a.on_hand);
    let reserved = change(b.reserved, a.reserved);
    let mut e = HistoryEntry {
        lsn: record.lsn,
        shard,
        at: record.now,
        kind: record.command.kind(),
        // Any other change: onHand's, or else reserved's.
        quantity: if on_hand != 0 { on_hand } else { reserved },
        before: before.item,
        after,
        reason: None,
        order_id: None,
        reservation_id: None,
        locations: location_changes(
            &before.locations,
            &state.item(sku).map(|i| i.locations().into_owned()).unwrap_or_default(),
        ),
    };
    let mut resolve = false;
    match &record.command {
        Command::SetItem(_) => e.kind = "SET",
        Command::AdjustItem(Adjust { reason, note, .. }) => {
            e.kind = "ADJUST";
            e.reason = Some(adjust_reason(*reason, note));
        }
        Command::DeleteItem { .. } => e.kind = "DELETE",
        Command::Transfer(Transfer { quantity, note, .. }) => {
            e.kind = "TRANSFER";
            e.quantity = *quantity as i64;
            e.reason = note.clone();
        }
        Command::ReceiveIncoming { quantity, .. } => {
            e.kind = "RECEIVE";
            e.quantity = *quantity as i64;
        }
        // Sold units back: an adjustment with reason RETURN, naming the order.
        Command::ReturnSold(ReturnSold { order_id, note, .. }) => {
            e.kind = "ADJUST";
            e.reason = Some(adjust_reason(AdjustReason::Return, note));
            e.order_id = Some(order_id.to_string());
        }
        // BLOCK_SALES / UNBLOCK_SALES: the kind already says it; no figure moves.
        Command::SetSalesBlocked { .. } => {}
        Command::PlaceHold { reservation_id, order_id, .. } => {
            e.kind = "RESERVE";
            e.quantity = reserved;
            e.order_id = Some(order_id.to_string());
            e.reservation_id = Some(reservation_id.to_string());
        }
        Command::CommitHold { reservation_id, .. } => {
            confirm(&mut e, b, a);
            e.order_id = before.hold_order;
            e.reservation_id = Some(reservation_id.to_string());
        }
        Command::ReleaseHold { reservation_id } => {
            e.kind = "RELEASE";
            e.quantity = -reserved;
            e.order_id = before.hold_order;
            e.reservation_id = Some(reservation_id.to_string());
            // The header decides RELEASE or EXPIRE. On this shard it is in `state`
            // (still PENDING when a failed reserve is rolled back); elsewhere it is
            // looked up once the page is known.
            let here = state.reservation_by_id(*reservation_id);
            resolve = !here.is_some_and(|r| label(&mut e, r.status, r.release_reason.as_deref()));
        }
        // Steps of a reservation whose header is on this shard: typed by the status
        // the reservation reached.
        _ => match &record.applied.outcome {
            Outcome::Reserved(r) => {
                e.kind = "RESERVE";
                e.quantity = reserved;
                ids_of(&mut e, r);
            }
            Outcome::Reservation { reservation: r, .. } | Outcome::ExpiredOnAccess(r) => {
                ids_of(&mut e, r);
                if r.status == ReservationStatus::Committed {
                    confirm(&mut e, b, a);
                } else if label(&mut e, r.status, r.release_reason.as_deref()) {
                    e.quantity = -reserved;
                }
            }
            Outcome::Expired { expired, .. } => {
                e.kind = "EXPIRE";
                e.quantity = -reserved;
                e.reason = Some("EXPIRED".into());
                // Several due at once: which of them held this SKU is not known
                // without their lines, so the row names none.
                if let Some(r) = before.due_hold.and_then(|id| expired.iter().find(|r| r.reservation_id == id)) {
                    ids_of(&mut e, r);
                }
            }
            _ => {}
        },
    }
    Some(Row { entry: e, resolve })
}
