//! stockd-server: the `stockd` binary's HTTP front (axum) over the stock engine.
//!
//! Reading order (like mini-redis):
//! - [`cli`]: flags of `stockd serve`;
//! - [`app`]: the router and the shared state;
//! - [`envelope`]: the `{success, data | error, meta}` envelope and engine error → HTTP
//!   status mapping;
//! - [`extract`]: the strict JSON extractor (413 / 415 / 400 naming the field);
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
    if let Some(n) = args.shards {
        config.shards = usize::from(n);
    }
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
    let outbox = if replicator.is_some() { None } else { args.outbox_config() };
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
    let late = std::sync::Arc::new(replication::LateReplicator::default());
    let open = |args: ServeArgs| {
        let replicator = replicated.then(|| late.clone() as std::sync::Arc<dyn stockd_engine::Replicator>);
        async move { tokio::task::spawn_blocking(move || open_engine(&args, replicator)).await.map_err(|e| e.to_string())? }
    };
    let mut engine = open(args.clone()).await?;
    let mut start = None;
    if replicated {
        let brokers = args.kafka.kafka_brokers.as_deref().unwrap_or_default().trim().to_owned();
        replication::ensure_topics(&brokers, &args.replication, engine.shard_count()).await?;
        let plan = match replication::plan_start(&engine, &args.data_dir) {
            Ok(plan) => plan,
            Err(why) => {
                // The local WAL cannot be checked against the log: rebuild from it.
                tracing::warn!(%why, "local data cannot be checked against the changelog; rebuilding from it");
                let e = engine.clone();
                tokio::task::spawn_blocking(move || e.shutdown()).await.map_err(|e| e.to_string())?;
                drop(engine);
                let aside = replication::move_aside(&args.data_dir)?;
                tracing::warn!(aside = %aside.display(), "old shards moved aside");
                engine = open(args.clone()).await?;
                replication::plan_start(&engine, &args.data_dir)?
            }
        };
        start = Some((brokers, plan));
    }
    let durability = match args.durability {
        DurabilityArg::Fsync => DurabilityArg::Fsync.as_str(),
        DurabilityArg::None => DurabilityArg::None.as_str(),
    };
    let mut state = app::AppState::new(engine.clone(), admin_token, durability);
    state.allocation = args.allocation.strategy();
    if let (Some((brokers, plan)), Some(node)) = (start, node) {
        let r = start_replication(&args, brokers, plan, node, &engine, &late, state.stopping.clone())?;
        state.replication = Some(r);
    }
    let front_brokers = if replicated { None } else { args.kafka.kafka_brokers.as_deref() };
    let kafka = match front_brokers.map(str::trim).filter(|b| !b.is_empty()) {
        Some(brokers) => {
            let k = kafka::Kafka::start(
                &args.kafka,
                brokers,
                engine.clone(),
                args.data_dir.clone(),
                args.allocation.strategy(),
                args.node_id.as_deref(),
            )?;
            tracing::info!(brokers, "kafka front started");
            state.kafka = Some(k.status.clone());
            Some(k)
        }
        None => None,
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
        if let Some(k) = kafka {
            wait(signalled).await;
            k.shutdown(shutdown_timeout).await;
        }
    };
    tokio::join!(serving, kafka_stop);
    tokio::task::spawn_blocking(move || engine.shutdown()).await.map_err(|e| e.to_string())?;
    tracing::info!("stockd stopped");
    Ok(())
}

/// Starts the changelog reader, the shipper, the election (role `standby`) and the
/// monitor that restarts this process in place when it is fenced or diverged.
fn start_replication(
    args: &ServeArgs,
    brokers: String,
    plan: Vec<(replication::state_file::SavedPartition, Vec<stockd_engine::ShippedRecord>)>,
    node: String,
    engine: &Engine,
    late: &std::sync::Arc<replication::LateReplicator>,
    stopping: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Result<std::sync::Arc<replication::Replication>, String> {
    use replication::changelog::{self, KafkaReplicator, Shared};
    use std::sync::Arc;
    let r = &args.replication;
    let url = r.advertise_url.clone().unwrap_or_else(|| format!("http://{}", args.listen));
    let shared = Shared::new(node, url, engine.shard_count());
    let shipper = Arc::new(KafkaReplicator::new(&brokers, &r.changelog_topic, shared.clone())?);
    let _ = late.0.set(shipper.clone());
    changelog::start_reader(changelog::ReaderConfig {
        brokers: brokers.clone(),
        topic: r.changelog_topic.clone(),
        engine: engine.clone(),
        shared: shared.clone(),
        start: plan,
        state_file: replication::state_path(&args.data_dir),
    })?;
    if r.role == replication::Role::Standby {
        replication::election::start(replication::election::ElectionConfig {
            brokers,
            leader_topic: r.leader_topic.clone(),
            changelog_topic: r.changelog_topic.clone(),
            session_timeout: r.leader_session_timeout,
            shared: shared.clone(),
            engine: engine.clone(),
            replicator: shipper,
        })?;
    }
    let (engine, data_dir, watched) = (engine.clone(), args.data_dir.clone(), shared.clone());
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let diverged = watched.diverged.lock().clone();
            let fenced = watched.fenced.lock().clone();
            let Some(why) = diverged.clone().or(fenced) else { continue };
            stopping.store(true, Ordering::Release);
            watched.stop.store(true, Ordering::Release);
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            let e = engine.clone();
            let _ = tokio::task::spawn_blocking(move || e.shutdown()).await;
            if diverged.is_some() {
                match replication::move_aside(&data_dir) {
                    Ok(aside) => tracing::warn!(aside = %aside.display(), "diverged shards moved aside"),
                    Err(e) => tracing::error!(error = %e, "could not move the diverged shards aside"),
                }
            }
            let err = replication::restart_in_place(&why);
            eprintln!("stockd: {err}");
            std::process::exit(1);
        }
    });
    Ok(Arc::new(replication::Replication { shared, role: r.role }))
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
