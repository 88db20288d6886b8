//! Models of a real shard loop (`stockd_engine::internals::ShardHandle`): replies only
//! after the sync that covers them, in order, and a clean shutdown with requests in
//! flight.
#![cfg(stockd_loom)]

use loom::thread;
use std::sync::{Arc, Mutex};
use stockd_engine::internals::{reply_channel, Request, ShardHandle};
use stockd_engine::*;
use stockd_loom_tests::model::{one_write_during_shutdown, set_item, spawn_shard};

/// A log that remembers what was appended and what a sync made durable.
#[derive(Default)]
struct ModelLog {
    appended: Vec<String>,
    durable: Arc<Mutex<Vec<String>>>,
}

impl CommandLog for ModelLog {
    fn append(&mut self, _now: Millis, command: &Command) -> Result<(), EngineError> {
        if let Command::SetItem(SetItem { sku, .. }) = command {
            self.appended.push(sku.to_string());
        }
        Ok(())
    }
    fn sync(&mut self) -> Result<(), EngineError> {
        self.durable.lock().unwrap().append(&mut self.appended);
        Ok(())
    }
    fn durable_lsn(&self) -> u64 {
        0
    }
}

fn spawn(durable: Arc<Mutex<Vec<String>>>) -> ShardHandle {
    spawn_shard(Box::new(ModelLog { appended: Vec::new(), durable }))
}

/// Two clients: each reply arrives only once its record is durable.
#[test]
fn no_reply_before_durability() {
    loom::model(|| {
        let durable = Arc::new(Mutex::new(Vec::new()));
        let shard = Arc::new(spawn(durable.clone()));
        let clients: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|sku| {
                let shard = shard.clone();
                let durable = durable.clone();
                thread::spawn(move || {
                    let (reply, rx) = reply_channel();
                    shard.send(0, Request::Command { command: set_item(sku), reply }).unwrap();
                    loom::future::block_on(rx).unwrap().unwrap();
                    assert!(durable.lock().unwrap().iter().any(|s| s == sku), "{sku} answered before its sync");
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        shard.stop();
    });
}

/// One client queues two commands: when the second is answered, the first already
/// is, and both are durable in order.
#[test]
fn replies_in_order() {
    loom::model(|| {
        let durable = Arc::new(Mutex::new(Vec::new()));
        let shard = spawn(durable.clone());
        let (r1, rx1) = reply_channel();
        let (r2, rx2) = reply_channel();
        shard.send(0, Request::Command { command: set_item("first"), reply: r1 }).unwrap();
        shard.send(0, Request::Command { command: set_item("second"), reply: r2 }).unwrap();
        loom::future::block_on(rx2).unwrap().unwrap();
        // The first reply must already be there: poll it once.
        let waker = futures_noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        let mut rx1 = Box::pin(rx1);
        assert!(rx1.as_mut().poll_ready(&mut cx), "second answered before first");
        assert_eq!(*durable.lock().unwrap(), vec!["first".to_string(), "second".to_string()]);
        shard.stop();
    });
}

/// Shutdown racing a request: an accepted request is answered (after its sync), a
/// refused one fails at once; nothing hangs.
#[test]
fn shutdown_with_a_request_in_flight() {
    loom::model(|| {
        let durable = Arc::new(Mutex::new(Vec::new()));
        let shard = Arc::new(spawn(durable.clone()));
        let client = one_write_during_shutdown(shard.clone());
        shard.stop();
        let accepted = client.join().unwrap();
        assert_eq!(durable.lock().unwrap().len(), usize::from(accepted));
    });
}

fn futures_noop_waker() -> std::task::Waker {
    std::task::Waker::noop().clone()
}

trait PollReady {
    fn poll_ready(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> bool;
}

impl<F: std::future::Future> PollReady for F {
    fn poll_ready(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> bool {
        self.poll(cx).is_ready()
    }
}
