//! Fault injection for tests (of this crate and of the crates above it).
//!
//! A [`FaultInjector`] is shared through `WalConfig::faults`. Every segment-file write
//! and every fsync (segment files, the WAL directory and parents it creates) the writer
//! performs consults it first, before the call reaches `WalConfig::fs`. All state is
//! atomic, so tests may flip faults from another thread. It is kept, unchanged, for
//! the engine's and server's tests; `stockd_fs::SimFs` (the filesystem seam) is the
//! fuller tool: faults on every operation kind, operation counts and power cuts.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Sentinel for "no countdown armed".
const DISARMED: u64 = u64::MAX;

/// Switches that make the writer's I/O fail on demand. See the module docs.
#[derive(Debug)]
pub struct FaultInjector {
    fail_syncs: AtomicBool,
    fail_writes: AtomicBool,
    /// Syncs still allowed to succeed before one injected failure; `DISARMED` if off.
    sync_countdown: AtomicU64,
    syncs: AtomicU64,
}

impl Default for FaultInjector {
    fn default() -> Self {
        FaultInjector {
            fail_syncs: AtomicBool::new(false),
            fail_writes: AtomicBool::new(false),
            sync_countdown: AtomicU64::new(DISARMED),
            syncs: AtomicU64::new(0),
        }
    }
}

impl FaultInjector {
    /// A new injector with every fault off.
    pub fn new() -> FaultInjector {
        FaultInjector::default()
    }

    /// While `true`, every fsync fails with an injected I/O error.
    pub fn fail_syncs(&self, on: bool) {
        self.fail_syncs.store(on, Ordering::SeqCst);
    }

    /// While `true`, every segment write writes roughly the first half of its buffer
    /// and then fails with an injected I/O error (a torn write, like ENOSPC mid-write).
    pub fn fail_writes(&self, on: bool) {
        self.fail_writes.store(on, Ordering::SeqCst);
    }

    /// Counting from this call, let `n` syncs succeed and fail the `(n+1)`-th one
    /// (once; later syncs succeed unless another fault is armed).
    pub fn fail_sync_after(&self, n: u64) {
        self.sync_countdown.store(n, Ordering::SeqCst);
    }

    /// How many fsyncs were attempted so far (successful or failed, files and
    /// directory alike). `Durability::None` performs none.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::SeqCst)
    }

    /// Called before each fsync; `Err` means "pretend the fsync failed".
    pub(crate) fn before_sync(&self) -> io::Result<()> {
        self.syncs.fetch_add(1, Ordering::SeqCst);
        if self.fail_syncs.load(Ordering::SeqCst) {
            return Err(injected("fsync (fail_syncs)"));
        }
        let fire = self.sync_countdown.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| match c {
            DISARMED => None,
            0 => Some(DISARMED),
            c => Some(c - 1),
        }) == Ok(0);
        if fire {
            return Err(injected("fsync (fail_sync_after)"));
        }
        Ok(())
    }

    /// Called before each write; `Some(k)` means "write only `k` bytes, then fail".
    pub(crate) fn write_cut(&self, len: usize) -> Option<usize> {
        self.fail_writes.load(Ordering::SeqCst).then_some(len / 2)
    }
}

pub(crate) fn injected(what: &str) -> io::Error {
    io::Error::other(format!("injected fault: {what}"))
}
