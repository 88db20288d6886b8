//! Review of the issue-13 flows (steps that are never dropped, `HoldsSettled`, the
//! reconciler). Each test here checks a suspicion about them:
//! - the derived sets a snapshot does not store (`unsettled`, `pending`) are rebuilt
//!   from it exactly as the live state had them, at every point of a home shard's
//!   log, so a replay from any snapshot answers and ends as the live shard did
//!   (`a_snapshot_at_any_point_replays_to_the_live_state`);
//! - a header finished before a snapshot whose `HoldsSettled` comes after it is
//!   settled by the replay, kept until then, and forgotten only after
//!   (`holds_settled_after_a_snapshot_replays_right`);
//! - `reserve_many` under overload, with orderIds shared between concurrent clients
//!   and the reconciler running past the PENDING deadline, answers the truth and
//!   leaves no orderId index entry behind
//!   (`concurrent_batches_with_shared_order_ids_answer_the_truth_under_overload`;
//!   it fails when `reserve_many` does not drop the entries of a batch it could not
//!   queue).
//!
//! All pass on the reviewed engine: these suspicions were not real.

use std::sync::Arc;
use stockd_engine::offline::{decode_state, encode_state};
use stockd_engine::*;

mod common;
use common::*;

const START: Millis = 1_700_000_000_000;

/// The commands a home shard (0) logs for: a cross-shard reservation committed, then
/// its holds reported settled; a one-shard reservation committed; a cross-shard one
/// left PENDING; one ACTIVE that is told `HoldsSettled` (a no-op); expiry and purge.
fn home_log() -> Vec<(Millis, Command)> {
    let (a, b) = (sku("A-1"), sku("B-1"));
    // Reservation ids as the shard issues them: (now, shard 0, sequence).
    let id = |now: Millis, seq: u64| ReservationId::new(now, 0, seq);
    let remote = |q: u64| Allocation { sku: b.clone(), location: LocationId::DEFAULT, quantity: q, committed: 0 };
    let local = |q: u64| Allocation { sku: a.clone(), location: LocationId::DEFAULT, quantity: q, committed: 0 };
    let open = |o: &str, lines: Vec<(Sku, u64)>| Command::OpenReservation {
        order_id: order(o),
        lines,
        ttl_secs: 60,
        metadata: None,
    };
    let hold = |rid: ReservationId, o: &str, q: u64| Command::PlaceHold {
        reservation_id: rid,
        order_id: order(o),
        lines: vec![(a.clone(), q)],
        placement: Default::default(),
    };
    let t = |s: u64| START + s * 1000;
    vec![
        (t(0), set_item_command(&a, 100)),
        // o-x: cross-shard (A here, B elsewhere), committed at t(2).
        (t(1), open("o-x", vec![(a.clone(), 1), (b.clone(), 2)])),
        (t(1), hold(id(t(1), 0), "o-x", 1)),
        (t(1), Command::ActivateReservation { reservation_id: id(t(1), 0), allocations: vec![local(1), remote(2)] }),
        (t(2), Command::CommitReservation { key: key("o-x"), quantities: None }),
        // o-l: one shard, settled in its own transition.
        (
            t(3),
            Command::ReserveLocal(ReserveLocal {
                order_id: order("o-l"),
                lines: vec![(a.clone(), 3)],
                ttl_secs: 60,
                metadata: None,
                placement: Default::default(),
            }),
        ),
        (t(4), Command::ReleaseReservation { key: key("o-l"), reason: "CANCELLED".into() }),
        // o-p: cross-shard, left PENDING with its hold.
        (t(5), open("o-p", vec![(a.clone(), 1), (b.clone(), 1)])),
        (t(5), hold(id(t(5), 2), "o-p", 1)),
        // o-a: ACTIVE; HoldsSettled for it changes nothing.
        (t(6), open("o-a", vec![(a.clone(), 2), (b.clone(), 1)])),
        (t(6), hold(id(t(6), 3), "o-a", 2)),
        (t(6), Command::ActivateReservation { reservation_id: id(t(6), 3), allocations: vec![local(2), remote(1)] }),
        (t(7), Command::HoldsSettled { reservation_id: id(t(6), 3) }),
        // o-x's holds elsewhere settled; past retention only settled headers go.
        (t(8), Command::HoldsSettled { reservation_id: id(t(1), 0) }),
        (t(9), Command::HoldsSettled { reservation_id: id(t(1), 0) }),
        (t(100), Command::ExpireDue { retention_ms: 30_000 }),
        // o-a expired at t(100) with a line elsewhere: kept until settled.
        (t(200), Command::ExpireDue { retention_ms: 30_000 }),
        (t(201), Command::HoldsSettled { reservation_id: id(t(6), 3) }),
        (t(300), Command::ExpireDue { retention_ms: 30_000 }),
    ]
}

