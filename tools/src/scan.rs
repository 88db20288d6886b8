//! Record iteration and decoding: one shard's WAL as a stream of decoded records,
//! a time-ordered merge across shards, the progress bar and the speed report.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;
use stockd_engine::offline::decode_record;
use stockd_engine::{Command, Millis};
use stockd_wal::{WalError, WalIter};

use crate::data_dir::ShardDir;
use crate::Error;

/// One decoded record.
#[derive(Debug, Clone)]
pub struct Rec {
    pub shard: usize,
    pub lsn: u64,
    pub segment: PathBuf,
    pub offset: u64,
    pub now: Millis,
    pub command: Command,
    /// Written by the previous payload version (`stockd_engine::offline::LogRecord`).
    pub legacy: bool,
}

/// Where a record sits, for error messages.
pub fn locate(shard: usize, segment: &std::path::Path, offset: u64, lsn: u64) -> String {
    format!("shard {shard}, segment {}, offset {offset}, LSN {lsn}", segment.display())
}

/// Describes a WAL error with its shard.
pub fn wal_error(shard: usize, e: &WalError) -> Error {
    match e {
        WalError::BadVersion { segment, found, supported } => Error::new(format!(
            "shard {shard}: unknown WAL format version {found} in segment {} (this build reads {supported})",
            segment.display()
        )),
        WalError::Corrupt { segment, offset, lsn, reason } => Error::new(format!(
            "shard {shard}, segment {}, offset {offset}{}: corrupt WAL: {reason}",
            segment.display(),
            lsn.map(|l| format!(", LSN {l}")).unwrap_or_default()
        )),
        other => Error::new(format!("shard {shard}: {other}")),
    }
}

/// Decoded records of one shard from `from_lsn` (0 = the oldest on disk). Checksum,
/// LSN and payload errors are yielded as one `Err`, after which it ends.
pub struct ShardScan<'a> {
    shard: &'a ShardDir,
    it: WalIter<'a>,
    progress: &'a Progress,
    done: bool,
    last_pos: u64,
}

impl<'a> ShardScan<'a> {
    pub fn new(shard: &'a ShardDir, from_lsn: u64, progress: &'a Progress) -> ShardScan<'a> {
        ShardScan { shard, it: shard.wal.iter_from(from_lsn), progress, done: false, last_pos: 0 }
    }

    /// The torn tail found at the end (only meaningful once the scan has ended).
    pub fn torn_tail(&self) -> Option<&stockd_wal::TruncatedTail> {
        self.it.torn_tail()
    }
}

impl Iterator for ShardScan<'_> {
    type Item = Result<Rec, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let segs = self.shard.segments();
        match self.it.next()? {
            Err(e) => {
                self.done = true;
                Some(Err(wal_error(self.shard.shard, &e)))
            }
            Ok(r) => {
                let pos: u64 = segs[..r.segment].iter().map(|s| s.size).sum::<u64>() + r.offset;
                self.progress.record(pos.saturating_sub(self.last_pos));
                self.last_pos = pos;
                let segment = segs[r.segment].path.clone();
                match decode_record(r.record_type, &r.payload) {
                    Ok(l) => Some(Ok(Rec {
                        shard: self.shard.shard,
                        lsn: r.lsn,
                        segment,
                        offset: r.offset,
                        now: l.now,
                        command: l.command,
                        legacy: l.legacy,
                    })),
                    Err(e) => {
                        self.done = true;
                        Some(Err(Error::new(format!(
                            "{}: bad record payload (type {}): {e}",
                            locate(self.shard.shard, &segment, r.offset, r.lsn),
                            r.record_type
                        ))))
                    }
                }
            }
        }
    }
}

/// Merges several shards' scans by (time, shard, LSN). Errors come out as soon as
/// they are met.
pub struct Merged<'a> {
    scans: Vec<std::iter::Peekable<ShardScan<'a>>>,
}

impl<'a> Merged<'a> {
    pub fn new(scans: Vec<ShardScan<'a>>) -> Merged<'a> {
        Merged { scans: scans.into_iter().map(Iterator::peekable).collect() }
    }
}

impl Iterator for Merged<'_> {
    type Item = Result<Rec, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut best: Option<(usize, (Millis, usize, u64))> = None;
        for (i, s) in self.scans.iter_mut().enumerate() {
            match s.peek() {
                None => {}
                Some(Err(_)) => return s.next(),
                Some(Ok(r)) => {
                    let key = (r.now, r.shard, r.lsn);
                    if best.is_none_or(|(_, k)| key < k) {
                        best = Some((i, key));
                    }
                }
            }
        }
        self.scans[best?.0].next()
    }
}

/// The progress bar (bytes of WAL scanned; hidden unless stderr is a terminal) and
/// the record counter behind the speed report.
pub struct Progress {
    bar: ProgressBar,
    started: Instant,
    records: std::cell::Cell<u64>,
}

impl Progress {
    pub fn new(total_bytes: u64) -> Progress {
        let bar = ProgressBar::with_draw_target(
            Some(total_bytes),
            if std::io::stderr().is_terminal() { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() },
        );
        if let Ok(style) = ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}") {
            bar.set_style(style);
        }
        Progress { bar, started: Instant::now(), records: std::cell::Cell::new(0) }
    }

    pub(crate) fn record(&self, bytes: u64) {
        self.records.set(self.records.get() + 1);
        self.bar.inc(bytes);
    }

    pub fn records(&self) -> u64 {
        self.records.get()
    }

    /// Clears the bar and prints `N records in T s (R records/s)` to stderr.
    pub fn finish(&self, what: &str) {
        self.bar.finish_and_clear();
        let secs = self.started.elapsed().as_secs_f64();
        let n = self.records();
        eprintln!("{what} {n} records in {secs:.3} s ({:.0} records/s)", n as f64 / secs.max(1e-9));
    }
}
