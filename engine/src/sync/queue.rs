//! `BoundedQueue`: many producers, one consumer (a shard thread), a hard capacity.
//!
//! Producers never block: `try_push` on a full queue returns `Full` at once, which the
//! engine answers as OVERLOADED (explicit backpressure, not a growing backlog).
//! Two capacity classes: client requests may fill `capacity`; the follow-up steps of
//! a flow already under way (activate, roll back, settle holds, sweeps) use
//! `try_push_reserved`, which may also use `reserve` more slots, so a flood of client
//! requests can never keep a flow from finishing. The
//! consumer takes everything waiting, up to a batch limit, in one lock. `close` stops
//! new pushes; the consumer still drains what was accepted before it, then stops.
//! Promises (checked by the loom models in loom-tests/): every accepted item is popped
//! exactly once, in push order; a consumer waiting on an empty queue is always woken
//! by a push or a close (no lost wake-up).

use super::{lock, Condvar, Mutex};
use std::collections::VecDeque;

pub struct BoundedQueue<T> {
    state: Mutex<State<T>>,
    not_empty: Condvar,
    capacity: usize,
    /// Extra slots only `try_push_reserved` may use.
    reserve: usize,
}

struct State<T> {
    items: VecDeque<T>,
    closed: bool,
    /// The consumer is (about to be) blocked in `pop_batch` and no push notified it
    /// since: only then does a push pay for a notify.
    consumer_waiting: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum PushError<T> {
    /// At capacity: the item is handed back.
    Full(T),
    /// Closed: the item is handed back.
    Closed(T),
}

impl<T> BoundedQueue<T> {
    pub fn new(capacity: usize) -> BoundedQueue<T> {
        BoundedQueue::with_reserve(capacity, 0)
    }

    /// A queue whose client pushes stop at `capacity` and whose reserved pushes may
    /// use `reserve` more slots.
    pub fn with_reserve(capacity: usize, reserve: usize) -> BoundedQueue<T> {
        assert!(capacity > 0, "a queue needs room for one item");
        BoundedQueue {
            state: Mutex::new(State { items: VecDeque::new(), closed: false, consumer_waiting: false }),
            not_empty: Condvar::new(),
            capacity,
            reserve,
        }
    }

    /// Adds `item` unless the queue holds `capacity` items or is closed. Never
    /// blocks on capacity.
    pub fn try_push(&self, item: T) -> Result<(), PushError<T>> {
        self.push_within(item, self.capacity)
    }

    /// Adds `item` unless the queue holds `capacity + reserve` items or is closed:
    /// for the steps of flows already admitted, which client pushes cannot crowd out.
    pub fn try_push_reserved(&self, item: T) -> Result<(), PushError<T>> {
        self.push_within(item, self.capacity + self.reserve)
    }

    fn push_within(&self, item: T, limit: usize) -> Result<(), PushError<T>> {
        let mut state = lock(&self.state);
        if state.closed {
            return Err(PushError::Closed(item));
        }
        if state.items.len() >= limit {
            return Err(PushError::Full(item));
        }
        state.items.push_back(item);
        debug_assert!(state.items.len() <= self.capacity + self.reserve);
        // The first push to a waiting consumer claims its wake-up: pushes after it,
        // before the consumer runs again, need no notify of their own (each is a
        // futex system call). A consumer that wakes to an empty queue (spuriously)
        // sets the flag again before it waits.
        let wake = std::mem::take(&mut state.consumer_waiting);
        drop(state);
        if wake {
            self.not_empty.notify_one();
        }
        Ok(())
    }

    /// Moves up to `max` items into `out`, waiting while the queue is empty. Returns
    /// false once the queue is closed and empty: the consumer should stop.
    pub fn pop_batch(&self, out: &mut Vec<T>, max: usize) -> bool {
        debug_assert!(max > 0);
        let mut state = lock(&self.state);
        while state.items.is_empty() {
            if state.closed {
                return false;
            }
            state.consumer_waiting = true;
            state = self.not_empty.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        let n = state.items.len().min(max);
        out.extend(state.items.drain(..n));
        true
    }

    /// Refuses every later push and wakes the consumer, which drains and stops.
    pub fn close(&self) {
        let mut state = lock(&self.state);
        state.closed = true;
        drop(state);
        self.not_empty.notify_one();
    }

    pub fn is_closed(&self) -> bool {
        lock(&self.state).closed
    }

    pub fn len(&self) -> usize {
        lock(&self.state).items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn reserve(&self) -> usize {
        self.reserve
    }
}
