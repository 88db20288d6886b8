//! stockd-server: the `stockd` binary's HTTP front (axum) over the stock engine.
//!
//! Reading order (like mini-redis):
//! - [`cli`]: flags of `stockd serve`;
//! - [`app`]: the router and the shared state;
//! - [`envelope`]: the `{success, data | error, meta}` envelope and engine error → HTTP
//!   status mapping;
//! - [`extract`]: the strict JSON extractor (413 / 415 / 400 naming the field);
//!   [`query`]: query-string parameters, checked the same way on every route;
//! - [`routes`]: items, reservations (seed 002's contract), locations (stock per
//!   warehouse, transfers, receipts), ops (health, metrics, OpenAPI);
//! - [`views`]: the typed body of every answer, shared by the routes, the OpenAPI
//!   document and the Kafka events;
//! - [`auth`]: the admin token; [`metrics`]: Prometheus text;
//! - [`warehouses`]: the `--warehouses` file (YAML or TOML).
//! - [`replication`]: `--replication kafka`: the changelog, standbys, leader election
//!   and fencing.
//!
//! - [`http`]: the accept loop (connection cap, header / request / idle timeouts,
//!   graceful shutdown with a deadline).
//!
//! [`serve`] checks the flags, opens the engine, binds, prints `listening on ADDR` on
//! stdout, serves until SIGTERM/SIGINT, drains in-flight requests (and stops the
//! Kafka front) for at most `--shutdown-timeout`, closes what is left, then shuts the
//! engine down (every shard finishes and syncs what it had queued).

pub mod app;
pub mod auth;
pub mod cli;
pub mod config_file;
pub mod envelope;
pub mod extract;
pub mod http;
pub mod kafka;
pub mod metrics;
pub mod query;
pub mod replication;
pub mod routes;
pub mod views;
pub mod warehouses;

use cli::{DurabilityArg, LogFormat, ServeArgs};
use std::io::Write;
use std::sync::atomic::Ordering;
use stockd_engine::{Durability, Engine, EngineConfig, StorageConfig};

/// Opens the engine `args` describe: durable over `--data-dir`, with the warehouse
/// table of `--warehouses` (when given; else the recovered one stays).
///
/// With a `replicator` (`--replication kafka`) the engine opens as a standby that
/// ships through it once promoted.
pub fn open_engine(
    args: &ServeArgs,
    replicator: Option<std::sync::Arc<dyn stockd_engine::Replicator>>,
) -> Result<Engine, String> {
    let mut config = EngineConfig {
        expiry_interval: args.sweep_interval.0,
        standby: replicator.is_some(),
        ..EngineConfig::default()
    };
    if args.default_ttl > args.max_ttl {
        return Err(format!(
            "--default-ttl ({} s) is over --max-ttl ({} s): a request without expiresIn would ask for more than the maximum",
            args.default_ttl, args.max_ttl
        ));
    }
    config.default_ttl_secs = args.default_ttl;
    config.max_ttl_secs = args.max_ttl;
    config.retention_secs = args.retention;
    config.default_low_stock_threshold = args.low_stock_threshold;
    config.shards = args.shards.map_or_else(|| shards_for(&args.data_dir), usize::from);
    if let Some(path) = &args.warehouses {
        let table = warehouses::load(path)?;
        tracing::info!(file = %path.display(), warehouses = table.len(), "warehouse table loaded");
        config.warehouses = Some(table);
    }
    std::fs::create_dir_all(&args.data_dir).map_err(|e| format!("data dir {}: {e}", args.data_dir.display()))?;
    let durability = match args.durability {
        DurabilityArg::Fsync => Durability::Fsync,
        DurabilityArg::None => Durability::None,
    };
    let outbox = args.outbox_config();
    let storage = StorageConfig { durability, outbox, replicator, ..Default::default() };
    let (engine, report) = Engine::open(&args.data_dir, config, storage).map_err(|e| e.to_string())?;
    let replayed: u64 = report.shards.iter().map(|s| s.records_replayed).sum();
    tracing::info!(
        shards = report.shards.len(),
        replayed,
        settled = report.settled,
        expired = report.expired,
        elapsed_ms = report.elapsed.as_millis() as u64,
        "recovered"
    );
    for s in &report.shards {
        for (path, why) in &s.skipped_snapshots {
            tracing::warn!(shard = s.shard, path = %path.display(), why, "skipped a bad snapshot");
        }
        if let Some(t) = &s.truncated_tail {
            tracing::warn!(shard = s.shard, tail = ?t, "truncated a torn WAL tail");
        }
    }
    Ok(engine)
}

pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Runs `stockd serve` to completion.
/// The shard count of a new data dir when `--shards` is not given: one per two cores,
/// at least one. Each shard is a thread plus, durable, its syncer thread, while the
/// HTTP work around a request (the tokio workers: parsing, routing, answers) takes
/// more CPU than the shard's own; a shard per core on 2 cores measured more context
/// switches, a separate fsync per shard, and more CPU per request than one shard
/// (issue 17, BENCHMARKS.md, "the shard hop"). An existing data dir keeps its count.
pub fn default_shards() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// The shard count when `--shards` is not given: the data dir's own (its manifest),
/// so an existing directory opens as it was made without a warning, else
/// [`default_shards`].
fn shards_for(data_dir: &std::path::Path) -> usize {
    let manifest = stockd_engine::DataDir::new(data_dir).manifest();
    let stored = std::fs::read_to_string(manifest).ok().and_then(|t| stockd_engine::DataDir::parse_manifest(&t).ok());
    stored.map_or_else(default_shards, |m| m.shards)
}

pub async fn serve(args: ServeArgs) -> Result<(), String> {
    let admin_token = admin_token(&args)?;
    kafka::check_args(&args.kafka)?;
    let replicated = args.replication.replication == replication::ReplicationMode::Kafka;
    let node = match replicated {
        true => Some(replication::check_args(
            &args.replication,
            args.node_id.as_deref(),
            args.kafka.kafka_brokers.as_deref(),
        )?),
        false => None,
    };
    let durability = match args.durability {
        DurabilityArg::Fsync => DurabilityArg::Fsync.as_str(),
        DurabilityArg::None => DurabilityArg::None.as_str(),
    };
    let stopping = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (engine, replication) = match node {
        Some(node_id) => {
            let config = replication::node::NodeConfig {
                brokers: args.kafka.kafka_brokers.as_deref().unwrap_or_default().trim().to_owned(),
                args: args.replication.clone(),
                node_id,
                advertise_url: args
                    .replication
                    .advertise_url
                    .clone()
                    .unwrap_or_else(|| format!("http://{}", args.listen)),
                data_dir: args.data_dir.clone(),
            };
            let open_args = args.clone();
            let open = move |replicator| open_engine(&open_args, Some(replicator));
            let restart = |exit: replication::node::NodeExit| {
                let err = replication::restart_in_place(&exit.0);
                eprintln!("stockd: {err}");
                std::process::exit(1);
            };
            let (engine, r) = replication::node::start(config, open, stopping.clone(), restart).await?;
            (engine, Some(r))
        }
        None => {
            let open_args = args.clone();
            let engine = tokio::task::spawn_blocking(move || open_engine(&open_args, None))
                .await
                .map_err(|e| e.to_string())??;
            (engine, None)
        }
    };
    let mut state = app::AppState::new(engine.clone(), admin_token, durability);
    state.stopping = stopping;
    state.allocation = args.allocation.strategy();
    state.replication = replication;
    // The Kafka front: on one node it starts now; on a replicated cluster it runs on
    // the leader only (replication/front.rs).
    let front_brokers = args.kafka.kafka_brokers.as_deref().map(str::trim).filter(|b| !b.is_empty());
    let kafka = match (front_brokers, state.replication.clone()) {
        (Some(brokers), None) => {
            let status = kafka::KafkaStatus::new(&args.kafka, brokers, engine.shard_count());
            let k = kafka::Kafka::start(kafka::FrontConfig {
                args: &args.kafka,
                brokers,
                engine: engine.clone(),
                data_dir: args.data_dir.clone(),
                allocation: args.allocation.strategy(),
                group_instance_id: args.node_id.clone(),
                status: status.clone(),
                replicated: None,
            })?;
            tracing::info!(brokers, "kafka front started");
            state.kafka = Some(status);
            Front::Now(k)
        }
        (Some(brokers), Some(replication)) => {
            let status = kafka::KafkaStatus::new(&args.kafka, brokers, engine.shard_count());
            let front = replication::front::start(replication::front::LeaderFrontConfig {
                args: args.kafka.clone(),
                brokers: brokers.to_owned(),
                engine: engine.clone(),
                data_dir: args.data_dir.clone(),
                allocation: args.allocation.strategy(),
                status: status.clone(),
                replication,
                changelog_topic: args.replication.changelog_topic.clone(),
            })?;
            state.kafka = Some(status);
            Front::OnLeadership(front)
        }
        (None, _) => Front::None,
    };
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.map_err(|e| format!("bind {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    // Handlers first: a supervisor may signal us as soon as it reads the line below.
    let signal = shutdown_signal();
    tracing::info!(%addr, shards = engine.shard_count(), durability, data_dir = %args.data_dir.display(), "stockd listening");
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on {addr}");
        let _ = out.flush();
    }
    let stopping = state.stopping.clone();
    let http_cfg = http::HttpConfig::from(&args.http);
    let shutdown_timeout = http_cfg.shutdown_timeout;
    let metrics = state.metrics.clone();
    let router = app::router_with(state, http_cfg.request_timeout);
    // One signal, two listeners: the HTTP server and the Kafka front drain together,
    // both within --shutdown-timeout.
    let (signalled_tx, signalled) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        signal.await;
        stopping.store(true, Ordering::Release);
        tracing::info!("signal received: draining in-flight requests");
        let _ = signalled_tx.send(true);
    });
    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let serving = http::serve(listener, router, http_cfg, metrics, wait(signalled.clone()));
    let kafka_stop = async {
        match kafka {
            Front::None => {}
            Front::Now(k) => {
                wait(signalled).await;
                k.shutdown(shutdown_timeout).await;
            }
            Front::OnLeadership(front) => {
                wait(signalled).await;
                front.shutdown(shutdown_timeout).await;
            }
        }
    };
    tokio::join!(serving, kafka_stop);
    tokio::task::spawn_blocking(move || engine.shutdown()).await.map_err(|e| e.to_string())?;
    tracing::info!("stockd stopped");
    Ok(())
}

