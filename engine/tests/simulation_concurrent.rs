//! Seeded simulation under overload: several client threads at once drive
//! cross-shard orders (reserve, full or partial commit, release, extend, operator
//! expire) into shard queues of 1–3 client slots, while a driver thread moves a manual
//! clock, runs the expiry sweep (with a 30 s retention, so finished headers are
//! purged all the time) and the reconciler. Phases end in a fault:
//!
//! * **failed sync** (`fail_sync_after(n)`), then a **power cut**;
//! * **restart** (clean shutdown and reopen), half the time followed by a power cut
//!   too (a clean shutdown must leave nothing unsynced that matters).
//!
//! The data directory lives on `SimFs`, the in-memory filesystem behind the seam
//! (`StorageConfig::fs`): a power cut keeps what was synced plus a *random subset* of
//! unsynced pages and unsynced directory entries (a later page of a batch may survive
//! while an earlier one is lost; a new segment's entry may vanish).
//!
//! After each fault the engine is reopened and checked against what the clients were
//! told: every invariant holds; every acknowledged reservation is as acknowledged (or
//! moved on as time allows: expired after its deadline, forgotten after retention);
//! an OVERLOADED answer changed nothing; each client's one operation answered
//! SERVICE_UNAVAILABLE happened wholly or not at all; per SKU, sold equals the units
//! of the commits that took effect and onHand + sold equals the stock put in.
//!
//! The run fails, never passes, when what it exists to test does not happen: no
//! OVERLOADED answer, no purge, or an armed fault that no answer ever reported.
//!
//! CI runs 12 seeds; `STOCKD_CSIM_SEEDS=N` runs N, `STOCKD_CSIM_SEED=S` runs seed S.
//! Thread interleavings are not replayable; the seed fixes the workload and faults.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use stockd_engine::SimFs;
use stockd_engine::*;

mod common;
use common::Rng;

const START: Millis = 1_700_000_000_000;
const SKUS: usize = 6;
const STOCK: u64 = 100_000;
const CLIENTS: usize = 12;
const RETENTION_SECS: u64 = 30;
const DEFAULT_SEEDS: u64 = 12;
const PHASES: usize = 6;
const OPS_PER_PHASE: usize = 120;

fn sku(i: usize) -> Sku {
    Sku::parse(&format!("csim-{i}"), "sku").unwrap()
}

fn sku_index(s: &Sku) -> usize {
    s.as_str().strip_prefix("csim-").and_then(|n| n.parse().ok()).unwrap()
}

fn key(o: &str) -> ReservationKey {
    ReservationKey::Order(OrderId::parse(o, "orderId").unwrap())
}

fn code(e: &EngineError) -> &'static str {
    e.code()
}

/// The last state of an order a client was told (an acknowledged answer).
#[derive(Debug, Clone)]
enum Known {
    /// Never reserved: the reserve was refused (OVERLOADED, or out of stock).
    Absent,
    Seen(Reservation),
}

/// The one operation a client had answered SERVICE_UNAVAILABLE.
#[derive(Debug, Clone)]
enum Doubt {
    Reserve { order: String, lines: Vec<(Sku, u64)> },
    Commit { order: String },
    Release { order: String },
    Expire { order: String },
    Extend { order: String },
}

impl Doubt {
    fn order(&self) -> &str {
        match self {
            Doubt::Reserve { order, .. }
            | Doubt::Commit { order }
            | Doubt::Release { order }
            | Doubt::Expire { order }
            | Doubt::Extend { order } => order,
        }
    }
}

#[derive(Debug, Default)]
struct Ledger {
    orders: BTreeMap<String, Known>,
    /// Units sold per SKU by commits that took effect (acknowledged or resolved).
    sold: BTreeMap<usize, u64>,
}

#[derive(Default)]
struct Counters {
    overloaded: AtomicU64,
    ops: AtomicU64,
}

struct Client {
    id: usize,
    rng: Rng,
    next: u64,
    ledger: Ledger,
    doubt: Option<Doubt>,
}

impl Client {
    fn pick(&mut self) -> Option<String> {
        let live: Vec<&String> = self
            .ledger
            .orders
            .iter()
            .filter(|(_, k)| matches!(k, Known::Seen(r) if r.status == ReservationStatus::Active))
            .map(|(o, _)| o)
            .collect();
        if live.is_empty() {
            return None;
        }
        Some(live[self.rng.below(live.len() as u64) as usize].clone())
    }