#[test]
fn a_snapshot_at_any_point_replays_to_the_live_state() {
    let log = home_log();
    // The live shard, and every answer it gave.
    let mut live = ShardState::new(0);
    let mut answers = Vec::new();
    let mut states = vec![live.clone()];
    for (now, c) in &log {
        answers.push(live.apply(c, *now).map(|a| (a.outcome, a.changed)));
        live.check_invariants().unwrap();
        states.push(live.clone());
    }
    // The log does what this test is about.
    assert!(answers.iter().all(|a| a.is_ok()), "{answers:?}");
    assert_eq!(states[5].unsettled_count(), 1, "o-x waits for its holds after the commit");
    assert_eq!(states[7].unsettled_count(), 1, "o-l is settled in its own transition");
    assert!(matches!(answers[12], Ok((_, false))), "HoldsSettled of an ACTIVE header changes nothing");
    assert!(matches!(answers[13], Ok((_, true))) && matches!(answers[14], Ok((_, false))));
    assert_eq!(states[14].unsettled_count(), 0);
    let purged = |a: &Result<(Outcome, bool), EngineError>| match a {
        Ok((Outcome::Expired { purged_orders, .. }, _)) => purged_orders.iter().map(|o| o.to_string()).collect(),
        other => panic!("{other:?}"),
    };
    let purged: Vec<Vec<String>> = [15, 16, 18].iter().map(|i| purged(&answers[*i])).collect();
    assert_eq!(purged[0], vec!["o-x".to_string(), "o-l".to_string()], "o-a expires at t(100), kept");
    assert!(purged[1].is_empty(), "o-a's hold elsewhere is not settled yet");
    assert_eq!(states[17].unsettled_count(), 1);
    assert_eq!(purged[2], vec!["o-a".to_string()]);
    assert!(states[19].reservation_by_id(ReservationId::new(START + 5000, 0, 2)).is_some(), "PENDING is never purged");

    // A snapshot after any prefix, then the rest of the log replayed on it.
    for k in 0..=log.len() {
        let mut replayed = decode_state(&encode_state(&states[k])).unwrap();
        assert_eq!(replayed, states[k], "snapshot after {k} records differs from the live state");
        replayed.check_invariants().unwrap();
        for (i, (now, c)) in log.iter().enumerate().skip(k) {
            let answer = replayed.apply(c, *now).map(|a| (a.outcome, a.changed));
            assert_eq!(answer, answers[i], "record {i} answered otherwise after a snapshot at {k}");
            assert_eq!(replayed, states[i + 1], "record {i} after a snapshot at {k}");
        }
    }
}

