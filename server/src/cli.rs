//! Command-line flags (clap). Every flag of `stockd serve` also reads an environment
//! variable, so a container can be configured without arguments.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use stockd_engine::location::AllocationStrategy;

#[derive(Debug, Parser)]
#[command(name = "stockd", version, about = "stockd: a stock-reservation service for flash sales")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API.
    Serve(ServeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (the bound address is printed
    /// on stdout as `listening on ADDR`).
    #[arg(long, env = "STOCKD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Directory of the WAL and snapshots (created if missing).
    #[arg(long, env = "STOCKD_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Number of shards (1 to 256) of a new data dir; default: an existing data
    /// dir's own count, else one per two cores, at least one (`default_shards`).
    #[arg(long, env = "STOCKD_SHARDS", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub shards: Option<u16>,
    /// `fsync`: nothing is acknowledged before it is on disk. `none`: never syncs
    /// (benchmarks only; a crash loses acknowledged work).
    #[arg(long, env = "STOCKD_DURABILITY", value_enum, default_value_t = DurabilityArg::Fsync)]
    pub durability: DurabilityArg,
    /// When set, item create/update/delete/adjust, item history and admin expire need
    /// `Authorization: Bearer <token>` (scheme in any case). An empty or blank value
    /// is a startup error, not "auth off": leave the flag and the variable unset for
    /// that.
    #[arg(long, env = "STOCKD_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Warehouse table: a YAML (`.yaml`, `.yml`; seed 004's `warehouses: [{id, name,
    /// region, priority}]`) or TOML (`.toml`, `[[warehouses]]`) file, read and checked
    /// at start. Without it the table recovered from the data dir stays.
    #[arg(long, env = "STOCKD_WAREHOUSES")]
    pub warehouses: Option<PathBuf>,
    /// How a reservation line that names no location is allocated, unless the request
    /// says (`allocation`): the highest-priority location that fills it, else split in
    /// priority order; the most available first; or one location only.
    #[arg(long, env = "STOCKD_ALLOCATION", value_enum, default_value_t = AllocationArg::Priority)]
    pub allocation: AllocationArg,
    /// Log format on stderr.
    #[arg(long, env = "STOCKD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub kafka: crate::kafka::KafkaArgs,
    #[command(flatten)]
    pub replication: crate::replication::ReplicationArgs,
    /// With the Kafka publisher on: most bytes of WAL segments and snapshots a shard
    /// keeps for events not yet published, beyond what recovery needs (0: no ceiling).
    #[arg(long, env = "STOCKD_OUTBOX_MAX_BYTES", default_value_t = DEFAULT_OUTBOX_MAX_BYTES)]
    pub outbox_max_bytes: u64,
    /// What happens past `--outbox-max-bytes`: `refuse` new writes with 503 until the
    /// publisher catches up (never loses an event), or `drop` the oldest unpublished
    /// records (counted in `stockd_outbox_events_dropped_total`, logged as errors).
    #[arg(long, env = "STOCKD_OUTBOX_FULL", value_enum, default_value_t = OutboxFullArg::Refuse)]
    pub outbox_full: OutboxFullArg,
    /// TTL of a reservation whose request (HTTP or Kafka) carries no `expiresIn`:
    /// seconds or `15m`, `1h`, `3d`; at most `--max-ttl`.
    #[arg(long, env = "STOCKD_DEFAULT_TTL", default_value = "15m", value_parser = parse_ttl)]
    pub default_ttl: u64,
    /// Longest `expiresIn` a request may ask for, and the cap of extensions (a
    /// reservation lives at most this long from its creation): seconds or `30d`,
    /// `90d`; 1 s to 365 days.
    #[arg(long, env = "STOCKD_MAX_TTL", default_value = "90d", value_parser = parse_ttl)]
    pub max_ttl: u64,
    /// How often the background sweep expires due reservations (and runs the
    /// reconciler), e.g. `100ms`, `1s`; `off`: never (expiry then happens only on
    /// access or by `POST /api/v1/inventory/reservations/expire-due`).
    #[arg(long, env = "STOCKD_SWEEP_INTERVAL", default_value = "100ms", value_parser = parse_sweep_interval)]
    pub sweep_interval: SweepInterval,
    /// How long finished reservations (committed, released, expired) and adjustment
    /// idempotency keys are remembered, so a repeated request answers as the first
    /// did: seconds or `1h`, `24h`, `7d`; 1 s to 365 days.
    #[arg(long, env = "STOCKD_RETENTION", default_value = "24h", value_parser = parse_ttl)]
    pub retention: u64,
    /// Low-stock threshold of an item created (HTTP, Kafka) without one; 0: none
    /// (no low-stock alert unless the item sets its own). Items that exist keep
    /// theirs.
    #[arg(long, env = "STOCKD_LOW_STOCK_THRESHOLD", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=stockd_engine::limits::MAX_ON_HAND))]
    pub low_stock_threshold: u64,
    /// This node's stable name: the Kafka consumer's `group.instance.id` (static
    /// membership: a node restarted with the same id resumes consuming at once
    /// instead of after its old session times out) and, with `--replication kafka`,
    /// its name in the changelog. 1 to 64 characters of `[A-Za-z0-9._-]`; unique per
    /// node.
    #[arg(long, env = "STOCKD_NODE_ID", value_parser = parse_node_id)]
    pub node_id: Option<String>,
}

/// `--node-id`: 1 to 64 characters of `[A-Za-z0-9._-]`.
pub fn parse_node_id(s: &str) -> Result<String, String> {
    let ok = (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !ok {
        return Err(format!("{s:?} must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', '-'"));
    }
    Ok(s.to_owned())
}

/// `--sweep-interval`: a duration, or `None` for `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepInterval(pub Option<Duration>);

pub fn parse_sweep_interval(s: &str) -> Result<SweepInterval, String> {
    if s.trim().eq_ignore_ascii_case("off") {
        return Ok(SweepInterval(None));
    }
    parse_duration(s).map(|d| SweepInterval(Some(d)))
}

/// Default `--outbox-max-bytes`: 8 GiB per shard.
pub const DEFAULT_OUTBOX_MAX_BYTES: u64 = 8 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutboxFullArg {
    Refuse,
    Drop,
}

impl ServeArgs {
    /// The outbox retention to register at open: only when the Kafka publisher runs.
    pub fn outbox_config(&self) -> Option<stockd_engine::OutboxConfig> {
        let brokers = self.kafka.kafka_brokers.as_deref().map(str::trim).filter(|b| !b.is_empty());
        if brokers.is_none() || self.kafka.kafka_no_publish {
            return None;
        }
        Some(stockd_engine::OutboxConfig {
            max_bytes: (self.outbox_max_bytes > 0).then_some(self.outbox_max_bytes),
            policy: match self.outbox_full {
                OutboxFullArg::Refuse => stockd_engine::OutboxFullPolicy::Refuse,
                OutboxFullArg::Drop => stockd_engine::OutboxFullPolicy::Drop,
            },
        })
    }
}

/// Connection limits and timeouts of the HTTP server (src/http.rs). Durations are
/// seconds (`10`, `2.5`) or carry a unit (`500ms`, `10s`, `2m`).
#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    /// Time a client has to send a request's head (request line and headers), from
    /// its first byte, or from the accept for a new connection. Past it the
    /// connection is closed.
    #[arg(long, env = "STOCKD_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,
    /// Time from a request's head to its answer: reading the body (past it: 408
    /// REQUEST_TIMEOUT, nothing done) and handling it (past it: 503 TIMEOUT, outcome
    /// unknown; the work still runs to its end in the background).
    #[arg(long, env = "STOCKD_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// A keep-alive connection with no request in progress (including a client that
    /// does not read its answer) is closed after this long.
    #[arg(long, env = "STOCKD_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Open connections at most; one more is answered 503 and closed at once
    /// (counted in `stockd_http_connections_refused_total`).
    #[arg(long, env = "STOCKD_MAX_CONNECTIONS", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,
    /// After SIGTERM/SIGINT: time in-flight requests (and the Kafka front) get to
    /// finish before the remaining connections are closed; then the engine syncs
    /// what it had queued and stops.
    #[arg(long, env = "STOCKD_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
}

/// `10`, `2.5` (seconds), `500ms`, `10s`, `2m`, `1h`; at least 1 ms, at most a day.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let secs = parse_seconds(s)?;
    if !(0.001..=86_400.0).contains(&secs) {
        return Err(format!("{s:?} is outside 1ms..24h"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A reservation TTL (`--default-ttl`, `--max-ttl`): whole seconds (`900`) or with a
/// unit (`15m`, `1h`, `3d`, `90d`), 1 s to `MAX_TTL_CEILING_SECS` (365 days).
pub fn parse_ttl(s: &str) -> Result<u64, String> {
    let secs = parse_seconds(s)?;
    let ceiling = stockd_engine::limits::MAX_TTL_CEILING_SECS;
    if secs.fract() != 0.0 || !(1.0..=ceiling as f64).contains(&secs) {
        return Err(format!("{s:?} must be whole seconds from 1s to {}d ({ceiling} s)", ceiling / 86_400));
    }
    Ok(secs as u64)
}

/// An age (`olderThan` of the reservation listing): whole seconds (`3600`) or with a
/// unit (`90m`, `1h`, `3d`), 0 to 10 years.
pub fn parse_age(s: &str) -> Result<u64, String> {
    const MAX: u64 = 10 * 365 * 86_400;
    let secs = parse_seconds(s)?;
    if secs.fract() != 0.0 || !(0.0..=MAX as f64).contains(&secs) {
        return Err(format!("{s:?} must be whole seconds from 0 to {MAX} (or 90m, 1h, 3d)"));
    }
    Ok(secs as u64)
}

/// A number of seconds, or a number with a unit: `ms`, `s`, `m`, `h`, `d`.
fn parse_seconds(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (number, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: f64 =
        number.trim().parse().map_err(|_| format!("{s:?} is not a duration (e.g. 10, 2.5s, 500ms, 2m, 1h, 3d)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86_400.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (ms, s, m, h or d)")),
    };
    if !secs.is_finite() {
        return Err(format!("{s:?} is not a duration"));
    }
    Ok(secs)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DurabilityArg {
    Fsync,
    None,
}

impl DurabilityArg {
    pub fn as_str(self) -> &'static str {
        match self {
            DurabilityArg::Fsync => "fsync",
            DurabilityArg::None => "none",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AllocationArg {
    Priority,
    MostAvailable,
    SingleLocationOnly,
}

impl AllocationArg {
    pub fn strategy(self) -> AllocationStrategy {
        match self {
            AllocationArg::Priority => AllocationStrategy::Priority,
            AllocationArg::MostAvailable => AllocationStrategy::MostAvailable,
            AllocationArg::SingleLocationOnly => AllocationStrategy::SingleLocationOnly,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[cfg(test)]
mod tests {
    use super::{parse_age, parse_duration, parse_node_id, parse_ttl};
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2.5s"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "x", "0", "-1", "25h", "2d", "10w", "1e9", "NaN", "inf"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn node_ids() {
        assert_eq!(parse_node_id("node-1"), Ok("node-1".into()));
        assert_eq!(parse_node_id("a.B_9-z"), Ok("a.B_9-z".into()));
        assert!(parse_node_id(&"n".repeat(64)).is_ok());
        for bad in ["", " ", "node 1", "node/1", "nöde", &"n".repeat(65)] {
            assert!(parse_node_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ttls() {
        assert_eq!(parse_ttl("900"), Ok(900));
        assert_eq!(parse_ttl("15m"), Ok(900));
        assert_eq!(parse_ttl("1h"), Ok(3600));
        assert_eq!(parse_ttl("3d"), Ok(259_200));
        assert_eq!(
            (parse_age("0"), parse_age("3600"), parse_age("90m"), parse_age("3d")),
            (Ok(0), Ok(3600), Ok(5400), Ok(259_200))
        );
        for bad in ["-1", "1.5", "1x", "", "3650000d", "NaN"] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_ttl("90d"), Ok(7_776_000));
        assert_eq!(parse_ttl("365d"), Ok(31_536_000));
        for bad in ["", "abc", "0", "0s", "-1", "1.5", "500ms", "366d", "10w", "NaN", "inf"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }
}
