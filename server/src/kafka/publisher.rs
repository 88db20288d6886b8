//! The WAL as the outbox: one task per shard follows the shard's WAL up to its
//! durable LSN ([`WalFollower`]), turns each record into events
//! ([`events_for_record`]), publishes them keyed by orderId / SKU, waits for the
//! broker's acknowledgement of the whole batch, and only then records the batch's last
//! LSN in `DATA/kafka-outbox.offsets` (temp file + fsync + rename, on tokio's blocking
//! pool: [`OutboxOffsets::record`]). A restart resumes after the recorded LSN: nothing
//! is lost, and what is published twice (a batch acknowledged but not yet recorded)
//! carries the same event ids. The publisher is
//! the engine's outbox consumer (`Engine::outbox`, registered at open with
//! `--outbox-max-bytes` / `--outbox-full`): once an LSN is recorded it advances the
//! shard's retention floor, and the engine keeps every WAL record after it.

use super::events::events_for_record;
use super::{pause, KafkaStatus};
use parking_lot::Mutex;
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use stockd_engine::offline::WalFollower;
use stockd_engine::Engine;
use tokio::task::JoinHandle;

/// Records replayed per batch.
const BATCH: usize = 2_000;
const IDLE: Duration = Duration::from_millis(20);

pub struct PublisherConfig {
    pub engine: Engine,
    pub data_dir: PathBuf,
    pub producer: FutureProducer,
    /// Where each event goes (the mapping's `publish`).
    pub publishing: super::mapping::Publishing,
    pub status: Arc<KafkaStatus>,
    pub stop: Arc<AtomicBool>,
    pub stop_notify: Arc<tokio::sync::Notify>,
    /// On a replicated cluster, what the leader's publisher needs besides
    /// (`replication/front.rs`); `None` on a single node.
    pub replicated: Option<ReplicatedPublishing>,
}

/// The publisher on a replicated cluster's leader.
pub struct ReplicatedPublishing {
    /// Per shard, the last LSN the changelog confirmed: events are published only up
    /// to it (a record synced here but never confirmed was never acknowledged, and a
    /// new leader may not have it).
    pub confirmed: Arc<dyn Fn(usize) -> u64 + Send + Sync>,
    /// Where each recorded LSN is shared with the standbys.
    pub shared: Arc<super::published::PublishedTopic>,
}

/// `DATA/kafka-outbox.offsets`: one `shard lsn` line per shard, the last LSN whose
/// events the broker acknowledged.
pub struct OutboxOffsets {
    path: PathBuf,
    lsns: Mutex<BTreeMap<usize, u64>>,
    /// The engine's filesystem seam (`Engine::fs`).
    fs: Arc<dyn stockd_engine::Fs>,
}

impl OutboxOffsets {
    pub fn load(data_dir: &Path, fs: Arc<dyn stockd_engine::Fs>) -> Result<OutboxOffsets, String> {
        let path = stockd_engine::DataDir::new(data_dir).outbox_offsets();
        let mut lsns = BTreeMap::new();
        match fs.read(&path).map(|b| String::from_utf8_lossy(&b).into_owned()) {
            Ok(text) => {
                for line in text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
                    let mut parts = line.split_whitespace();
                    let parsed = (|| Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?)))();
                    let (shard, lsn): (usize, u64) =
                        parsed.ok_or_else(|| format!("{}: bad line {line:?}", path.display()))?;
                    lsns.insert(shard, lsn);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
        Ok(OutboxOffsets { path, lsns: Mutex::new(lsns), fs })
    }

    pub fn get(&self, shard: usize) -> u64 {
        self.lsns.lock().get(&shard).copied().unwrap_or(0)
    }

    /// Records `lsn` for `shard` durably: temp file, fsync, rename, fsync the data
    /// directory (`stockd_engine::offline::write_atomic`).
    pub fn set(&self, shard: usize, lsn: u64) -> std::io::Result<()> {
        let mut lsns = self.lsns.lock();
        lsns.insert(shard, lsn);
        let mut text = String::from("# stockd kafka outbox: shard, last published LSN\n");
        for (s, l) in lsns.iter() {
            text.push_str(&format!("{s} {l}\n"));
        }
        stockd_engine::offline::write_atomic(&*self.fs, &self.path, text.as_bytes())
    }

    /// [`set`](Self::set) on tokio's blocking pool, never on an async worker (the
    /// write syncs a file and a directory, and waits for the lock the shards share).
    /// Returns once the LSN is durable, so a caller that awaits it keeps its order:
    /// nothing after it (advancing the engine's outbox floor, the next batch) runs
    /// before the file says `lsn`.
    pub async fn record(self: &Arc<Self>, shard: usize, lsn: u64) -> std::io::Result<()> {
        let offsets = self.clone();
        tokio::task::spawn_blocking(move || offsets.set(shard, lsn)).await.map_err(std::io::Error::other)?
    }
}

