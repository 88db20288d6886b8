//! The changelog reader and the leader's shipper.
//!
//! One reader thread per node consumes every partition of the changelog (one per
//! shard) in order and runs each message through its partition's [`PartitionView`].
//! A standby hands accepted records to [`Engine::apply_replicated`] (in batches,
//! after which they are durable locally) and saves its position now and then
//! (`DATA/replication.state`). A leader reads its own records back: a record counts
//! as confirmed once the reader has accepted it under this node's leadership, i.e.
//! it is in the log and no newer leader's marker came before it. A newer marker
//! fences the leader.
//!
//! [`KafkaReplicator`] is the engine's [`Replicator`] on a leader: `ship` produces
//! each record (idempotent producer, `acks=all`, never timing out, so an outage
//! delays records and never drops one), `confirm` waits for the reader.

use super::frame::{self, Frame, Stamp};
use super::state_file::{SavedPartition, SavedState};
use super::view::{Leadership, PartitionView, Step};
use parking_lot::{Condvar, Mutex};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stockd_engine::Engine;
use stockd_engine::{Confirmation, Replicator, ShippedRecord};

/// What this node is doing with the changelog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Applying the leader's records.
    Standby,
    /// Taking over: markers written (or about to be) with this stamp; still applying.
    Claiming(Stamp),
    /// Leading with this stamp: reading its own records back.
    Leader(Stamp),
}

/// Per-partition figures other threads read.
#[derive(Debug, Default)]
pub struct PartitionFigures {
    /// Offset of the next message to read.
    pub next_offset: AtomicI64,
    /// The partition's end as last seen (high watermark).
    pub high_watermark: AtomicI64,
    /// The last accepted LSN (applied on a standby, confirmed on a leader).
    pub accepted_lsn: AtomicU64,
    /// The epoch of the partition's current leadership.
    pub epoch: AtomicU64,
}

/// State shared by the reader, the shipper, the election and the HTTP routes.
pub struct Shared {
    pub node: String,
    pub url: String,
    pub mode: Mutex<Mode>,
    pub partitions: Vec<PartitionFigures>,
    pub max_epoch: AtomicU64,
    /// The current leader (of partition 0's view), for clients sent away.
    pub leader: Mutex<Option<Leadership>>,
    /// Each partition's current leadership, published once every record before it
    /// is applied (a candidate waits for its own stamp on all of them).
    pub currents: Mutex<Vec<Option<Stamp>>>,
    /// Why this node may not acknowledge ever again (a newer leader, a lost record).
    pub fenced: Mutex<Option<String>>,
    /// Why this node's WAL and the log disagree (the node rebuilds from the log).
    pub diverged: Mutex<Option<String>>,
    /// The last broker error the reader or the shipper saw, and when (ms).
    pub broker_error: Mutex<Option<(String, u64)>>,
    /// True once the reader reached the end of every partition since it started.
    pub caught_up: AtomicBool,
    /// Messages ignored (replaced leaders' writes, losing candidates' markers).
    pub ignored: AtomicU64,
    /// Records shipped / confirmed by this node as leader.
    pub shipped: AtomicU64,
    pub stop: AtomicBool,
    wake: (Mutex<()>, Condvar),
}

impl Shared {
    pub fn new(node: String, url: String, shards: usize) -> Arc<Shared> {
        Arc::new(Shared {
            node,
            url,
            mode: Mutex::new(Mode::Standby),
            partitions: (0..shards).map(|_| PartitionFigures::default()).collect(),
            max_epoch: AtomicU64::new(0),
            leader: Mutex::new(None),
            currents: Mutex::new(vec![None; shards]),
            fenced: Mutex::new(None),
            diverged: Mutex::new(None),
            broker_error: Mutex::new(None),
            caught_up: AtomicBool::new(false),
            ignored: AtomicU64::new(0),
            shipped: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            wake: (Mutex::new(()), Condvar::new()),
        })
    }

    fn notify(&self) {
        let _g = self.wake.0.lock();
        self.wake.1.notify_all();
    }

    /// Waits until `done` holds or `timeout` passes; true if it holds.
    pub fn wait_until(&self, timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut g = self.wake.0.lock();
        loop {
            if done() {
                return true;
            }
            if Instant::now() >= deadline || self.stop.load(Ordering::Acquire) {
                return done();
            }
            // Woken by the reader; the short bound covers a missed wake-up.
            self.wake.1.wait_for(&mut g, Duration::from_millis(20).min(deadline - Instant::now()));
        }
    }

