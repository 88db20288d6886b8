//! Published LSNs shared through Kafka, for the event publisher of a replicated
//! cluster (`--replication kafka` with the Kafka front).
//!
//! On one node the publisher keeps "the last LSN whose events the broker
//! acknowledged" per shard in `DATA/kafka-outbox.offsets`. On a replicated cluster the
//! node that publishes changes on failover, and a new leader that went by its own file
//! (never written while it was a standby) would publish every event again from its
//! first LSN. So the leader's publisher also writes each recorded LSN to a
//! one-partition topic (`<changelog topic>.published`; message key: the shard number,
//! value: the LSN, both decimal text), and every standby follows that topic into its
//! own offsets file and outbox floor ([`follow`]). A new leader first reads the topic to
//! its end, then publishes from there: what it publishes again is at most what the old
//! leader published but had not yet written to the topic, with the same event ids
//! (`{shard}-{lsn}-{n}`), as after a restart of a single node.
//!
//! A write to the topic that fails costs only duplicates after a failover, never a lost
//! event, so it is not retried beyond the producer's own retries.

use super::publisher::OutboxOffsets;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, ThreadedProducer};
use rdkafka::TopicPartitionList;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stockd_engine::Engine;

/// The topic's name for a changelog topic.
pub fn topic_for(changelog_topic: &str) -> String {
    format!("{changelog_topic}.published")
}

/// The leader's writer of published LSNs.
pub struct PublishedTopic {
    producer: ThreadedProducer<DefaultProducerContext>,
    topic: String,
}

impl PublishedTopic {
    pub fn new(brokers: &str, topic: String) -> Result<PublishedTopic, String> {
        let producer = super::producer_config(brokers)
            .set("client.id", "stockd-published-lsns")
            .create()
            .map_err(|e| format!("published-LSN producer: {e}"))?;
        Ok(PublishedTopic { producer, topic })
    }

    /// Queues `shard → lsn` (not waited for; see the module docs).
    pub fn record(&self, shard: usize, lsn: u64) {
        let (key, value) = (shard.to_string(), lsn.to_string());
        if let Err((e, _)) = self.producer.send(BaseRecord::to(&self.topic).key(&key).payload(&value)) {
            tracing::warn!(shard, lsn, error = %e, "published-LSN topic: not queued");
        }
    }
}

/// Parses one message of the topic: `(shard, lsn)`.
fn parse(key: Option<&[u8]>, value: Option<&[u8]>) -> Option<(usize, u64)> {
    let shard = std::str::from_utf8(key?).ok()?.parse().ok()?;
    let lsn = std::str::from_utf8(value?).ok()?.parse().ok()?;
    Some((shard, lsn))
}

/// A standby's follower of the topic (a thread).
pub struct Follower {
    finish: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Follower {
    /// Reads the topic to its current end, records what it read, and stops (bounded
    /// by `within`; past it the publisher starts from what was read, which costs
    /// duplicates, not events).
    pub fn finish(self, within: Duration) {
        self.finish.store(true, Ordering::Release);
        let deadline = Instant::now() + within;
        while !self.thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if !self.thread.is_finished() {
            tracing::warn!("published-LSN topic: not read to its end in time; publishing from what was read");
        }
    }
}

/// Follows the topic from its start: each `shard → lsn` above the local offsets file's
/// is written there and advances the engine's outbox floor (so a standby prunes what
/// the leader published).
pub fn follow(brokers: &str, topic: &str, offsets: Arc<OutboxOffsets>, engine: Engine) -> Result<Follower, String> {
    // The changelog reader's context: reaching the end of the partition is no error.
    let consumer: BaseConsumer<crate::replication::changelog::ReaderContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "stockd-published-lsns")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .create_with_context(crate::replication::changelog::ReaderContext)
        .map_err(|e| format!("published-LSN consumer: {e}"))?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, rdkafka::Offset::Beginning).map_err(|e| e.to_string())?;
    consumer.assign(&tpl).map_err(|e| format!("published-LSN consumer: {e}"))?;
    let finish = Arc::new(AtomicBool::new(false));
    let (flag, topic) = (finish.clone(), topic.to_owned());
    let thread = std::thread::Builder::new()
        .name("stockd-published-lsns".into())
        .spawn(move || {
            // The end to reach once asked to finish (the high watermark then).
            let mut end: Option<i64> = None;
            let mut next = 0i64;
            loop {
                if flag.load(Ordering::Acquire) && end.is_none() {
                    match consumer.fetch_watermarks(&topic, 0, Duration::from_secs(5)) {
                        Ok((_, high)) => end = Some(high),
                        Err(e) => {
                            tracing::warn!(error = %e, "published-LSN topic: no end offset; stopping here");
                            return;
                        }
                    }
                }
                if end.is_some_and(|end| next >= end) {
                    return;
                }
                match consumer.poll(Duration::from_millis(100)) {
                    Some(Ok(m)) => {
                        next = m.offset() + 1;
                        let Some((shard, lsn)) = parse(m.key(), m.payload()) else { continue };
                        if shard >= engine.shard_count() || lsn <= offsets.get(shard) {
                            continue;
                        }
                        if let Err(e) = offsets.set(shard, lsn) {
                            tracing::error!(shard, error = %e, "published-LSN topic: cannot record the LSN");
                            continue;
                        }
                        if let Some(outbox) = engine.outbox() {
                            outbox.advance(shard, lsn);
                        }
                    }
                    Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) | None => {}
                    Some(Err(e)) => tracing::debug!(error = %e, "published-LSN topic"),
                }
            }
        })
        .map_err(|e| format!("published-LSN thread: {e}"))?;
    Ok(Follower { finish, thread })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_parse_as_decimal_shard_and_lsn() {
        assert_eq!(parse(Some(b"3"), Some(b"1200")), Some((3, 1200)));
        assert_eq!(parse(Some(b"x"), Some(b"1")), None);
        assert_eq!(parse(Some(b"1"), None), None);
        assert_eq!(parse(None, Some(b"1")), None);
        assert_eq!(parse(Some(b"1"), Some(b"-4")), None);
    }
}
