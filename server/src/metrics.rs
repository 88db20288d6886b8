//! Prometheus text metrics, hand-written (a few atomics and one map; no exporter
//! crate needed). Rendered by `GET /metrics`.
//!
//! What only the server sees (HTTP requests and connections) is counted here. What
//! the engine answered — reservations created / committed / released / expired,
//! refusals by code, stock alerts, reserve latency by path — is counted by the engine
//! whoever called it (HTTP, the Kafka consumer, an embedder: `Engine::outcome_stats`),
//! and per-shard figures (active reservations, WAL records, syncs and sync latency)
//! come from `shard_status()`; both are read on each scrape.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use stockd_engine::{Engine, LatencyHistogram, Origin, ReservationOp, RESERVE_LATENCY_BUCKETS_MICROS};
use stockd_engine::{ShardStatus, SYNC_BUCKETS_MICROS};

/// A per-shard series: name, type, help, and how to read it from the shard's status.
type ShardMetric = (&'static str, &'static str, &'static str, fn(&ShardStatus) -> u64);

/// The `path` label of a reserve's origin: the engine names its callers neutrally;
/// this server's are its HTTP API and its Kafka consumer.
pub fn path_label(origin: Origin) -> &'static str {
    match origin {
        Origin::Api => "http",
        Origin::Events => "kafka",
        Origin::Embedded => "embedded",
    }
}

/// Prometheus lines of a reserve latency histogram; `labels` (e.g. `path="kafka",`)
/// go before `le`, and on `_sum` / `_count`.
fn render_histogram(name: &str, labels: &str, h: &LatencyHistogram, out: &mut String) {
    let mut cumulative = 0;
    for (bound, n) in RESERVE_LATENCY_BUCKETS_MICROS.iter().zip(&h.buckets) {
        cumulative += n;
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{}\"}} {cumulative}", *bound as f64 / 1e6);
    }
    let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {}", h.count);
    let plain = labels.trim_end_matches(',');
    let braces = if plain.is_empty() { String::new() } else { format!("{{{plain}}}") };
    let _ = writeln!(out, "{name}_sum{braces} {}", h.sum_micros as f64 / 1e6);
    let _ = writeln!(out, "{name}_count{braces} {}", h.count);
}

/// Engine answers that reported an internal inconsistency (an "internal error:"
/// SERVICE_UNAVAILABLE, or a misrouted request leaking out). Process-wide, bumped by
/// the error mapping in `envelope`. Must stay 0.
pub static INVARIANT_VIOLATIONS: AtomicU64 = AtomicU64::new(0);

#[derive(Default)]
pub struct Metrics {
    /// method → route template → status → count. Nested so that counting a request
    /// allocates nothing once its route was seen.
    requests: Mutex<RequestCounts>,
    /// Connections of the HTTP server (src/http.rs).
    pub http: HttpCounters,
}

/// What the accept loop and the connection watchdogs count.
#[derive(Default)]
pub struct HttpCounters {
    /// Connections open now (gauge).
    pub open: AtomicU64,
    pub accepted: AtomicU64,
    /// Connections past `--max-connections`: answered 503 and closed.
    pub refused: AtomicU64,
    pub accept_errors: AtomicU64,
    /// Closed by the watchdog: head not received in time (`--header-timeout`).
    pub header_timeouts: AtomicU64,
    /// Closed by the watchdog: kept alive with nothing to do (`--idle-timeout`).
    pub idle_timeouts: AtomicU64,
    /// Closed by the watchdog: a request outlived its deadline plus the backstop.
    pub request_timeouts: AtomicU64,
    /// Still open at the shutdown deadline, then closed.
    pub closed_at_shutdown: AtomicU64,
}

impl Metrics {
    pub(crate) fn record(&self, method: &'static str, route: &str, status: u16) {
        let mut requests = self.requests.lock();
        let routes = requests.entry(method).or_default();
        let statuses = match routes.get_mut(route) {
            Some(statuses) => statuses,
            None => routes.entry(route.to_owned()).or_default(),
        };
        *statuses.entry(status).or_insert(0) += 1;
    }

