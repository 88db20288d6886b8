//! RELEASE or EXPIRE, for history rows of holds released on the item's shard
//! (`ReleaseHold`) whose reservation header lives on another shard: the header's
//! final status decides. Asked first of the live engine (a finished header is
//! remembered for the retention period), then, for headers it no longer knows, by
//! replaying each home shard once, up to its durable LSN, stopping as soon as every
//! header wanted there is found. A header found nowhere leaves the row RELEASE with
//! no reason.

use super::rows::{label, Row};
use super::HeaderLookup;
use crate::command::{Command, Outcome};
use crate::durable::data_dir::DataDir;
use crate::durable::follower::WalFollower;
use crate::reservation::{shard_of_reservation_id, Reservation, ReservationKey, ReservationStatus};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::ControlFlow;
use std::path::Path;

/// A header's final status and release reason.
type Final = (ReservationStatus, Option<String>);

fn final_of(r: &Reservation) -> Final {
    (r.status, r.release_reason.as_deref().map(str::to_owned))
}

/// Labels the rows of `rows` that wait on a header (`Row::resolve`).
pub(super) fn resolve(
    dir: &Path,
    shards: usize,
    shard: usize,
    durable_lsns: &[u64],
    rows: &mut [Row],
    lookup: &mut HeaderLookup<'_>,
) -> Result<(), String> {
    let ids: Vec<String> = rows.iter().filter(|r| r.resolve).filter_map(|r| r.entry.reservation_id.clone()).collect();
    if ids.is_empty() {
        return Ok(());
    }
    let mut finals: HashMap<String, Final> = lookup(&ids).iter().map(|(id, r)| (id.clone(), final_of(r))).collect();
    // Still unknown (or live but not yet telling: an ACTIVE header cannot have
    // released its holds): replay the home shards.
    let mut wanted: BTreeMap<usize, HashSet<String>> = BTreeMap::new();
    for id in &ids {
        let known = finals.get(id).is_some_and(|(s, _)| s.is_finished() || *s == ReservationStatus::Pending);
        if known {
            continue;
        }
        if let Some(home) = shard_of_reservation_id(id).filter(|h| *h < shards && *h != shard) {
            wanted.entry(home).or_default().insert(id.clone());
        }
    }
    for (home, ids) in wanted {
        finals.extend(replay_home(dir, home, durable_lsns.get(home).copied().unwrap_or(0), ids)?);
    }
    for row in rows.iter_mut().filter(|r| r.resolve) {
        if let Some((status, reason)) = row.entry.reservation_id.as_ref().and_then(|id| finals.get(id)) {
            label(&mut row.entry, *status, reason.as_deref());
        }
    }
    Ok(())
}

/// Replays shard `home` up to `up_to` until the headers `ids` are seen finished (or
/// aborted); returns what was found.
fn replay_home(
    dir: &Path,
    home: usize,
    up_to: u64,
    mut ids: HashSet<String>,
) -> Result<HashMap<String, Final>, String> {
    let mut found = HashMap::new();
    let mut follower = WalFollower::open(&DataDir::new(dir).shard(home), home, 0)?;
    // Finished before the snapshot the replay starts from.
    for r in follower.state().reservations().filter(|r| r.status.is_finished()) {
        if ids.remove(&r.reservation_id.to_string()) {
            found.insert(r.reservation_id.to_string(), final_of(r));
        }
    }
    if !ids.is_empty() {
        follower.poll_with(
            up_to,
            usize::MAX,
            |_, _, _| (),
            |(), record, _| {
                let aborted = matches!(record.command, Command::AbortReservation { .. });
                let mut note = |r: &Reservation| {
                    if (r.status.is_finished() || aborted) && ids.remove(&r.reservation_id.to_string()) {
                        found.insert(r.reservation_id.to_string(), final_of(r));
                    }
                };
                match &record.applied.outcome {
                    Outcome::Reservation { reservation, changed: true } | Outcome::ExpiredOnAccess(reservation) => {
                        note(reservation)
                    }
                    Outcome::Expired { expired, .. } => expired.iter().for_each(note),
                    _ => {}
                }
                if ids.is_empty() {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
        )?;
    }
    // Left PENDING where the replay ends: a reserve that failed and was rolled back.
    for id in ids {
        if let Some(r) = follower.state().reservation(&ReservationKey::Id(id.clone())) {
            if r.status == ReservationStatus::Pending {
                found.insert(id, final_of(r));
            }
        }
    }
    Ok(found)
}
