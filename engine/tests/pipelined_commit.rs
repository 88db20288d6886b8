//! The pipelined group commit (issue 17, `shard.rs`): a shard applies batch N+1 while
//! its syncer thread makes batch N durable, and releases every answer only once the
//! sync covering it and every record applied before it is done (and, replicated,
//! confirmed). A filesystem wrapper over `SimFs` holds WAL fdatasyncs at a gate, so
//! the tests can look at the engine while a sync is in progress, make it fail, or cut
//! the power under it.

use parking_lot::{Condvar, Mutex};
use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use stockd_engine::*;
use stockd_engine::{Confirmation, Replicator, ShippedRecord, SimFs};
use stockd_fs::{DirEntry, FileBytes, Fs, FsFile, FsLock, Metadata};

mod common;
use common::{key, order, sku, stock, Rng};

/// How long a test waits for something the engine must do before it calls it a
/// failure (a bound on a hang, never a speed requirement).
const PATIENCE: Duration = Duration::from_secs(30);

/// Waits until `f` holds; panics with `what` if it never does.
fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < PATIENCE, "gave up waiting: {what}");
        std::thread::yield_now();
    }
}

// ---- a gate on WAL fdatasyncs -------------------------------------------------------

#[derive(Default)]
struct GateState {
    hold: bool,
    fail: bool,
    /// Syncs waiting at the gate right now.
    waiting: usize,
}

/// Holds every WAL segment `sync_data` while closed; lets them through (or fails
/// them) when opened.
#[derive(Default)]
struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

impl Gate {
    fn hold(&self) {
        self.state.lock().hold = true;
    }

    /// Opens the gate: held syncs (and every later one) go on, or fail with an I/O
    /// error.
    fn open(&self, fail: bool) {
        let mut s = self.state.lock();
        s.hold = false;
        s.fail = fail;
        self.changed.notify_all();
    }

    fn waiting(&self) -> usize {
        self.state.lock().waiting
    }

    fn pass(&self) -> io::Result<()> {
        let mut s = self.state.lock();
        if s.hold {
            s.waiting += 1;
            while s.hold {
                self.changed.wait(&mut s);
            }
            s.waiting -= 1;
        }
        if s.fail {
            return Err(io::Error::other("injected fault: the WAL fdatasync failed (test gate)"));
        }
        Ok(())
    }
}

/// Opens the gate (failing what it held) when the test ends, a failed assertion
/// included: an engine dropped with a sync held at the gate would wait for it forever.
struct OpenOnDrop(Arc<GateHandle>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0 .0.open(true);
        }
    }
}

#[derive(Debug)]
struct GateFs {
    inner: SimFs,
    gate: Arc<GateHandle>,
}

/// `Gate` behind a Debug-able handle (the `Fs` traits want Debug).
struct GateHandle(Gate);

impl std::fmt::Debug for GateHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gate")
    }
}

#[derive(Debug)]
struct GateFile {
    inner: Box<dyn FsFile>,
    gate: Option<Arc<GateHandle>>,
}

impl FsFile for GateFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf)
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.inner.write_at(offset, buf)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        if let Some(g) = &self.gate {
            g.0.pass()?;
        }
        self.inner.sync_data()
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read_at(offset, buf)
    }
}

impl GateFs {
    fn wrap(&self, path: &Path, f: Box<dyn FsFile>) -> Box<dyn FsFile> {
        let wal = path.extension().is_some_and(|e| e == "wal");
        Box::new(GateFile { inner: f, gate: wal.then(|| self.gate.clone()) })
    }
}

impl Fs for GateFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir_all(path)
    }
    fn metadata(&self, path: &Path) -> io::Result<Metadata> {
        self.inner.metadata(path)
    }
    fn read_dir(&self, dir: &Path) -> io::Result<Vec<DirEntry>> {
        self.inner.read_dir(dir)
    }
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        Ok(self.wrap(path, self.inner.create_new(path)?))
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        Ok(self.wrap(path, self.inner.create(path)?))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        Ok(self.wrap(path, self.inner.open_append(path)?))
    }
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        self.inner.open_read(path)
    }
    fn read(&self, path: &Path) -> io::Result<FileBytes> {
        self.inner.read(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }
    fn try_lock(&self, path: &Path) -> io::Result<Option<FsLock>> {
        self.inner.try_lock(path)
    }
}

const DIR: &str = "/data";

fn config(shards: usize) -> EngineConfig {
    EngineConfig {
        shards,
        expiry_interval: None,
        clock: Arc::new(ManualClock::new(1_700_000_000_000)),
        ..Default::default()
    }
}

