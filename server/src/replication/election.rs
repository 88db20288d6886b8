//! Who leads: leadership is a lease kept alive through Kafka, and taken over through
//! the changelog's epoch markers.
//!
//! The leader writes a heartbeat (its epoch and node id) to the one-partition leader
//! topic every third of `--leader-session-timeout`. Every other node that has read the
//! whole changelog (a node far behind, an empty one, never claims) watches that topic:
//! when the current leadership (the highest epoch in the changelog) has not
//! heartbeated for a session timeout (plus a jitter of up to half of it, fixed per
//! node, so candidates rarely collide), it takes over. A consumer group was the first
//! design, but tansu 0.6's coordinator does not finish a rebalance that adds a member
//! to a stable group, so a standby that joined later was never given leadership; the
//! lease needs only produce and fetch.
//!
//! Heartbeats only decide *when* to try. Safety is the changelog's (see `view.rs`):
//! taking over, in order, reads the changelog to its end (every record applied),
//! takes the next epoch, writes an epoch marker to every partition, waits until the
//! reader has read back this node's marker as the current leadership of every
//! partition (a competing marker first means this node lost: it restarts as a
//! standby), switches the shipper on, and promotes the engine (it settles what the old
//! leader left half done, then serves). A leader that was only slow, and heartbeats
//! again after being replaced, is fenced by the new markers.

use super::changelog::{KafkaReplicator, Mode, Shared};
use super::frame::Stamp;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use stockd_engine::Engine;

pub struct ElectionConfig {
    pub brokers: String,
    pub leader_topic: String,
    pub changelog_topic: String,
    pub session_timeout: Duration,
    pub shared: Arc<Shared>,
    pub engine: Engine,
    pub replicator: Arc<KafkaReplicator>,
}

const HEARTBEAT_MAGIC: &[u8; 4] = b"SHB1";

/// A heartbeat: `SHB1`, the epoch (u64 big-endian), the node id.
fn heartbeat(stamp: &Stamp) -> Vec<u8> {
    let mut v = HEARTBEAT_MAGIC.to_vec();
    v.extend_from_slice(&stamp.epoch.to_be_bytes());
    v.extend_from_slice(stamp.node.as_bytes());
    v
}

fn read_heartbeat(bytes: &[u8]) -> Option<Stamp> {
    let rest = bytes.strip_prefix(HEARTBEAT_MAGIC)?;
    let epoch = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    let node = std::str::from_utf8(rest.get(8..)?).ok()?.to_owned();
    Some(Stamp { epoch, node })
}

/// A per-node delay in [0, half the session timeout), so that candidates that saw the
/// same silence rarely claim at the same moment.
fn jitter(node: &str, session: Duration) -> Duration {
    let h = node.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    session / 2 * (h % 1000) as u32 / 1000
}

/// Starts the election thread: heartbeats while leading, takes over on silence.
pub fn start(cfg: ElectionConfig) -> Result<std::thread::JoinHandle<()>, String> {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &cfg.brokers)
        .set("group.id", format!("stockd-lease-reader-{}", cfg.shared.node))
        .set("client.id", format!("stockd-{}-lease", cfg.shared.node))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("fetch.wait.max.ms", "100")
        .create()
        .map_err(|e| format!("leader topic consumer: {e}"))?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&cfg.leader_topic, 0, Offset::End).map_err(|e| e.to_string())?;
    consumer.assign(&tpl).map_err(|e| format!("leader topic assign: {e}"))?;
    let producer: ThreadedProducer<DefaultProducerContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &cfg.brokers)
        .set("client.id", format!("stockd-{}-heartbeat", cfg.shared.node))
        .set("linger.ms", "0")
        .set("message.timeout.ms", (cfg.session_timeout.as_millis().max(1000)).to_string())
        .create()
        .map_err(|e| format!("heartbeat producer: {e}"))?;
    std::thread::Builder::new()
        .name("stockd-election".into())
        .spawn(move || run(cfg, consumer, producer))
        .map_err(|e| e.to_string())
}

