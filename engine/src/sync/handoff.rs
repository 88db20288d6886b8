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
}

impl<T> Handoff<T> {
    pub fn new(depth: usize) -> Handoff<T> {
        assert!(depth > 0, "a handoff needs room for one item");
        Handoff {
            state: Mutex::new(State { items: VecDeque::new(), closed: false, busy: false }),
            changed: Condvar::new(),
            depth,
        }
    }

    /// Adds `item`, waiting while `depth` items wait already. After `close` the item
    /// is handed back.
    pub fn push(&self, item: T) -> Result<(), T> {
        let mut state = lock(&self.state);
        while state.items.len() >= self.depth && !state.closed {
            state = self.changed.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        if state.closed {
            return Err(item);
        }
        state.items.push_back(item);
        debug_assert!(state.items.len() <= self.depth);
        drop(state);
        self.changed.notify_all();
        Ok(())
    }

    /// Finishes what the consumer took before, then moves every waiting item into
    /// `out`, waiting while there is none. False once closed and empty: stop.
    pub fn pop_all(&self, out: &mut Vec<T>) -> bool {
        let mut state = lock(&self.state);
        state.busy = false;
        self.changed.notify_all();
        while state.items.is_empty() {
            if state.closed {
                return false;
            }
            state = self.changed.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        out.extend(state.items.drain(..));
        state.busy = true;
        drop(state);
        self.changed.notify_all();
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
            state = self.changed.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        out.extend(state.items.drain(..));
        drop(state);
        self.changed.notify_all();
        true
    }

    /// The consumer finished what it took (it is about to stop, or to wait).
    pub fn done(&self) {
        lock(&self.state).busy = false;
        self.changed.notify_all();
    }

    /// Waits until every item pushed so far was taken and finished, or the handoff
    /// closed.
    pub fn wait_idle(&self) {
        let mut state = lock(&self.state);
        while (state.busy || !state.items.is_empty()) && !state.closed {
            state = self.changed.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Refuses every later push; the consumer drains what is waiting, then stops.
    pub fn close(&self) {
        lock(&self.state).closed = true;
        self.changed.notify_all();
    }
}
