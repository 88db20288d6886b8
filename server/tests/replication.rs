//! Replication and failover on Kafka (issue 14), black-box: real `stockd` nodes and
//! a real Kafka-protocol broker (tansu) on loopback.
//!
//! - three nodes under a reserve / commit / release load; the leader is killed with
//!   -9, a standby takes over, the killed node comes back as a standby; several
//!   rounds. Every acknowledged reservation is there with its acknowledged outcome,
//!   sold counts every acknowledged commit and nothing more than was committed,
//!   invariants hold, nothing is sold twice.
//! - the zombie: the leader is frozen (SIGSTOP), a standby takes over, the old leader
//!   is thawed with requests in flight: none of them is acknowledged unless the new
//!   leader has it.
//! - a standby with an empty data directory catches up from Kafka alone and takes
//!   over.
//! - Kafka unavailable: writes answer 503, nothing acknowledged is lost, writes
//!   resume when it is back.
//! - the Kafka order-event front runs on the leader only and moves with it: orders
//!   consumed and events published before and after a failover, no event published
//!   twice, nothing dead-lettered.

mod common;

use common::kafka::{create_topics, read_topic, Got, PUBLISHED_TOPICS};
use common::tansu::Tansu;
use common::wait_for;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One cluster at a time: four brokers and nine nodes at once on two cores slow the
/// group coordinator past the session timeouts the tests rely on.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const SKU: &str = "FLASH-1";
const STOCK: u64 = 100_000;
const SHARDS: &str = "2";

struct Node {
    id: String,
    port: u16,
    dir: PathBuf,
    brokers: String,
    /// More `stockd serve` flags.
    extra: Vec<String>,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Node {
    fn new(id: &str, dir: PathBuf, brokers: &str) -> Node {
        Node { id: id.into(), port: free_port(), dir, brokers: brokers.into(), extra: Vec::new(), child: None }
    }

    fn start(&mut self) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_stockd"))
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{}", self.port), "--shards", SHARDS, "--data-dir"])
            .arg(&self.dir)
            .args(["--replication", "kafka", "--kafka-brokers", &self.brokers, "--node-id", &self.id])
            .args(["--changelog-replication-factor", "1", "--leader-session-timeout", "6s"])
            .args(&self.extra)
            .env("RUST_LOG", "warn,stockd_server::replication=info")
            .env_remove("STOCKD_ADMIN_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn stockd");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(line.starts_with("listening on"), "node {} did not start: {line:?}", self.id);
        // Keep reading (a node that restarts itself in place prints the line again).
        std::thread::spawn(move || for _ in stdout.lines() {});
        self.child = Some(child);
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        assert!(Command::new("kill").args([sig, &pid]).status().unwrap().success());
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value), String> {
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(20)).build();
        let req = agent.request(method, &self.url(path));
        let resp = match body {
            Some(b) => req.set("content-type", "application/json").send_string(&b.to_string()),
            None => req.call(),
        };
        match resp {
            Ok(r) => Ok((r.status(), r.into_json().unwrap_or(Value::Null))),
            Err(ureq::Error::Status(code, r)) => Ok((code, r.into_json().unwrap_or(Value::Null))),
            Err(e) => Err(e.to_string()),
        }
    }

    fn ready(&self) -> bool {
        matches!(self.call("GET", "/ready", None), Ok((200, _)))
    }

    fn health(&self) -> Value {
        self.call("GET", "/health", None).map(|(_, v)| v).unwrap_or(Value::Null)
    }

    fn item(&self) -> Value {
        self.item_of(SKU)
    }

    fn item_of(&self, sku: &str) -> Value {
        let (code, v) = self.call("GET", &format!("/api/v1/inventory/items/{sku}"), None).unwrap();
        assert_eq!(code, 200, "{v}");
        v["data"].clone()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill").args(["-CONT", &c.id().to_string()]).status();
        }
        self.kill9();
    }
}

/// The index of the one node that is ready (the leader), waiting for it.
fn leader(nodes: &[Node], secs: u64) -> usize {
    wait_for(secs, "a leader", || {
        let ready: Vec<usize> = (0..nodes.len()).filter(|&i| nodes[i].child.is_some() && nodes[i].ready()).collect();
        (ready.len() == 1).then(|| ready[0])
    })
}

