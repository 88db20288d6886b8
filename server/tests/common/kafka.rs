//! Kafka helpers of the tests that run a broker (tansu or librdkafka's MockCluster):
//! creating topics, reading a topic from its start, the topics the front publishes to.

#![allow(dead_code)]

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The topics the Kafka front publishes to with the built-in mapping, and its
/// dead-letter topic (tansu creates no topic on produce: a test creates them first).
pub const PUBLISHED_TOPICS: &[&str] = &[
    "inventory.reserved",
    "inventory.confirmed",
    "inventory.released",
    "inventory.adjusted",
    "inventory.low_stock",
    "inventory.out_of_stock",
    "inventory.confirmation_failed",
    "stockd.dlq",
];

/// Creates `topics` with one partition each; one that exists already is fine.
pub fn create_topics(servers: &str, topics: &[&str]) {
    create_topics_with(servers, topics, 1)
}

/// Creates `topics` with `partitions` each; one that exists already is fine.
pub fn create_topics_with(servers: &str, topics: &[&str], partitions: i32) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", servers).create().expect("admin client");
    let new: Vec<NewTopic> = topics.iter().map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1))).collect();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for r in rt.block_on(admin.create_topics(&new, &opts)).expect("create topics") {
        match r {
            Ok(_) | Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, e)) => panic!("create topic {t}: {e}"),
        }
    }
}

/// One message read back.
#[derive(Debug, Clone)]
pub struct Got {
    pub key: String,
    pub payload: Vec<u8>,
    pub headers: HashMap<String, String>,
}

impl Got {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).unwrap_or(Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

/// Every message of partition 0 of `topic` from its start up to its end (at most 20 s
/// of reading), with a fresh consumer group each time.
pub fn read_topic(servers: &str, topic: &str) -> Vec<Got> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("group.id", format!("test-reader-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .expect("reader");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning).unwrap();
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let mut headers = HashMap::new();
                if let Some(h) = m.headers() {
                    for x in h.iter() {
                        headers.insert(x.key.to_owned(), String::from_utf8_lossy(x.value.unwrap_or_default()).into());
                    }
                }
                let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
                out.push(Got { key, payload: m.payload().unwrap_or_default().to_vec(), headers });
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => break,
            Some(Err(_)) | None => {}
        }
    }
    out
}
