//! Deterministic simulation: from a `u64` seed, a random single-threaded workload
//! (set, adjust, multi-SKU reserve, full and partial commit, release, extend, operator
//! expire, expire_due, a manual clock moving forward) runs against a durable engine of
//! 2–4 shards, and faults are injected at seeded points:
//!
//! * **failed sync** — `FaultInjector::fail_sync_after(n)`: the (n+1)-th fsync from
//!   now fails, possibly in the middle of a multi-shard flow;
//! * **torn write** — `FaultInjector::fail_writes(true)`: the next WAL write puts half
//!   its bytes on disk and fails (ENOSPC-like);
//! * **power cut at any record** — after a failed sync or torn write. Odd seeds run on
//!   `SimFs` (the in-memory filesystem behind `StorageConfig::fs`), whose power cut
//!   keeps a random subset of unsynced pages and unsynced directory entries; even seeds
//!   run on real files, where every byte past each shard's durable LSN is cut at a
//!   seeded offset (a record boundary, inside a record, inside a new segment's
//!   header...), as if the machine lost its page cache;
//! * **restart** — clean shutdown and reopen, sometimes after the clock jumped past
//!   deadlines while the engine was down.
//!
//! After each fault the engine is reopened with faults off and checked: every
//! invariant holds (`check_invariants`), and every *acknowledged* outcome survived.
//! The ledger holds only what was answered `Ok` (plus the state changes that errors
//! like RESERVATION_EXPIRED acknowledge); the one operation that failed with
//! SERVICE_UNAVAILABLE is *in doubt* and may have happened or not, but never half.
//! Item figures are checked exactly: `reserved` is derived from the reservations the
//! ledger knows, `onHand`/`sold` from acknowledged sets, adjusts and commits.
//!
//! Retention is short (600 s), so finished reservations and adjustment keys are
//! purged during a run, and the ledger forgets exactly what the engine may: a run
//! that purges nothing fails. A fault that is armed but never shows as a failed
//! answer fails the run too (it would be a swallowed I/O error).
//!
//! CI runs 64 seeds (about 4 s). `STOCKD_SIM_SEEDS=N` runs N seeds, `STOCKD_SIM_SEED=S` runs
//! exactly seed S (a failure prints the line that replays it), `STOCKD_SIM_STEPS=K`
//! changes the workload length.
//!
//! Determinism: the calls, their arguments, the clock and the points where faults are
//! armed are a function of the seed alone. The shards are real threads, and a flow
//! sends to several shards at once, so *which* shard's sync is the n-th one (and so
//! fails) can differ between two runs of a seed; everything else replays.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use stockd_engine::SimFs;
use stockd_engine::*;

mod common;
use common::Rng;

const SKUS: usize = 8;
const START: Millis = 1_700_000_000_000;
const DEFAULT_SEEDS: u64 = 64;
/// Short enough that finished reservations are forgotten during a run (the clock
/// moves by up to 90 s a step), so every run goes through retention purges.
const RETENTION_SECS: u64 = 600;
const DEFAULT_STEPS: usize = 400;

// ---- the ledger of acknowledged outcomes ---------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
struct LItem {
    on_hand: u64,
    sold: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct LRes {
    status: ReservationStatus,
    /// sku index, quantity, committed
    lines: Vec<(usize, u64, u64)>,
    expires_at: Millis,
}

#[derive(Debug, Clone, Default)]
struct Ledger {
    items: BTreeMap<usize, LItem>,
    res: BTreeMap<String, LRes>,
    /// When each finished reservation finished (the step's time), for retention.
    finished_at: BTreeMap<String, Millis>,
    /// Reservations forgotten by retention purges (a counter for the summary).
    purged: u64,
}

impl Ledger {
    /// `reserved` of an item, derived from the ACTIVE reservations.
    fn reserved(&self, sku: usize) -> u64 {
        self.res
            .values()
            .filter(|r| r.status == ReservationStatus::Active)
            .flat_map(|r| r.lines.iter())
            .filter(|(s, _, _)| *s == sku)
            .map(|(_, q, _)| q)
            .sum()
    }

    /// What `Engine::open` (and `expire_due`) does at `now`: ACTIVE reservations whose
    /// deadline passed become EXPIRED, and finished reservations that finished at
    /// least the retention ago are forgotten.
    fn expire_due(&mut self, now: Millis) {
        for r in self.res.values_mut() {
            if r.status == ReservationStatus::Active && r.expires_at <= now {
                r.status = ReservationStatus::Expired;
            }
        }
        self.note_finished(now);
        let cutoff = now.saturating_sub(RETENTION_SECS * 1000);
        let gone: Vec<String> =
            self.finished_at.iter().filter(|(_, at)| **at <= cutoff).map(|(o, _)| o.clone()).collect();
        for o in gone {
            self.res.remove(&o);
            self.finished_at.remove(&o);
            self.purged += 1;
        }
    }

