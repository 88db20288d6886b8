//! The engine's cross-thread primitives, and the shim they are built on.
//!
//! Everything that hands work or answers between threads goes through this module:
//! the bounded request queue of each shard (`queue`) and the one-shot reply slot
//! (`reply`). They use `std::sync` normally and `loom::sync` when built with
//! `RUSTFLAGS="--cfg stockd_loom"`, so loom-tests/ can explore every interleaving of
//! the real code. The cfg is ours (not `loom`), so a loom build does not switch
//! tokio, crossbeam or any other crate into its own loom mode.

pub mod handoff;
pub mod queue;
pub mod reply;

// Only the primitives loom must see are switched; `Arc` stays `std`'s everywhere.
#[cfg(stockd_loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};
#[cfg(not(stockd_loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};

/// Locks, treating a poisoned lock as still usable: every critical section here
/// leaves the protected state consistent before anything can panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Thread spawning through the shim, so loom can schedule shard threads too.
pub(crate) mod thread {
    #[cfg(stockd_loom)]
    pub use loom::thread::JoinHandle;
    #[cfg(not(stockd_loom))]
    pub use std::thread::JoinHandle;

    pub fn spawn_named<F: FnOnce() + Send + 'static>(name: String, f: F) -> JoinHandle<()> {
        #[cfg(stockd_loom)]
        {
            let _ = name;
            loom::thread::spawn(f)
        }
        #[cfg(not(stockd_loom))]
        {
            std::thread::Builder::new().name(name).spawn(f).expect("spawn a thread")
        }
    }
}
