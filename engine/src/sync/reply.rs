//! `reply_channel`: a one-shot slot that carries one answer from a shard thread back
//! to the caller, awaited as a `Future` (the async API) or through `block_on` (the
//! blocking API).
//!
//! Promises (checked in loom-tests/): the receiver sees the value sent, or `Canceled`
//! when the sender was dropped without sending; it is always woken (no lost wake-up),
//! whichever of `send` and the first `poll` runs first.

use super::{lock, Mutex};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

struct Slot<T> {
    value: Option<T>,
    sender_gone: bool,
    waker: Option<Waker>,
}

pub struct ReplySender<T> {
    slot: Arc<Mutex<Slot<T>>>,
    sent: bool,
}

pub struct ReplyReceiver<T> {
    slot: Arc<Mutex<Slot<T>>>,
}

/// The sender went away without answering (its thread stopped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Canceled;

pub fn reply_channel<T>() -> (ReplySender<T>, ReplyReceiver<T>) {
    let slot = Arc::new(Mutex::new(Slot { value: None, sender_gone: false, waker: None }));
    (ReplySender { slot: slot.clone(), sent: false }, ReplyReceiver { slot })
}

impl<T> ReplySender<T> {
    /// Delivers the answer and wakes the receiver. A receiver that is gone is fine.
    pub fn send(mut self, value: T) {
        let waker = {
            let mut slot = lock(&self.slot);
            slot.value = Some(value);
            slot.waker.take()
        };
        self.sent = true;
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Drop for ReplySender<T> {
    fn drop(&mut self) {
        if self.sent {
            return;
        }
        let waker = {
            let mut slot = lock(&self.slot);
            slot.sender_gone = true;
            slot.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Future for ReplyReceiver<T> {
    type Output = Result<T, Canceled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = lock(&self.slot);
        if let Some(v) = slot.value.take() {
            return Poll::Ready(Ok(v));
        }
        if slot.sender_gone {
            return Poll::Ready(Err(Canceled));
        }
        // Registered under the lock, so a concurrent `send` either sees this waker or
        // ran before the lock and left its value for the check above.
        match &slot.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => slot.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}
