//! `stockd-wal stats DIR`: records by type, busiest SKUs (top 10 by records naming
//! them), reservations by outcome (from the outcomes `apply` returns while every shard
//! is replayed from its oldest start point), expiry rate = expired / finished, and stock
//! movements between locations (transfers, receipts, split allocations).

use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use stockd_engine::Transfer;
use stockd_engine::{Command, Outcome, ReservationStatus};

use super::replay::{apply, replay_shard};
use crate::cli::StatsArgs;
use crate::data_dir::{choose_start, DataDir, StartAt};
use crate::output::RowWriter;
use crate::scan::Progress;
use crate::Error;

/// The `locations` section: transfers (and the units moved, those in transit), receipts
/// of units in transit, and the reservation lines allocated (when a reservation became
/// active) and of those, the ones split over several locations.
const LOCATION_FIGURES: [&str; 7] = [
    "transfers",
    "transferred_units",
    "in_transit_units",
    "receipts",
    "received_units",
    "allocated_lines",
    "split_lines",
];

pub fn run(args: &StatsArgs) -> Result<ExitCode, Error> {
    let dd = DataDir::open(&args.dir)?;
    let progress = Progress::new(dd.total_wal_bytes());
    let mut by_type: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut by_sku: HashMap<String, u64> = HashMap::new();
    let mut outcome: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut moves: BTreeMap<&'static str, u64> = BTreeMap::new();
    let (mut first, mut last) = (u64::MAX, 0u64);
    for shard in &dd.shards {
        replay_shard(shard, choose_start(shard, StartAt::Earliest)?, None, &progress, |rec, state| {
            *by_type.entry(rec.command.kind()).or_default() += 1;
            first = first.min(rec.now);
            last = last.max(rec.now);
            let mut skus = super::skus_of(&rec.command);
            skus.dedup();
            for s in skus {
                *by_sku.entry(s.to_string()).or_default() += 1;
            }
            let applied = apply(rec, state)?;
            let mut add = |k: &'static str, n: u64| *moves.entry(k).or_default() += n;
            match (&rec.command, &applied.outcome) {
                (Command::Transfer(Transfer { quantity, in_transit, .. }), _) => {
                    add("transfers", 1);
                    add("transferred_units", *quantity);
                    add("in_transit_units", if *in_transit { *quantity } else { 0 });
                }
                (Command::ReceiveIncoming { quantity, .. }, _) => {
                    add("receipts", 1);
                    add("received_units", *quantity);
                }
                (Command::ReserveLocal(_), Outcome::Reserved(r))
                | (Command::ActivateReservation { .. }, Outcome::Reservation { reservation: r, changed: true }) => {
                    for l in &r.lines {
                        add("allocated_lines", 1);
                        add("split_lines", u64::from(r.allocations().iter().filter(|a| a.sku == l.sku).count() > 1));
                    }
                }
                _ => {}
            }
            let mut count = |status: ReservationStatus| {
                let k = match status {
                    ReservationStatus::Committed => "committed",
                    ReservationStatus::Released => "released",
                    ReservationStatus::Expired => "expired",
                    _ => return,
                };
                *outcome.entry(k).or_default() += 1;
            };
            match &applied.outcome {
                Outcome::Opened(_) => *outcome.entry("opened").or_default() += 1,
                // A one-step reserve (newer engines log it as kind RESERVE).
                _ if applied.changed && rec.command.kind() == "RESERVE" => *outcome.entry("opened").or_default() += 1,
                Outcome::Reservation { reservation, changed: true } => {
                    if matches!(rec.command, Command::AbortReservation { .. }) {
                        *outcome.entry("aborted").or_default() += 1;
                    } else if !matches!(
                        rec.command,
                        Command::ActivateReservation { .. }
                            | Command::ExtendReservation { .. }
                            | Command::ExtendReservationWithin { .. }
                    ) {
                        count(reservation.status);
                    }
                }
                Outcome::ExpiredOnAccess(r) => count(r.status),
                Outcome::Expired { expired, .. } => expired.iter().for_each(|r| count(r.status)),
                _ => {}
            }
            Ok(())
        })?;
    }
    progress.finish("replayed");
    let mut w = RowWriter::new(std::io::stdout().lock(), args.format, &["section", "name", "value"]);
    let total: u64 = by_type.values().sum();
    w.row(vec![json!("records"), json!("total"), json!(total)])?;
    if total > 0 {
        w.row(vec![json!("records"), json!("first_time"), json!(stockd_engine::time::format_millis(first))])?;
        w.row(vec![json!("records"), json!("last_time"), json!(stockd_engine::time::format_millis(last))])?;
    }
    for (k, v) in &by_type {
        w.row(vec![json!("records_by_type"), json!(k), json!(v)])?;
    }
    let mut skus: Vec<(String, u64)> = by_sku.into_iter().collect();
    skus.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    for (s, v) in skus.into_iter().take(10) {
        w.row(vec![json!("busiest_skus"), json!(s), json!(v)])?;
    }
    for k in ["opened", "aborted", "committed", "released", "expired"] {
        w.row(vec![json!("reservations"), json!(k), json!(outcome.get(k).copied().unwrap_or(0))])?;
    }
    let finished: u64 = ["committed", "released", "expired"].iter().map(|k| outcome.get(k).copied().unwrap_or(0)).sum();
    let rate = if finished == 0 { 0.0 } else { outcome.get("expired").copied().unwrap_or(0) as f64 / finished as f64 };
    w.row(vec![json!("reservations"), json!("expiry_rate"), json!((rate * 10_000.0).round() / 10_000.0)])?;
    for k in LOCATION_FIGURES {
        w.row(vec![json!("locations"), json!(k), json!(moves.get(k).copied().unwrap_or(0))])?;
    }
    w.finish()?;
    Ok(ExitCode::SUCCESS)
}