    /// Records the reader has not read yet, over all partitions.
    pub fn lag_records(&self) -> u64 {
        self.partitions
            .iter()
            .map(|p| (p.high_watermark.load(Ordering::Acquire) - p.next_offset.load(Ordering::Acquire)).max(0) as u64)
            .sum()
    }

    pub fn is_leader(&self) -> bool {
        matches!(*self.mode.lock(), Mode::Leader(_))
    }

    pub(super) fn set_broker_error(&self, e: String) {
        *self.broker_error.lock() = Some((e, crate::kafka::now_ms()));
    }
}

/// Settings of the reader.
pub struct ReaderConfig {
    pub brokers: String,
    pub topic: String,
    pub engine: Engine,
    pub shared: Arc<Shared>,
    /// Where each partition resumes, and the local records still to verify.
    pub start: Vec<(SavedPartition, Vec<ShippedRecord>)>,
    pub state_file: std::path::PathBuf,
}

/// Consumer settings of the reader: no group (partitions are assigned by hand), no
/// commits, end-of-partition events (to know when it is caught up), short fetch
/// waits (a leader's confirmation waits on them).
fn reader_consumer(brokers: &str, node: &str) -> Result<BaseConsumer<ReaderContext>, String> {
    rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("stockd-changelog-reader-{node}"))
        .set("client.id", format!("stockd-{node}-changelog"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "10")
        .set("fetch.min.bytes", "1")
        .set("topic.metadata.refresh.interval.ms", "2000")
        .create_with_context(ReaderContext)
        .map_err(|e| format!("changelog consumer: {e}"))
}

/// The reader's client context: reaching the end of a partition is how the reader
/// knows it caught up, not an error worth a log line.
pub struct ReaderContext;

impl ClientContext for ReaderContext {
    fn error(&self, error: KafkaError, reason: &str) {
        let eof = rdkafka::types::RDKafkaErrorCode::PartitionEOF;
        if !matches!(error, KafkaError::PartitionEOF(_)) && error.rdkafka_error_code() != Some(eof) {
            tracing::warn!(%error, reason, "changelog consumer");
        }
    }
}

impl rdkafka::consumer::ConsumerContext for ReaderContext {}

/// Starts the reader thread.
pub fn start_reader(cfg: ReaderConfig) -> Result<std::thread::JoinHandle<()>, String> {
    let consumer = reader_consumer(&cfg.brokers, &cfg.shared.node)?;
    // Each partition resumes at its saved offset. A broker may answer a fetch that
    // starts inside a record batch with the batches after it (tansu 0.6 does), which
    // would skip records: the reader checks that the first offset it gets is the one
    // it asked for, and otherwise (or when nothing comes while the partition has more)
    // reads the partition again from its start; the view skips what this node has.
    let mut tpl = TopicPartitionList::new();
    for (p, (saved, _)) in cfg.start.iter().enumerate() {
        let offset = if saved.next_offset > 0 { Offset::Offset(saved.next_offset) } else { Offset::Beginning };
        tpl.add_partition_offset(&cfg.topic, p as i32, offset).map_err(|e| e.to_string())?;
        cfg.shared.partitions[p].next_offset.store(saved.next_offset, Ordering::Release);
    }
    consumer.assign(&tpl).map_err(|e| format!("changelog assign: {e}"))?;
    std::thread::Builder::new()
        .name("stockd-changelog".into())
        .spawn(move || Reader::new(cfg).run(consumer))
        .map_err(|e| e.to_string())
}

struct Reader {
    cfg: ReaderConfig,
    views: Vec<PartitionView>,
    pending: Vec<Vec<ShippedRecord>>,
    /// Offset of the next message to read, per partition (published to
    /// `PartitionFigures::next_offset` once what was read before it is applied).
    read_offset: Vec<i64>,
    at_end: Vec<bool>,
    last_save: Instant,
    last_watermarks: Instant,
    dirty: bool,
    /// Whether anything (a message, the end) came from each partition since start.
    heard: Vec<bool>,
    /// Set by a seek to the start: the next message's offset is where the log starts.
    from_start: Vec<bool>,
    started: Instant,
}

/// How long a resumed partition may stay silent while it has more before the reader
/// reads it from its start.
const RESUME_SILENCE: Duration = Duration::from_secs(3);