    /// Records `now` as the finish time of every reservation that finished in this
    /// step (each step runs at one time, the time its shard applied it).
    fn note_finished(&mut self, now: Millis) {
        for (o, r) in &self.res {
            if r.status.is_finished() {
                self.finished_at.entry(o.clone()).or_insert(now);
            }
        }
    }
}

/// The one operation whose answer was SERVICE_UNAVAILABLE: it may or may not have
/// happened, but wholly or not at all.
#[derive(Debug, Clone)]
enum Doubt {
    Set {
        sku: usize,
        on_hand: u64,
    },
    Adjust {
        sku: usize,
        delta: i64,
    },
    Reserve {
        order: String,
        lines: Vec<(usize, u64)>,
    },
    Commit {
        order: String,
    },
    Release {
        order: String,
    },
    Extend {
        order: String,
    },
    Expire {
        order: String,
    },
    ExpireDue,
    /// A repeat (idempotent reserve, replayed adjustment key): changes nothing.
    NoChange,
}

impl Doubt {
    fn order(&self) -> Option<&str> {
        match self {
            Doubt::Reserve { order, .. }
            | Doubt::Commit { order }
            | Doubt::Release { order }
            | Doubt::Extend { order }
            | Doubt::Expire { order } => Some(order),
            _ => None,
        }
    }
}

// ---- helpers --------------------------------------------------------------------------

fn sku(i: usize) -> Sku {
    Sku::parse(&format!("sim-sku-{i}"), "sku").unwrap()
}

fn sku_index(s: &Sku) -> usize {
    s.as_str().strip_prefix("sim-sku-").and_then(|n| n.parse().ok()).expect("a simulation sku")
}

fn key(order: &str) -> ReservationKey {
    ReservationKey::Order(OrderId::parse(order, "orderId").unwrap())
}

fn lres(r: &Reservation) -> LRes {
    LRes {
        status: r.status,
        lines: r.lines.iter().map(|l| (sku_index(&l.sku), l.quantity, l.committed)).collect(),
        expires_at: r.expires_at,
    }
}

fn unavailable(e: &EngineError) -> bool {
    e.code() == "SERVICE_UNAVAILABLE"
}

/// Which fault the current phase of the run ends with.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Fail the (n+1)-th fsync from now; then maybe cut the non-durable tail.
    FailSync { after: u64, power_cut: bool },
    /// Tear the next WAL write; then maybe cut the non-durable tail.
    TornWrite { power_cut: bool },
    /// Clean shutdown and reopen, after the clock moved `down_secs` while down.
    Restart { down_secs: u64 },
}

/// Where a run's data directory lives.
enum Disk {
    Real(tempfile::TempDir),
    Sim(SimFs),
}

impl Disk {
    fn path(&self) -> std::path::PathBuf {
        match self {
            Disk::Real(dir) => dir.path().to_path_buf(),
            Disk::Sim(_) => std::path::PathBuf::from("/sim"),
        }
    }

    fn fs(&self) -> Arc<dyn stockd_engine::Fs> {
        match self {
            Disk::Real(_) => Arc::new(stockd_engine::RealFs),
            Disk::Sim(fs) => Arc::new(fs.clone()),
        }
    }
}

