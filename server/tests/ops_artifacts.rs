//! The operator artifacts in deploy/ against the real server (issue 15):
//!
//! - deploy/grafana/stockd.json is a Grafana JSON model whose every query goes to the
//!   `${DS_PROMETHEUS}` input;
//! - every rule of deploy/prometheus/alerts.yml has `for`, a severity, a summary and a
//!   description pointing at its runbook (server/README.md, "Alerts and dashboard",
//!   which names every alert), and deploy/prometheus/alerts_test.yml has a case where
//!   it fires and one where it does not (promtool itself runs in scripts/test.sh);
//! - every `stockd_*` name those files use is one `GET /metrics` of the real binary
//!   exports: without Kafka for the names that do not need it, and with a real broker
//!   (tansu) for all of them, except the explicit `PENDING` list below.

mod common;

use common::kafka::create_topics;
use common::tansu::Tansu;
use common::{assert_ok, Server};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use serde_json::Value as Json;
use serde_norway::Value as Yaml;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Files whose `stockd_*` names must be exported.
const DEPLOY_FILES: [&str; 3] =
    ["deploy/prometheus/alerts.yml", "deploy/prometheus/alerts_test.yml", "deploy/grafana/stockd.json"];

/// Names the deploy files may use before the server exports them (a change that adds
/// them lands later): reported, not required; once exported, the test fails until the
/// name is removed from here. None now.
const PENDING: &[&str] = &[];

/// The runbook every alert links to.
const RUNBOOK: &str = "server/README.md#alerts-and-dashboard";