/// What clients saw acknowledged.
#[derive(Default, Debug)]
struct Acks {
    /// orderId → reservationId, for every acknowledged reserve.
    reserved: BTreeMap<String, String>,
    committed: Vec<String>,
    released: Vec<String>,
    /// Orders whose commit was sent (acknowledged or not): sold may count them.
    commit_sent: Vec<String>,
}

struct Load {
    stop: Arc<AtomicBool>,
    acks: Arc<Mutex<Acks>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// Clients that reserve 1 unit per order and then commit (2 in 3) or release it,
/// always against whichever node answers /ready; every 2xx is recorded.
fn start_load(ports: Vec<u16>, clients: usize, prefix: &str) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(Mutex::new(Acks::default()));
    let threads = (0..clients)
        .map(|c| {
            let (stop, acks, ports, prefix) = (stop.clone(), acks.clone(), ports.clone(), prefix.to_owned());
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(20)).build();
                let call = |port: u16, path: &str, body: &Value| -> Option<(u16, Value)> {
                    let r = agent
                        .post(&format!("http://127.0.0.1:{port}{path}"))
                        .set("content-type", "application/json")
                        .send_string(&body.to_string());
                    match r {
                        Ok(r) => Some((r.status(), r.into_json().unwrap_or(Value::Null))),
                        Err(ureq::Error::Status(code, r)) => Some((code, r.into_json().unwrap_or(Value::Null))),
                        Err(_) => None,
                    }
                };
                let mut target = 0usize;
                let mut n = 0u64;
                while !stop.load(Ordering::Acquire) {
                    n += 1;
                    let order = format!("{prefix}-{c}-{n}");
                    let port = ports[target % ports.len()];
                    let reserve = json!({"orderId": order, "items": [{"sku": SKU, "quantity": 1}], "expiresIn": 3600});
                    match call(port, "/api/v1/inventory/reserve", &reserve) {
                        Some((201, v)) => {
                            let id = v["data"]["reservationId"].as_str().unwrap().to_owned();
                            acks.lock().unwrap().reserved.insert(order.clone(), id);
                        }
                        _ => {
                            target += 1; // not the leader (or down): try the next node
                            std::thread::sleep(Duration::from_millis(20));
                            continue;
                        }
                    }
                    let body = json!({"orderId": order});
                    if n.is_multiple_of(3) {
                        if let Some((200, _)) = call(port, "/api/v1/inventory/release", &body) {
                            acks.lock().unwrap().released.push(order);
                        }
                    } else {
                        acks.lock().unwrap().commit_sent.push(order.clone());
                        if let Some((200, _)) = call(port, "/api/v1/inventory/commit", &body) {
                            acks.lock().unwrap().committed.push(order);
                        }
                    }
                }
            })
        })
        .collect();
    Load { stop, acks, threads }
}

impl Load {
    fn finish(self) -> Acks {
        self.stop.store(true, Ordering::Release);
        for t in self.threads {
            t.join().unwrap();
        }
        Arc::try_unwrap(self.acks).unwrap().into_inner().unwrap()
    }
}

fn acks_count(load: &Load) -> usize {
    load.acks.lock().unwrap().reserved.len()
}

/// Every acknowledged outcome is on `node`, the stock adds up, nothing oversold.
fn check(node: &Node, acks: &Acks) {
    for (order, id) in &acks.reserved {
        let (code, v) = node.call("GET", &format!("/api/v1/inventory/reservations/{id}"), None).unwrap();
        assert_eq!(code, 200, "acknowledged reservation {order} ({id}) is missing: {v}");
        let status = v["data"]["status"].as_str().unwrap().to_owned();
        if acks.committed.contains(order) {
            assert_eq!(status, "COMMITTED", "{order}: commit acknowledged");
        } else if acks.released.contains(order) {
            assert_eq!(status, "RELEASED", "{order}: release acknowledged");
        }
    }
    let item = node.item();
    let (on_hand, available, reserved, sold) = (
        item["onHand"].as_u64().unwrap(),
        item["available"].as_u64().unwrap(),
        item["reserved"].as_u64().unwrap(),
        item["sold"].as_u64().unwrap(),
    );
    assert_eq!(available + reserved, on_hand, "{item}");
    assert_eq!(on_hand + sold, STOCK, "every unit is on hand or sold, once: {item}");
    let committed = acks.committed.len() as u64;
    let sent = acks.commit_sent.len() as u64;
    assert!(sold >= committed, "sold {sold} < {committed} acknowledged commits");
    assert!(sold <= sent, "sold {sold} > {sent} commits ever sent: something was sold twice");
}

