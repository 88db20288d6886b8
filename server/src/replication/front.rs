//! The Kafka order-event front on a replicated cluster: it runs on the leader only.
//!
//! While this node is a standby it follows the published-LSN topic
//! (`kafka/published.rs`) into its outbox offsets. When it leads, it reads that topic
//! to its end, then starts the front: the consumer joins the group under one static
//! member id that every leader uses (`<group>-leader`), so the group hands the new
//! leader the old one's partitions without waiting for the old member's session to
//! end, and consumed orders resume from the committed offsets (a message the old
//! leader applied but had not committed is applied again: the same orderId, the same
//! reservation); the publisher publishes up to the changelog's confirmed LSN and
//! shares what it published with the standbys. A node leads until it restarts, so
//! the front never has to stop for a demotion.

use super::Replication;
use crate::kafka::{published, publisher, FrontConfig, Kafka, KafkaArgs, KafkaStatus};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use stockd_engine::location::AllocationStrategy;
use stockd_engine::Engine;

/// What the front of a replicated node needs.
pub struct LeaderFrontConfig {
    pub args: KafkaArgs,
    pub brokers: String,
    pub engine: Engine,
    pub data_dir: PathBuf,
    pub allocation: AllocationStrategy,
    pub status: Arc<KafkaStatus>,
    pub replication: Arc<Replication>,
    pub changelog_topic: String,
}

/// The front once (if) this node leads.
#[derive(Clone, Default)]
pub struct LeaderFront(Arc<tokio::sync::Mutex<Option<Kafka>>>);

impl LeaderFront {
    /// Stops the front if it runs (see [`Kafka::shutdown`]).
    pub async fn shutdown(&self, within: Duration) {
        if let Some(k) = self.0.lock().await.take() {
            k.shutdown(within).await;
        }
    }
}

/// Follows the published-LSN topic now and starts the front when this node leads.
pub fn start(cfg: LeaderFrontConfig) -> Result<LeaderFront, String> {
    let topic = published::topic_for(&cfg.changelog_topic);
    let offsets = Arc::new(publisher::OutboxOffsets::load(&cfg.data_dir, cfg.engine.fs())?);
    let follower = published::follow(&cfg.brokers, &topic, offsets, cfg.engine.clone())?;
    let front = LeaderFront::default();
    let slot = front.clone();
    tokio::spawn(async move {
        while !cfg.replication.is_leader() {
            if cfg.replication.shared.stop.load(Ordering::Acquire) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = tokio::task::spawn_blocking(move || follower.finish(Duration::from_secs(10))).await;
        let shared = match published::PublishedTopic::new(&cfg.brokers, topic) {
            Ok(p) => Arc::new(p),
            Err(e) => {
                tracing::error!(error = %e, "kafka front not started on the new leader");
                return;
            }
        };
        let replication = cfg.replication.clone();
        let confirmed = Arc::new(move |shard: usize| {
            replication.shared.partitions.get(shard).map_or(0, |p| p.accepted_lsn.load(Ordering::Acquire))
        });
        let started = Kafka::start(FrontConfig {
            args: &cfg.args,
            brokers: &cfg.brokers,
            engine: cfg.engine.clone(),
            data_dir: cfg.data_dir.clone(),
            allocation: cfg.allocation,
            group_instance_id: Some(format!("{}-leader", cfg.args.kafka_group)),
            status: cfg.status.clone(),
            replicated: Some(publisher::ReplicatedPublishing { confirmed, shared }),
        });
        match started {
            Ok(k) => {
                tracing::info!(brokers = %cfg.brokers, "kafka front started on the new leader");
                *slot.0.lock().await = Some(k);
            }
            Err(e) => tracing::error!(error = %e, "kafka front not started on the new leader"),
        }
    });
    Ok(front)
}