/// An engine on `fs` whose WAL syncs pass through a gate (open to begin with).
fn open_gated(fs: &SimFs, shards: usize) -> (Engine, Arc<GateHandle>) {
    let gate = Arc::new(GateHandle(Gate::default()));
    let gated = GateFs { inner: fs.clone(), gate: gate.clone() };
    let storage = StorageConfig { fs: Arc::new(gated), ..StorageConfig::default() };
    let (engine, _) = Engine::open(Path::new(DIR), config(shards), storage).unwrap();
    (engine, gate)
}

fn reopen(fs: &SimFs, shards: usize) -> Engine {
    let storage = StorageConfig { fs: Arc::new(fs.clone()), ..StorageConfig::default() };
    Engine::open(Path::new(DIR), config(shards), storage).unwrap_or_else(|e| panic!("reopen: {e}")).0
}

fn reserve_request(id: &str, s: &Sku, qty: u64) -> ReserveRequest {
    ReserveRequest {
        order_id: order(id),
        lines: vec![(s.clone(), qty)],
        ttl_secs: Some(600),
        metadata: None,
        placement: Placement::default(),
    }
}

/// A future polled by hand: the first poll sends its request to the shard; later
/// polls only look whether the answer was released.
struct Polled<'a, T> {
    future: Pin<Box<dyn Future<Output = T> + 'a>>,
    done: Option<T>,
}

impl<'a, T> Polled<'a, T> {
    fn start(future: impl Future<Output = T> + 'a) -> Polled<'a, T> {
        let mut p = Polled { future: Box::pin(future), done: None };
        p.poll();
        p
    }

    fn poll(&mut self) -> bool {
        if self.done.is_none() {
            if let Poll::Ready(v) = self.future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
                self.done = Some(v);
            }
        }
        self.done.is_some()
    }

    fn answered(&mut self) -> bool {
        self.poll()
    }

    fn wait(mut self) -> T {
        wait_until("an answer", || self.poll());
        self.done.take().unwrap()
    }
}

fn applied(engine: &Engine) -> u64 {
    engine.shard_status()[0].applied.load(Ordering::Acquire)
}

fn batches(engine: &Engine) -> u64 {
    engine.shard_status()[0].batches.load(Ordering::Acquire)
}

/// A write's sync is held; a read and a refusal that depend on it are applied (the
/// shard goes on: pipelined) but not answered. Returns them and the write.
#[allow(clippy::type_complexity)]
fn write_then_dependent_answers_while_its_sync_is_held<'a>(
    engine: &'a Engine,
    gate: &GateHandle,
    a: &Sku,
) -> (
    Polled<'a, Result<ReserveOutcome, EngineError>>,
    Polled<'a, Result<Item, EngineError>>,
    Polled<'a, Result<ReserveOutcome, EngineError>>,
) {
    gate.0.hold();
    let write = Polled::start(engine.reserve(reserve_request("o-1", a, 5)));
    wait_until("the write's sync reaches the gate", || gate.0.waiting() == 1);
    // Batch N's sync is in progress: the shard takes the next batches meanwhile.
    let before = batches(engine);
    let read = Polled::start(engine.get_item(a.clone()));
    wait_until("the read is applied while the write's sync is held", || batches(engine) > before);
    let applied_before = applied(engine);
    let before = batches(engine);
    let refused = Polled::start(engine.reserve(reserve_request("o-2", a, 1)));
    wait_until("the second reserve is applied while the write's sync is held", || batches(engine) > before);
    assert_eq!(applied(engine), applied_before, "the refused reserve changed nothing");
    let (mut write, mut read, mut refused) = (write, read, refused);
    assert!(!write.answered(), "the write was answered before its sync");
    assert!(!read.answered(), "a read of an un-synced write was answered before that write's sync");
    assert!(!refused.answered(), "a refusal caused by an un-synced write was answered before that write's sync");
    (write, read, refused)
}

#[test]
fn a_read_and_a_refusal_after_an_unsynced_write_wait_for_its_sync() {
    let fs = SimFs::new();
    let (engine, gate) = open_gated(&fs, 1);
    let _open = OpenOnDrop(gate.clone());
    let a = sku("A");
    stock(&engine, &a, 5);
    let (write, read, refused) = write_then_dependent_answers_while_its_sync_is_held(&engine, &gate, &a);
    gate.0.open(false);
    assert!(write.wait().unwrap().created);
    assert_eq!(read.wait().unwrap().reserved, 5, "the read saw the write it waited for");
    assert!(matches!(refused.wait(), Err(EngineError::InsufficientInventory { .. })));
    assert!(!engine.is_failed());
    engine.blocking().check_invariants().unwrap();
    engine.shutdown();
}