struct Sim {
    seed: u64,
    rng: Rng,
    disk: Disk,
    clock: ManualClock,
    shards: usize,
    storage: StorageConfig,
    faults: Arc<FaultInjector>,
    engine: Option<Engine>,
    ledger: Ledger,
    next_order: u64,
    next_key: u64,
    /// Last acknowledged keyed adjustment: (sku, delta, key, the item it answered).
    /// Kept while younger than the retention (older keys are forgotten).
    last_keyed: Option<(usize, i64, String, Item, Millis)>,
    /// Counters for the summary line.
    ops: u64,
    faults_fired: BTreeMap<&'static str, u64>,
    recoveries: u64,
    truncated_tails: u64,
    cut_bytes: u64,
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut rng = Rng(seed);
        let shards = 2 + rng.below(3) as usize;
        let storage = StorageConfig {
            segment_size: 1024 + rng.below(4096),
            snapshot_every_records: 10 + rng.below(40),
            snapshot_every: Duration::from_secs(3600),
            snapshots_kept: 2,
            ..StorageConfig::default()
        };
        // Odd seeds run on the in-memory SimFs, whose power cut keeps a random subset of
        // unsynced pages and directory entries; even seeds on real files (in /dev/shm:
        // cheap fsyncs; faults are injected, not real), cut by truncating a prefix.
        let disk = if seed % 2 == 1 {
            Disk::Sim(SimFs::new())
        } else if Path::new("/dev/shm").is_dir() {
            Disk::Real(tempfile::Builder::new().prefix("stockd-sim").tempdir_in("/dev/shm").unwrap())
        } else {
            Disk::Real(tempfile::tempdir().unwrap())
        };
        let mut sim = Sim {
            seed,
            rng,
            disk,
            clock: ManualClock::new(START),
            shards,
            storage,
            faults: Arc::new(FaultInjector::new()),
            engine: None,
            ledger: Ledger::default(),
            next_order: 0,
            next_key: 0,
            last_keyed: None,
            ops: 0,
            faults_fired: BTreeMap::new(),
            recoveries: 0,
            truncated_tails: 0,
            cut_bytes: 0,
        };
        sim.open();
        sim
    }

    fn config(&self) -> EngineConfig {
        EngineConfig {
            shards: self.shards,
            retention_secs: RETENTION_SECS,
            expiry_interval: None,
            clock: Arc::new(self.clock.clone()),
            warehouses: None,
            ..Default::default()
        }
    }

    fn open(&mut self) {
        self.faults = Arc::new(FaultInjector::new());
        let storage = StorageConfig { faults: Some(self.faults.clone()), fs: self.disk.fs(), ..self.storage.clone() };
        let (engine, report) = Engine::open(&self.disk.path(), self.config(), storage)
            .unwrap_or_else(|e| panic!("{}reopen failed: {e}", self.ctx()));
        self.truncated_tails += report.shards.iter().filter(|s| s.truncated_tail.is_some()).count() as u64;
        self.engine = Some(engine);
    }

    fn engine(&self) -> &Engine {
        self.engine.as_ref().expect("engine is open")
    }

    fn ctx(&self) -> String {
        format!(
            "[seed {} after {} ops; replay: STOCKD_SIM_SEED={} cargo test -p stockd-engine --test simulation] ",
            self.seed, self.ops, self.seed
        )
    }

    // ---- the workload ------------------------------------------------------------

    fn pick_order(&mut self) -> Option<String> {
        if self.ledger.res.is_empty() {
            return None;
        }
        // Prefer recent (more often ACTIVE) reservations.
        let n = self.ledger.res.len() as u64;
        let back = self.rng.below(n.min(8));
        let recent: Vec<&String> = self.ledger.res.keys().collect();
        let mut sorted = recent.clone();
        sorted.sort_by_key(|o| o[1..].parse::<u64>().unwrap_or(0));
        Some(sorted[(n - 1 - back) as usize].clone())
    }

    /// Runs one random operation. `Err(doubt)` when it was answered
    /// SERVICE_UNAVAILABLE (the engine has failed).
    fn step(&mut self) -> Result<(), Doubt> {
        let now = self.clock.now();
        let result = self.one_op();
        // A reservation finished in this step finished at its time (the clock moves
        // only after the operation, in the clock step itself).
        self.ledger.note_finished(now);
        result
    }

    fn one_op(&mut self) -> Result<(), Doubt> {
        self.ops += 1;
        let ctx = self.ctx();
        let now = self.clock.now();
        let roll = self.rng.below(100);
        match roll {
            // Set an item's onHand.
            0..=9 => {
                let s = self.rng.below(SKUS as u64) as usize;
                let on_hand = self.rng.range(0, 60);
                let r = self.engine().blocking().set_item(SetItem {
                    sku: sku(s),
                    on_hand,
                    low_stock_threshold: Some(3),
                    max_per_order: None,
                    expected_version: None,
                    location: None,
                    incoming: None,
                });
                match r {
                    Ok(c) => {
                        assert_eq!(c.item.on_hand, on_hand, "{ctx}set answered {:?}", c.item);
                        assert_eq!(c.item.reserved, self.ledger.reserved(s), "{ctx}set: reserved");
                        let sold = self.ledger.items.get(&s).map_or(0, |i| i.sold);
                        assert_eq!(c.item.sold, sold, "{ctx}set: sold");
                        self.ledger.items.insert(s, LItem { on_hand, sold });
                    }
                    Err(e) if unavailable(&e) => return Err(Doubt::Set { sku: s, on_hand }),
                    Err(e) => {
                        // Only onHand below reserved may be refused.
                        assert!(on_hand < self.ledger.reserved(s), "{ctx}set refused: {e}");
                    }
                }
            }
            // Adjust, with a fresh idempotency key or none; sometimes replay the last key.
            10..=19 => {
                let young = |at: &Millis| now.saturating_sub(*at) < RETENTION_SECS * 1000;
                if self.rng.chance(20) {
                    // Only a key the engine must still remember (a purge may forget older).
                    if let Some((s, delta, k, item, _)) = self.last_keyed.clone().filter(|(.., at)| young(at)) {
                        let r = self.engine().blocking().adjust(Adjust {
                            sku: sku(s),
                            delta,
                            reason: AdjustReason::Correction,
                            note: None,
                            idempotency_key: Some(k.clone()),
                            expected_version: None,
                            location: None,
                        });
                        match r {
                            Ok(c) => assert_eq!(c.item, item, "{ctx}replayed key {k} answered differently"),
                            Err(e) if unavailable(&e) => return Err(Doubt::NoChange),
                            Err(e) => panic!("{ctx}replayed key {k} refused: {e}"),
                        }
                        return Ok(());
                    }
                }
                let s = self.rng.below(SKUS as u64) as usize;
                let delta = match self.rng.range(0, 30) as i64 - 12 {
                    0 => 1,
                    d => d,
                };
                let k = self.rng.chance(50).then(|| {
                    self.next_key += 1;
                    format!("key-{}", self.next_key)
                });
                let r = self.engine().blocking().adjust(Adjust {
                    sku: sku(s),
                    delta,
                    reason: if delta >= 0 { AdjustReason::Restock } else { AdjustReason::Damaged },
                    note: None,
                    idempotency_key: k.clone(),
                    expected_version: None,
                    location: None,
                });
                match r {
                    Ok(c) => {
                        let old = self.ledger.items.get(&s).unwrap_or_else(|| panic!("{ctx}adjusted unknown sku"));
                        assert_eq!(c.item.on_hand as i64, old.on_hand as i64 + delta, "{ctx}adjust answered");
                        assert_eq!(c.item.sold, old.sold, "{ctx}adjust: sold");
                        assert_eq!(c.item.reserved, self.ledger.reserved(s), "{ctx}adjust: reserved");
                        self.ledger.items.get_mut(&s).unwrap().on_hand = c.item.on_hand;
                        if let Some(k) = k {
                            self.last_keyed = Some((s, delta, k, c.item, now));
                        }
                    }
                    Err(e) if unavailable(&e) => return Err(Doubt::Adjust { sku: s, delta }),
                    Err(e) => {
                        let ok = match self.ledger.items.get(&s) {
                            None => e.code() == "ITEM_NOT_FOUND",
                            Some(i) => {
                                e.code() == "NEGATIVE_INVENTORY"
                                    && (i.on_hand as i64 + delta) < self.ledger.reserved(s) as i64
                            }
                        };
                        assert!(ok, "{ctx}adjust {s} by {delta} refused: {e}");
                    }
                }
            }
            // Reserve 1–3 SKUs (or repeat an orderId: idempotent).
            20..=49 => {
                let repeat = self.rng.chance(5);
                if repeat {
                    if let Some(order) = self.pick_order() {
                        let r = self.ledger.res[&order].clone();
                        let lines: Vec<(Sku, u64)> = r.lines.iter().map(|(s, q, _)| (sku(*s), *q)).collect();
                        let got = self.engine().blocking().reserve(ReserveRequest {
                            order_id: OrderId::parse(&order, "orderId").unwrap(),
                            lines: lines.clone(),
                            ttl_secs: Some(60),
                            metadata: None,
                            placement: Default::default(),
                        });
                        match got {
                            Ok(out) => assert!(!out.created, "{ctx}repeated {order} created a new reservation"),
                            Err(e) if unavailable(&e) => return Err(Doubt::NoChange),
                            Err(e) => panic!("{ctx}repeated {order} refused: {e}"),
                        }
                        return Ok(());
                    }
                }
                let n = self.rng.range(1, 3) as usize;
                let mut skus = BTreeSet::new();
                while skus.len() < n {
                    skus.insert(self.rng.below(SKUS as u64) as usize);
                }
                let lines: Vec<(usize, u64)> = skus.into_iter().map(|s| (s, self.rng.range(1, 5))).collect();
                self.next_order += 1;
                let order = format!("o{}", self.next_order);
                let ttl = self.rng.range(1, 300);
                let got = self.engine().blocking().reserve(ReserveRequest {
                    order_id: OrderId::parse(&order, "orderId").unwrap(),
                    lines: lines.iter().map(|(s, q)| (sku(*s), *q)).collect(),
                    ttl_secs: Some(ttl),
                    metadata: Some(format!("{{\"seed\":{}}}", self.seed)),
                    placement: Default::default(),
                });
                match got {
                    Ok(out) => {
                        assert!(out.created, "{ctx}{order} not created");
                        let r = lres(&out.reservation);
                        assert_eq!(r.status, ReservationStatus::Active, "{ctx}");
                        assert_eq!(r.expires_at, now + ttl * 1000, "{ctx}{order} deadline");
                        for (s, q) in &lines {
                            let i = self.ledger.items.get(s).unwrap_or_else(|| panic!("{ctx}reserved unknown {s}"));
                            assert!(i.on_hand >= self.ledger.reserved(*s) + q, "{ctx}{order} oversold {s}");
                        }
                        self.ledger.res.insert(order, r);
                    }
                    Err(e) if unavailable(&e) => return Err(Doubt::Reserve { order, lines }),
                    Err(e) => {
                        let short = lines.iter().any(|(s, q)| match self.ledger.items.get(s) {
                            None => true,
                            Some(i) => i.on_hand < self.ledger.reserved(*s) + q,
                        });
                        assert!(short, "{ctx}{order} refused with stock available: {e}");
                        assert!(matches!(e.code(), "INSUFFICIENT_INVENTORY" | "ITEM_NOT_FOUND"), "{ctx}{order}: {e}");
                    }
                }
            }
            // Commit: whole, or part of some lines.
            50..=64 => {
                let Some(order) = self.pick_order() else { return Ok(()) };
                let r = self.ledger.res[&order].clone();
                let mut quantities = None;
                if self.rng.chance(40) {
                    let mut part = Vec::new();
                    for (s, q, _) in &r.lines {
                        if self.rng.chance(60) {
                            part.push((sku(*s), self.rng.range(0, *q)));
                        }
                    }
                    quantities = Some(part).filter(|p| !p.is_empty());
                }
                let got = self.engine().blocking().commit(key(&order), quantities.clone());
                match got {
                    Ok(after) => {
                        assert_eq!(after.status, ReservationStatus::Committed, "{ctx}");
                        if r.status == ReservationStatus::Active {
                            assert!(r.expires_at > now, "{ctx}{order} committed after its deadline");
                            let after = lres(&after);
                            for (s, _, c) in &after.lines {
                                let i = self.ledger.items.get_mut(s).unwrap();
                                i.on_hand -= c;
                                i.sold += c;
                            }
                            self.ledger.res.insert(order, after);
                        } else {
                            assert_eq!(r.status, ReservationStatus::Committed, "{ctx}{order} was {:?}", r.status);
                        }
                    }
                    Err(e) if unavailable(&e) => return Err(Doubt::Commit { order }),
                    Err(e) if e.code() == "RESERVATION_EXPIRED" => {
                        // Expired on access (acknowledged), or already expired.
                        let r = self.ledger.res.get_mut(&order).unwrap();
                        assert!(
                            r.status == ReservationStatus::Expired
                                || (r.status == ReservationStatus::Active && r.expires_at <= now),
                            "{ctx}{order}: {e}"
                        );
                        r.status = ReservationStatus::Expired;
                    }
                    Err(e) => {
                        let ok = match e.code() {
                            "RESERVATION_RELEASED" => r.status == ReservationStatus::Released,
                            _ => false,
                        };
                        assert!(ok, "{ctx}commit {order} ({:?}) refused: {e}", r.status);
                    }
                }
            }
            // Release.
            65..=74 => {
                let Some(order) = self.pick_order() else { return Ok(()) };
                let r = self.ledger.res[&order].clone();
                match self.engine().blocking().release(key(&order), Some("CANCELLED".into())) {
                    Ok(after) => {
                        if r.status == ReservationStatus::Active {
                            let want = if r.expires_at <= now {
                                ReservationStatus::Expired
                            } else {
                                ReservationStatus::Released
                            };
                            assert_eq!(after.status, want, "{ctx}release {order}");
                            self.ledger.res.get_mut(&order).unwrap().status = after.status;
                        } else {
                            assert_eq!(after.status, r.status, "{ctx}release {order}");
                        }
                    }
                    Err(e) if unavailable(&e) => return Err(Doubt::Release { order }),
                    Err(e) => {
                        assert!(
                            e.code() == "RESERVATION_COMMITTED" && r.status == ReservationStatus::Committed,
                            "{ctx}release {order} ({:?}) refused: {e}",
                            r.status
                        );
                    }
                }
            }
            // Extend.
            75..=80 => {
                let Some(order) = self.pick_order() else { return Ok(()) };
                let r = self.ledger.res[&order].clone();
                let ttl = self.rng.range(1, 300);
                match self.engine().blocking().extend(key(&order), ttl) {
                    Ok(after) => {
                        assert!(r.status == ReservationStatus::Active && r.expires_at > now, "{ctx}extend {order}");
                        assert_eq!(after.expires_at, now + ttl * 1000, "{ctx}extend {order}");
                        self.ledger.res.get_mut(&order).unwrap().expires_at = after.expires_at;
                    }
                    Err(e) if unavailable(&e) => return Err(Doubt::Extend { order }),
                    Err(e) if e.code() == "RESERVATION_EXPIRED" => {
                        let r = self.ledger.res.get_mut(&order).unwrap();
                        assert!(
                            r.status == ReservationStatus::Expired
                                || (r.status == ReservationStatus::Active && r.expires_at <= now),
                            "{ctx}{order}: {e}"
                        );
                        r.status = ReservationStatus::Expired;
                    }
                    Err(e) => {
                        let ok = match e.code() {
                            "RESERVATION_RELEASED" => r.status == ReservationStatus::Released,
                            "RESERVATION_COMMITTED" => r.status == ReservationStatus::Committed,
                            _ => false,
                        };
                        assert!(ok, "{ctx}extend {order} ({:?}) refused: {e}", r.status);
                    }
                }
            }
            // Operator expire.
            81..=84 => {
                let Some(order) = self.pick_order() else { return Ok(()) };
                let r = self.ledger.res[&order].clone();
                match self.engine().blocking().expire(key(&order)) {
                    Ok(after) => {
                        assert_eq!(after.status, ReservationStatus::Expired, "{ctx}");
                        assert!(
                            matches!(r.status, ReservationStatus::Active | ReservationStatus::Expired),
                            "{ctx}expire {order} was {:?}",
                            r.status
                        );
                        self.ledger.res.get_mut(&order).unwrap().status = ReservationStatus::Expired;
                    }
                    Err(e) if unavailable(&e) => return Err(Doubt::Expire { order }),
                    Err(e) => {
                        assert!(r.status.is_finished() && r.status != ReservationStatus::Expired, "{ctx}{e}");
                    }
                }
            }
            // The clock moves; sometimes the expiry sweep runs.
            _ => {
                self.clock.advance_secs(self.rng.range(1, 90));
                if self.rng.chance(50) {
                    let now = self.clock.now();
                    match self.engine().blocking().expire_due() {
                        Ok(expired) => {
                            let mut want = self.ledger.clone();
                            want.expire_due(now);
                            let mut got: Vec<String> = expired.iter().map(|r| r.order_id.to_string()).collect();
                            got.sort();
                            let mut due: Vec<String> = self
                                .ledger
                                .res
                                .iter()
                                .filter(|(o, r)| want.res.get(*o).is_some_and(|w| w.status != r.status))
                                .map(|(o, _)| o.clone())
                                .collect();
                            due.sort();
                            assert_eq!(got, due, "{ctx}expire_due expired the wrong reservations");
                            self.ledger = want;
                        }
                        Err(e) if unavailable(&e) => return Err(Doubt::ExpireDue),
                        Err(e) => panic!("{ctx}expire_due: {e}"),
                    }
                }
            }
        }
        Ok(())
    }

    // ---- faults --------------------------------------------------------------------

    fn pick_fault(&mut self) -> Fault {
        match self.rng.below(10) {
            0..=3 => Fault::FailSync { after: self.rng.below(6), power_cut: self.rng.chance(50) },
            4..=6 => Fault::TornWrite { power_cut: self.rng.chance(50) },
            _ => Fault::Restart { down_secs: if self.rng.chance(50) { self.rng.range(1, 400) } else { 0 } },
        }
    }

    /// Runs `steps` operations, then the fault, then reopens and verifies.
    fn phase(&mut self, steps: usize, fault: Fault) {
        for _ in 0..steps {
            if let Err(d) = self.step() {
                panic!("{}SERVICE_UNAVAILABLE with no fault armed ({d:?})", self.ctx());
            }
        }
        let ctx = self.ctx();
        let doubt = match fault {
            Fault::Restart { down_secs } => {
                *self.faults_fired.entry("restart").or_default() += 1;
                self.engine().shutdown();
                self.engine = None;
                self.clock.advance_secs(down_secs);
                None
            }
            Fault::FailSync { power_cut, .. } | Fault::TornWrite { power_cut } => {
                match fault {
                    Fault::FailSync { after, .. } => {
                        *self.faults_fired.entry("failed sync").or_default() += 1;
                        self.faults.fail_sync_after(after);
                    }
                    _ => {
                        *self.faults_fired.entry("torn write").or_default() += 1;
                        self.faults.fail_writes(true);
                    }
                }
                let mut doubt = None;
                for _ in 0..200 {
                    if let Err(d) = self.step() {
                        doubt = Some(d);
                        break;
                    }
                }
                // The armed fault must show as a failed answer: a fault that fires
                // and fails nothing is a swallowed I/O error, and one that never fires
                // means this phase tested nothing. Either way the run fails.
                let Some(doubt) = doubt else {
                    panic!(
                        "{ctx}{fault:?} armed, but 200 operations later no answer had failed (engine failed: {})",
                        self.engine().is_failed()
                    );
                };
                let engine = self.engine.take().unwrap();
                assert!(engine.is_failed(), "{ctx}SERVICE_UNAVAILABLE but the engine is not failed");
                // Fail-stop: nothing at all is acknowledged any more.
                let e = engine.blocking().get_item(sku(0)).unwrap_err();
                assert_eq!(e.code(), "SERVICE_UNAVAILABLE", "{ctx}");
                let durable: Vec<u64> = engine
                    .shard_status()
                    .iter()
                    .map(|s| s.durable_lsn.load(std::sync::atomic::Ordering::Acquire))
                    .collect();
                engine.shutdown();
                drop(engine);
                if power_cut {
                    *self.faults_fired.entry("power cut").or_default() += 1;
                    match &self.disk {
                        Disk::Sim(fs) => fs.power_cut(self.rng.next()),
                        Disk::Real(_) => {
                            for (shard, lsn) in durable.iter().enumerate() {
                                self.cut_after(shard, *lsn);
                            }
                        }
                    }
                }
                Some(doubt)
            }
        };
        self.open();
        self.recoveries += 1;
        self.verify(doubt.as_ref());
    }

    /// A power loss on shard `shard` that kept an arbitrary prefix of what was never
    /// synced after record `durable` (see `common::cut_wal_after`).
    fn cut_after(&mut self, shard: usize, durable: u64) {
        let wal = DataDir::new(self.disk.path()).shard_wal(shard);
        self.cut_bytes += common::cut_wal_after(&wal, durable, &mut self.rng)
            .unwrap_or_else(|e| panic!("{}shard {shard}: {e}", self.ctx()));
    }

    // ---- the check -------------------------------------------------------------------

    /// After a reopen: invariants hold, every acknowledged outcome survived, the
    /// in-doubt operation happened wholly or not at all. Then the ledger adopts what
    /// the in-doubt operation left.
    fn verify(&mut self, doubt: Option<&Doubt>) {
        let ctx = self.ctx();
        let now = self.clock.now();
        let engine = self.engine.clone().expect("engine is open");
        let e = engine.blocking();
        e.check_invariants().unwrap_or_else(|err| panic!("{ctx}invariants after recovery (doubt {doubt:?}): {err}"));

        // Reservations first: reopening expires what fell due.
        let mut want = self.ledger.clone();
        want.expire_due(now);
        let doubted = doubt.and_then(Doubt::order);
        let mut next = want.clone();
        let mut newly_committed: BTreeMap<usize, u64> = BTreeMap::new();
        for (order, w) in &want.res {
            if Some(order.as_str()) == doubted {
                continue;
            }
            let got = e
                .get_reservation(key(order))
                .unwrap_or_else(|err| panic!("{ctx}acknowledged {order} ({w:?}) lost: {err}"));
            assert_eq!(lres(&got), *w, "{ctx}acknowledged {order} recovered wrong (doubt {doubt:?})");
        }
        if let Some(order) = doubted {
            let before = want.res.get(order).cloned();
            let got_raw = e.get_reservation(key(order)).ok();
            let got = got_raw.as_ref().map(lres);
            let ok = match (doubt.unwrap(), &before, &got) {
                (Doubt::Reserve { lines, .. }, None, Some(g)) => {
                    let want_lines: Vec<(usize, u64, u64)> = lines.iter().map(|(s, q)| (*s, *q, 0)).collect();
                    let want_status =
                        if g.expires_at <= now { ReservationStatus::Expired } else { ReservationStatus::Active };
                    g.lines == want_lines && g.status == want_status
                }
                (Doubt::Reserve { .. }, None, None) => true,
                (_, Some(b), Some(g)) if b == g => true,
                (Doubt::Commit { .. }, Some(b), Some(g)) => {
                    let committed = g.status == ReservationStatus::Committed
                        && b.status == ReservationStatus::Active
                        && g.lines.iter().zip(&b.lines).all(|(gl, bl)| gl.0 == bl.0 && gl.1 == bl.1 && gl.2 <= gl.1);
                    if committed {
                        for (s, _, c) in &g.lines {
                            *newly_committed.entry(*s).or_default() += c;
                        }
                    }
                    committed
                }
                (Doubt::Release { .. }, Some(b), Some(g)) => {
                    b.status == ReservationStatus::Active
                        && g.status == ReservationStatus::Released
                        && g.lines == b.lines
                        && g.expires_at == b.expires_at
                }
                (Doubt::Expire { .. }, Some(b), Some(g)) => {
                    b.status == ReservationStatus::Active
                        && g.status == ReservationStatus::Expired
                        && g.lines == b.lines
                        && g.expires_at == b.expires_at
                }
                (Doubt::Extend { .. }, Some(b), Some(g)) => {
                    // The ledger copy (before reopening) was ACTIVE; the extension kept it
                    // alive past the deadline that would have expired it.
                    let was = &self.ledger.res[order];
                    was.status == ReservationStatus::Active
                        && g.status == ReservationStatus::Active
                        && g.expires_at > now
                        && g.lines == b.lines
                }
                _ => false,
            };
            assert!(ok, "{ctx}in-doubt {doubt:?}: before {before:?}, recovered {got:?}");
            // The in-doubt operation finished it at its own time, before the crash.
            if let Some(at) = got_raw.and_then(|r| r.finished_at) {
                next.finished_at.insert(order.to_owned(), at);
            }
            match got {
                Some(g) => next.res.insert(order.to_owned(), g),
                None => next.res.remove(order),
            };
        }

        // Items: onHand and sold exactly as acknowledged (give or take the in-doubt
        // operation), reserved exactly what the ACTIVE reservations hold.
        let items = e.list_items(None, 1000).unwrap();
        let got_skus: BTreeSet<usize> = items.iter().map(|i| sku_index(&i.sku)).collect();
        for item in &items {
            let s = sku_index(&item.sku);
            let before = want.items.get(&s).cloned();
            let mut w = before.clone().unwrap_or(LItem { on_hand: 0, sold: 0 });
            if let Some(c) = newly_committed.get(&s) {
                w.on_hand -= c;
                w.sold += c;
            }
            let got = LItem { on_hand: item.on_hand, sold: item.sold };
            let ok = got == w && before.is_some()
                || match doubt {
                    Some(Doubt::Set { sku: ds, on_hand }) if *ds == s => got.on_hand == *on_hand && got.sold == w.sold,
                    Some(Doubt::Adjust { sku: ds, delta }) if *ds == s => {
                        got.on_hand as i64 == w.on_hand as i64 + delta && got.sold == w.sold && before.is_some()
                    }
                    _ => false,
                };
            assert!(ok, "{ctx}item {s}: acknowledged {before:?} (+commit {newly_committed:?}), recovered {item:?} (doubt {doubt:?})");
            assert_eq!(item.reserved, next.reserved(s), "{ctx}item {s} reserved (doubt {doubt:?})");
            next.items.insert(s, got);
        }
        for s in want.items.keys() {
            assert!(got_skus.contains(s), "{ctx}acknowledged item {s} lost");
        }
        self.ledger = next;

        // Idempotency records survive recovery too.
        if self.last_keyed.as_ref().is_some_and(|(.., at)| now.saturating_sub(*at) >= RETENTION_SECS * 1000) {
            self.last_keyed = None; // forgotten by the retention purge, as it should be
        }
        if let Some((s, delta, k, item, _)) = self.last_keyed.clone() {
            let c = e
                .adjust(Adjust {
                    sku: sku(s),
                    delta,
                    reason: AdjustReason::Correction,
                    note: None,
                    idempotency_key: Some(k.clone()),
                    expected_version: None,
                    location: None,
                })
                .unwrap_or_else(|err| panic!("{ctx}replay of key {k} after recovery: {err}"));
            assert_eq!(c.item, item, "{ctx}key {k} answered differently after recovery");
        }
    }

    /// Runs the workload; returns the summary line and how many reservations the
    /// retention purges forgot.
    fn run(mut self, steps: usize) -> (String, u64) {
        let mut done = 0;
        while done < steps {
            let n = self.rng.range(5, 40) as usize;
            let fault = self.pick_fault();
            self.phase(n.min(steps - done), fault);
            done += n;
        }
        // A final clean restart checks everything once more.
        self.phase(0, Fault::Restart { down_secs: 0 });
        self.engine().shutdown();
        let summary = format!(
            "seed {}: {} shards, {} ops, {} recoveries ({:?}), {} torn tails truncated, {} bytes cut, {} reservations, {} purged, {} items",
            self.seed,
            self.shards,
            self.ops,
            self.recoveries,
            self.faults_fired,
            self.truncated_tails,
            self.cut_bytes,
            self.ledger.res.len(),
            self.ledger.purged,
            self.ledger.items.len()
        );
        (summary, self.ledger.purged)
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| v.parse().unwrap_or_else(|_| panic!("{name}={v} is not a number")))
}