fn cluster(tansu: &Tansu, n: usize, tmp: &tempfile::TempDir) -> Vec<Node> {
    (0..n).map(|i| Node::new(&format!("node-{i}"), tmp.path().join(format!("n{i}")), &tansu.servers)).collect()
}

fn stock(node: &Node) {
    let (code, v) =
        node.call("PUT", &format!("/api/v1/inventory/items/{SKU}"), Some(&json!({"onHand": STOCK}))).unwrap();
    assert!(code == 200 || code == 201, "{code} {v}");
}

/// Waits until `node`, a standby, has read the whole changelog and shows `item`.
fn caught_up(node: &Node, item: &Value) {
    wait_for(60, "a standby to catch up", || {
        let h = node.health();
        let r = &h["data"]["replication"];
        let (code, got) = node.call("GET", &format!("/api/v1/inventory/items/{SKU}"), None).ok()?;
        (r["caughtUp"] == true && r["lagRecords"] == 0 && code == 200 && got["data"] == *item).then_some(())
    });
}

#[test]
fn three_nodes_kill9_the_leader_rounds() {
    let _one_at_a_time = serial();
    let tansu = Tansu::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut nodes = cluster(&tansu, 3, &tmp);
    for n in &mut nodes {
        n.start();
    }
    let first = leader(&nodes, 60);
    stock(&nodes[first]);
    let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
    let load = start_load(ports, 4, "k");
    let mut leaders = vec![first];
    for round in 0..3 {
        let l = *leaders.last().unwrap();
        let before = acks_count(&load);
        wait_for(60, "acknowledged reservations under load", || (acks_count(&load) >= before + 50).then_some(()));
        nodes[l].kill9();
        let next = leader(&nodes, 60);
        assert_ne!(next, l, "round {round}: the killed node cannot lead");
        let after = acks_count(&load);
        wait_for(60, "writes on the new leader", || (acks_count(&load) >= after + 20).then_some(()));
        // The old leader comes back as a standby.
        nodes[l].start();
        leaders.push(next);
    }
    let acks = load.finish();
    let l = leader(&nodes, 30);
    check(&nodes[l], &acks);
    let item = nodes[l].item();
    for (i, n) in nodes.iter().enumerate() {
        if i != l {
            caught_up(n, &item);
            check(n, &acks);
        }
    }
    // A standby refuses writes and says where the leader is.
    let standby = (0..3).find(|&i| i != l).unwrap();
    let (code, v) = nodes[standby]
        .call(
            "POST",
            "/api/v1/inventory/reserve",
            Some(&json!({"orderId": "x", "items": [{"sku": SKU, "quantity": 1}]})),
        )
        .unwrap();
    assert_eq!(code, 503, "{v}");
    assert_eq!(v["error"]["code"], "NOT_LEADER");
    assert_eq!(v["error"]["details"]["leader"], nodes[l].url(""));
}

