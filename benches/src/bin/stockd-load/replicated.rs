//! `--replicate-to BROKERS` (embedded target): the embedded engine as the leader of a
//! replicated node (`stockd serve --replication kafka`'s start-up, from
//! `stockd_server::replication::node`), so the embedded batch client measures what
//! replication costs without HTTP in the way. The node starts as a standby on fresh
//! topics (named after the run) and takes over once the leader topic has been
//! silent for the session timeout; the load starts when it leads.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use stockd_engine::{Durability, Engine, EngineConfig, StorageConfig};
use stockd_server::replication::node::{start, NodeConfig};
use stockd_server::replication::{ReplicationArgs, ReplicationMode, Role};

/// A replicated embedded engine and what keeps its replication running.
pub struct ReplicatedEngine {
    pub engine: Engine,
    /// The reader, shipper and election run on (and with) this runtime.
    _runtime: tokio::runtime::Runtime,
}

/// Opens the engine in `dir` as a replicated node on `brokers` and waits (up to a
/// minute) until it leads.
pub fn open(brokers: &str, run_id: &str, dir: &Path, config: EngineConfig) -> Result<ReplicatedEngine, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let session = Duration::from_secs(2);
    let node = NodeConfig {
        brokers: brokers.to_owned(),
        args: ReplicationArgs {
            replication: ReplicationMode::Kafka,
            role: Role::Standby,
            advertise_url: None,
            changelog_topic: format!("stockd-load.changelog.{run_id}"),
            changelog_replication_factor: -1,
            leader_topic: format!("stockd-load.leader.{run_id}"),
            leader_session_timeout: session,
        },
        node_id: format!("stockd-load-{run_id}"),
        advertise_url: "http://stockd-load.invalid".into(),
        data_dir: dir.to_path_buf(),
    };
    let open_dir = dir.to_path_buf();
    let open = move |replicator| {
        let config = EngineConfig { standby: true, ..config.clone() };
        let storage =
            StorageConfig { durability: Durability::Fsync, replicator: Some(replicator), ..Default::default() };
        Engine::open(&open_dir, config, storage).map(|(e, _)| e).map_err(|e| e.to_string())
    };
    let on_exit = |exit: stockd_server::replication::node::NodeExit| {
        eprintln!("stockd-load: the replicated node stopped: {}", exit.0);
        std::process::exit(1);
    };
    let stopping = Arc::new(AtomicBool::new(false));
    let (engine, replication) = runtime.block_on(start(node, open, stopping, on_exit))?;
    let started = Instant::now();
    while !replication.is_leader() {
        if started.elapsed() > Duration::from_secs(60) {
            return Err("the replicated node did not become the leader within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("stockd-load: replicated node leads after {} ms", started.elapsed().as_millis());
    Ok(ReplicatedEngine { engine, _runtime: runtime })
}