    fn record(&mut self, order: &str, r: Reservation) {
        self.ledger.orders.insert(order.to_owned(), Known::Seen(r));
    }

    fn record_commit(&mut self, order: &str, r: Reservation) {
        for l in &r.lines {
            *self.ledger.sold.entry(sku_index(&l.sku)).or_default() += l.committed;
        }
        self.record(order, r);
    }

    /// One operation. `Err(())` when it was answered SERVICE_UNAVAILABLE.
    fn step(&mut self, e: &BlockingEngine, counters: &Counters) -> Result<(), ()> {
        counters.ops.fetch_add(1, Ordering::Relaxed);
        let roll = self.rng.below(100);
        let overloaded = |err: &EngineError| {
            let o = code(err) == "OVERLOADED";
            if o {
                counters.overloaded.fetch_add(1, Ordering::Relaxed);
            }
            o
        };
        let target = if roll < 45 { None } else { self.pick() };
        let Some(order) = target else {
            // Reserve 1–3 distinct SKUs (usually on several shards).
            self.next += 1;
            let order = format!("c{}-{}", self.id, self.next);
            let n = self.rng.range(1, 3) as usize;
            let mut lines: Vec<(Sku, u64)> = Vec::new();
            while lines.len() < n {
                let s = sku(self.rng.below(SKUS as u64) as usize);
                if !lines.iter().any(|(x, _)| *x == s) {
                    lines.push((s, self.rng.range(1, 5)));
                }
            }
            let req = ReserveRequest {
                order_id: OrderId::parse(&order, "orderId").unwrap(),
                lines: lines.clone(),
                ttl_secs: Some(self.rng.range(5, 90)),
                metadata: None,
                placement: Default::default(),
            };
            return match e.reserve(req) {
                Ok(out) => {
                    self.record(&order, out.reservation);
                    Ok(())
                }
                Err(err) if code(&err) == "SERVICE_UNAVAILABLE" => {
                    self.doubt = Some(Doubt::Reserve { order, lines });
                    Err(())
                }
                Err(err) if overloaded(&err) || code(&err) == "INSUFFICIENT_INVENTORY" => {
                    self.ledger.orders.insert(order, Known::Absent);
                    Ok(())
                }
                Err(err) => panic!("client {}: reserve {order}: {err}", self.id),
            };
        };
        let lines: Vec<(Sku, u64)> = match &self.ledger.orders[&order] {
            Known::Seen(r) => r.lines.iter().map(|l| (l.sku.clone(), l.quantity)).collect(),
            Known::Absent => unreachable!("picked orders were seen"),
        };
        let (result, doubt) = match roll {
            45..=74 => {
                let partial = self.rng.chance(30);
                let quantities = partial.then(|| lines.iter().map(|(s, q)| (s.clone(), q / 2)).collect());
                (e.commit(key(&order), quantities), Doubt::Commit { order: order.clone() })
            }
            75..=86 => (e.release(key(&order), None), Doubt::Release { order: order.clone() }),
            87..=93 => (e.extend(key(&order), self.rng.range(5, 90)), Doubt::Extend { order: order.clone() }),
            _ => (e.expire(key(&order)), Doubt::Expire { order: order.clone() }),
        };
        match result {
            Ok(r) if r.status == ReservationStatus::Committed => self.record_commit(&order, r),
            Ok(r) => self.record(&order, r),
            Err(err) if code(&err) == "SERVICE_UNAVAILABLE" => {
                self.doubt = Some(doubt);
                return Err(());
            }
            // Nothing happened: the client's view stays as it was.
            Err(err) if overloaded(&err) => {}
            // Its deadline passed (the sweep, or this very call, expired it).
            Err(err) if code(&err) == "RESERVATION_EXPIRED" => {
                if let Ok(r) = e.get_reservation(key(&order)) {
                    assert_eq!(r.status, ReservationStatus::Expired, "client {}: {order}", self.id);
                    self.record(&order, r);
                }
            }
            Err(err) if code(&err) == "VALIDATION_ERROR" => {} // an extension past the cap
            // Expired by the sweep and forgotten after retention, unseen by this client:
            // `verify` checks its deadline was at least the retention ago.
            Err(err) if code(&err) == "RESERVATION_NOT_FOUND" => {}
            Err(err) => panic!("client {}: {order}: {err}", self.id),
        }
        Ok(())
    }
}