fn repo_file(rel: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Every `stockd_<name>` token in `text`.
fn names_in(text: &str) -> BTreeSet<String> {
    let is_name = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
    let mut names = BTreeSet::new();
    for (i, _) in text.match_indices("stockd_") {
        if text[..i].chars().next_back().is_some_and(|c| is_name(c) || c.is_ascii_uppercase()) {
            continue;
        }
        let rest = &text[i + "stockd_".len()..];
        let len = rest.find(|c: char| !is_name(c)).unwrap_or(rest.len());
        if len > 0 {
            names.insert(format!("stockd_{}", &rest[..len]));
        }
    }
    names
}

/// The `stockd_*` names the deploy files use.
fn used_names() -> BTreeSet<String> {
    DEPLOY_FILES.iter().flat_map(|f| names_in(&repo_file(f))).collect()
}

/// The names a /metrics text exports: every sample's name (histograms' `_bucket`,
/// `_sum`, `_count` included) and every `# TYPE` name (a labelled gauge with no series
/// yet, e.g. no partition assigned, still declares its name).
fn exported(metrics: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in metrics.lines() {
        let name = match line.strip_prefix("# TYPE ") {
            Some(rest) => rest.split(' ').next(),
            None if line.starts_with('#') || line.trim().is_empty() => None,
            None => line.split(['{', ' ']).next(),
        };
        if let Some(n) = name.filter(|n| !n.is_empty()) {
            names.insert(n.to_owned());
        }
    }
    names
}

/// Names exported only while the Kafka front runs (its counters, and the outbox the
/// publisher keeps).
fn needs_kafka(name: &str) -> bool {
    name.starts_with("stockd_kafka_") || name.starts_with("stockd_outbox_")
}

/// Exported only by a node started with `--replication kafka` (which runs no Kafka
/// order front, so it is checked on its own).
fn needs_replication(name: &str) -> bool {
    name.starts_with("stockd_replication_")
}

#[test]
fn names_in_and_exported_read_the_formats_they_are_given() {
    let text = r#"sum(rate(stockd_reserve_duration_seconds_bucket{le="0.1"}[5m])) / xstockd_no stockd_ STOCKD_NO"#;
    assert_eq!(names_in(text), BTreeSet::from(["stockd_reserve_duration_seconds_bucket".to_owned()]));
    let metrics =
        "# HELP stockd_a A.\n# TYPE stockd_a gauge\n# TYPE stockd_b gauge\nstockd_c_bucket{le=\"1\"} 3\nstockd_d 4\n";
    let want = ["stockd_a", "stockd_b", "stockd_c_bucket", "stockd_d"].map(str::to_owned);
    assert_eq!(exported(metrics), BTreeSet::from(want));
}

#[test]
fn the_dashboard_is_a_grafana_model_querying_the_ds_prometheus_input() {
    let dash: Json = serde_json::from_str(&repo_file("deploy/grafana/stockd.json")).expect("stockd.json is JSON");
    let inputs = dash["__inputs"].as_array().expect("__inputs");
    assert!(
        inputs
            .iter()
            .any(|i| i["name"] == "DS_PROMETHEUS" && i["type"] == "datasource" && i["pluginId"] == "prometheus"),
        "no DS_PROMETHEUS datasource input: {inputs:?}"
    );
    assert!(dash["title"].is_string() && dash["uid"].is_string() && dash["schemaVersion"].as_u64().is_some());
    let panels = dash["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    let mut exprs = Vec::new();
    for p in panels {
        let title = p["title"].as_str().expect("a panel title");
        assert!(ids.insert(p["id"].as_u64().expect("a panel id")), "panel id repeated: {title}");
        let g = &p["gridPos"];
        let (x, w) = (g["x"].as_u64().expect("gridPos.x"), g["w"].as_u64().expect("gridPos.w"));
        assert!(x + w <= 24 && g["h"].as_u64().is_some() && g["y"].as_u64().is_some(), "gridPos of {title}: {g}");
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${DS_PROMETHEUS}", "datasource of {title}");
        let targets =
            p["targets"].as_array().filter(|t| !t.is_empty()).unwrap_or_else(|| panic!("{title}: no targets"));
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${DS_PROMETHEUS}", "datasource of a query of {title}");
            let expr = t["expr"].as_str().filter(|e| e.contains("stockd_")).unwrap_or_else(|| panic!("{title}: {t}"));
            exprs.push((title.to_owned(), expr.to_owned()));
        }
    }
    for v in dash["templating"]["list"].as_array().expect("templating.list") {
        assert_eq!(v["datasource"]["uid"], "${DS_PROMETHEUS}", "datasource of variable {}", v["name"]);
    }
    // The panels the brief asks for, by what they query.
    let queries = |needle: &str| exprs.iter().any(|(_, e)| e.contains(needle));
    for needle in [
        "stockd_reservations_committed_total",
        "histogram_quantile(0.99, sum by (le) (rate(stockd_reserve_duration_seconds_bucket",
        "stockd_http_requests_total{instance=~\"$instance\",status=\"429\"}",
        "histogram_quantile(0.99, sum by (le) (rate(stockd_wal_sync_duration_seconds_bucket",
        "stockd_wal_records_total",
        "stockd_kafka_consumer_lag",
        "stockd_outbox_held_bytes",
        "stockd_oversell_detected_total",
        "stockd_shard_failed",
    ] {
        assert!(queries(needle), "no panel queries {needle}");
    }
}

/// Alert name → (has a case where it fires, has a case where it does not).
fn promtool_cases() -> std::collections::BTreeMap<String, (bool, bool)> {
    let tests: Yaml = serde_norway::from_str(&repo_file("deploy/prometheus/alerts_test.yml")).expect("YAML");
    let files = tests["rule_files"].as_sequence().expect("rule_files");
    assert_eq!(files.iter().filter_map(Yaml::as_str).collect::<Vec<_>>(), ["alerts.yml"]);
    let mut cases = std::collections::BTreeMap::<String, (bool, bool)>::new();
    for t in tests["tests"].as_sequence().expect("tests") {
        for case in t["alert_rule_test"].as_sequence().expect("alert_rule_test") {
            let name = case["alertname"].as_str().expect("alertname").to_owned();
            let fires = case["exp_alerts"].as_sequence().is_some_and(|a| !a.is_empty());
            let entry = cases.entry(name).or_default();
            if fires {
                entry.0 = true;
            } else {
                entry.1 = true;
            }
        }
    }
    cases
}

#[test]
fn every_alert_is_complete_documented_and_tested_firing_and_not_firing() {
    let rules: Yaml = serde_norway::from_str(&repo_file("deploy/prometheus/alerts.yml")).expect("YAML");
    let readme = repo_file("server/README.md");
    let section =
        readme.split("\n## Alerts and dashboard\n").nth(1).expect("server/README.md: ## Alerts and dashboard");
    let section = section.split("\n## ").next().unwrap();
    let cases = promtool_cases();
    let mut alerts = BTreeSet::new();
    for group in rules["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            let name = rule["alert"].as_str().expect("only alerting rules").to_owned();
            assert!(alerts.insert(name.clone()), "{name} twice");
            assert!(rule["expr"].as_str().is_some_and(|e| e.contains("stockd_")), "{name}: expr");
            assert!(rule["for"].as_str().is_some(), "{name}: no `for:`");
            let severity = rule["labels"]["severity"].as_str();
            assert!(matches!(severity, Some("critical" | "warning" | "info")), "{name}: severity {severity:?}");
            let a = &rule["annotations"];
            assert!(a["summary"].as_str().is_some_and(|s| !s.is_empty()), "{name}: summary");
            assert!(a["description"].as_str().is_some_and(|d| d.contains(RUNBOOK)), "{name}: description + runbook");
            assert_eq!(a["runbook_url"].as_str(), Some(RUNBOOK), "{name}: runbook_url");
            assert!(section.contains(&format!("`{name}`")), "server/README.md, Alerts and dashboard, lacks {name}");
            let (fires, quiet) = cases.get(&name).copied().unwrap_or_default();
            assert!(fires && quiet, "{name}: alerts_test.yml needs a case firing it ({fires}) and one not ({quiet})");
        }
    }
    let tested: BTreeSet<String> = cases.keys().cloned().collect();
    assert_eq!(tested, alerts, "alerts_test.yml tests alerts that alerts.yml does not have, or misses some");
    for wanted in [
        "StockdOversellDetected",
        "StockdWalFailed",
        "StockdExpiryRateHigh",
        "StockdKafkaConsumerLag",
        "StockdKafkaBrokerDown",
        "StockdLowStock",
        "StockdSweepFailing",
        "StockdOutboxRefusing",
    ] {
        assert!(alerts.contains(wanted), "alerts.yml lacks {wanted}");
    }
}

