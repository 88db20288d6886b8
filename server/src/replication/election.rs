//! Who leads: the member of the consumer group `--leader-group` that holds the one
//! partition of the leader topic. The group coordinator decides (a member that stops
//! heartbeating loses it after `--leader-session-timeout`), so leadership is never
//! set by hand and two nodes never both think the group gave it to them for long.
//! Thinking is not enough to acknowledge, though: the changelog markers fence (see
//! `view.rs`), so a node that still believes it leads after the group moved on can
//! no longer get a write confirmed.
//!
//! Taking over, in order: read the changelog to its end (every record applied), take
//! the next epoch, write an epoch marker to every partition, wait until the reader
//! has read back this node's marker as the current leadership of every partition
//! (everything before it applied; a competing marker first means this node lost),
//! switch the shipper on, and promote the engine (it settles what the old leader left
//! half done, then serves).

use super::changelog::{KafkaReplicator, Mode, Shared};
use super::frame::Stamp;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::ClientContext;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use stockd_engine::Engine;

pub struct ElectionConfig {
    pub brokers: String,
    pub leader_topic: String,
    pub changelog_topic: String,
    pub group: String,
    pub session_timeout: Duration,
    pub shared: Arc<Shared>,
    pub engine: Engine,
    pub replicator: Arc<KafkaReplicator>,
}

struct LeaderContext {
    assigned: Arc<AtomicBool>,
}

impl ClientContext for LeaderContext {}

impl ConsumerContext for LeaderContext {
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Error(e) = rebalance {
            tracing::warn!(error = %e, "leader group: rebalance error");
        }
        // Cooperative rebalances hand out changes (often empty ones), not the whole
        // assignment: ask what this member holds now.
        let holds = consumer.assignment().is_ok_and(|tpl| tpl.count() > 0);
        self.assigned.store(holds, Ordering::Release);
    }
}

/// Joins the leader group, once this node has read the whole changelog (a node far
/// behind, an empty one, must not hold leadership while it catches up), and takes
/// over whenever the group assigns this node.
pub fn start(cfg: ElectionConfig) -> Result<std::thread::JoinHandle<()>, String> {
    let assigned = Arc::new(AtomicBool::new(false));
    let session = cfg.session_timeout.as_millis().max(1000);
    let consumer: BaseConsumer<LeaderContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &cfg.brokers)
        .set("group.id", &cfg.group)
        .set("client.id", format!("stockd-{}-election", cfg.shared.node))
        .set("session.timeout.ms", session.to_string())
        .set("heartbeat.interval.ms", (session / 3).max(100).to_string())
        .set("enable.auto.commit", "false")
        // Sticky: a node joining the group does not move leadership.
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("topic.metadata.refresh.interval.ms", "2000")
        .create_with_context(LeaderContext { assigned: assigned.clone() })
        .map_err(|e| format!("leader group consumer: {e}"))?;
    std::thread::Builder::new()
        .name("stockd-election".into())
        .spawn(move || {
            let shared = cfg.shared.clone();
            while !shared.caught_up.load(Ordering::Acquire) {
                if shared.stop.load(Ordering::Acquire) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if let Err(e) = consumer.subscribe(&[&cfg.leader_topic]) {
                shared.fenced.lock().get_or_insert(format!("leader group subscribe: {e}"));
                return;
            }
            tracing::info!(node = %shared.node, "caught up; joined the leader group");
            run(cfg, consumer, assigned)
        })
        .map_err(|e| e.to_string())
}

fn run(cfg: ElectionConfig, consumer: BaseConsumer<LeaderContext>, assigned: Arc<AtomicBool>) {
    let shared = cfg.shared.clone();
    let mut leading = false;
    let mut revoked = false;
    while !shared.stop.load(Ordering::Acquire) {
        if let Some(Err(e)) = consumer.poll(Duration::from_millis(100)) {
            shared.set_broker_error(format!("leader group: {e}"));
        }
        let holds = assigned.load(Ordering::Acquire);
        let blocked = shared.fenced.lock().is_some() || shared.diverged.lock().is_some();
        if holds && !leading && !blocked {
            tracing::info!(node = %shared.node, "leader group assigned this node; taking over");
            match take_over(&cfg, &consumer) {
                Ok(stamp) => {
                    leading = true;
                    tracing::info!(epoch = stamp.epoch, node = %stamp.node, "this node leads");
                }
                Err(e) => {
                    tracing::error!(error = %e, "take-over failed; this node restarts as a standby");
                    shared.fenced.lock().get_or_insert(format!("take-over failed: {e}"));
                }
            }
        } else if !holds && leading && !revoked {
            // The group may give it back (a rebalance: this node goes on leading
            // under the same epoch), or to another node, whose markers then fence
            // this one (the reader sees them): either way no write is confirmed here
            // that the next leader lacks.
            tracing::warn!("the leader group revoked this node's assignment");
        }
        revoked = leading && !holds;
    }
    consumer.unsubscribe();
}

fn take_over(cfg: &ElectionConfig, consumer: &BaseConsumer<LeaderContext>) -> Result<Stamp, String> {
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
