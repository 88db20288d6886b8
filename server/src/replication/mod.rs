//! Replication and failover on Kafka (`--replication kafka`): a hot standby that
//! takes over with nothing acknowledged lost. Kafka Streams' state stores are the
//! model: the changelog topic (one partition per shard) is the replicated copy of
//! every shard's WAL, standbys keep a warm copy by consuming it, a new leader
//! restores from it, and a replaced leader is fenced.
//!
//! - [`frame`]: the changelog's message format (records and epoch markers);
//! - [`view`]: the rule every reader applies to decide which messages count;
//! - [`changelog`]: the reader thread (a standby applies, a leader confirms its own
//!   writes) and the leader's shipper, the engine's `Replicator`;
//! - [`election`]: leadership as a heartbeat lease on the leader topic, and the
//!   take-over;
//! - [`state_file`]: where the reader resumes after a restart;
//! - [`node`]: a replicated node's start-up (shared by `stockd serve` and embedders);
//! - [`front`]: the Kafka order-event front, run by the leader only.
//!
//! Every node starts as a standby. A node that is fenced, loses the group, or finds
//! that its WAL diverged from the log (a leader's writes that never reached Kafka,
//! never acknowledged) restarts itself in place (`exec`), moving a diverged data
//! directory's shards aside first, and catches up from the log as a standby.
//! ARCHITECTURE.md has the protocol and the fencing argument.

pub mod changelog;
pub mod election;
pub mod frame;
pub mod front;
pub mod node;
pub mod state_file;
pub mod view;

use changelog::{KafkaReplicator, Mode, Shared};
use clap::{Args, ValueEnum};
use serde_json::{json, Value};
use state_file::{SavedPartition, SavedState};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use stockd_engine::Engine;
use stockd_engine::{Confirmation, Replicator, ShippedRecord};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReplicationMode {
    /// One node, its own disk (the default).
    None,
    /// Every shard's WAL also goes to a Kafka changelog; standbys follow it; the
    /// leader is chosen through Kafka. Needs `--kafka-brokers` and `--node-id`.
    Kafka,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// Start as a standby and take over when the leader falls silent.
    Standby,
    /// A read replica: follow the changelog, never lead.
    Replica,
}

/// Flags of replication.
#[derive(Debug, Clone, Args)]
pub struct ReplicationArgs {
    /// `none` or `kafka` (see the module docs and README's 3-node walkthrough).
    #[arg(long, env = "STOCKD_REPLICATION", value_enum, default_value_t = ReplicationMode::None)]
    pub replication: ReplicationMode,
    /// `standby` (default: may become the leader) or `replica` (never leads).
    #[arg(long, env = "STOCKD_ROLE", value_enum, default_value_t = Role::Standby)]
    pub role: Role,
    /// The URL clients reach this node at (sent to clients a standby turns away).
    /// Default: `http://` + the `--listen` address.
    #[arg(long, env = "STOCKD_ADVERTISE_URL")]
    pub advertise_url: Option<String>,
    /// The changelog topic (one partition per shard; created if missing).
    #[arg(long, env = "STOCKD_CHANGELOG_TOPIC", default_value = "stockd.changelog")]
    pub changelog_topic: String,
    /// Replication factor of the changelog and leader topics when stockd creates
    /// them (-1: the broker's default).
    #[arg(long, env = "STOCKD_CHANGELOG_REPLICATION_FACTOR", default_value_t = -1,
          value_parser = clap::value_parser!(i32).range(-1..=32))]
    pub changelog_replication_factor: i32,
    /// The one-partition topic the leader heartbeats on.
    #[arg(long, env = "STOCKD_LEADER_TOPIC", default_value = "stockd.leader")]
    pub leader_topic: String,
    /// How long a leader may stay silent before a standby takes over (plus a jitter of
    /// up to half of it per node): the bound on failover time after a crash.
    #[arg(long, env = "STOCKD_LEADER_SESSION_TIMEOUT", default_value = "6s", value_parser = crate::cli::parse_duration)]
    pub leader_session_timeout: Duration,
}