fn run(cfg: ElectionConfig, consumer: BaseConsumer, producer: ThreadedProducer<DefaultProducerContext>) {
    let shared = cfg.shared.clone();
    let session = cfg.session_timeout.max(Duration::from_secs(1));
    let patience = session + jitter(&shared.node, session);
    // Silence is counted from now: a node that just started has heard nobody yet.
    let mut last_heard = Instant::now();
    let mut last_beat = Instant::now() - session;
    let mut last_probe = Instant::now();
    while !shared.stop.load(Ordering::Acquire) {
        // Silence only counts while this node can hear the broker: unreachable, it
        // cannot tell a dead leader from its own outage.
        if last_probe.elapsed() >= Duration::from_secs(1) {
            last_probe = Instant::now();
            if let Err(e) = consumer.fetch_watermarks(&cfg.leader_topic, 0, Duration::from_secs(2)) {
                shared.set_broker_error(format!("leader topic: {e}"));
                last_heard = Instant::now();
            }
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(msg)) => {
                let current = shared.max_epoch.load(Ordering::Acquire);
                if let Some(hb) = msg.payload().and_then(read_heartbeat) {
                    // The current leadership's heartbeat (or a newer one's, whose
                    // markers this node has not read yet).
                    if hb.epoch >= current && hb.epoch > 0 {
                        last_heard = Instant::now();
                    }
                }
            }
            Some(Err(e)) => shared.set_broker_error(format!("leader topic: {e}")),
            None => {}
        }
        let leading = match &*shared.mode.lock() {
            Mode::Leader(stamp) => Some(stamp.clone()),
            _ => None,
        };
        if let Some(stamp) = leading {
            if last_beat.elapsed() >= session / 3 {
                last_beat = Instant::now();
                let beat = heartbeat(&stamp);
                if let Err((e, _)) =
                    producer.send(BaseRecord::<(), [u8]>::to(&cfg.leader_topic).partition(0).payload(&beat))
                {
                    shared.set_broker_error(format!("heartbeat: {e}"));
                }
            }
            continue;
        }
        let ready = shared.caught_up.load(Ordering::Acquire)
            && shared.fenced.lock().is_none()
            && shared.diverged.lock().is_none();
        if ready && last_heard.elapsed() >= patience {
            tracing::info!(node = %shared.node, silent_ms = last_heard.elapsed().as_millis() as u64, "no heartbeat from a leader; taking over");
            match take_over(&cfg, &consumer) {
                Ok(stamp) => tracing::info!(epoch = stamp.epoch, node = %stamp.node, "this node leads"),
                Err(e) => {
                    tracing::error!(error = %e, "take-over failed; this node restarts as a standby");
                    shared.fenced.lock().get_or_insert(format!("take-over failed: {e}"));
                }
            }
            last_heard = Instant::now();
        }
    }
    let _ = producer.flush(Duration::from_secs(1));
}

fn take_over(cfg: &ElectionConfig, consumer: &BaseConsumer) -> Result<Stamp, String> {
    let shared = &cfg.shared;
    let n = shared.partitions.len();
    // 1. Read the changelog to its end, as it is now.
    let mut ends = Vec::with_capacity(n);
    for p in 0..n {
        let (_, high) = consumer
            .fetch_watermarks(&cfg.changelog_topic, p as i32, Duration::from_secs(10))
            .map_err(|e| format!("changelog end of partition {p}: {e}"))?;
        ends.push(high);
    }
    let caught_up = || (0..n).all(|p| shared.partitions[p].next_offset.load(Ordering::Acquire) >= ends[p]);
    if !shared.wait_until(Duration::from_secs(120), || caught_up() || shared.diverged.lock().is_some()) {
        return Err("the changelog reader did not reach the end of the log within 120 s".into());
    }
    if let Some(d) = shared.diverged.lock().clone() {
        return Err(d);
    }
    // 2. The next epoch, claimed before the markers go out (the reader fences this
    //    node on any competing marker from now on).
    let stamp = Stamp { epoch: shared.max_epoch.load(Ordering::Acquire) + 1, node: shared.node.clone() };
    *shared.mode.lock() = Mode::Claiming(stamp.clone());
    let bases: Vec<u64> = (0..n).map(|p| shared.partitions[p].accepted_lsn.load(Ordering::Acquire)).collect();
    // 3. Markers, then read them back as the current leadership everywhere.
    let failed = |e: String| {
        *shared.mode.lock() = Mode::Standby;
        e
    };
    cfg.replicator.write_markers(&stamp, &bases, Duration::from_secs(30)).map_err(failed)?;
    let ours = || shared.currents.lock().iter().all(|c| c.as_ref() == Some(&stamp));
    let read_back = shared.wait_until(Duration::from_secs(30), || ours() || shared.fenced.lock().is_some());
    if let Some(f) = shared.fenced.lock().clone() {
        return Err(failed(f));
    }
    if !read_back {
        return Err(failed("this node's epoch markers were not read back within 30 s".into()));
    }
    // 4. Lead: confirmations on, then the engine settles what the old leader left.
    for p in 0..n {
        let local = cfg.engine.shard_status()[p].durable_lsn.load(Ordering::Acquire);
        let accepted = shared.partitions[p].accepted_lsn.load(Ordering::Acquire);
        if local != accepted {
            return Err(failed(format!("shard {p}: local LSN {local} is not the log's {accepted}")));
        }
    }
    *shared.mode.lock() = Mode::Leader(stamp.clone());
    stockd_engine::block_on(cfg.engine.promote()).map_err(|e| format!("promote: {e}"))?;
    Ok(stamp)
}
