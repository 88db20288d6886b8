//! Invariants that span shards: a reservation header (home shard) and its holds
//! (item shards) must agree. Per-shard invariants are `ShardState::check_invariants`.

use crate::reservation::ReservationStatus;
use crate::reservation_id::ReservationId;
use crate::shard_state::ShardState;
use std::collections::HashMap;

/// Times a mutation left an item with more reserved than on hand, since start. The
/// engine's transitions make this impossible; the counter proves it in production
/// (exported as `stockd_oversell_detected_total`) and must stay 0.
static OVERSELLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub(crate) fn report_oversell() {
    OVERSELLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tracing::error!("oversell detected: an item has more reserved than on hand");
}

/// How many oversells (reserved > onHand after a mutation) were detected since the
/// process started; must stay 0.
pub fn oversells_detected() -> u64 {
    OVERSELLS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Checks each shard, then: every ACTIVE header's lines are held exactly on the
/// shards of its SKUs, and every hold belongs to an ACTIVE header on its home shard
/// (a hold of a PENDING, finished or forgotten reservation is a flow left half
/// done). Only meaningful with no request in flight (e.g. after recovery).
pub fn check_all(states: &[ShardState]) -> Result<(), String> {
    for s in states {
        s.check_invariants().map_err(|e| format!("shard {}: {e}", s.shard()))?;
    }
    let mut held: HashMap<ReservationId, Vec<(String, u64)>> = HashMap::new();
    for s in states {
        for (id, hold) in s.holds() {
            let Some(home) = states.get(id.shard()) else {
                return Err(format!("hold {id} on shard {} names no valid home shard", s.shard()));
            };
            match home.reservation_by_id(*id) {
                Some(r) if r.status == ReservationStatus::Active => {}
                // Quiescent: no reserve flow is between its first and last step.
                Some(r) if r.status == ReservationStatus::Pending => {
                    return Err(format!(
                    "hold {id} on shard {} belongs to a reservation still PENDING (a reserve flow stopped half-way)",
                    s.shard()
                ))
                }
                Some(r) => {
                    return Err(format!("hold {id} on shard {} outlived its {:?} reservation", s.shard(), r.status))
                }
                None => return Err(format!("hold {id} on shard {} has no reservation", s.shard())),
            }
            held.entry(*id)
                .or_default()
                .extend(hold.allocations.iter().map(|a| (format!("{}@{}", a.sku, a.location), a.quantity)));
        }
    }
    for s in states {
        for r in s.reservations().filter(|r| r.status == ReservationStatus::Active) {
            for l in &r.lines {
                let allocated: u64 = r.allocations().iter().filter(|a| a.sku == l.sku).map(|a| a.quantity).sum();
                if allocated != l.quantity {
                    return Err(format!("{}: {} allocated {allocated} of {}", r.reservation_id, l.sku, l.quantity));
                }
            }
            let mut want: Vec<(String, u64)> =
                r.allocations().iter().map(|a| (format!("{}@{}", a.sku, a.location), a.quantity)).collect();
            let mut got = held.get(&r.reservation_id).cloned().unwrap_or_default();
            want.sort();
            got.sort();
            if want != got {
                return Err(format!("active reservation {} holds {got:?}, expected {want:?}", r.reservation_id));
            }
        }
    }
    Ok(())
}