/// The engine's replicator before this node has a shipper (a standby ships nothing,
/// so this only answers "not leading").
#[derive(Default)]
pub struct LateReplicator(pub OnceLock<Arc<KafkaReplicator>>);

impl Replicator for LateReplicator {
    fn ship(&self, shard: usize, records: &[ShippedRecord]) {
        if let Some(r) = self.0.get() {
            r.ship(shard, records);
        }
    }
    fn confirm(&self, shard: usize, lsn: u64, timeout: Duration) -> Confirmation {
        match self.0.get() {
            Some(r) => r.confirm(shard, lsn, timeout),
            None => Confirmation::Fenced("this node is not the leader".into()),
        }
    }
}

/// A running replication: what /health, /ready, the routes and the monitor read.
pub struct Replication {
    pub shared: Arc<Shared>,
    pub role: Role,
}

impl Replication {
    pub fn is_leader(&self) -> bool {
        self.shared.is_leader()
    }

    /// Leading, and nothing in the way of acknowledging.
    pub fn ready(&self) -> bool {
        self.is_leader() && self.shared.fenced.lock().is_none() && self.shared.diverged.lock().is_none()
    }

    /// Where writes go (the current leader's advertised URL), if known.
    pub fn leader_url(&self) -> Option<String> {
        self.shared.leader.lock().as_ref().map(|l| l.url.clone())
    }

    pub fn role_name(&self) -> &'static str {
        match &*self.shared.mode.lock() {
            Mode::Leader(_) => "leader",
            Mode::Claiming(_) => "taking-over",
            Mode::Standby if self.role == Role::Replica => "replica",
            Mode::Standby => "standby",
        }
    }

    /// Shards whose last batch the changelog has not confirmed yet, with why.
    pub fn stalled(&self, engine: &Engine) -> Vec<Value> {
        engine
            .shard_status()
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.stalled.lock().clone().map(|why| json!({ "shard": i, "reason": why })))
            .collect()
    }

    /// The `replication` field of /health.
    pub fn health(&self, engine: &Engine) -> Value {
        let s = &self.shared;
        let epoch = match &*s.mode.lock() {
            Mode::Leader(st) | Mode::Claiming(st) => st.epoch,
            Mode::Standby => 0,
        };
        let leader = s.leader.lock().clone();
        let shards: Vec<Value> = s
            .partitions
            .iter()
            .enumerate()
            .map(|(p, f)| {
                json!({
                    "shard": p,
                    "offset": f.next_offset.load(Ordering::Acquire),
                    "endOffset": f.high_watermark.load(Ordering::Acquire),
                    "lsn": f.accepted_lsn.load(Ordering::Acquire),
                    "epoch": f.epoch.load(Ordering::Acquire),
                })
            })
            .collect();
        json!({
            "mode": "kafka",
            "nodeId": s.node,
            "role": self.role_name(),
            "epoch": epoch,
            "leader": leader.as_ref().map(|l| json!({ "nodeId": l.stamp.node, "epoch": l.stamp.epoch, "url": l.url })),
            "caughtUp": s.caught_up.load(Ordering::Acquire),
            "lagRecords": s.lag_records(),
            "fenced": s.fenced.lock().clone(),
            "stalled": self.stalled(engine),
            "diverged": s.diverged.lock().clone(),
            "brokerError": s.broker_error.lock().as_ref().map(|(e, at)| json!({ "error": e, "atMs": at })),
            "ignoredMessages": s.ignored.load(Ordering::Relaxed),
            "shippedRecords": s.shipped.load(Ordering::Relaxed),
            "shards": shards,
        })
    }

    /// Prometheus lines.
    pub fn render_metrics(&self, engine: &Engine, out: &mut String) {
        use std::fmt::Write;
        let s = &self.shared;
        let _ = writeln!(
            out,
            "# HELP stockd_replication_stalled_shards Shards holding answers back until the changelog confirms \
             their last batch."
        );
        let _ = writeln!(out, "# TYPE stockd_replication_stalled_shards gauge");
        let _ = writeln!(out, "stockd_replication_stalled_shards {}", self.stalled(engine).len());
        let _ = writeln!(out, "# HELP stockd_replication_leader 1 while this node leads (and may acknowledge).");
        let _ = writeln!(out, "# TYPE stockd_replication_leader gauge");
        let _ = writeln!(out, "stockd_replication_leader {}", u8::from(self.ready()));
        let _ = writeln!(out, "# HELP stockd_replication_lag_records Changelog messages not yet read, all shards.");
        let _ = writeln!(out, "# TYPE stockd_replication_lag_records gauge");
        let _ = writeln!(out, "stockd_replication_lag_records {}", s.lag_records());
        let _ = writeln!(out, "# HELP stockd_replication_fenced 1 once this node may no longer acknowledge.");
        let _ = writeln!(out, "# TYPE stockd_replication_fenced gauge");
        let _ = writeln!(out, "stockd_replication_fenced {}", u8::from(s.fenced.lock().is_some()));
        let _ = writeln!(out, "# HELP stockd_replication_shipped_records_total Records this node shipped as leader.");
        let _ = writeln!(out, "# TYPE stockd_replication_shipped_records_total counter");
        let _ = writeln!(out, "stockd_replication_shipped_records_total {}", s.shipped.load(Ordering::Relaxed));
        let _ = writeln!(
            out,
            "# HELP stockd_replication_ignored_messages_total Changelog messages that counted for nobody (fenced \
             writes, losing markers)."
        );
        let _ = writeln!(out, "# TYPE stockd_replication_ignored_messages_total counter");
        let _ = writeln!(out, "stockd_replication_ignored_messages_total {}", s.ignored.load(Ordering::Relaxed));
    }
}

