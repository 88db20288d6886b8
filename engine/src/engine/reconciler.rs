//! The reconciler: finishes what a flow could not, so a hold never outlives its
//! reservation and no header stays PENDING.
//!
//! A flow's later steps are retried until applied (`Engine::send_step`), so in a live
//! engine they only fail when it is stopping or its log failed. The reconciler is the
//! backstop for those cases and for anything else that leaves work behind; it runs
//! from the expiry sweep about once a second, and tests call [`Engine::reconcile`].
//! Per shard, through the queues' reserved slots:
//! - finished headers whose holds on other shards are not known to be settled
//!   (`Query::Unsettled`, finished more than `RECONCILE_GRACE_MS` ago): settle the
//!   holds again (idempotent), then `HoldsSettled` starts the header's retention;
//! - PENDING headers older than `PENDING_DEADLINE_MS` whose reserve flow is not
//!   running (`Query::StalePending`): release their holds on every shard, then abort
//!   the header. Such an order was never answered with success.

use super::Engine;
use crate::command::{Command, Query, QueryResult};
use crate::error::EngineError;
use crate::limits::{PENDING_DEADLINE_MS, RECONCILE_EVERY_MS, RECONCILE_GRACE_MS, RECONCILE_PAGE};
use crate::reservation::Reservation;
use crate::routing::shard_of_sku;
use std::sync::atomic::Ordering;

/// What one reconciler pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Finished reservations whose holds it settled (and whose retention it started).
    pub settled: usize,
    /// PENDING reservations past their deadline that it aborted.
    pub aborted: usize,
}

impl Engine {
    /// One pass of the reconciler over every shard (see the module doc). Idempotent;
    /// safe to run beside live traffic.
    pub async fn reconcile(&self) -> Result<ReconcileReport, EngineError> {
        self.drive(move |e| async move { e.reconcile_flow().await }).await
    }

    /// The background sweep: expire what is due, and about once a second reconcile.
    pub(crate) async fn sweep(&self) -> Result<(), EngineError> {
        let expired = self.expire_due().await;
        let now = self.config().clock.now();
        let last = self.last_reconcile().load(Ordering::Relaxed);
        if now.saturating_sub(last) >= RECONCILE_EVERY_MS {
            self.last_reconcile().store(now, Ordering::Relaxed);
            let report = self.reconcile().await?;
            if report != ReconcileReport::default() {
                tracing::warn!(
                    settled = report.settled,
                    aborted = report.aborted,
                    "reconciler finished interrupted flows"
                );
            }
        }
        expired.map(|_| ())
    }

    async fn reconcile_flow(&self) -> Result<ReconcileReport, EngineError> {
        let now = self.config().clock.now();
        let mut report = ReconcileReport::default();
        let mut first_error = None;
        for shard in 0..self.shard_count() {
            let query =
                Query::Unsettled { finished_before: now.saturating_sub(RECONCILE_GRACE_MS), limit: RECONCILE_PAGE };
            for r in reservations(self.step_query(shard, query).await?)? {
                match self.settle_holds(&r).await {
                    Ok(()) => report.settled += 1,
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            let query =
                Query::StalePending { created_before: now.saturating_sub(PENDING_DEADLINE_MS), limit: RECONCILE_PAGE };
            for r in reservations(self.step_query(shard, query).await?)? {
                if self.reserving().lock().contains_key(&r.order_id) {
                    continue; // its flow is still running and will finish it
                }
                match self.abort_pending(&r).await {
                    Ok(()) => report.aborted += 1,
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Releases every hold a PENDING reservation may have placed, then forgets its
    /// header (which also frees its orderId for a retry).
    async fn abort_pending(&self, r: &Reservation) -> Result<(), EngineError> {
        let n = self.shard_count();
        let mut shards: Vec<usize> = r.lines.iter().map(|l| shard_of_sku(&l.sku, n)).collect();
        shards.sort_unstable();
        shards.dedup();
        let id = r.reservation_id;
        for shard in shards {
            self.step(shard, Command::ReleaseHold { reservation_id: id }).await?;
        }
        self.step(id.shard(), Command::AbortReservation { reservation_id: id }).await?;
        tracing::warn!(reservation = %id, order = %r.order_id, "aborted a reservation left PENDING past its deadline");
        Ok(())
    }
}

fn reservations(result: QueryResult) -> Result<Vec<Reservation>, EngineError> {
    match result {
        QueryResult::Reservations(r) => Ok(r),
        _ => Err(EngineError::Unavailable { reason: "internal error: bad query answer".into() }),
    }
}