impl Reader {
    fn new(mut cfg: ReaderConfig) -> Reader {
        let start = std::mem::take(&mut cfg.start);
        let views: Vec<PartitionView> = start
            .into_iter()
            .map(|(saved, tail)| PartitionView::resume(saved.leadership, saved.accepted_lsn, tail))
            .collect();
        for (p, v) in views.iter().enumerate() {
            let f = &cfg.shared.partitions[p];
            f.accepted_lsn.store(v.accepted_lsn, Ordering::Release);
            f.epoch.store(v.current.as_ref().map_or(0, |c| c.stamp.epoch), Ordering::Release);
            cfg.shared.max_epoch.fetch_max(v.max_epoch, Ordering::AcqRel);
            if p == 0 {
                *cfg.shared.leader.lock() = v.current.clone();
            }
        }
        let n = views.len();
        let from_start = cfg.shared.partitions.iter().map(|f| f.next_offset.load(Ordering::Acquire) == 0).collect();
        let read_offset: Vec<i64> =
            cfg.shared.partitions.iter().map(|f| f.next_offset.load(Ordering::Acquire)).collect();
        Reader {
            cfg,
            views,
            pending: vec![Vec::new(); n],
            read_offset,
            at_end: vec![false; n],
            last_save: Instant::now(),
            last_watermarks: Instant::now() - Duration::from_secs(1),
            dirty: false,
            heard: vec![false; n],
            from_start,
            started: Instant::now(),
        }
    }

    fn run(mut self, consumer: BaseConsumer<ReaderContext>) {
        let shared = self.cfg.shared.clone();
        while !shared.stop.load(Ordering::Acquire) {
            match consumer.poll(Duration::from_millis(50)) {
                Some(Ok(msg)) => {
                    let p = msg.partition() as usize;
                    if p >= self.views.len() {
                        continue;
                    }
                    let offset = msg.offset();
                    if std::mem::take(&mut self.from_start[p]) {
                        // The log's first offset (0 unless retention removed some).
                        self.read_offset[p] = offset;
                    }
                    if offset < self.read_offset[p] {
                        continue; // delivered again after a seek
                    }
                    self.heard[p] = true;
                    if offset > self.read_offset[p] {
                        // Offsets of a partition are contiguous: a message was skipped
                        // (a fetch that started inside a batch).
                        let why = format!("offsets jumped from {} to {offset}", self.read_offset[p]);
                        self.reread(&consumer, p, &why);
                        continue;
                    }
                    match msg.payload().map(frame::decode) {
                        Some(Ok(frame)) => self.read(p, frame),
                        Some(Err(e)) => tracing::warn!(partition = p, offset, error = %e, "changelog: message skipped"),
                        None => tracing::warn!(partition = p, offset, "changelog: empty message skipped"),
                    }
                    if self.pending[p].len() >= 512 {
                        self.flush(p);
                    }
                    self.read_offset[p] = offset + 1;
                    self.at_end[p] = false;
                    self.dirty = true;
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    let p = p as usize;
                    if p < self.views.len() {
                        self.heard[p] = true;
                        self.publish();
                        self.at_end[p] = true;
                        if let Err(reason) = self.views[p].check_at_end() {
                            self.diverge(p, reason);
                        }
                        if self.at_end.iter().all(|e| *e) && !shared.caught_up.swap(true, Ordering::AcqRel) {
                            tracing::info!(lag = shared.lag_records(), "changelog: caught up");
                        }
                        shared.notify();
                    }
                }
                Some(Err(e)) => shared.set_broker_error(format!("changelog consumer: {e}")),
                None => {}
            }
            self.publish();
            if self.last_watermarks.elapsed() >= Duration::from_millis(500) {
                self.last_watermarks = Instant::now();
                for p in 0..self.views.len() {
                    match consumer.fetch_watermarks(&self.cfg.topic, p as i32, Duration::from_secs(1)) {
                        Ok((_, high)) if high >= 0 => {
                            shared.partitions[p].high_watermark.store(high, Ordering::Release);
                            // Resumed inside the last batch: nothing comes, not even
                            // the end of the partition.
                            let silent = !self.heard[p] && self.started.elapsed() > RESUME_SILENCE;
                            if silent && high > self.read_offset[p] {
                                self.reread(&consumer, p, "nothing came after the saved offset");
                            }
                        }
                        Ok(_) => {}
                        Err(e) => shared.set_broker_error(format!("changelog end offsets: {e}")),
                    }
                }
            }
            if self.dirty && self.last_save.elapsed() >= Duration::from_secs(1) {
                self.save();
            }
        }
        self.publish();
        self.save();
    }