#[test]
fn without_kafka_the_server_exports_every_name_that_does_not_need_it() {
    let server = Server::start(&[]);
    let have = exported(&server.text("/metrics"));
    let missing: Vec<String> = used_names()
        .into_iter()
        .filter(|n| !needs_kafka(n) && !needs_replication(n) && !PENDING.contains(&n.as_str()) && !have.contains(n))
        .collect();
    assert!(missing.is_empty(), "deploy/ uses names /metrics does not export: {missing:?}\nexported: {have:?}");
    assert_eq!(server.stop(), Some(0));
}

#[test]
fn with_a_broker_the_server_exports_every_name_deploy_uses() {
    let broker = Tansu::start();
    create_topics(&broker.servers, &["order.created", "inventory.reserved", "inventory.adjusted", "stockd.dlq"]);
    let server = Server::start(&["--kafka-brokers", &broker.servers, "--kafka-topics", "order.created"]);
    assert_ok(server.put("/api/v1/inventory/items/ops-1", r#"{"onHand":10}"#), 201);
    // One order through Kafka, so that the consumer has a partition and a message.
    let producer: BaseProducer = ClientConfig::new().set("bootstrap.servers", &broker.servers).create().unwrap();
    let order = r#"{"eventType":"order.created","orderId":"ops-o-1","items":[{"sku":"ops-1","quantity":1}]}"#;
    producer.send(BaseRecord::to("order.created").key("ops-o-1").payload(order)).map_err(|(e, _)| e).unwrap();
    producer.flush(Duration::from_secs(30)).expect("the order reached the broker");

    let used: BTreeSet<String> = used_names().into_iter().filter(|n| !needs_replication(n)).collect();
    let applied = |m: &str| m.lines().any(|l| l.starts_with("stockd_kafka_applied_total ") && !l.ends_with(" 0"));
    // Bounded waits: for the order to be applied, then (a little longer) for every
    // name, since a per-partition gauge may appear only after the assignment.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut metrics = server.text("/metrics");
    while !applied(&metrics) {
        assert!(Instant::now() < deadline, "the Kafka order was not applied within 60 s:\n{metrics}");
        std::thread::sleep(Duration::from_millis(100));
        metrics = server.text("/metrics");
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut have = exported(&metrics);
    while !used.is_subset(&have) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        have = exported(&server.text("/metrics"));
    }
    let missing: Vec<&String> = used.iter().filter(|n| !PENDING.contains(&n.as_str()) && !have.contains(*n)).collect();
    assert!(missing.is_empty(), "deploy/ uses names /metrics does not export: {missing:?}\nexported: {have:?}");
    let landed: Vec<&&str> = PENDING.iter().filter(|n| have.contains(**n)).collect();
    assert!(landed.is_empty(), "now exported: remove {landed:?} from PENDING in server/tests/ops_artifacts.rs");
    let unused: Vec<&&str> = PENDING.iter().filter(|n| !used.contains(**n)).collect();
    assert!(unused.is_empty(), "PENDING lists names deploy/ does not use: {unused:?}");
    let waiting: Vec<&&str> = PENDING.iter().filter(|n| !have.contains(**n)).collect();
    if !waiting.is_empty() {
        eprintln!("ops_artifacts: used by deploy/, not yet exported by the server (PENDING): {waiting:?}");
    }
    assert_eq!(server.stop(), Some(0));
}

#[test]
fn a_replicated_node_exports_the_replication_names_deploy_uses() {
    let broker = Tansu::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_on(
        dir.path(),
        &[
            "--replication",
            "kafka",
            "--kafka-brokers",
            &broker.servers,
            "--node-id",
            "ops-1",
            "--changelog-replication-factor",
            "1",
        ],
    );
    let used: Vec<String> = used_names().into_iter().filter(|n| needs_replication(n)).collect();
    assert!(used.len() >= 2, "deploy/ alerts on replication: {used:?}");
    let have = exported(&server.text("/metrics"));
    let missing: Vec<&String> = used.iter().filter(|n| !have.contains(*n)).collect();
    assert!(missing.is_empty(), "deploy/ uses names /metrics does not export: {missing:?}\nexported: {have:?}");
    assert_eq!(server.stop(), Some(0));
}