#[test]
fn holds_settled_after_a_snapshot_replays_right() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(START);
    let config = || EngineConfig {
        shards: 2,
        retention_secs: 60,
        expiry_interval: None,
        clock: Arc::new(clock.clone()),
        ..Default::default()
    };
    // A snapshot after every batch, then none at all.
    let every_batch = StorageConfig { snapshot_every_records: 1, snapshot_records_per_entry: 0, ..Default::default() };
    let never = StorageConfig {
        snapshot_every_records: u64::MAX,
        snapshot_every: std::time::Duration::from_secs(1 << 40),
        ..Default::default()
    };
    let (a, b) = (sku_on(0, "A", 2), sku_on(1, "B", 2));

    let (engine, _) = Engine::open(dir.path(), config(), every_batch.clone()).unwrap();
    stock(&engine, &a, 10);
    stock(&engine, &b, 10);
    let e = engine.blocking();
    let req = ReserveRequest {
        order_id: order("o-1"),
        lines: vec![(a.clone(), 2), (b.clone(), 3)],
        ttl_secs: Some(600),
        metadata: None,
        placement: Default::default(),
    };
    let id = e.reserve(req).unwrap().reservation.reservation_id;
    assert_eq!(id.shard(), 0);
    // The header's transition only (its flow cut short): snapshotted unsettled.
    block_on(engine.apply_on_shard(0, Command::CommitReservation { key: key("o-1"), quantities: None })).unwrap();
    // Snapshots run in the background, one at a time: write on shard 0 until one
    // covers the commit (a snapshot of a state that holds the unsettled header).
    let committed_at = engine.shard_status()[0].durable_lsn.load(std::sync::atomic::Ordering::Acquire);
    let snaps = dir.path().join("shard-000/snapshots");
    let covered = |lsn: u64| {
        std::fs::read_dir(&snaps).unwrap().filter_map(|e| e.ok()).any(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name.ends_with(".snap")
                && name.trim_start_matches("snapshot-").trim_end_matches(".snap").parse::<u64>().is_ok_and(|l| l >= lsn)
        })
    };
    let filler = sku_on(0, "F", 2);
    for i in 0..1_000 {
        if covered(committed_at) {
            break;
        }
        stock(&engine, &filler, i);
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert!(covered(committed_at), "no snapshot ever covered LSN {committed_at}");
    engine.shutdown();
    drop(engine);

    // Recovery commits B's hold and logs HoldsSettled, with no snapshot after it.
    let (engine, report) = Engine::open(dir.path(), config(), never.clone()).unwrap();
    assert!(report.shards[0].snapshot_lsn.is_some(), "{report:?}");
    assert!(report.shards[0].snapshot_lsn.is_some_and(|l| l >= committed_at), "{report:?}");
    assert!(report.settled >= 2, "{report:?}");
    engine.shutdown();
    drop(engine);

    // Replayed from the snapshot (unsettled), through HoldsSettled: settled.
    let (engine, report) = Engine::open(dir.path(), config(), never.clone()).unwrap();
    assert_eq!(report.settled, 0, "nothing left to settle: {report:?}");
    assert!(report.shards[0].records_replayed >= 1, "{report:?}");
    let states = block_on(engine.shard_states()).unwrap();
    assert!(!states[0].is_unsettled(id), "HoldsSettled replayed after the snapshot");
    assert_eq!(states[0].unsettled_count(), 0);
    let e = engine.blocking();
    e.check_invariants().unwrap();
    assert_eq!((e.get_item(a.clone()).unwrap().sold, e.get_item(b.clone()).unwrap().sold), (2, 3));
    clock.advance_secs(61);
    e.expire_due().unwrap();
    assert_eq!(e.get_reservation(key("o-1")).unwrap_err().code(), "RESERVATION_NOT_FOUND");
    engine.shutdown();
    drop(engine);
    let (engine, _) = Engine::open(dir.path(), config(), never).unwrap();
    let e = engine.blocking();
    e.check_invariants().unwrap();
    assert_eq!((e.get_item(b.clone()).unwrap().sold, e.get_item(b).unwrap().on_hand), (3, 7));
    engine.shutdown();
}

