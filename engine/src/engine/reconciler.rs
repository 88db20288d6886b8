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
//!   running (`Query::StalePending`): abort the header, and only if that abort is
//!   what ended it (it was still PENDING), release its holds on every shard. Such an
//!   order was never answered with success.

use super::Engine;
use crate::command::{Command, Outcome, Query, QueryResult};
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
        let report = self.drive(move |e| async move { e.reconcile_flow().await }).await?;
        self.count_reconciled(report);
        Ok(report)
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
                    Ok(true) => report.aborted += 1,
                    Ok(false) => {} // its flow finished it after the query
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

    /// Forgets a PENDING reservation's header (which also frees its orderId for a
    /// retry), then releases every hold it may have placed. The header goes first:
    /// `r` is a copy taken before the live-flow check, and its flow may have activated
    /// it since (and answered success). `AbortReservation` changes only a PENDING
    /// header, so the holds are released only when this call is what ended it; a
    /// hold whose header is gone is released by recovery if this stops half-way.
    /// Returns whether it aborted the reservation.
    async fn abort_pending(&self, r: &Reservation) -> Result<bool, EngineError> {
        let id = r.reservation_id;
        match self.step(id.shard(), Command::AbortReservation { reservation_id: id }).await?.outcome {
            Outcome::Reservation { changed: true, .. } => {}
            _ => return Ok(false), // no longer PENDING: not ours to undo
        }
        let n = self.shard_count();
        let mut shards: Vec<usize> = r.lines.iter().map(|l| shard_of_sku(&l.sku, n)).collect();
        shards.sort_unstable();
        shards.dedup();
        for shard in shards {
            self.step(shard, Command::ReleaseHold { reservation_id: id }).await?;
        }
        tracing::warn!(reservation = %id, order = %r.order_id, "aborted a reservation left PENDING past its deadline");
        Ok(true)
    }
}

fn reservations(result: QueryResult) -> Result<Vec<Reservation>, EngineError> {
    match result {
        QueryResult::Reservations(r) => Ok(r),
        _ => Err(EngineError::Unavailable { reason: "internal error: bad query answer".into() }),
    }
}

#[cfg(test)]
mod tests {
    //! Flows against shards held up or broken by their logs: races of the reconciler
    //! with live flows, made deterministic by logs whose sync waits at a gate the test
    //! opens (no timing: each step waits for the last), and a shard whose thread died.
    use super::*;
    use crate::clock::ManualClock;
    use crate::command_log::CommandLog;
    use crate::engine::{EngineConfig, ReserveRequest, SetItem};
    use crate::reservation::{ReservationKey, ReservationStatus};
    use crate::shard_state::ShardState;
    use crate::sku::{OrderId, Sku};
    use parking_lot::{Condvar, Mutex};
    use std::sync::Arc;

    #[derive(Default)]
    struct GateState {
        closed: bool,
        waiting: usize,
    }

    /// Closed: a shard that syncs waits until it opens.
    #[derive(Clone, Default)]
    struct Gate(Arc<(Mutex<GateState>, Condvar)>);

    impl Gate {
        fn set_closed(&self, closed: bool) {
            self.0 .0.lock().closed = closed;
            self.0 .1.notify_all();
        }

        /// Returns once the shard is held at this gate.
        fn wait_for_shard(&self) {
            let mut s = self.0 .0.lock();
            while s.waiting == 0 {
                self.0 .1.wait(&mut s);
            }
        }
    }

    struct GateLog(Gate);

    impl CommandLog for GateLog {
        fn append(&mut self, _now: crate::Millis, _command: &Command) -> Result<(), EngineError> {
            Ok(())
        }

        fn sync(&mut self) -> Result<(), EngineError> {
            let (lock, cv) = &*self.0 .0;
            let mut s = lock.lock();
            s.waiting += 1;
            cv.notify_all();
            while s.closed {
                cv.wait(&mut s);
            }
            s.waiting -= 1;
            Ok(())
        }

        fn durable_lsn(&self) -> u64 {
            0
        }
    }

    const SHARDS: usize = 3;

    fn sku_on(shard: usize, prefix: &str) -> Sku {
        (0..)
            .map(|n| Sku::parse(&format!("{prefix}-{n}"), "sku").unwrap())
            .find(|s| shard_of_sku(s, SHARDS) == shard)
            .unwrap()
    }

    fn order(s: &str) -> OrderId {
        OrderId::parse(s, "orderId").unwrap()
    }