#[test]
fn when_the_sync_under_a_write_fails_the_read_and_refusal_after_it_fail_too() {
    let fs = SimFs::new();
    let (engine, gate) = open_gated(&fs, 1);
    let _open = OpenOnDrop(gate.clone());
    let a = sku("A");
    stock(&engine, &a, 5);
    let (write, read, refused) = write_then_dependent_answers_while_its_sync_is_held(&engine, &gate, &a);
    gate.0.open(true);
    // Nothing after the failed sync is acknowledged: not the write, not the read
    // that showed it, not the refusal it caused.
    assert!(matches!(write.wait(), Err(EngineError::Unavailable { .. })));
    match read.wait() {
        Err(EngineError::Unavailable { .. }) => {}
        other => panic!("a read of a write whose sync failed came back: {other:?}"),
    }
    match refused.wait() {
        Err(EngineError::Unavailable { .. }) => {}
        other => panic!("a refusal caused by a write whose sync failed came back: {other:?}"),
    }
    assert!(engine.is_failed(), "a failed sync fails the engine");
    assert!(matches!(engine.blocking().get_item(a.clone()), Err(EngineError::Unavailable { .. })));
    drop(engine);
    // The write was never acknowledged; whatever the disk kept, the state is whole.
    fs.power_cut_lose_unsynced();
    let engine = reopen(&fs, 1);
    assert_eq!(engine.blocking().get_item(a).unwrap().reserved, 0, "the unsynced write is gone");
    engine.blocking().check_invariants().unwrap();
    engine.shutdown();
}

