//! `stockd-wal history DIR --sku S`: the stock transaction history of one SKU.
//!
//! The SKU's items and holds live on its shard (`shard_of_sku`), so that shard is
//! replayed from its oldest start point; for each record the item is compared before
//! and after `apply`, and a row is written when a figure (onHand, reserved, sold) or
//! its existence changed, or the record is a SET/ADJUST/DELETE of the SKU. Types:
//! PLACE_HOLD → RESERVE, COMMIT_HOLD → CONFIRM, RELEASE_HOLD → RELEASE or EXPIRE (from
//! the reservation header's final status; when the header lives on another shard (named in the reservation id),
//! that shard is replayed too, once, to learn it), SET_ITEM → SET, ADJUST → ADJUST,
//! DELETE_ITEM → DELETE.

use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::process::ExitCode;
use stockd_engine::offline::shard_of_reservation_id;
use stockd_engine::shard_of_sku;
use stockd_engine::ReservationId;
use stockd_engine::{Command, Item, Outcome, ReservationKey, ReservationStatus};

use super::replay::{apply, replay_shard};
use crate::cli::HistoryArgs;
use crate::data_dir::{choose_start, DataDir, StartAt};
use crate::output::RowWriter;
use crate::scan::Progress;
use crate::Error;
use stockd_engine::time::format_millis;

pub const COLUMNS: [&str; 16] = [
    "time",
    "lsn",
    "shard",
    "type",
    "quantity",
    "on_hand_before",
    "on_hand_after",
    "available_before",
    "available_after",
    "reserved_before",
    "reserved_after",
    "sold_after",
    "order_id",
    "reservation_id",
    "reason",
    "locations",
];

struct Row {
    time: u64,
    lsn: u64,
    shard: usize,
    kind: String,
    quantity: i64,
    before: Option<Item>,
    after: Option<Item>,
    order: Option<String>,
    reservation: Option<String>,
    reason: Option<String>,
    /// RELEASE_HOLD whose header is on another shard: resolved after the scan.
    resolve: Option<usize>,
}

fn figures(i: &Option<Item>) -> (Value, Value, Value, Value) {
    match i {
        Some(i) => (json!(i.on_hand), json!(i.available()), json!(i.reserved), json!(i.sold)),
        None => (Value::Null, Value::Null, Value::Null, Value::Null),
    }
}