#[test]
fn seeded_simulation_with_faults_loses_nothing_acknowledged() {
    let steps = env_u64("STOCKD_SIM_STEPS").map_or(DEFAULT_STEPS, |n| n as usize);
    let seeds: Vec<u64> = match env_u64("STOCKD_SIM_SEED") {
        Some(seed) => vec![seed],
        None => {
            let n = env_u64("STOCKD_SIM_SEEDS").unwrap_or(DEFAULT_SEEDS);
            // Fixed seeds in CI; `STOCKD_SIM_SEEDS` beyond the first 64 keeps counting.
            (0..n).map(|i| 0x5eed_0000 + i).collect()
        }
    };
    let started = std::time::Instant::now();
    let mut total_purged = 0;
    for seed in &seeds {
        let seed = *seed;
        let (summary, purged) = std::panic::catch_unwind(|| Sim::new(seed).run(steps)).unwrap_or_else(|p| {
            eprintln!(
                "simulation failed: replay with STOCKD_SIM_SEED={seed} cargo test -p stockd-engine --test simulation"
            );
            std::panic::resume_unwind(p)
        });
        println!("{summary}");
        total_purged += purged;
    }
    // The retention path must have run, or the purge half of the check proved nothing.
    assert!(total_purged > 0 || steps < 100, "no reservation was purged in {} seeds", seeds.len());
    println!("{} seeds in {:.1} s", seeds.len(), started.elapsed().as_secs_f64());
}