/// Starts one publishing task per shard.
pub fn start(cfg: PublisherConfig) -> Result<Vec<JoinHandle<()>>, String> {
    let offsets = Arc::new(OutboxOffsets::load(&cfg.data_dir, cfg.engine.fs())?);
    let cfg = Arc::new(cfg);
    let mut tasks = Vec::new();
    for shard in 0..cfg.engine.shard_count() {
        let from = offsets.get(shard);
        cfg.status.published_lsn[shard].store(from, Ordering::Release);
        // Registered at open (StorageConfig::outbox): the engine keeps the WAL from
        // here on until we acknowledge more.
        if let Some(outbox) = cfg.engine.outbox() {
            outbox.advance(shard, from);
        }
        let (cfg, offsets) = (cfg.clone(), offsets.clone());
        tasks.push(tokio::spawn(async move { run_shard(cfg, offsets, shard, from).await }));
    }
    Ok(tasks)
}

async fn open_follower(cfg: &PublisherConfig, shard: usize, after: u64) -> Option<WalFollower> {
    let dir = stockd_engine::DataDir::new(&cfg.data_dir).shard(shard);
    loop {
        let d = dir.clone();
        match tokio::task::spawn_blocking(move || WalFollower::open(&d, shard, after)).await {
            Ok(Ok(f)) => {
                if let Some((first, last)) = f.gap() {
                    // With the engine's outbox retention this happens only under
                    // `--outbox-full drop` (counted in stockd_outbox_events_dropped_total)
                    // or for WAL pruned before the publisher was first enabled.
                    tracing::error!(
                        shard,
                        first,
                        last,
                        "kafka outbox: WAL records were pruned before they were published; their events are lost"
                    );
                }
                return Some(f);
            }
            Ok(Err(e)) => tracing::error!(shard, error = %e, "kafka outbox: cannot open the WAL follower"),
            Err(e) => tracing::error!(shard, error = %e, "kafka outbox: follower task failed"),
        }
        if pause(Duration::from_secs(1), &cfg.stop, &cfg.stop_notify).await {
            return None;
        }
    }
}