    /// Applies what is pending, then publishes positions and leaderships: what other
    /// threads see is always applied.
    fn publish(&mut self) {
        for p in 0..self.views.len() {
            self.flush(p);
            let f = &self.cfg.shared.partitions[p];
            f.next_offset.store(self.read_offset[p], Ordering::Release);
            // Everything accepted is applied now (or known: a local record the log has).
            f.accepted_lsn.fetch_max(self.views[p].accepted_lsn, Ordering::AcqRel);
        }
        let mut currents = self.cfg.shared.currents.lock();
        for (p, v) in self.views.iter().enumerate() {
            currents[p] = v.current.as_ref().map(|c| c.stamp.clone());
        }
        drop(currents);
        self.cfg.shared.notify();
    }

    /// Reads partition `p` again from its start (re-reading is harmless: the view
    /// skips what this node has).
    fn reread(&mut self, consumer: &BaseConsumer<ReaderContext>, p: usize, why: &str) {
        tracing::warn!(partition = p, why, "changelog: reading the partition again from its start");
        self.publish();
        if let Err(e) = consumer.seek(&self.cfg.topic, p as i32, Offset::Beginning, Duration::from_secs(10)) {
            self.cfg.shared.set_broker_error(format!("changelog seek: {e}"));
        }
        self.read_offset[p] = 0;
        self.from_start[p] = true;
        self.heard[p] = true;
    }

    fn read(&mut self, p: usize, frame: Frame) {
        let shared = self.cfg.shared.clone();
        let step = self.views[p].accept(frame);
        match step {
            Step::Accepted(record) => {
                let mine = self.is_mine(p);
                if mine {
                    // Our own write, read back under our leadership: confirmed.
                    shared.partitions[p].accepted_lsn.store(record.lsn, Ordering::Release);
                    shared.notify();
                } else {
                    self.pending[p].push(record);
                }
            }
            Step::Known(_) => {}
            Step::NewLeader(leadership) => {
                shared.max_epoch.fetch_max(leadership.stamp.epoch, Ordering::AcqRel);
                shared.partitions[p].epoch.store(leadership.stamp.epoch, Ordering::Release);
                tracing::info!(partition = p, epoch = leadership.stamp.epoch, node = %leadership.stamp.node, "changelog: new leader");
                let claimed = match &*shared.mode.lock() {
                    Mode::Claiming(s) | Mode::Leader(s) => Some(s.clone()),
                    Mode::Standby => None,
                };
                if let Some(mine) = claimed {
                    if leadership.stamp != mine && leadership.stamp.epoch >= mine.epoch {
                        let reason = format!(
                            "node {} took over shard {p} at epoch {} (this node claimed epoch {})",
                            leadership.stamp.node, leadership.stamp.epoch, mine.epoch
                        );
                        shared.fenced.lock().get_or_insert(reason);
                    }
                }
                if p == 0 {
                    *shared.leader.lock() = Some(leadership);
                }
                shared.notify();
            }
            Step::Ignored => {
                shared.ignored.fetch_add(1, Ordering::Relaxed);
            }
            Step::Diverged(reason) => self.diverge(p, reason),
        }
    }

    /// Whether partition `p`'s current leadership is this node's claimed one.
    fn is_mine(&self, p: usize) -> bool {
        let mode = self.cfg.shared.mode.lock();
        let current = self.views[p].current.as_ref().map(|c| &c.stamp);
        matches!(&*mode, Mode::Claiming(s) | Mode::Leader(s) if Some(s) == current)
    }

    fn diverge(&mut self, p: usize, reason: String) {
        let reason = format!("shard {p}: {reason}");
        tracing::error!(%reason, "changelog: this node's WAL diverged from the log");
        self.cfg.shared.diverged.lock().get_or_insert(reason);
        self.cfg.shared.notify();
    }

    /// Applies partition `p`'s pending records to the engine (durable when it
    /// answers).
    fn flush(&mut self, p: usize) {
        if self.pending[p].is_empty() {
            return;
        }
        let records = std::mem::take(&mut self.pending[p]);
        let last = records.last().map_or(0, |r| r.lsn);
        match stockd_engine::block_on(self.cfg.engine.apply_replicated(p, records)) {
            Ok(lsn) => {
                debug_assert!(lsn >= last);
                self.cfg.shared.partitions[p].accepted_lsn.store(lsn, Ordering::Release);
            }
            Err(e) => self.diverge(p, format!("applying the changelog failed: {e}")),
        }
        self.cfg.shared.notify();
    }