#[test]
fn a_frozen_leader_thawed_with_requests_in_flight_acknowledges_nothing_the_new_leader_lacks() {
    let _one_at_a_time = serial();
    let tansu = Tansu::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut nodes = cluster(&tansu, 2, &tmp);
    for n in &mut nodes {
        n.start();
    }
    let old = leader(&nodes, 60);
    stock(&nodes[old]);
    nodes[old].signal("-STOP");
    let new = leader(&nodes, 60);
    assert_ne!(new, old);
    // Requests to the frozen leader: they wait in its socket until it is thawed.
    let port = nodes[old].port;
    let in_flight: Vec<_> = (0..8)
        .map(|i| {
            std::thread::spawn(move || {
                let body = json!({"orderId": format!("zombie-{i}"), "items": [{"sku": SKU, "quantity": 1}]});
                let r = ureq::AgentBuilder::new()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .post(&format!("http://127.0.0.1:{port}/api/v1/inventory/reserve"))
                    .set("content-type", "application/json")
                    .send_string(&body.to_string());
                match r {
                    Ok(r) => (r.status(), r.into_json::<Value>().unwrap_or(Value::Null)),
                    Err(ureq::Error::Status(c, r)) => (c, r.into_json::<Value>().unwrap_or(Value::Null)),
                    Err(e) => (0, json!(e.to_string())),
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    nodes[old].signal("-CONT");
    let answers: Vec<(u16, Value)> = in_flight.into_iter().map(|t| t.join().unwrap()).collect();
    for (code, v) in &answers {
        if (200..300).contains(code) {
            let id = v["data"]["reservationId"].as_str().unwrap();
            let (c, got) = nodes[new].call("GET", &format!("/api/v1/inventory/reservations/{id}"), None).unwrap();
            assert_eq!(c, 200, "the old leader acknowledged {id}, which the new leader lacks: {got}");
        }
    }
    assert!(answers.iter().all(|(c, _)| *c != 201), "a fenced leader acknowledged a reserve: {answers:?}");
    // The new leader's stock shows none of them.
    assert_eq!(nodes[new].item()["reserved"], 0);
    // The old leader notices, restarts itself as a standby and follows.
    let item = nodes[new].item();
    wait_for(60, "the old leader to rejoin as a standby", || {
        let h = nodes[old].health();
        (h["data"]["replication"]["role"] == "standby").then_some(())
    });
    caught_up(&nodes[old], &item);
}

#[test]
fn a_standby_with_an_empty_data_dir_catches_up_and_takes_over() {
    let _one_at_a_time = serial();
    let tansu = Tansu::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut nodes = cluster(&tansu, 2, &tmp);
    nodes[0].start();
    let l = leader(&nodes, 60);
    assert_eq!(l, 0);
    stock(&nodes[0]);
    let load = start_load(vec![nodes[0].port], 2, "e");
    wait_for(60, "some load", || (acks_count(&load) >= 200).then_some(()));
    let acks = load.finish();
    nodes[1].start();
    let item = nodes[0].item();
    caught_up(&nodes[1], &item);
    // Joining (it enters the leader group once caught up) does not move leadership
    // from a healthy leader: over more than a session timeout, node 0 stays the one.
    let until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < until {
        assert!(nodes[0].ready() && !nodes[1].ready(), "a joining standby took leadership from a healthy leader");
        std::thread::sleep(Duration::from_millis(200));
    }
    nodes[0].kill9();
    assert_eq!(leader(&nodes, 60), 1);
    check(&nodes[1], &acks);
}

#[test]
fn kafka_unavailable_writes_answer_503_and_resume_when_it_is_back() {
    let _one_at_a_time = serial();
    let tansu = Tansu::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut nodes = cluster(&tansu, 2, &tmp);
    for n in &mut nodes {
        n.start();
    }
    let l = leader(&nodes, 60);
    stock(&nodes[l]);
    let load = start_load(vec![nodes[0].port, nodes[1].port], 2, "u");
    wait_for(60, "some load", || (acks_count(&load) >= 50).then_some(()));
    tansu.pause();
    std::thread::sleep(Duration::from_secs(1));
    let body = json!({"orderId": "during-outage", "items": [{"sku": SKU, "quantity": 1}]});
    let (code, v) = nodes[l].call("POST", "/api/v1/inventory/reserve", Some(&body)).unwrap();
    assert_eq!(code, 503, "a write while Kafka is away: {v}");
    let h = nodes[l].health();
    let stalled = h["data"]["replication"]["stalled"].as_array().cloned().unwrap_or_default();
    assert!(!stalled.is_empty(), "/health says which shards wait for the changelog: {h}");
    tansu.resume();
    let after = acks_count(&load);
    wait_for(120, "writes to resume", || (acks_count(&load) >= after + 50).then_some(()));
    let acks = load.finish();
    let l = leader(&nodes, 60);
    check(&nodes[l], &acks);
    let h = nodes[l].health();
    assert_eq!(h["data"]["replication"]["stalled"], json!([]), "{h}");
}

fn produce_order(servers: &str, order: &str, sku: &str) {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let p: BaseProducer = rdkafka::ClientConfig::new().set("bootstrap.servers", servers).create().unwrap();
    let body = json!({"orderId": order, "items": [{"sku": sku, "quantity": 1}]}).to_string();
    p.send(BaseRecord::to("order.created").key(order).payload(&body)).map_err(|(e, _)| e).expect("send");
    p.flush(Duration::from_secs(30)).expect("flush");
}

/// The published events' LSNs: event ids are `{shard}-{lsn}-{n}`.
fn event_lsn(id: &str) -> Option<(usize, u64)> {
    let mut parts = id.split('-');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

#[test]
fn the_kafka_front_runs_on_the_leader_and_moves_with_it() {
    let _serial = serial();
    let tansu = Tansu::start();
    let servers = tansu.servers.clone();
    // Tansu creates no topic on produce: every topic the front uses exists first.
    let topics: Vec<&str> = std::iter::once("order.created").chain(PUBLISHED_TOPICS.iter().copied()).collect();
    create_topics(&servers, &topics);
    let tmp = tempfile::tempdir().unwrap();
    let mut nodes = cluster(&tansu, 2, &tmp);
    for n in &mut nodes {
        n.extra = ["--kafka-topics", "order.created"].map(String::from).to_vec();
        n.start();
    }
    let first = leader(&nodes, 120);
    let item = json!({"onHand": 100});
    let (code, v) = nodes[first].call("PUT", "/api/v1/inventory/items/FRONT-1", Some(&item)).unwrap();
    assert!(code == 200 || code == 201, "{code} {v}");
    let orders_before: Vec<String> = (0..5).map(|i| format!("front-before-{i}")).collect();
    for o in &orders_before {
        produce_order(&servers, o, "FRONT-1");
    }
    let reserved = |node: &Node, order: &str| {
        matches!(node.call("GET", &format!("/api/v1/inventory/reservations/{order}"), None), Ok((200, _)))
    };
    for o in &orders_before {
        wait_for(90, &format!("{o} consumed by the leader"), || reserved(&nodes[first], o).then_some(()));
    }
    // Their events are published, and the leader shared how far it published: the
    // published-LSN topic covers the last event's LSN on its shard.
    let events = wait_for(60, "the reserved events", || {
        let ev = read_topic(&servers, "inventory.reserved");
        orders_before.iter().all(|o| ev.iter().any(|g| g.text().contains(o.as_str()))).then_some(ev)
    });
    let (shard, last) =
        events.iter().filter_map(|g| event_lsn(g.headers.get("id")?)).max_by_key(|(_, l)| *l).expect("event ids");
    wait_for(60, "the published LSN shared through Kafka", || {
        read_topic(&servers, "stockd.changelog.published")
            .iter()
            .any(|g| g.key == shard.to_string() && g.text().parse::<u64>().is_ok_and(|l| l >= last))
            .then_some(())
    });
    let standby = 1 - first;
    // The standby follows: it has the reservations, and it consumes nothing itself.
    for o in &orders_before {
        wait_for(60, "the standby to apply the reservations", || reserved(&nodes[standby], o).then_some(()));
    }

    nodes[first].kill9();
    let second = leader(&nodes, 120);
    assert_eq!(second, standby);
    let after = "front-after-0";
    produce_order(&servers, after, "FRONT-1");
    wait_for(90, "the order produced after the failover consumed by the new leader", || {
        reserved(&nodes[second], after).then_some(())
    });
    let events = wait_for(60, "the new leader's event", || {
        let ev = read_topic(&servers, "inventory.reserved");
        ev.iter().any(|g| g.text().contains(after)).then_some(ev)
    });
    // Published once each: the new leader resumed after what the old one shared.
    let mut seen = std::collections::BTreeSet::new();
    for g in &events {
        let id = g.headers.get("id").cloned().unwrap_or_default();
        assert!(seen.insert(id.clone()), "event {id} published twice: {}", g.text());
    }
    for o in orders_before.iter().chain(std::iter::once(&after.to_owned())) {
        assert_eq!(events.iter().filter(|g| g.text().contains(o.as_str())).count(), 1, "events of {o}");
    }
    // Nothing was dead-lettered (a standby that consumed would dead-letter NOT_LEADER).
    let dead: Vec<String> = read_topic(&servers, "stockd.dlq").iter().map(Got::text).collect();
    assert_eq!(dead, Vec::<String>::new());
    let item = nodes[second].item_of("FRONT-1");
    assert_eq!(item["reserved"], 6, "{item}");
}