pub fn run(args: &HistoryArgs) -> Result<ExitCode, Error> {
    let dd = DataDir::open(&args.dir)?;
    let n = dd.shards.len();
    let sku = &args.sku;
    let home = shard_of_sku(sku, n);
    let shard = &dd.shards[home];
    let progress = Progress::new(dd.total_wal_bytes());
    let mut rows: Vec<Row> = Vec::new();
    replay_shard(shard, choose_start(shard, StartAt::Earliest)?, None, &progress, |rec, state| {
        let before = state.item(sku).cloned();
        let (hold_order, hold_qty) = match super::reservation_id_of(&rec.command)
            .and_then(|id| ReservationId::parse(&id))
            .and_then(|id| state.hold(id))
        {
            Some(h) => (Some(h.order_id.to_string()), h.quantity_of(sku)),
            None => (None, 0),
        };
        let applied = apply(rec, state)?;
        let after = state.item(sku).cloned();
        let fig = |i: &Option<Item>| i.as_ref().map(|i| (i.on_hand, i.reserved, i.sold, i.incoming));
        let names_sku = matches!(&rec.command,
            Command::SetItem { sku: s, .. } | Command::AdjustItem { sku: s, .. } | Command::DeleteItem { sku: s, .. }
            | Command::Transfer { sku: s, .. } | Command::ReceiveIncoming { sku: s, .. } if s == sku);
        if fig(&before) == fig(&after) && !(names_sku && applied.changed) {
            return Ok(());
        }
        let rid = super::reservation_id_of(&rec.command);
        let mut row = Row {
            time: rec.now,
            lsn: rec.lsn,
            shard: rec.shard,
            kind: rec.command.kind().to_string(),
            quantity: 0,
            order: super::order_of(&rec.command).or(hold_order),
            reservation: rid.clone(),
            reason: None,
            resolve: None,
            before,
            after,
        };
        match &rec.command {
            Command::SetItem { on_hand, .. } => {
                row.kind = "SET".into();
                row.quantity = *on_hand as i64;
            }
            Command::AdjustItem { delta, reason, note, .. } => {
                row.kind = "ADJUST".into();
                row.quantity = *delta;
                row.reason = Some(match note {
                    Some(n) => format!("{} ({n})", reason.as_str()),
                    None => reason.as_str().to_string(),
                });
            }
            Command::DeleteItem { .. } => row.kind = "DELETE".into(),
            Command::Transfer { quantity, note, .. } => {
                row.kind = "TRANSFER".into();
                row.quantity = *quantity as i64;
                row.reason = note.clone();
            }
            Command::ReceiveIncoming { quantity, .. } => {
                row.kind = "RECEIVE".into();
                row.quantity = *quantity as i64;
            }
            Command::PlaceHold { lines, .. } => {
                row.kind = "RESERVE".into();
                row.quantity = lines.iter().filter(|(s, _)| s == sku).map(|(_, q)| *q as i64).sum();
            }
            Command::CommitHold { committed, .. } => {
                row.kind = "CONFIRM".into();
                row.quantity = committed.iter().filter(|(s, _)| s == sku).map(|(_, q)| *q as i64).sum();
                if (row.quantity as u64) < hold_qty {
                    row.reason = Some(format!("{} of {hold_qty} committed, rest released", row.quantity));
                }
            }
            Command::ReleaseHold { .. } => {
                row.kind = "RELEASE".into();
                row.quantity = hold_qty as i64;
                let id = rid.clone().unwrap_or_default();
                match shard_of_reservation_id(&id).filter(|h| *h < n) {
                    Some(h) if h == rec.shard => {
                        if let Some(r) = state.reservation(&ReservationKey::Id(id)) {
                            label(&mut row, r.status, r.release_reason.as_deref().map(str::to_owned));
                        }
                    }
                    other => row.resolve = other,
                }
            }
            // Reservation steps that touch the stock directly (a reservation whose
            // header and holds share a shard: one-step reserve, commit, release,
            // expire): typed by kind, quantity from the figures.
            _ => {
                let f = |i: &Option<Item>| {
                    i.as_ref().map_or((0, 0, 0), |i| (i.on_hand as i64, i.reserved as i64, i.sold as i64))
                };
                let ((bo, br, _), (ao, ar, asold)) = (f(&row.before), f(&row.after));
                let bsold = f(&row.before).2;
                let (kind, quantity) = match rec.command.kind() {
                    "RESERVE" => ("RESERVE", ar - br),
                    "COMMIT" => ("CONFIRM", asold - bsold),
                    "RELEASE" | "ABORT" => ("RELEASE", br - ar),
                    "EXPIRE" | "EXPIRE_DUE" => ("EXPIRE", br - ar),
                    other => (other, ao - bo),
                };
                row.kind = kind.to_string();
                row.quantity = quantity;
                if let Command::ReleaseReservation { reason, .. } = &rec.command {
                    row.reason = Some(reason.clone());
                }
                if row.reservation.is_none() {
                    if let Some(o) = row.order.as_ref().and_then(|o| stockd_engine::OrderId::parse(o, "o").ok()) {
                        row.reservation =
                            state.reservation(&ReservationKey::Order(o)).map(|r| r.reservation_id.to_string());
                    }
                }
            }
        }
        rows.push(row);
        Ok(())
    })?;
    // RELEASE_HOLD rows whose header lives on another shard: learn the final status.
    let wanted: HashSet<String> =
        rows.iter().filter(|r| r.resolve.is_some()).filter_map(|r| r.reservation.clone()).collect();
    let shards: HashSet<usize> = rows.iter().filter_map(|r| r.resolve).collect();
    let mut finals: HashMap<String, (ReservationStatus, Option<String>)> = HashMap::new();
    for s in shards {
        let shard = &dd.shards[s];
        replay_shard(shard, choose_start(shard, StartAt::Earliest)?, None, &progress, |rec, state| {
            let applied = apply(rec, state)?;
            let mut note = |r: &stockd_engine::Reservation| {
                if r.status.is_finished() && wanted.contains(&r.reservation_id.to_string()) {
                    finals.insert(
                        r.reservation_id.to_string(),
                        (r.status, r.release_reason.as_deref().map(str::to_owned)),
                    );
                }
            };
            match &applied.outcome {
                Outcome::Reservation { reservation, .. } | Outcome::ExpiredOnAccess(reservation) => note(reservation),
                Outcome::Expired { expired, .. } => expired.iter().for_each(note),
                _ => {}
            }
            Ok(())
        })?;
    }
    for row in rows.iter_mut().filter(|r| r.resolve.is_some()) {
        if let Some((status, reason)) = row.reservation.as_ref().and_then(|id| finals.get(id)) {
            label(row, *status, reason.clone());
        }
    }
    progress.finish("replayed");
    let mut w = RowWriter::new(std::io::stdout().lock(), args.format, &COLUMNS);
    for r in rows {
        let (ob, ab, rb, _) = figures(&r.before);
        let (oa, aa, ra, sa) = figures(&r.after);
        w.row(vec![
            json!(format_millis(r.time)),
            json!(r.lsn),
            json!(r.shard),
            json!(r.kind),
            json!(r.quantity),
            ob,
            oa,
            ab,
            aa,
            rb,
            ra,
            sa,
            r.order.map_or(Value::Null, Value::String),
            r.reservation.map_or(Value::Null, Value::String),
            r.reason.map_or(Value::Null, Value::String),
            location_changes(&r.before, &r.after).map_or(Value::Null, Value::String),
        ])?;
    }
    w.finish()?;
    Ok(ExitCode::SUCCESS)
}