    /// The reconciler took a PENDING header past its deadline whose flow was still
    /// running, and by the time it looked at the live-flow set that flow had
    /// activated the reservation and answered success. It then released every hold
    /// of that ACTIVE reservation: the client holds a reservation whose stock is back
    /// on sale (a commit of it would sell units that were never held).
    #[test]
    fn the_reconciler_never_releases_the_holds_of_a_reservation_its_flow_activated() {
        let clock = ManualClock::new(1_700_000_000_000);
        let gates: Vec<Gate> = (0..SHARDS).map(|_| Gate::default()).collect();
        let config = EngineConfig {
            shards: SHARDS,
            expiry_interval: None,
            clock: Arc::new(clock.clone()),
            ..Default::default()
        };
        let engine = Engine::start(
            (0..SHARDS).map(ShardState::new).collect(),
            gates.iter().map(|g| Box::new(GateLog(g.clone())) as Box<dyn CommandLog>).collect(),
            vec![0; SHARDS],
            config,
            None,
            None,
        );
        let (a, b, c) = (sku_on(0, "A"), sku_on(1, "B"), sku_on(2, "C"));
        let b_engine = engine.blocking();
        for s in [&a, &b, &c] {
            b_engine.set_item(SetItem::on_hand(s.clone(), 10)).unwrap();
        }
        // An abandoned reserve: a PENDING header on shard 0 with a hold on shard 2.
        let open = Command::OpenReservation {
            order_id: order("o-1"),
            lines: vec![(c.clone(), 1)],
            ttl_secs: 60,
            metadata: None,
        };
        let r1 = match crate::block_on(engine.apply_on_shard(0, open)).unwrap().outcome {
            Outcome::Opened(r) => r,
            other => panic!("{other:?}"),
        };
        let hold = Command::PlaceHold {
            reservation_id: r1.reservation_id,
            order_id: order("o-1"),
            lines: vec![(c.clone(), 1)],
            placement: Default::default(),
        };
        crate::block_on(engine.apply_on_shard(2, hold)).unwrap();

        // A live reserve of A (shard 0, its home) and B (shard 1), held up on shard 1.
        gates[1].set_closed(true);
        let live = {
            let engine = engine.clone();
            let req = ReserveRequest {
                order_id: order("o-2"),
                lines: vec![(a.clone(), 1), (b.clone(), 1)],
                ttl_secs: Some(600),
                metadata: None,
                placement: Default::default(),
            };
            std::thread::spawn(move || engine.blocking().reserve(req))
        };
        gates[1].wait_for_shard();
        // Both headers are now PENDING past the deadline.
        clock.advance_millis(PENDING_DEADLINE_MS + 1_000);

        // The reconciler aborts o-1 first and is held up on shard 2 doing so.
        gates[2].set_closed(true);
        let pass = {
            let engine = engine.clone();
            std::thread::spawn(move || engine.blocking().reconcile())
        };
        gates[2].wait_for_shard();
        // Meanwhile o-2's flow places its hold, activates and answers success.
        gates[1].set_closed(false);
        let reserved = live.join().unwrap().expect("the live reserve succeeds");
        assert_eq!(reserved.reservation.status, ReservationStatus::Active);
        gates[2].set_closed(false);
        let report = pass.join().unwrap().unwrap();

        assert_eq!(report.aborted, 1, "only the abandoned reservation is aborted");
        let r2 = b_engine.get_reservation(ReservationKey::Order(order("o-2"))).unwrap();
        assert_eq!(r2.status, ReservationStatus::Active);
        assert_eq!(b_engine.get_item(a.clone()).unwrap().reserved, 1, "o-2's hold of A was released");
        assert_eq!(b_engine.get_item(b.clone()).unwrap().reserved, 1, "o-2's hold of B was released");
        assert_eq!(b_engine.get_item(c.clone()).unwrap().reserved, 0, "o-1's hold of C was not released");
        crate::block_on(engine.check_invariants()).unwrap();
        engine.shutdown();
    }

    /// A log whose sync panics once armed: a shard thread that dies of a bug.
    struct PanicLog(Arc<std::sync::atomic::AtomicBool>);

    impl CommandLog for PanicLog {
        fn append(&mut self, _now: crate::Millis, _command: &Command) -> Result<(), EngineError> {
            Ok(())
        }

        fn sync(&mut self) -> Result<(), EngineError> {
            assert!(!self.0.load(std::sync::atomic::Ordering::SeqCst), "test: the shard thread dies here");
            Ok(())
        }

        fn durable_lsn(&self) -> u64 {
            0
        }
    }

    /// A shard thread that died (a panic) left its queue open: every later step to it
    /// (retried until queued, then awaited) and every client request waited forever
    /// for an answer nobody would give, and the expiry sweep with them.
    #[test]
    fn a_shard_whose_thread_died_answers_unavailable_instead_of_hanging_flows() {
        let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let config = EngineConfig {
            shards: 2,
            expiry_interval: None,
            clock: Arc::new(ManualClock::new(1_700_000_000_000)),
            ..Default::default()
        };
        let logs: Vec<Box<dyn CommandLog>> =
            vec![Box::new(GateLog(Gate::default())), Box::new(PanicLog(armed.clone()))];
        let engine = Engine::start(vec![ShardState::new(0), ShardState::new(1)], logs, vec![0; 2], config, None, None);
        let b = sku_on_of(1, 2);
        let set = |on_hand| engine.blocking().set_item(SetItem::on_hand(b.clone(), on_hand));
        set(10).unwrap();
        armed.store(true, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(set(11).unwrap_err().code(), "SERVICE_UNAVAILABLE");
        let thread = engine.inner.shards[1].thread.lock().take().expect("shard 1 runs");
        assert!(thread.join().is_err(), "shard 1's thread panicked");
        // Checked before anything is sent to it, so the old behaviour fails here
        // instead of hanging below.
        assert!(engine.inner.shards[1].queue.is_closed(), "a dead shard's queue must refuse work");
        let e = engine.blocking();
        assert_eq!(e.expire_due().unwrap_err().code(), "SERVICE_UNAVAILABLE");
        assert_eq!(e.reconcile().unwrap_err().code(), "SERVICE_UNAVAILABLE");
        assert_eq!(e.get_item(b.clone()).unwrap_err().code(), "SERVICE_UNAVAILABLE");
        assert!(engine.is_failed(), "a dead shard fails the engine: it no longer acknowledges");
        engine.shutdown();
    }

    fn sku_on_of(shard: usize, shards: usize) -> Sku {
        (0..).map(|n| Sku::parse(&format!("S-{n}"), "sku").unwrap()).find(|s| shard_of_sku(s, shards) == shard).unwrap()
    }
}