/// Batches (`reserve_many`) of one-shard and cross-shard orders from many clients at
/// once into queues of one client slot, while a driver moves the clock past the
/// PENDING deadline and runs the expiry sweep and the reconciler. Each batch holds
/// three orders of its own and one that every client sends (the same lines, so a
/// repeat is idempotent). Every answer must be the truth: an order no client was
/// told was reserved has no header, one that was told has an ACTIVE header with its
/// stock held; the orderId index holds exactly the headers; invariants hold.
#[test]
fn concurrent_batches_with_shared_order_ids_answer_the_truth_under_overload() {
    const SHARDS: usize = 3;
    let clock = ManualClock::new(START);
    let config = EngineConfig {
        shards: SHARDS,
        expiry_interval: None,
        clock: Arc::new(clock.clone()),
        queue_capacity: 1,
        ..Default::default()
    };
    let engine = Engine::in_memory(config).unwrap();
    let skus: Vec<Sku> = (0..SHARDS).flat_map(|s| [sku_on(s, "X", SHARDS), sku_on(s, "Y", SHARDS)]).collect();
    for s in &skus {
        stock(&engine, s, 1_000_000);
    }
    // Order `name` number k: one SKU when k is even (one shard), else two SKUs on
    // two shards.
    let request = |name: String, k: usize| {
        let mut lines = vec![(skus[k % skus.len()].clone(), 1 + (k % 3) as u64)];
        if k % 2 == 1 {
            lines.push((skus[(k + 3) % skus.len()].clone(), 1));
        }
        ReserveRequest {
            order_id: order(&name),
            lines,
            ttl_secs: Some(86_400),
            metadata: None,
            placement: Default::default(),
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let driver = {
        let (engine, clock, done) = (engine.clone(), clock.clone(), done.clone());
        std::thread::spawn(move || {
            let mut passes = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) || passes < 3 {
                clock.advance_secs(20);
                let _ = engine.blocking().expire_due();
                let _ = engine.blocking().reconcile();
                passes += 1;
            }
        })
    };
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let engine = engine.clone();
            let batches: Vec<Vec<ReserveRequest>> = (0..30)
                .map(|i| {
                    let mut batch: Vec<ReserveRequest> =
                        (0..3).map(|j| request(format!("u-{c}-{i}-{j}"), c + i + j)).collect();
                    batch.push(request(format!("s-{i}"), i));
                    batch
                })
                .collect();
            rt.spawn(async move {
                let mut told = Vec::new();
                for batch in batches {
                    let orders: Vec<String> = batch.iter().map(|r| r.order_id.to_string()).collect();
                    for (o, answer) in orders.into_iter().zip(engine.reserve_many(batch).await) {
                        match answer {
                            Ok(out) => {
                                assert_eq!(out.reservation.status, ReservationStatus::Active, "{o}");
                                told.push((o, true));
                            }
                            Err(e) if matches!(e.code(), "OVERLOADED" | "RESERVATION_PENDING") => told.push((o, false)),
                            Err(e) => panic!("{o}: {e}"),
                        }
                    }
                }
                told
            })
        })
        .collect();
    let mut reserved = std::collections::HashSet::new();
    let mut orders = std::collections::BTreeSet::new();
    for c in clients {
        for (o, ok) in rt.block_on(c).unwrap() {
            orders.insert(o.clone());
            if ok {
                reserved.insert(o);
            }
        }
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    driver.join().unwrap();
    let refused_only = orders.iter().filter(|o| o.starts_with("u-") && !reserved.contains(*o)).count();
    assert!(refused_only > 0, "no order was only ever refused: the queues never filled");
    // Quiescent: past every deadline, one more pass.
    clock.advance_millis(limits::PENDING_DEADLINE_MS + 1_000);
    let e = engine.blocking();
    e.reconcile().unwrap();
    e.check_invariants().unwrap();
    let mut headers = 0;
    let mut held: std::collections::HashMap<Sku, u64> = Default::default();
    for o in &orders {
        match e.get_reservation(key(o)) {
            Ok(r) => {
                headers += 1;
                assert_eq!(r.status, ReservationStatus::Active, "{o}");
                assert!(reserved.contains(o), "{o} is ACTIVE but every answer for it was a refusal");
                for l in &r.lines {
                    *held.entry(l.sku.clone()).or_default() += l.quantity;
                }
            }
            Err(err) => {
                assert_eq!(err.code(), "RESERVATION_NOT_FOUND", "{o}");
                assert!(!reserved.contains(o), "{o} was answered reserved but has no header");
            }
        }
    }
    for s in &skus {
        assert_eq!(e.get_item(s.clone()).unwrap().reserved, held.get(s).copied().unwrap_or(0), "{s}");
    }
    assert_eq!(engine.order_index_len(), headers, "the orderId index holds exactly the headers");
}
