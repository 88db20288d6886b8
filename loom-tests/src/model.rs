//! What the shard models share: a shard over a model log, the write they send, and
//! the client that sends one write while the shard shuts down.

use loom::thread;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use stockd_engine::internals::{reply_channel, QueueCapacity, Request, ShardHandle, ShardShared};
use stockd_engine::*;

/// Shard 0 over `log`, with room for 4 clients and a manual clock.
pub fn spawn_shard(log: Box<dyn CommandLog>) -> ShardHandle {
    let shared = ShardShared {
        capacity: QueueCapacity::for_clients(4),
        clock: Arc::new(ManualClock::new(1_700_000_000_000)),
        engine_failed: Arc::new(AtomicBool::new(false)),
        orders: Arc::new(Default::default()),
        standby: Arc::new(AtomicBool::new(false)),
    };
    ShardHandle::spawn(0, ShardState::new(0), log, 0, &shared)
}

pub fn sku(s: &str) -> Sku {
    Sku::parse(s, "sku").unwrap()
}

/// The write the models send: create `s` with one unit.
pub fn set_item(s: &str) -> Command {
    Command::SetItem(SetItem::on_hand(sku(s), 1))
}

/// A client that sends one write while `shard` may be stopping. It answers `true`
/// when the write was accepted, after waiting for its acknowledgement (which must be
/// a success: accepted means answered after its sync), and `false` when it was refused
/// at once with SERVICE_UNAVAILABLE. Nothing else may happen, and nothing may hang.
pub fn one_write_during_shutdown(shard: Arc<ShardHandle>) -> thread::JoinHandle<bool> {
    thread::spawn(move || {
        let (reply, rx) = reply_channel();
        match shard.send(0, Request::Command { command: set_item("x"), reply }) {
            Ok(()) => {
                loom::future::block_on(rx).unwrap().unwrap();
                true
            }
            Err(e) => {
                assert_eq!(e.code(), "SERVICE_UNAVAILABLE");
                false
            }
        }
    })
}