/// Checks the flags of a replicated node: the node id and brokers it needs.
pub fn check_args(args: &ReplicationArgs, node_id: Option<&str>, brokers: Option<&str>) -> Result<String, String> {
    let node = node_id.ok_or("--replication kafka needs --node-id (a stable, unique name per node)")?;
    if node.is_empty()
        || node.len() > frame::MAX_NODE_ID
        || !node.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(format!("--node-id {node:?}: 1 to {} characters of A-Z a-z 0-9 . _ -", frame::MAX_NODE_ID));
    }
    if brokers.is_none_or(|b| b.trim().is_empty()) {
        return Err("--replication kafka needs --kafka-brokers".into());
    }
    if args.changelog_topic.trim().is_empty() || args.leader_topic.trim().is_empty() {
        return Err("--changelog-topic and --leader-topic must not be empty".into());
    }
    Ok(node.to_owned())
}

/// Creates the changelog (`shards` partitions) and leader (1 partition) topics if
/// missing, and checks the changelog has one partition per shard.
pub async fn ensure_topics(brokers: &str, args: &ReplicationArgs, shards: usize) -> Result<(), String> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .map_err(|e| format!("kafka admin client: {e}"))?;
    let rf = args.changelog_replication_factor;
    // The published-LSN topic (kafka/published.rs) keeps the newest LSN per shard.
    let published = crate::kafka::published::topic_for(&args.changelog_topic);
    let topics = [
        NewTopic::new(&args.changelog_topic, shards as i32, TopicReplication::Fixed(rf)).set("retention.ms", "-1"),
        NewTopic::new(&args.leader_topic, 1, TopicReplication::Fixed(rf)),
        NewTopic::new(&published, 1, TopicReplication::Fixed(rf)).set("cleanup.policy", "compact"),
    ];
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    // The brokers may be down while this node (re)starts: wait for them (bounded).
    let mut waited = Duration::ZERO;
    let results = loop {
        match admin.create_topics(&topics, &opts).await {
            Ok(r) => break r,
            Err(e) if waited < Duration::from_secs(300) => {
                tracing::warn!(error = %e, "replication: brokers not reachable yet; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
                waited += Duration::from_secs(12);
            }
            Err(e) => return Err(format!("create topics: {e}")),
        }
    };
    for r in results {
        if let Err((topic, code)) = r {
            if code != rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists {
                return Err(format!("create topic {topic}: {code}"));
            }
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let md = admin
            .inner()
            .fetch_metadata(Some(&args.changelog_topic), Duration::from_secs(10))
            .map_err(|e| format!("changelog metadata: {e}"))?;
        let n = md.topics().first().map_or(0, |t| t.partitions().len());
        if n == shards {
            return Ok(());
        }
        if n > 0 && n != shards {
            return Err(format!(
                "the changelog topic {} has {n} partitions; this data directory has {shards} shards (one partition \
                 per shard)",
                args.changelog_topic
            ));
        }
        if std::time::Instant::now() >= deadline {
            return Err(format!("the changelog topic {} did not appear within 30 s", args.changelog_topic));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn state_path(data_dir: &Path) -> PathBuf {
    stockd_engine::DataDir::new(data_dir).replication_state()
}

/// Where each partition's reader starts, and the local records it must find in the
/// log first. `Err`: the local WAL cannot be checked (pruned or damaged), so the
/// node must rebuild from the log.
pub fn plan_start(engine: &Engine, data_dir: &Path) -> Result<Vec<(SavedPartition, Vec<ShippedRecord>)>, String> {
    let n = engine.shard_count();
    let fs = engine.fs();
    let saved = SavedState::read(&*fs, &state_path(data_dir), n);
    let mut out = Vec::with_capacity(n);
    for p in 0..n {
        let local = engine.shard_status()[p].durable_lsn.load(Ordering::Acquire);
        let start = match saved.as_ref().map(|s| s.partitions[p].clone()) {
            // The log confirmed more than the disk kept (a leader cut between Kafka's
            // ack and its own sync): read from the start, verifying everything.
            Some(s) if s.accepted_lsn <= local => s,
            _ => SavedPartition::default(),
        };
        let tail = if local > start.accepted_lsn {
            stockd_engine::offline::read_local_records(fs.clone(), data_dir, p, start.accepted_lsn + 1)
                .map_err(|e| format!("shard {p}: local records after LSN {} unreadable: {e}", start.accepted_lsn))?
        } else {
            Vec::new()
        };
        if tail.last().map_or(start.accepted_lsn, |r| r.lsn) != local {
            return Err(format!("shard {p}: the local WAL does not reach its durable LSN {local}"));
        }
        out.push((start, tail));
    }
    Ok(out)
}

/// Moves a diverged data directory's shards and replication state aside (into
/// `DATA/diverged-<ms>/`, kept for inspection), so the node restarts empty and
/// rebuilds from the log. The engine must be shut down.
pub fn move_aside(data_dir: &Path) -> Result<PathBuf, String> {
    let aside = data_dir.join(format!("diverged-{}", crate::kafka::now_ms()));
    std::fs::create_dir_all(&aside).map_err(|e| format!("{}: {e}", aside.display()))?;
    let entries = std::fs::read_dir(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if stockd_engine::DataDir::is_data_entry(&name) {
            std::fs::rename(entry.path(), aside.join(&*name)).map_err(|e| format!("move {name} aside: {e}"))?;
        }
    }
    let dir = std::fs::File::open(data_dir).map_err(|e| e.to_string())?;
    dir.sync_all().map_err(|e| format!("sync {}: {e}", data_dir.display()))?;
    Ok(aside)
}

/// Replaces this process with a fresh start of the same command line (same pid,
/// same flags): how a fenced or diverged node rejoins as a standby. Returns only if
/// the exec failed.
pub fn restart_in_place(why: &str) -> String {
    use std::os::unix::process::CommandExt;
    tracing::warn!(reason = why, "restarting in place as a standby");
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return format!("cannot find this executable: {e}"),
    };
    let err = std::process::Command::new(exe).args(std::env::args_os().skip(1)).exec();
    format!("exec failed: {err}")
}