struct Sim {
    seed: u64,
    rng: Rng,
    fs: SimFs,
    dir: std::path::PathBuf,
    clock: ManualClock,
    shards: usize,
    queue: usize,
    faults: Arc<FaultInjector>,
    engine: Option<Engine>,
    clients: Vec<Client>,
    counters: Arc<Counters>,
    purged: u64,
    failures: u64,
    power_cuts: u64,
    /// Shard logs a reopen found ending in a torn (unsynced, partly kept) tail.
    torn_tails: u64,
    /// Power cuts that changed some WAL file (lost unsynced pages or length). Since WAL
    /// format version 3 a batch lost whole in preallocated space reads as the log's
    /// clean end, not a torn tail, so torn tails alone no longer show every loss.
    lossy_cuts: u64,
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut rng = Rng(seed);
        let shards = 2 + rng.below(3) as usize;
        let queue = 1 + rng.below(3) as usize;
        let clients = (0..CLIENTS)
            .map(|id| Client {
                id,
                rng: Rng(seed ^ (id as u64 + 1) << 32),
                next: 0,
                ledger: Ledger::default(),
                doubt: None,
            })
            .collect();
        let mut sim = Sim {
            seed,
            rng,
            fs: SimFs::new(),
            dir: std::path::PathBuf::from("/csim"),
            clock: ManualClock::new(START),
            shards,
            queue,
            faults: Arc::new(FaultInjector::new()),
            engine: None,
            clients,
            counters: Arc::new(Counters::default()),
            purged: 0,
            failures: 0,
            power_cuts: 0,
            torn_tails: 0,
            lossy_cuts: 0,
        };
        sim.open();
        let e = sim.engine().blocking();
        for i in 0..SKUS {
            e.set_item(SetItem::on_hand(sku(i), STOCK)).unwrap();
        }
        sim
    }

    fn ctx(&self) -> String {
        format!(
            "[seed {}; STOCKD_CSIM_SEED={} cargo test -p stockd-engine --test simulation_concurrent] ",
            self.seed, self.seed
        )
    }

    fn engine(&self) -> &Engine {
        self.engine.as_ref().expect("open")
    }

    /// Every WAL file's bytes, by path.
    fn wal_bytes(&self) -> BTreeMap<std::path::PathBuf, Vec<u8>> {
        let dd = DataDir::new(&self.dir);
        let mut out = BTreeMap::new();
        for shard in 0..self.shards {
            for entry in self.fs.read_dir(&dd.shard_wal(shard)).unwrap_or_default() {
                if let Ok(bytes) = self.fs.read(&entry.path) {
                    out.insert(entry.path, bytes.to_vec());
                }
            }
        }
        out
    }

    fn power_cut(&mut self) {
        let before = self.wal_bytes();
        self.fs.power_cut(self.rng.next());
        self.power_cuts += 1;
        self.lossy_cuts += u64::from(self.wal_bytes() != before);
    }

    fn open(&mut self) {
        self.faults = Arc::new(FaultInjector::new());
        let config = EngineConfig {
            shards: self.shards,
            retention_secs: RETENTION_SECS,
            expiry_interval: None,
            clock: Arc::new(self.clock.clone()),
            queue_capacity: self.queue,
            ..Default::default()
        };
        let storage = StorageConfig {
            segment_size: 8 * 1024,
            snapshot_every_records: 200,
            faults: Some(self.faults.clone()),
            fs: Arc::new(self.fs.clone()),
            ..StorageConfig::default()
        };
        let (engine, report) =
            Engine::open(&self.dir, config, storage).unwrap_or_else(|e| panic!("{}reopen: {e}", self.ctx()));
        self.torn_tails += report.shards.iter().filter(|s| s.truncated_tail.is_some()).count() as u64;
        self.engine = Some(engine);
    }

    /// Runs every client for `ops` operations (each stops at its first
    /// SERVICE_UNAVAILABLE) beside the clock-and-sweep driver. With `fault`, arms a
    /// failed sync a little into the phase. Returns whether any client was answered
    /// SERVICE_UNAVAILABLE.
    fn phase(&mut self, ops: usize, fault: Option<u64>) -> bool {
        let engine = self.engine().clone();
        let stop = Arc::new(AtomicBool::new(false));
        let driver = {
            let (engine, stop, clock) = (engine.clone(), stop.clone(), self.clock.clone());
            let mut rng = Rng(self.rng.next());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) && !engine.is_failed() {
                    clock.advance_millis(rng.range(0, 3_000));
                    let _ = engine.blocking().expire_due();
                    let _ = engine.blocking().reconcile();
                    std::thread::sleep(Duration::from_micros(rng.range(100, 2_000)));
                }
            })
        };
        let armed = fault.map(|n| (self.rng.range(1, ops as u64 / 2) as usize, n));
        let faults = self.faults.clone();
        let counters = self.counters.clone();
        let clients: Vec<Client> = std::mem::take(&mut self.clients);
        let handles: Vec<_> = clients
            .into_iter()
            .map(|mut c| {
                let (engine, faults, counters) = (engine.clone(), faults.clone(), counters.clone());
                std::thread::spawn(move || {
                    let e = engine.blocking();
                    for i in 0..ops {
                        if c.id == 0 && armed.is_some_and(|(at, _)| at == i) {
                            faults.fail_sync_after(armed.unwrap().1);
                        }
                        if c.step(&e, &counters).is_err() {
                            break;
                        }
                    }
                    c
                })
            })
            .collect();
        self.clients = handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect();
        stop.store(true, Ordering::Relaxed);
        driver.join().unwrap();
        self.clients.iter().any(|c| c.doubt.is_some())
    }

    fn run(mut self) -> String {
        for p in 0..PHASES {
            let fault = self.rng.chance(60).then(|| self.rng.below(6));
            let failed = self.phase(OPS_PER_PHASE, fault);
            let ctx = self.ctx();
            match fault {
                Some(_) => {
                    // The armed fault must show as a failed answer.
                    assert!(failed, "{ctx}phase {p}: a failed sync was armed but no answer failed");
                    self.failures += 1;
                    let engine = self.engine.take().unwrap();
                    assert!(engine.is_failed(), "{ctx}SERVICE_UNAVAILABLE but the engine is not failed");
                    engine.shutdown();
                    drop(engine);
                    self.power_cut();
                }
                None => {
                    assert!(!failed, "{ctx}phase {p}: SERVICE_UNAVAILABLE with no fault armed");
                    self.engine.take().unwrap().shutdown();
                    if self.rng.chance(50) {
                        self.power_cut();
                    }
                }
            }
            self.open();
            self.verify();
        }
        self.engine().shutdown();
        let ctx = self.ctx();
        let overloaded = self.counters.overloaded.load(Ordering::Relaxed);
        assert!(overloaded > 0, "{ctx}no request was ever refused as OVERLOADED: the queues never filled");
        format!(
            "seed {}: {} shards, queues of {}, {} ops, {} OVERLOADED, {} purged, {} failed syncs, {} power cuts, {} torn tails, {} lossy cuts",
            self.seed,
            self.shards,
            self.queue,
            self.counters.ops.load(Ordering::Relaxed),
            overloaded,
            self.purged,
            self.failures,
            self.power_cuts,
            self.torn_tails,
            self.lossy_cuts
        )
    }

    /// After a reopen: everything each client was told holds, as time allows.
    fn verify(&mut self) {
        let ctx = self.ctx();
        let engine = self.engine().clone();
        let e = engine.blocking();
        e.check_invariants().unwrap_or_else(|err| panic!("{ctx}invariants after recovery: {err}"));
        let now = self.clock.now();
        let forgotten = |finished: Millis| finished <= now.saturating_sub(RETENTION_SECS * 1000);
        let mut reserved: BTreeMap<usize, u64> = BTreeMap::new();
        for c in self.clients.iter_mut() {
            let doubt = c.doubt.take();
            for (order, known) in c.ledger.orders.clone() {
                let got = e.get_reservation(key(&order)).ok();
                let in_doubt = doubt.as_ref().is_some_and(|d| d.order() == order);
                let ctx = format!("{ctx}client {} {order}: told {known:?}, recovered {got:?}, doubt {doubt:?}", c.id);
                let Known::Seen(told) = &known else {
                    assert!(got.is_none() || in_doubt, "{ctx}: refused, yet it exists");
                    continue;
                };
                let as_told = |g: &Reservation| {
                    g.status == told.status
                        && g.lines == told.lines
                        && (g.status != ReservationStatus::Active || g.expires_at == told.expires_at)
                };
                let ok = match (&got, told.status) {
                    (Some(g), _) if as_told(g) => true,
                    // Time moved: an ACTIVE one expired after its deadline, perhaps
                    // already forgotten.
                    (Some(g), ReservationStatus::Active) if told.expires_at <= now => {
                        g.status == ReservationStatus::Expired && g.lines == told.lines
                    }
                    (None, ReservationStatus::Active) => forgotten(told.expires_at),
                    (None, _) => told.finished_at.is_some_and(forgotten),
                    _ => false,
                };
                let ok = ok || (in_doubt && doubt_explains(doubt.as_ref().unwrap(), told, got.as_ref(), now));
                assert!(ok, "{ctx}");
                if let Some(g) = got {
                    if in_doubt && g.status == ReservationStatus::Committed && told.status == ReservationStatus::Active
                    {
                        c.record_commit(&order, g.clone());
                    } else {
                        c.record(&order, g.clone());
                    }
                    if g.status == ReservationStatus::Active {
                        for l in &g.lines {
                            *reserved.entry(sku_index(&l.sku)).or_default() += l.quantity;
                        }
                    }
                } else {
                    c.ledger.orders.remove(&order); // forgotten by a retention purge
                    self.purged += 1;
                }
            }
            if let Some(Doubt::Reserve { order, lines }) = &doubt {
                if !c.ledger.orders.contains_key(order) {
                    match e.get_reservation(key(order)) {
                        Ok(g) => {
                            assert_eq!(
                                g.lines.iter().map(|l| (l.sku.clone(), l.quantity)).collect::<Vec<_>>(),
                                *lines,
                                "{ctx}in-doubt reserve {order}"
                            );
                            if g.status == ReservationStatus::Active {
                                for l in &g.lines {
                                    *reserved.entry(sku_index(&l.sku)).or_default() += l.quantity;
                                }
                            }
                            c.record(order, g);
                        }
                        Err(_) => {
                            c.ledger.orders.insert(order.clone(), Known::Absent);
                        }
                    }
                }
            }
        }
        for i in 0..SKUS {
            let item = e.get_item(sku(i)).unwrap();
            let sold: u64 = self.clients.iter().map(|c| c.ledger.sold.get(&i).copied().unwrap_or(0)).sum();
            assert_eq!(item.sold, sold, "{ctx}{}: sold vs the commits that took effect", sku(i));
            assert_eq!(item.on_hand + item.sold, STOCK, "{ctx}{}: units appeared or vanished", sku(i));
            assert_eq!(item.reserved, reserved.get(&i).copied().unwrap_or(0), "{ctx}{}: reserved", sku(i));
        }
    }
}

