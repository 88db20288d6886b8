//! Models of the queue and the reply slot on their own.
#![cfg(stockd_loom)]

use loom::thread;
use std::sync::Arc;
use stockd_engine::internals::{reply_channel, Canceled};
use stockd_engine::internals::{BoundedQueue, PushError};

/// Two producers and a consumer: every accepted item is popped exactly once, each
/// producer's items in order, and the consumer is always woken (else loom reports a
/// deadlock).
#[test]
fn queue_loses_no_item_and_no_wakeup() {
    loom::model(|| {
        let q = Arc::new(BoundedQueue::new(2));
        let producers: Vec<_> = (0..2u32)
            .map(|p| {
                let q = q.clone();
                thread::spawn(move || {
                    let mut accepted = Vec::new();
                    for i in 0..2u32 {
                        match q.try_push(p * 10 + i) {
                            Ok(()) => accepted.push(p * 10 + i),
                            Err(PushError::Full(_)) => {}
                            Err(PushError::Closed(_)) => panic!("closed before close()"),
                        }
                    }
                    accepted
                })
            })
            .collect();
        let consumer = {
            let q = q.clone();
            thread::spawn(move || {
                let mut got = Vec::new();
                let mut batch = Vec::new();
                while q.pop_batch(&mut batch, 8) {
                    got.append(&mut batch);
                }
                got
            })
        };
        let mut accepted: Vec<u32> = producers.into_iter().flat_map(|p| p.join().unwrap()).collect();
        q.close();
        let got = consumer.join().unwrap();
        for p in 0..2 {
            let mine: Vec<_> = got.iter().filter(|v| *v / 10 == p).collect();
            assert!(mine.windows(2).all(|w| w[0] < w[1]), "producer {p} out of order: {got:?}");
        }
        let mut sorted = got.clone();
        sorted.sort();
        accepted.sort();
        assert_eq!(sorted, accepted, "accepted items lost or duplicated");
    });
}

/// A consumer blocked on an empty queue is woken by a push alone (no close to
/// rescue it): the lost-wake-up check.
#[test]
fn push_wakes_a_waiting_consumer() {
    loom::model(|| {
        let q = Arc::new(BoundedQueue::new(4));
        let q2 = q.clone();
        let consumer = thread::spawn(move || {
            let mut got = Vec::new();
            while got.len() < 2 {
                assert!(q2.pop_batch(&mut got, 4), "closed unexpectedly");
            }
            got
        });
        let q3 = q.clone();
        let producer = thread::spawn(move || q3.try_push(1).unwrap());
        q.try_push(2).unwrap();
        producer.join().unwrap();
        let mut got = consumer.join().unwrap();
        got.sort();
        assert_eq!(got, vec![1, 2]);
    });
}

/// A full queue refuses at once and hands the item back; room frees up after a pop.
#[test]
fn queue_backpressure_is_immediate() {
    loom::model(|| {
        let q = Arc::new(BoundedQueue::new(1));
        q.try_push(1).unwrap();
        let q2 = q.clone();
        let producer = thread::spawn(move || match q2.try_push(2) {
            Ok(()) => true,
            Err(PushError::Full(2)) => false,
            Err(e) => panic!("unexpected {e:?}"),
        });
        let mut batch = Vec::new();
        assert!(q.pop_batch(&mut batch, 4));
        let second_in = producer.join().unwrap();
        if second_in {
            // It raced in after the pop (or was popped with it).
            if batch.len() == 1 {
                assert!(q.pop_batch(&mut batch, 4));
            }
            assert_eq!(batch, vec![1, 2]);
        } else {
            assert_eq!(batch, vec![1]);
        }
        assert!(q.len() <= q.capacity());
    });
}

/// Close racing a push: an accepted item is still drained; a refused one is handed
/// back as Closed; the consumer stops (no hang).
#[test]
fn close_while_pushing_drains_what_was_accepted() {
    loom::model(|| {
        let q = Arc::new(BoundedQueue::new(4));
        let q2 = q.clone();
        let producer = thread::spawn(move || q2.try_push(7).is_ok());
        let q3 = q.clone();
        let consumer = thread::spawn(move || {
            let mut got = Vec::new();
            let mut batch = Vec::new();
            while q3.pop_batch(&mut batch, 4) {
                got.append(&mut batch);
            }
            got
        });
        q.close();
        let accepted = producer.join().unwrap();
        let got = consumer.join().unwrap();
        assert_eq!(got == vec![7], accepted, "accepted={accepted} got={got:?}");
        assert!(matches!(q.try_push(8), Err(PushError::Closed(8))));
    });
}

/// The receiver gets the value whichever of send and first poll runs first.
#[test]
fn reply_is_never_lost() {
    loom::model(|| {
        let (tx, rx) = reply_channel::<u32>();
        let sender = thread::spawn(move || tx.send(42));
        assert_eq!(loom::future::block_on(rx), Ok(42));
        sender.join().unwrap();
    });
}

/// A sender dropped without answering wakes the receiver with Canceled.
#[test]
fn dropped_sender_cancels() {
    loom::model(|| {
        let (tx, rx) = reply_channel::<u32>();
        let sender = thread::spawn(move || drop(tx));
        assert_eq!(loom::future::block_on(rx), Err(Canceled));
        sender.join().unwrap();
    });
}

/// The two capacity classes: however client pushes interleave, they never take the
/// reserved slots, so a step of a flow under way is always accepted while they are
/// free, and client pushes still stop at the client capacity.
#[test]
fn client_pushes_never_take_the_reserved_slots() {
    loom::model(|| {
        let q = Arc::new(BoundedQueue::with_reserve(1, 1));
        let client = {
            let q = q.clone();
            thread::spawn(move || (0..2u32).filter(|i| q.try_push(*i).is_ok()).count())
        };
        let step = {
            let q = q.clone();
            thread::spawn(move || q.try_push_reserved(100).is_ok())
        };
        let accepted = client.join().unwrap();
        assert!(step.join().unwrap(), "a reserved push was refused while a reserved slot was free");
        assert!(accepted <= 1, "client pushes went past the client capacity");
        assert_eq!(q.len(), accepted + 1);
    });
}
