//! Models of the pipelined group commit (`shard.rs`): a real shard loop whose log
//! hands out a syncer (`CommandLog::syncer`), so a second thread makes batches durable
//! and releases their answers while the shard applies the next ones. Checked: no
//! answer (write or read) before the sync that covers it and everything applied
//! before it; answers in order; a failed sync acknowledges nothing after it; a clean
//! shutdown with batches in the pipe. And the hand-off on its own: exactly once, in
//! order, bounded, no lost wake-up.
#![cfg(stockd_loom)]

use loom::thread;
use std::future::Future;
use std::sync::{Arc, Mutex};
use stockd_engine::internals::{reply_channel, Handoff, Request, ShardHandle};
use stockd_engine::*;
use stockd_loom_tests::model::{one_write_during_shutdown, set_item, sku, spawn_shard};

/// What was appended (not yet synced) and what a sync made durable.
#[derive(Default)]
struct Disk {
    staged: Vec<String>,
    durable: Vec<String>,
    /// The next sync fails (and, fail-stop, every later one).
    fail: bool,
}

struct PipedLog(Arc<Mutex<Disk>>);
struct ModelSyncer(Arc<Mutex<Disk>>);

impl CommandLog for PipedLog {
    fn append(&mut self, _now: Millis, command: &Command) -> Result<(), EngineError> {
        if let Command::SetItem(set) = command {
            self.0.lock().unwrap().staged.push(set.sku.to_string());
        }
        Ok(())
    }
    fn sync(&mut self) -> Result<(), EngineError> {
        unreachable!("a pipelined log is synced by its syncer")
    }
    fn durable_lsn(&self) -> u64 {
        0
    }
    fn syncer(&mut self) -> Option<Box<dyn LogSyncer>> {
        Some(Box::new(ModelSyncer(self.0.clone())))
    }
}

impl LogSyncer for ModelSyncer {
    fn sync(&mut self) -> Result<u64, EngineError> {
        let mut disk = self.0.lock().unwrap();
        if disk.fail {
            return Err(EngineError::Unavailable { reason: "sync failed (model)".into() });
        }
        let mut staged = std::mem::take(&mut disk.staged);
        disk.durable.append(&mut staged);
        Ok(0)
    }
}

fn spawn(disk: Arc<Mutex<Disk>>) -> ShardHandle {
    spawn_shard(Box::new(PipedLog(disk)))
}

fn durable(disk: &Mutex<Disk>) -> Vec<String> {
    disk.lock().unwrap().durable.clone()
}

/// Two clients, each a write: every reply arrives only once its record is durable,
/// whichever batch (and whichever sync) it landed in.
#[test]
fn pipelined_no_reply_before_durability() {
    loom::model(|| {
        let disk = Arc::new(Mutex::new(Disk::default()));
        let shard = Arc::new(spawn(disk.clone()));
        let clients: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|name| {
                let (shard, disk) = (shard.clone(), disk.clone());
                thread::spawn(move || {
                    let (reply, rx) = reply_channel();
                    shard.send(0, Request::Command { command: set_item(name), reply }).unwrap();
                    loom::future::block_on(rx).unwrap().unwrap();
                    assert!(durable(&disk).iter().any(|s| s == name), "{name} answered before its sync");
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        shard.stop();
    });
}

/// A write, then a read of it, queued back to back (they may land in one batch or
/// in two, the read's applied while the write's sync runs): the read is answered
/// only after the write is durable, and after the write's own answer.
#[test]
fn a_read_after_a_write_waits_for_the_writes_sync() {
    loom::model(|| {
        let disk = Arc::new(Mutex::new(Disk::default()));
        let shard = spawn(disk.clone());
        let (w, wrx) = reply_channel();
        let (r, rrx) = reply_channel();
        shard.send(0, Request::Command { command: set_item("a"), reply: w }).unwrap();
        let query = Query::GetItem { sku: sku("a") };
        shard.send(0, Request::Query { query, reply: r }).unwrap();
        let read = loom::future::block_on(rrx).unwrap();
        assert!(read.is_ok(), "{read:?}");
        assert_eq!(durable(&disk), vec!["a".to_string()], "a read of an un-synced write was answered");
        let mut wrx = Box::pin(wrx);
        let waker = std::task::Waker::noop().clone();
        let polled = wrx.as_mut().poll(&mut std::task::Context::from_waker(&waker));
        assert!(polled.is_ready(), "the read was answered before the write it follows");
        shard.stop();
    });
}

/// The first sync fails: neither the write nor a read queued after it is ever
/// answered with success, and the shard reports failed.
#[test]
fn a_failed_sync_acknowledges_nothing_after_it() {
    loom::model(|| {
        let disk = Arc::new(Mutex::new(Disk { fail: true, ..Disk::default() }));
        let shard = spawn(disk.clone());
        let (w, wrx) = reply_channel();
        let (r, rrx) = reply_channel();
        shard.send(0, Request::Command { command: set_item("a"), reply: w }).unwrap();
        let query = Query::GetItem { sku: sku("a") };
        shard.send(0, Request::Query { query, reply: r }).unwrap();
        assert!(loom::future::block_on(wrx).unwrap().is_err(), "a write whose sync failed was acknowledged");
        assert!(loom::future::block_on(rrx).unwrap().is_err(), "a read after a failed sync was answered");
        assert!(shard.status.failed.load(std::sync::atomic::Ordering::Acquire));
        shard.stop();
    });
}

/// Shutdown racing a client: an accepted write is answered after its sync (the
/// syncer drains the pipe before the shard stops); nothing hangs.
#[test]
fn pipelined_shutdown_with_a_request_in_flight() {
    loom::model(|| {
        let disk = Arc::new(Mutex::new(Disk::default()));
        let shard = Arc::new(spawn(disk.clone()));
        let client = one_write_during_shutdown(shard.clone());
        shard.stop();
        let accepted = client.join().unwrap();
        assert_eq!(durable(&disk).len(), usize::from(accepted));
    });
}

/// The hand-off alone: a producer pushes three items through a depth-1 hand-off
/// (so it must block on a full one), then waits for the consumer to be idle; the
/// consumer takes batches. Every item arrives once, in order; `wait_idle` returns
/// only after the consumer finished all three; no wake-up is lost (else loom
/// reports a deadlock).
#[test]
fn handoff_exactly_once_in_order_and_idle_means_done() {
    loom::model(|| {
        let h = Arc::new(Handoff::new(1));
        let finished = Arc::new(Mutex::new(Vec::new()));
        let consumer = {
            let (h, finished) = (h.clone(), finished.clone());
            thread::spawn(move || {
                let mut batch = Vec::new();
                while h.pop_all(&mut batch) {
                    finished.lock().unwrap().append(&mut batch);
                }
            })
        };
        for i in 0..3u32 {
            h.push(i).unwrap();
        }
        h.wait_idle();
        assert_eq!(*finished.lock().unwrap(), vec![0, 1, 2], "idle before every item was finished");
        h.close();
        assert_eq!(h.push(9), Err(9), "a closed hand-off refuses");
        consumer.join().unwrap();
    });
}