/// The locations whose figures a row changed, e.g.
/// `wh-a onHand 5->2; wh-b incoming 0->3`; None when no location changed.
fn location_changes(before: &Option<Item>, after: &Option<Item>) -> Option<String> {
    let list = |i: &Option<Item>| i.as_ref().map(|i| i.locations().into_owned()).unwrap_or_default();
    let (b, a) = (list(before), list(after));
    let mut ids: Vec<&stockd_engine::LocationId> = b.iter().chain(&a).map(|l| &l.location).collect();
    ids.sort();
    ids.dedup();
    let mut parts = Vec::new();
    for id in ids {
        let find = |v: &[stockd_engine::LocationStock]| {
            v.iter().find(|l| &l.location == id).map_or((0, 0, 0, 0), |l| (l.on_hand, l.reserved, l.sold, l.incoming))
        };
        let (x, y) = (find(&b), find(&a));
        let moved: Vec<String> =
            [("onHand", x.0, y.0), ("reserved", x.1, y.1), ("sold", x.2, y.2), ("incoming", x.3, y.3)]
                .iter()
                .filter(|(_, p, q)| p != q)
                .map(|(name, p, q)| format!("{name} {p}->{q}"))
                .collect();
        if !moved.is_empty() {
            parts.push(format!("{id} {}", moved.join(" ")));
        }
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn label(row: &mut Row, status: ReservationStatus, reason: Option<String>) {
    match status {
        ReservationStatus::Expired => {
            row.kind = "EXPIRE".into();
            row.reason = Some("expired".into());
        }
        ReservationStatus::Released => row.reason = reason,
        _ => {}
    }
}
