//! The operator's reservation listing: headers across shards in id order, filtered
//! by status, SKU and age, one bounded page at a time (each shard looks at no more
//! than a scan budget of headers per page, as item listings do).

use super::items::merge_scans;
use super::Engine;
use crate::command::{Query, QueryResult, ReservationFilter};
use crate::error::EngineError;
use crate::limits::{MAX_PAGE, MAX_RESERVATIONS_SCANNED_PER_PAGE};
use crate::reservation::{Reservation, ReservationStatus};
use crate::reservation_id::ReservationId;
use crate::sku::Sku;

/// One page of the operator's reservation listing: headers with id > `after` that
/// match every given filter, in id order, across shards.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReservationListing {
    pub after: Option<ReservationId>,
    /// 1..=`MAX_PAGE`.
    pub limit: usize,
    pub status: Option<ReservationStatus>,
    /// Reservations with a line of this SKU.
    pub sku: Option<Sku>,
    /// Reservations created more than this many seconds ago.
    pub older_than_secs: Option<u64>,
}

/// A page of reservation headers, and the id the next page starts after (`None`: the
/// listing is complete). A filtered page may hold fewer than `limit` headers and
/// still have a cursor (each shard looks at no more than
/// `MAX_RESERVATIONS_SCANNED_PER_PAGE` headers per page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationPage {
    pub reservations: Vec<Reservation>,
    pub next_after: Option<ReservationId>,
}

impl Engine {
    /// One page of reservation headers across all shards (see [`ReservationListing`]).
    /// A read: holds nothing, changes nothing.
    pub async fn list_reservations(&self, req: ReservationListing) -> Result<ReservationPage, EngineError> {
        self.list_reservations_scanning(req, MAX_RESERVATIONS_SCANNED_PER_PAGE).await
    }

    /// `list_reservations` with each shard looking at no more than `scan_budget`
    /// headers per page (tests use a small budget to page through short scans).
    pub async fn list_reservations_scanning(
        &self,
        req: ReservationListing,
        scan_budget: usize,
    ) -> Result<ReservationPage, EngineError> {
        if req.limit == 0 || req.limit > MAX_PAGE {
            return Err(EngineError::validation("limit", format!("must be 1 to {MAX_PAGE}")));
        }
        if scan_budget == 0 {
            return Err(EngineError::validation("scanBudget", "must be at least 1"));
        }
        let created_before =
            req.older_than_secs.map(|secs| self.inner.config.clock.now().saturating_sub(secs.saturating_mul(1000)));
        let filter = ReservationFilter { status: req.status, sku: req.sku, created_before };
        let mut scans = Vec::with_capacity(self.shard_count());
        for shard in 0..self.shard_count() {
            let query =
                Query::ListReservations { after: req.after, limit: req.limit, filter: filter.clone(), scan_budget };
            match self.query(shard, query).await? {
                QueryResult::ReservationPage { reservations, stopped_at } => scans.push((reservations, stopped_at)),
                _ => return Err(EngineError::Unavailable { reason: "internal error: bad query answer".into() }),
            }
        }
        let (reservations, next_after) = merge_scans(scans, req.limit, |r: &Reservation| r.reservation_id);
        Ok(ReservationPage { reservations, next_after })
    }
}