/// Clients reserve and read on every shard while WAL syncs are held at the gate from
/// time to time; the power is cut while a sync is held (so at the cut there is always
/// a batch un-synced and later ones applied behind it). After recovery every
/// reservation acknowledged before the cut is there, and no read answered before the
/// cut shows more reserved than survived (reserved only grows in this workload).
#[test]
fn a_power_cut_under_the_pipeline_loses_nothing_acknowledged_and_no_read_saw_more() {
    const SHARDS: usize = 2;
    let skus: Vec<Sku> = (0..4).map(|i| sku(&format!("sku-{i}"))).collect();
    let rounds: u64 = std::env::var("STOCKD_PIPE_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(6);
    // Holds during which a shard applied more behind the held sync (pipelining seen).
    let mut applied_behind = 0;
    for round in 0..rounds {
        let seed = 0x5eed_0000 + round;
        let mut rng = Rng(seed);
        let fs = SimFs::new();
        let (engine, gate) = open_gated(&fs, SHARDS);
        let _open = OpenOnDrop(gate.clone());
        for s in &skus {
            stock(&engine, s, 1_000_000);
        }
        let acked: Arc<Mutex<Vec<String>>> = Default::default();
        let reads: Arc<Mutex<Vec<(usize, u64)>>> = Default::default();
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for t in 0..6 {
            let (engine, acked, stop, skus) = (engine.clone(), acked.clone(), stop.clone(), skus.clone());
            threads.push(std::thread::spawn(move || {
                for j in 0.. {
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    let id = format!("r{round}-t{t}-{j}");
                    if engine.blocking().reserve(reserve_request(&id, &skus[j % skus.len()], 1)).is_ok() {
                        acked.lock().push(id);
                    }
                }
            }));
        }
        {
            let (engine, reads, stop, skus) = (engine.clone(), reads.clone(), stop.clone(), skus.clone());
            threads.push(std::thread::spawn(move || {
                for j in 0.. {
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    let i = j % skus.len();
                    if let Ok(item) = engine.blocking().get_item(skus[i].clone()) {
                        reads.lock().push((i, item.reserved));
                    }
                }
            }));
        }
        // Some held syncs along the way, then the cut under a held one.
        let holds = rng.range(1, 3);
        for h in 0..=holds {
            let target = acked.lock().len() + rng.range(10, 120) as usize;
            wait_until("clients make progress", || acked.lock().len() >= target);
            gate.0.hold();
            wait_until("a sync reaches the gate", || gate.0.waiting() >= 1);
            // Let the shards apply more behind the held sync.
            let applied_at_hold: u64 = engine.shard_status().iter().map(|s| s.applied.load(Ordering::Acquire)).sum();
            // (Best effort: every client may be waiting on the held batch already.)
            let more = rng.range(1, 3);
            let start = Instant::now();
            let total = || engine.shard_status().iter().map(|s| s.applied.load(Ordering::Acquire)).sum::<u64>();
            while total() < applied_at_hold + more && start.elapsed() < Duration::from_millis(500) {
                std::thread::yield_now();
            }
            applied_behind += u64::from(total() > applied_at_hold);
            if h < holds {
                gate.0.open(false);
            }
        }
        // What was answered before the cut.
        let acked_before: Vec<String> = acked.lock().clone();
        let reads_before: Vec<(usize, u64)> = reads.lock().clone();
        fs.power_cut(seed);
        // The held sync goes on into a dead disk: it fails, and the engine with it.
        gate.0.open(false);
        wait_until("the engine fails after the power cut", || engine.is_failed());
        stop.store(true, Ordering::Release);
        for t in threads {
            t.join().unwrap();
        }
        drop(engine);
        let engine = reopen(&fs, SHARDS);
        let e = engine.blocking();
        assert!(!acked_before.is_empty());
        for id in &acked_before {
            if let Err(err) = e.get_reservation(key(id)) {
                panic!(
                    "round {round} (seed {seed}): reservation {id} was acknowledged before the cut and is lost: {err}"
                );
            }
        }
        let reserved: Vec<u64> = skus.iter().map(|s| e.get_item(s.clone()).unwrap().reserved).collect();
        for (i, r) in &reads_before {
            assert!(
                *r <= reserved[*i],
                "round {round} (seed {seed}): a read answered before the cut showed {r} reserved of {}, only {} survived",
                skus[*i],
                reserved[*i]
            );
        }
        e.check_invariants().unwrap();
        engine.shutdown();
    }
    assert!(applied_behind > 0, "no shard ever applied a batch while a sync was held: the test saw no pipelining");
}

// ---- replicated: batch N+1 applied while N's confirmation is pending ---------------

/// A replicated log whose `confirm` waits for a permit from the test.
#[derive(Default)]
struct HeldLog {
    shipped: Mutex<Vec<ShippedRecord>>,
    permits: Mutex<u64>,
    changed: Condvar,
    /// `confirm` calls waiting for a permit, and the LSNs confirms were asked for.
    waiting: AtomicU64,
    asked: Mutex<Vec<u64>>,
}

/// Lets every confirm through when the test ends, a failed assertion included.
struct PermitOnDrop(Arc<HeldLog>);

impl Drop for PermitOnDrop {
    fn drop(&mut self) {
        self.0.permit(u64::MAX / 2);
    }
}

impl HeldLog {
    fn permit(&self, n: u64) {
        *self.permits.lock() += n;
        self.changed.notify_all();
    }
}

impl Replicator for HeldLog {
    fn ship(&self, _shard: usize, records: &[ShippedRecord]) {
        self.shipped.lock().extend_from_slice(records);
    }
    fn confirm(&self, _shard: usize, lsn: u64, _timeout: Duration) -> Confirmation {
        self.asked.lock().push(lsn);
        let mut permits = self.permits.lock();
        self.waiting.fetch_add(1, Ordering::AcqRel);
        while *permits == 0 {
            self.changed.wait(&mut permits);
        }
        *permits -= 1;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        Confirmation::Confirmed
    }
}

#[test]
fn replicated_batch_n_plus_1_is_applied_while_n_is_unconfirmed_and_answers_come_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(HeldLog::default());
    let storage = StorageConfig { replicator: Some(log.clone() as Arc<dyn Replicator>), ..Default::default() };
    let (engine, _) = Engine::open(dir.path(), config(1), storage).unwrap();
    let _permit = PermitOnDrop(log.clone());
    let a = sku("A");
    log.permit(1);
    stock(&engine, &a, 10);
    assert_eq!(log.shipped.lock().len(), 1);

    // Batch N: its confirmation is asked for and held.
    let first = Polled::start(engine.reserve(reserve_request("o-1", &a, 4)));
    wait_until("batch N's confirm is asked for", || log.waiting.load(Ordering::Acquire) == 1);
    let n_lsn = *log.asked.lock().last().unwrap();
    assert_eq!(n_lsn, 2);
    // Batch N+1 is applied (and appended) meanwhile.
    let applied_before = applied(&engine);
    let second = Polled::start(engine.reserve(reserve_request("o-2", &a, 3)));
    wait_until("batch N+1 is applied while N's confirmation is pending", || applied(&engine) > applied_before);
    let (mut first, mut second) = (first, second);
    assert!(!first.answered(), "batch N answered before its confirmation");
    assert!(!second.answered(), "batch N+1 answered before its confirmation");
    assert_eq!(log.shipped.lock().len(), 2, "N+1 is shipped only with the next sync");

    // N's confirmation: N is answered; N+1 still waits for its own.
    log.permit(1);
    wait_until("batch N is answered once confirmed", || first.answered());
    wait_until("batch N+1's confirm is asked for", || log.waiting.load(Ordering::Acquire) == 1);
    assert!(!second.answered(), "batch N+1 answered on batch N's confirmation");
    assert_eq!(*log.asked.lock().last().unwrap(), 3, "N+1's confirm covers its own record");
    assert_eq!(log.shipped.lock().len(), 3);
    log.permit(1);
    assert!(first.wait().unwrap().created);
    let r2 = second.wait().unwrap();
    assert!(r2.created);
    // Everything else confirms at once from here.
    log.permit(1_000_000);
    assert_eq!(engine.blocking().get_item(a).unwrap().reserved, 7);
    assert!(!engine.is_failed());
    engine.shutdown();
}