async fn run_shard(cfg: Arc<PublisherConfig>, offsets: Arc<OutboxOffsets>, shard: usize, from: u64) {
    let Some(mut follower) = open_follower(&cfg, shard, from).await else { return };
    let status = cfg.engine.shard_status()[shard].clone();
    let mut published = from;
    while !cfg.stop.load(Ordering::Acquire) {
        let mut durable = status.durable_lsn.load(Ordering::Acquire);
        if let Some(r) = &cfg.replicated {
            durable = durable.min((r.confirmed)(shard));
        }
        if durable <= follower.applied_lsn() {
            pause(IDLE, &cfg.stop, &cfg.stop_notify).await;
            continue;
        }
        let polled = tokio::task::spawn_blocking(move || {
            let r = follower.poll(durable, BATCH);
            (follower, r)
        })
        .await;
        let records = match polled {
            Ok((f, Ok(records))) => {
                follower = f;
                records
            }
            Ok((_, Err(e))) => {
                tracing::error!(shard, error = %e, "kafka outbox: WAL follow failed; reopening");
                cfg.status.publish_errors.fetch_add(1, Ordering::Relaxed);
                if pause(Duration::from_secs(1), &cfg.stop, &cfg.stop_notify).await {
                    return;
                }
                let Some(f) = open_follower(&cfg, shard, published).await else { return };
                follower = f;
                continue;
            }
            Err(e) => {
                tracing::error!(shard, error = %e, "kafka outbox: follower task failed");
                return;
            }
        };
        let last = follower.applied_lsn();
        let events: Vec<_> = records
            .iter()
            .flat_map(|r| events_for_record(shard, r.lsn, r.now, &r.command, &r.applied))
            .flat_map(|e| e.per_line(&cfg.publishing))
            .map(|e| {
                let (topic, body, headers) = (e.topic(&cfg.publishing), e.body(&cfg.publishing), e.headers());
                (topic, e.key, headers, body)
            })
            .collect();
        // Publish the batch until the broker has acknowledged every event.
        let mut pending: Vec<usize> = (0..events.len()).collect();
        let mut backoff = Duration::from_millis(100);
        while !pending.is_empty() {
            let mut futures = Vec::with_capacity(pending.len());
            for &i in &pending {
                let (topic, key, headers, body) = &events[i];
                let record =
                    FutureRecord::to(topic).key(key.as_str()).payload(body.as_slice()).headers(headers.clone());
                match cfg.producer.send_result(record) {
                    Ok(f) => futures.push((i, Some(f))),
                    Err(_) => futures.push((i, None)), // queue full: retried below
                }
            }
            let mut failed = Vec::new();
            let mut first_error = None;
            for (i, f) in futures {
                let ok = match f {
                    Some(f) => match f.await {
                        Ok(Ok(_)) => true,
                        Ok(Err((e, _))) => {
                            first_error.get_or_insert_with(|| e.to_string());
                            false
                        }
                        Err(_) => false,
                    },
                    None => false,
                };
                if ok {
                    cfg.status.published.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.push(i);
                }
            }
            pending = failed;
            if !pending.is_empty() {
                cfg.status.publish_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(shard, unacknowledged = pending.len(), error = ?first_error, "kafka outbox: publish failed; retrying");
                // Events already sent are sent again only on a restart; here only the
                // failed ones are retried, with the same ids.
                if pause(backoff, &cfg.stop, &cfg.stop_notify).await {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
        published = last;
        match offsets.record(shard, last).await {
            // Only once the published LSN is durable may the engine drop the WAL
            // before it: a restart resumes from the recorded LSN.
            Ok(()) => {
                if let Some(outbox) = cfg.engine.outbox() {
                    outbox.advance(shard, last);
                }
                if let Some(r) = &cfg.replicated {
                    r.shared.record(shard, last);
                }
            }
            Err(e) => tracing::error!(shard, error = %e, "kafka outbox: cannot record the published LSN"),
        }
        cfg.status.published_lsn[shard].store(last, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::mpsc;
    use stockd_fs::{DirEntry, FileBytes, Fs, FsFile, FsLock, Metadata, RealFs};

    /// The real filesystem, whose `rename` waits until a gate is opened.
    #[derive(Debug)]
    struct GatedRename {
        gate: std::sync::Mutex<mpsc::Receiver<()>>,
    }

    impl Fs for GatedRename {
        fn create_dir_all(&self, path: &Path) -> io::Result<()> {
            RealFs.create_dir_all(path)
        }
        fn metadata(&self, path: &Path) -> io::Result<Metadata> {
            RealFs.metadata(path)
        }
        fn read_dir(&self, dir: &Path) -> io::Result<Vec<DirEntry>> {
            RealFs.read_dir(dir)
        }
        fn create_new(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
            RealFs.create_new(path)
        }
        fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
            RealFs.create(path)
        }
        fn open_append(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
            RealFs.open_append(path)
        }
        fn open_read(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
            RealFs.open_read(path)
        }
        fn read(&self, path: &Path) -> io::Result<FileBytes> {
            RealFs.read(path)
        }
        fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
            // A bound so that a write blocking the runtime fails the test instead of
            // hanging it (the gate is opened by a task of that runtime).
            let opened = self.gate.lock().unwrap().recv_timeout(Duration::from_secs(60));
            opened.map_err(|_| io::Error::other("the gate never opened: the write blocked the async worker"))?;
            RealFs.rename(from, to)
        }
        fn remove_file(&self, path: &Path) -> io::Result<()> {
            RealFs.remove_file(path)
        }
        fn sync_dir(&self, dir: &Path) -> io::Result<()> {
            RealFs.sync_dir(dir)
        }
        fn try_lock(&self, path: &Path) -> io::Result<Option<FsLock>> {
            RealFs.try_lock(path)
        }
    }

    /// The offsets write (temp file, fsync, rename, directory fsync) runs off the
    /// async worker: on a runtime with one worker, the write's rename waits for a
    /// task of that runtime, which could never run if the write held the worker.
    #[tokio::test(flavor = "current_thread")]
    async fn the_offsets_write_runs_off_the_async_worker_and_is_durable_when_awaited() {
        let dir = tempfile::tempdir().unwrap();
        let (open, gate) = mpsc::channel();
        let fs = Arc::new(GatedRename { gate: std::sync::Mutex::new(gate) });
        let offsets = Arc::new(OutboxOffsets::load(dir.path(), fs).unwrap());
        let opener = tokio::spawn(async move { open.send(()).unwrap() });
        offsets.record(3, 42).await.unwrap();
        opener.await.unwrap();
        // Awaited means written: a fresh load reads it.
        let reread = OutboxOffsets::load(dir.path(), Arc::new(RealFs)).unwrap();
        assert_eq!((reread.get(3), reread.get(0)), (42, 0));
    }
}