/// The Kafka front of this node.
enum Front {
    None,
    Now(kafka::Kafka),
    /// On a replicated cluster: started when this node leads.
    OnLeadership(replication::front::LeaderFront),
}

/// The admin token of `--admin-token` / `STOCKD_ADMIN_TOKEN`, checked: an empty or
/// blank one is an error, not "auth off" (clap reads an empty variable as unset, so
/// the variable is looked at too).
fn admin_token(args: &ServeArgs) -> Result<Option<auth::AdminToken>, String> {
    match &args.admin_token {
        Some(t) => auth::AdminToken::new(t).map(Some),
        None => match std::env::var_os("STOCKD_ADMIN_TOKEN") {
            Some(v) => auth::AdminToken::new(&v.to_string_lossy()).map(Some),
            None => Ok(None),
        },
    }
}

/// Installs the SIGINT/SIGTERM handlers now (so a signal that arrives right after
/// "listening on" is already ours) and returns a future that resolves on either.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let int = signal(SignalKind::interrupt());
        let term = signal(SignalKind::terminate());
        async move {
            match (int, term) {
                (Ok(mut int), Ok(mut term)) => {
                    tokio::select! {
                        _ = int.recv() => {},
                        _ = term.recv() => {},
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod shard_count_tests {
    use super::*;

    #[test]
    fn without_the_flag_an_existing_data_dir_keeps_its_count_and_a_new_one_gets_the_default() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(shards_for(dir.path()), default_shards(), "a new directory");
        let manifest = stockd_engine::DataDir::new(dir.path()).manifest();
        std::fs::write(&manifest, stockd_engine::DataDir::manifest_text(default_shards() + 2)).unwrap();
        assert_eq!(shards_for(dir.path()), default_shards() + 2, "the directory's own count");
    }
}