/// Whether the in-doubt operation, done wholly, turns `told` into `got`.
fn doubt_explains(doubt: &Doubt, told: &Reservation, got: Option<&Reservation>, now: Millis) -> bool {
    let Some(g) = got else {
        return false;
    };
    let same = g.lines.iter().zip(&told.lines).all(|(a, b)| a.sku == b.sku && a.quantity == b.quantity);
    same && match doubt {
        Doubt::Commit { .. } => g.status == ReservationStatus::Committed,
        Doubt::Release { .. } => g.status == ReservationStatus::Released,
        Doubt::Expire { .. } => g.status == ReservationStatus::Expired,
        // A new deadline, now + ttl: later or earlier than the one it replaced.
        Doubt::Extend { .. } => {
            g.status == ReservationStatus::Active || (g.status == ReservationStatus::Expired && g.expires_at <= now)
        }
        Doubt::Reserve { .. } => false,
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| v.parse().unwrap_or_else(|_| panic!("{name}={v} is not a number")))
}

#[test]
fn concurrent_clients_on_full_queues_with_purges_and_power_cuts_lose_nothing_acknowledged() {
    let seeds: Vec<u64> = match env_u64("STOCKD_CSIM_SEED") {
        Some(s) => vec![s],
        None => (0..env_u64("STOCKD_CSIM_SEEDS").unwrap_or(DEFAULT_SEEDS)).map(|i| 0xc0c0_0000 + i).collect(),
    };
    let (mut purged, mut lossy) = (0, 0);
    let count = |summary: &str, what: &str| {
        summary.split(", ").find_map(|p| p.strip_suffix(what)?.parse::<u64>().ok()).unwrap_or(0)
    };
    for seed in seeds {
        let summary = Sim::new(seed).run();
        println!("{summary}");
        purged += count(&summary, " purged");
        lossy += count(&summary, " lossy cuts");
    }
    assert!(purged > 0, "no finished reservation was ever purged: the retention path did not run");
    assert!(lossy > 0, "no power cut ever lost an unsynced WAL page or length: the cuts lost nothing unsynced");
}