    pub fn render(&self, engine: &Engine) -> String {
        let mut out = String::with_capacity(4096);
        let o = &mut out;
        let _ = writeln!(o, "# HELP stockd_http_requests_total HTTP requests by method, route and status.");
        let _ = writeln!(o, "# TYPE stockd_http_requests_total counter");
        for (m, routes) in self.requests.lock().iter() {
            for (r, statuses) in routes {
                for (s, n) in statuses {
                    let _ =
                        writeln!(o, "stockd_http_requests_total{{method=\"{m}\",route=\"{r}\",status=\"{s}\"}} {n}");
                }
            }
        }
        let outcomes = engine.outcome_stats();
        let _ = writeln!(
            o,
            "# HELP stockd_reserve_duration_seconds Latency of reserves answered by the engine, every path \
             (HTTP, Kafka, embedded); refusals included."
        );
        let _ = writeln!(o, "# TYPE stockd_reserve_duration_seconds histogram");
        render_histogram("stockd_reserve_duration_seconds", "", &outcomes.latency_all(), o);
        let _ = writeln!(
            o,
            "# HELP stockd_reserve_path_duration_seconds Latency of reserves answered by the engine, by the path \
             they came by (http, kafka, embedded)."
        );
        let _ = writeln!(o, "# TYPE stockd_reserve_path_duration_seconds histogram");
        for (origin, h) in &outcomes.reserve_latency {
            let labels = format!("path=\"{}\",", path_label(*origin));
            render_histogram("stockd_reserve_path_duration_seconds", &labels, h, o);
        }
        let counters = [
            ("stockd_reservations_created_total", "Reservations created, every path.", outcomes.created),
            ("stockd_reservations_committed_total", "Reservations committed, every path.", outcomes.committed),
            ("stockd_reservations_released_total", "Reservations released, every path.", outcomes.released),
            (
                "stockd_reserve_rejected_total",
                "Reserves refused by the engine, every path and code.",
                outcomes.rejected(ReservationOp::Reserve),
            ),
            ("stockd_low_stock_alerts_total", "Low-stock alerts raised, every path.", outcomes.low_stock_alerts),
            (
                "stockd_out_of_stock_alerts_total",
                "Out-of-stock alerts raised, every path.",
                outcomes.out_of_stock_alerts,
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        }
        let _ = writeln!(
            o,
            "# HELP stockd_rejections_total Reservation operations refused by the engine, by operation \
             (reserve, commit, release, extend, expire) and error code, every path."
        );
        let _ = writeln!(o, "# TYPE stockd_rejections_total counter");
        for r in &outcomes.rejections {
            let _ = writeln!(o, "stockd_rejections_total{{op=\"{}\",code=\"{}\"}} {}", r.op.as_str(), r.code, r.count);
        }
        let _ = writeln!(o, "# HELP stockd_http_connections_open HTTP connections open now.");
        let _ = writeln!(
            o,
            "# TYPE stockd_http_connections_open gauge\nstockd_http_connections_open {}",
            self.http.open.load(Relaxed)
        );
        let http = [
            ("stockd_http_connections_accepted_total", "HTTP connections accepted.", &self.http.accepted),
            (
                "stockd_http_connections_refused_total",
                "HTTP connections past --max-connections, answered 503 and closed.",
                &self.http.refused,
            ),
            (
                "stockd_http_accept_errors_total",
                "Failed accepts (e.g. out of file descriptors).",
                &self.http.accept_errors,
            ),
            (
                "stockd_http_connections_closed_at_shutdown_total",
                "HTTP connections still open at the shutdown deadline, then closed.",
                &self.http.closed_at_shutdown,
            ),
        ];
        for (name, help, v) in http {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", v.load(Relaxed));
        }
        let _ =
            writeln!(o, "# HELP stockd_http_connection_timeouts_total HTTP connections closed by a timeout, by phase.");
        let _ = writeln!(o, "# TYPE stockd_http_connection_timeouts_total counter");
        for (phase, v) in [
            ("header", &self.http.header_timeouts),
            ("idle", &self.http.idle_timeouts),
            ("request", &self.http.request_timeouts),
        ] {
            let _ = writeln!(o, "stockd_http_connection_timeouts_total{{phase=\"{phase}\"}} {}", v.load(Relaxed));
        }
        let status = engine.shard_status();
        let active: u64 = status.iter().map(|s| s.active_reservations.load(Relaxed)).sum();
        let expired = outcomes.expired;
        let _ = writeln!(o, "# HELP stockd_reservations_active ACTIVE reservations, all shards.");
        let _ = writeln!(o, "# TYPE stockd_reservations_active gauge\nstockd_reservations_active {active}");
        let _ =
            writeln!(o, "# HELP stockd_reservations_expired_total Reservations expired (timer, on access, operator).");
        let _ = writeln!(
            o,
            "# TYPE stockd_reservations_expired_total counter\nstockd_reservations_expired_total {expired}"
        );
        let _ = writeln!(o, "# HELP stockd_wal_sync_duration_seconds WAL group-commit sync latency, all shards.");
        let _ = writeln!(o, "# TYPE stockd_wal_sync_duration_seconds histogram");
        let mut cumulative = 0;
        for (i, bound) in SYNC_BUCKETS_MICROS.iter().enumerate() {
            cumulative += status.iter().map(|s| s.sync_buckets[i].load(Relaxed)).sum::<u64>();
            let _ =
                writeln!(o, "stockd_wal_sync_duration_seconds_bucket{{le=\"{}\"}} {cumulative}", *bound as f64 / 1e6);
        }
        let syncs: u64 = status.iter().map(|s| s.syncs.load(Relaxed)).sum();
        let sync_micros: u64 = status.iter().map(|s| s.sync_micros_total.load(Relaxed)).sum();
        let _ = writeln!(o, "stockd_wal_sync_duration_seconds_bucket{{le=\"+Inf\"}} {syncs}");
        let _ = writeln!(o, "stockd_wal_sync_duration_seconds_sum {}", sync_micros as f64 / 1e6);
        let _ = writeln!(o, "stockd_wal_sync_duration_seconds_count {syncs}");
        let _ = writeln!(
            o,
            "# HELP stockd_invariant_violations Engine answers reporting an internal inconsistency; must stay 0."
        );
        let _ = writeln!(
            o,
            "# TYPE stockd_invariant_violations gauge\nstockd_invariant_violations {}",
            INVARIANT_VIOLATIONS.load(Relaxed)
        );
        let _ = writeln!(
            o,
            "# HELP stockd_oversell_detected_total Mutations that left an item or location with more reserved than \
             on hand (checked after every change, release builds included); must stay 0."
        );
        let _ = writeln!(
            o,
            "# TYPE stockd_oversell_detected_total counter\nstockd_oversell_detected_total {}",
            stockd_engine::oversells_detected()
        );
        let flows = engine.flow_stats();
        for (name, help, value) in [
            (
                "stockd_sweep_failures_total",
                "Expiry sweeps (with the reconciler) that failed; each is retried.",
                flows.sweep_failures,
            ),
            (
                "stockd_flow_steps_deferred_total",
                "Internal steps of a flow that found even the reserved queue slots full and waited (never dropped).",
                flows.steps_deferred,
            ),
            (
                "stockd_reconciler_settled_total",
                "Finished reservations whose holds the reconciler settled after their flow could not.",
                flows.reconciled_settled,
            ),
            (
                "stockd_reconciler_aborted_total",
                "PENDING reservations past their deadline that the reconciler aborted.",
                flows.reconciled_aborted,
            ),
        ] {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
        }
        let shard_metrics: [ShardMetric; 6] = [
            ("stockd_wal_durable_lsn", "gauge", "Last WAL sequence number synced, per shard.", |s| {
                s.durable_lsn.load(Relaxed)
            }),
            ("stockd_shard_failed", "gauge", "1 when the shard's WAL failed.", |s| {
                u64::from(s.failed.load(std::sync::atomic::Ordering::Acquire))
            }),
            ("stockd_wal_records_total", "counter", "Records appended to the WAL, per shard.", |s| {
                s.logged.load(Relaxed)
            }),
            (
                "stockd_wal_syncs_total",
                "counter",
                "WAL syncs, per shard; records/syncs is the mean group-commit batch size.",
                |s| s.syncs.load(Relaxed),
            ),
            ("stockd_shard_applied_total", "counter", "Requests applied by the shard.", |s| s.applied.load(Relaxed)),
            (
                "stockd_shard_batches_total",
                "counter",
                "Durability steps (batches) of the shard; applied/batches is the mean batch size.",
                |s| s.batches.load(Relaxed),
            ),
        ];
        for (name, kind, help, get) in shard_metrics {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (i, s) in status.iter().enumerate() {
                let _ = writeln!(o, "{name}{{shard=\"{i}\"}} {}", get(s));
            }
        }
        out
    }
}

type RequestCounts = BTreeMap<&'static str, BTreeMap<String, BTreeMap<u16, u64>>>;

/// A method's name for the request counter: the standard ones, else `OTHER` (so a
/// client cannot grow the counter table with made-up methods).
pub(crate) fn method_name(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "OTHER",
    }
}