    fn save(&mut self) {
        let partitions = self
            .views
            .iter()
            .enumerate()
            .map(|(p, v)| SavedPartition {
                next_offset: self.read_offset[p],
                accepted_lsn: v.accepted_lsn - self.pending[p].len() as u64,
                leadership: v.current.clone(),
            })
            .collect();
        let state = SavedState { partitions };
        if let Err(e) = state.write(&*self.cfg.engine.fs(), &self.cfg.state_file) {
            tracing::warn!(error = %e, "changelog: could not save the replication position");
        }
        self.last_save = Instant::now();
        self.dirty = false;
    }
}

/// Producer context: a delivery that failed for good means a record is missing from
/// the log, so this node must stop acknowledging.
pub struct ShipperContext {
    shared: Arc<Shared>,
}

impl ClientContext for ShipperContext {}

impl ProducerContext for ShipperContext {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            tracing::error!(error = %e, "changelog: a record could not be delivered; this node stops acknowledging");
            self.shared.fenced.lock().get_or_insert(format!("changelog delivery failed: {e}"));
            self.shared.notify();
        }
    }
}

/// The engine's [`Replicator`] on a leader (see the module docs).
pub struct KafkaReplicator {
    producer: ThreadedProducer<ShipperContext>,
    topic: String,
    shared: Arc<Shared>,
}

impl KafkaReplicator {
    pub fn new(brokers: &str, topic: &str, shared: Arc<Shared>) -> Result<KafkaReplicator, String> {
        let producer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("client.id", format!("stockd-{}-shipper", shared.node))
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "0")
            // One request in flight: the log's order is the WAL's even on a broker
            // whose idempotence checks are loose (a retried request can then only
            // repeat records, which readers skip, never reorder them).
            .set("max.in.flight.requests.per.connection", "1")
            // Never give a record up: an outage delays it, a failover fences it.
            .set("message.timeout.ms", "0")
            .set("queue.buffering.max.messages", "1000000")
            .create_with_context(ShipperContext { shared: shared.clone() })
            .map_err(|e| format!("changelog producer: {e}"))?;
        Ok(KafkaReplicator { producer, topic: topic.to_owned(), shared })
    }

    fn stamp(&self) -> Option<Stamp> {
        match &*self.shared.mode.lock() {
            Mode::Claiming(s) | Mode::Leader(s) => Some(s.clone()),
            Mode::Standby => None,
        }
    }

    /// Produces `payload` to partition `p`, waiting for queue room (never dropped).
    fn produce(&self, p: usize, payload: &[u8]) {
        let mut record = BaseRecord::<(), [u8]>::to(&self.topic).partition(p as i32).payload(payload);
        loop {
            match self.producer.send(record) {
                Ok(()) => return,
                Err((KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => {
                    self.shared.fenced.lock().get_or_insert(format!("changelog produce failed: {e}"));
                    self.shared.notify();
                    return;
                }
            }
        }
    }

    /// Writes this node's epoch marker to every partition and waits (bounded) until
    /// the broker has them all.
    pub fn write_markers(&self, stamp: &Stamp, base_lsns: &[u64], timeout: Duration) -> Result<(), String> {
        for (p, base) in base_lsns.iter().enumerate() {
            self.produce(p, &frame::encode_epoch(stamp, *base, &self.shared.url));
        }
        self.producer.flush(timeout).map_err(|e| format!("epoch markers not delivered: {e}"))
    }
}

impl Replicator for KafkaReplicator {
    fn ship(&self, shard: usize, records: &[ShippedRecord]) {
        let Some(stamp) = self.stamp() else {
            // Not leading: the shard's confirm will say so.
            return;
        };
        for r in records {
            self.produce(shard, &frame::encode_record(&stamp, r));
        }
        self.shared.shipped.fetch_add(records.len() as u64, Ordering::Relaxed);
    }

    fn confirm(&self, shard: usize, lsn: u64, timeout: Duration) -> Confirmation {
        let shared = &self.shared;
        let confirmed = || shared.partitions[shard].accepted_lsn.load(Ordering::Acquire) >= lsn;
        shared.wait_until(timeout, || confirmed() || shared.fenced.lock().is_some());
        if let Some(reason) = shared.fenced.lock().clone() {
            return Confirmation::Fenced(reason);
        }
        if self.stamp().is_none() {
            return Confirmation::Fenced("this node is not the leader".into());
        }
        if confirmed() {
            return Confirmation::Confirmed;
        }
        let why = shared.broker_error.lock().as_ref().map(|(e, _)| e.clone()).unwrap_or_else(|| "no answer".into());
        Confirmation::Pending(format!(
            "the changelog has not confirmed shard {shard} up to LSN {lsn} within {} ms ({why})",
            timeout.as_millis()
        ))
    }
}
