//! `Handoff`: a bounded, blocking channel from one producer (a shard thread) to one
//! consumer (its syncer thread), the pipeline of the group commit (`shard.rs`).
//!
//! Unlike the request queue, a full handoff blocks the producer: it holds at most
//! `depth` items, so the shard runs at most that many batches ahead of the sync in
//! progress (memory and latency stay bounded; clients meet the full request queue,
//! OVERLOADED, instead). The consumer takes everything waiting in one lock
//! (`pop_all`), which is what lets it coalesce several batches into one sync; it stays
//! *busy* until its next `pop_all` (or `done`), so `wait_idle` returns only once every
//! item pushed before it was taken and finished. `close` lets the consumer drain what
//! was pushed and stop. Promises (checked by the loom models in loom-tests/): every
//! pushed item is popped exactly once, in push order; no wake-up is lost on either
//! side.

use super::{lock, Condvar, Mutex};
use std::collections::VecDeque;

pub struct Handoff<T> {
    state: Mutex<State<T>>,
    /// Signalled on every change: items pushed, taken, finished, or the close.
    changed: Condvar,
    depth: usize,
}

struct State<T> {
    items: VecDeque<T>,
    closed: bool,
    /// The consumer holds items it took and has not finished.
    busy: bool,
    /// Threads blocked on `changed` (or about to be): only then does a change pay
    /// for a notify (a futex wake is a system call even with nobody waiting).
    waiters: usize,
}

impl<T> State<T> {
    /// Waits on `changed` once, counted in `waiters`.
    fn wait<'a>(mut guard: super::MutexGuard<'a, State<T>>, changed: &Condvar) -> super::MutexGuard<'a, State<T>> {
        guard.waiters += 1;
        let mut guard = changed.wait(guard).unwrap_or_else(|p| p.into_inner());
        guard.waiters -= 1;
        guard
    }
}

impl<T> Handoff<T> {
    pub fn new(depth: usize) -> Handoff<T> {
        assert!(depth > 0, "a handoff needs room for one item");
        Handoff {
            state: Mutex::new(State { items: VecDeque::new(), closed: false, busy: false, waiters: 0 }),
            changed: Condvar::new(),
            depth,
        }
    }

    /// Adds `item`, waiting while `depth` items wait already. After `close` the item
    /// is handed back.
    pub fn push(&self, item: T) -> Result<(), T> {
        let mut state = lock(&self.state);
        while state.items.len() >= self.depth && !state.closed {
            state = State::wait(state, &self.changed);
        }
        if state.closed {
            return Err(item);
        }
        state.items.push_back(item);
        debug_assert!(state.items.len() <= self.depth);
        self.notify(state);
        Ok(())
    }

    /// Finishes what the consumer took before, then moves every waiting item into
    /// `out`, waiting while there is none. False once closed and empty: stop.
    pub fn pop_all(&self, out: &mut Vec<T>) -> bool {
        let mut state = lock(&self.state);
        state.busy = false;
        if state.waiters > 0 {
            self.changed.notify_all();
        }
        while state.items.is_empty() {
            if state.closed {
                return false;
            }
            state = State::wait(state, &self.changed);
        }
        out.extend(state.items.drain(..));
        state.busy = true;
        self.notify(state);
        true
    }

    /// Moves every waiting item into `out`, waiting while there is none, without
    /// finishing what the consumer holds (it goes on holding it). False once closed
    /// and empty.
    pub fn pop_more(&self, out: &mut Vec<T>) -> bool {
        let mut state = lock(&self.state);
        debug_assert!(state.busy, "pop_more extends a pop_all");
        while state.items.is_empty() {
            if state.closed {
                return false;
            }
            state = State::wait(state, &self.changed);
        }
        out.extend(state.items.drain(..));
        self.notify(state);
        true
    }

    /// The consumer finished what it took (it is about to stop, or to wait).
    pub fn done(&self) {
        let mut state = lock(&self.state);
        state.busy = false;
        self.notify(state);
    }

    /// Waits until every item pushed so far was taken and finished, or the handoff
    /// closed.
    pub fn wait_idle(&self) {
        let mut state = lock(&self.state);
        while (state.busy || !state.items.is_empty()) && !state.closed {
            state = State::wait(state, &self.changed);
        }
    }

    /// Refuses every later push; the consumer drains what is waiting, then stops.
    pub fn close(&self) {
        let mut state = lock(&self.state);
        state.closed = true;
        self.notify(state);
    }

    /// Releases the lock, then wakes every waiter if there is one: each rechecks its
    /// condition under the lock, and a thread that starts waiting later counts itself
    /// in `waiters` under the lock first, after checking that condition.
    fn notify(&self, state: super::MutexGuard<'_, State<T>>) {
        let wake = state.waiters > 0;
        drop(state);
        if wake {
            self.changed.notify_all();
        }
    }
}
