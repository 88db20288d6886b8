//! A replicated node's start-up, in one place for `stockd serve --replication kafka`
//! and for programs that embed the engine with replication (the benches' replicated
//! embedded load): open the engine as a standby, make sure the topics exist, check
//! the local WAL against the changelog (moving diverged shards aside), then start
//! the changelog reader, the shipper, the election and the monitor that ends this
//! node's run when it is fenced or finds itself diverged.

use super::changelog::{self, KafkaReplicator, Shared};
use super::{
    election, ensure_topics, move_aside, plan_start, state_path, LateReplicator, Replication, ReplicationArgs, Role,
};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use stockd_engine::Engine;
use stockd_engine::Replicator;

/// What a replicated node needs besides its engine.
pub struct NodeConfig {
    pub brokers: String,
    pub args: ReplicationArgs,
    /// Checked by [`super::check_args`].
    pub node_id: String,
    /// The URL clients reach this node at (sent to clients a standby turns away).
    pub advertise_url: String,
    pub data_dir: PathBuf,
}

/// Why a replicated node stopped serving (given to the `on_exit` of [`start`] after
/// the engine is shut down; a diverged data directory's shards are moved aside by
/// then).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeExit(pub String);

/// Opens the engine with `open` (given the replicator to pass as
/// `StorageConfig::replicator`; it opens as a standby) and starts replication on it.
/// Every node starts as a standby (`Role::Standby` takes over when the leader falls
/// silent). When the node is fenced or diverged, `stopping` is set, the engine shut
/// down and `on_exit` called on a blocking thread (`stockd serve` restarts itself in
/// place there).
pub async fn start<F>(
    config: NodeConfig,
    open: F,
    stopping: Arc<AtomicBool>,
    on_exit: impl FnOnce(NodeExit) + Send + 'static,
) -> Result<(Engine, Arc<Replication>), String>
where
    F: Fn(Arc<dyn Replicator>) -> Result<Engine, String> + Clone + Send + 'static,
{
    let late = Arc::new(LateReplicator::default());
    let open_async = |open: F| {
        let replicator = late.clone() as Arc<dyn Replicator>;
        async move { tokio::task::spawn_blocking(move || open(replicator)).await.map_err(|e| e.to_string())? }
    };
    let mut engine = open_async(open.clone()).await?;
    ensure_topics(&config.brokers, &config.args, engine.shard_count()).await?;
    let plan = match plan_start(&engine, &config.data_dir) {
        Ok(plan) => plan,
        Err(why) => {
            // The local WAL cannot be checked against the log: rebuild from it.
            tracing::warn!(%why, "local data cannot be checked against the changelog; rebuilding from it");
            let e = engine.clone();
            tokio::task::spawn_blocking(move || e.shutdown()).await.map_err(|e| e.to_string())?;
            drop(engine);
            let aside = move_aside(&config.data_dir)?;
            tracing::warn!(aside = %aside.display(), "old shards moved aside");
            engine = open_async(open).await?;
            plan_start(&engine, &config.data_dir)?
        }
    };
    let r = &config.args;
    let shared = Shared::new(config.node_id.clone(), config.advertise_url.clone(), engine.shard_count());
    let shipper = Arc::new(KafkaReplicator::new(&config.brokers, &r.changelog_topic, shared.clone())?);
    let _ = late.0.set(shipper.clone());
    changelog::start_reader(changelog::ReaderConfig {
        brokers: config.brokers.clone(),
        topic: r.changelog_topic.clone(),
        engine: engine.clone(),
        shared: shared.clone(),
        start: plan,
        state_file: state_path(&config.data_dir),
    })?;
    if r.role == Role::Standby {
        election::start(election::ElectionConfig {
            brokers: config.brokers.clone(),
            leader_topic: r.leader_topic.clone(),
            changelog_topic: r.changelog_topic.clone(),
            session_timeout: r.leader_session_timeout,
            shared: shared.clone(),
            engine: engine.clone(),
            replicator: shipper,
        })?;
    }
    let (watched_engine, data_dir, watched) = (engine.clone(), config.data_dir.clone(), shared.clone());
    tokio::spawn(async move {
        let (why, diverged) = loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if let Some(why) = watched.diverged.lock().clone() {
                break (why, true);
            }
            if let Some(why) = watched.fenced.lock().clone() {
                break (why, false);
            }
        };
        stopping.store(true, Ordering::Release);
        watched.stop.store(true, Ordering::Release);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = tokio::task::spawn_blocking(move || {
            watched_engine.shutdown();
            if diverged {
                match move_aside(&data_dir) {
                    Ok(aside) => tracing::warn!(aside = %aside.display(), "diverged shards moved aside"),
                    Err(e) => tracing::error!(error = %e, "could not move the diverged shards aside"),
                }
            }
            on_exit(NodeExit(why));
        })
        .await;
    });
    Ok((engine, Arc::new(Replication { shared, role: r.role })))
}
