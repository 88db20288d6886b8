//! Power cuts on `stockd_fs::SimFs`, which keeps a random subset of unsynced pages and
//! unsynced directory entries (not just a suffix). Issue 13, defects 9 (directory
//! syncs) and 10 (a hole in the unsynced tail is a torn tail, not corruption).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::Rng;
use stockd_fs::{Fault, Fs, FsOp, SimFs, Volatile};
use stockd_wal::{Durability, Lsn, WalConfig, WalError, WalReader, WalRecord, WalWriter};

const DIR: &str = "/data/wal";

fn dir() -> &'static Path {
    Path::new(DIR)
}

fn cfg(fs: &SimFs, segment_size: u64) -> WalConfig {
    WalConfig { segment_size, fs: Arc::new(fs.clone()), ..WalConfig::default() }
}

fn read(fs: &SimFs) -> Vec<WalRecord> {
    let r = WalReader::open_with_fs(dir(), Arc::new(fs.clone())).unwrap();
    let recs: Vec<WalRecord> = r.iter_from(0).collect::<Result<_, _>>().unwrap();
    recs
}

fn segments(fs: &SimFs) -> Vec<PathBuf> {
    WalReader::open_with_fs(dir(), Arc::new(fs.clone())).unwrap().segments().iter().map(|s| s.path.clone()).collect()
}

fn payload(lsn: Lsn, len: usize) -> Vec<u8> {
    (0..len).map(|i| (lsn as usize * 31 + i) as u8).collect()
}

/// Opens, appends `n` records of `len` bytes in batches of `batch`, syncing each.
fn synced_log(fs: &SimFs, segment_size: u64, n: u64, len: usize, batch: u64) -> WalWriter {
    let (mut w, _) = WalWriter::open(dir(), cfg(fs, segment_size)).unwrap();
    for lsn in 1..=n {
        assert_eq!(w.append(1, &payload(lsn, len)).unwrap(), lsn);
        if lsn % batch == 0 {
            w.sync().unwrap();
        }
    }
    w.sync().unwrap();
    w
}

fn assert_records(read: &[WalRecord], first: Lsn, last: Lsn, len: usize) {
    let lsns: Vec<Lsn> = read.iter().map(|r| r.lsn).collect();
    assert_eq!(lsns, (first..=last).collect::<Vec<_>>());
    for r in read {
        assert_eq!(r.payload, payload(r.lsn, len), "payload of LSN {}", r.lsn);
    }
}

// ---- defect 9: directory syncs ----

#[test]
fn open_syncs_the_directory_entry_of_a_segment_it_adopts() {
    let fs = SimFs::new();
    // A previous process wrote records without ever syncing (here: Durability::None).
    let (mut w, _) = WalWriter::open(dir(), WalConfig { durability: Durability::None, ..cfg(&fs, 1 << 20) }).unwrap();
    for lsn in 1..=5 {
        w.append(1, &payload(lsn, 40)).unwrap();
    }
    w.sync().unwrap();
    drop(w);
    // Only the segment's own entry is volatile now.
    fs.sync_dir(Path::new("/")).unwrap();
    fs.sync_dir(Path::new("/data")).unwrap();

    let (w, report) = WalWriter::open(dir(), cfg(&fs, 1 << 20)).unwrap();
    assert_eq!(report.last_lsn, 5, "open adopts the five records and builds on them");
    drop(w);
    fs.power_cut_lose_unsynced();
    let (_, report) = WalWriter::open(dir(), cfg(&fs, 1 << 20)).unwrap();
    assert_eq!(report.last_lsn, 5, "the adopted segment's entry was synced by open");
    assert_records(&read(&fs), 1, 5, 40);
}

#[test]
fn open_syncs_every_directory_it_creates() {
    let fs = SimFs::new();
    drop(synced_log(&fs, 1 << 20, 3, 10, 1));
    fs.power_cut_lose_unsynced();
    assert_records(&read(&fs), 1, 3, 10);
}

#[test]
fn rotation_never_leaves_a_hole_when_a_batch_fails_midway() {
    // One batch that rotates several times; a sync inside it fails (the writer fails,
    // nothing was acknowledged), then power is cut keeping a random subset.
    for (op, n) in [(FsOp::DirSync, 1), (FsOp::FileSync, 3), (FsOp::DirSync, 2)] {
        for seed in 0..48 {
            let fs = SimFs::new();
            let mut w = synced_log(&fs, 300, 4, 50, 4);
            for lsn in 5..=40 {
                w.append(1, &payload(lsn, 50)).unwrap();
            }
            let fired = fs.faults_fired();
            fs.fail_nth(op, n, Fault::Io);
            assert!(w.sync().is_err(), "{op:?} #{n}");
            assert_eq!(fs.faults_fired(), fired + 1, "the fault fired");
            drop(w);
            fs.power_cut(seed);
            let (_, report) = WalWriter::open(dir(), cfg(&fs, 300))
                .unwrap_or_else(|e| panic!("{op:?} #{n}, seed {seed}: open failed: {e}"));
            assert!(report.last_lsn >= 4, "seed {seed}: acknowledged records kept");
            assert_records(&read(&fs), 1, report.last_lsn, 50);
        }
    }
}

#[test]
fn synced_rotations_survive_any_power_cut() {
    for seed in 0..32 {
        let fs = SimFs::new();
        let w = synced_log(&fs, 300, 40, 50, 40);
        assert!(segments(&fs).len() >= 5);
        drop(w);
        fs.power_cut(seed);
        assert_records(&read(&fs), 1, 40, 50);
    }
}

#[test]
fn removing_segments_never_leaves_a_hole() {
    for seed in 0..48 {
        let fs = SimFs::new();
        let mut w = synced_log(&fs, 300, 40, 50, 1);
        let before = segments(&fs).len();
        assert!(before >= 6);
        // The first directory sync of the removal fails; the writer fails for good.
        fs.fail_nth(FsOp::DirSync, 1, Fault::Io);
        assert!(w.remove_segments_before(38).is_err());
        assert_eq!(fs.faults_fired(), 1);
        drop(w);
        fs.power_cut(seed);
        let (_, report) =
            WalWriter::open(dir(), cfg(&fs, 300)).unwrap_or_else(|e| panic!("seed {seed}: a removal left a hole: {e}"));
        assert_eq!(report.last_lsn, 40);
        let recs = read(&fs);
        assert_records(&recs, recs[0].lsn, 40, 50);
        assert!(segments(&fs).len() >= before - 1, "only one removal was in flight");
    }
}

#[test]
fn removed_segments_stay_removed() {
    let fs = SimFs::new();
    let mut w = synced_log(&fs, 300, 40, 50, 1);
    let removed = w.remove_segments_before(38).unwrap();
    assert!(removed >= 5);
    let left = segments(&fs);
    drop(w);
    fs.power_cut_lose_unsynced();
    assert_eq!(segments(&fs), left);
}

// ---- defect 10: holes in the unsynced tail ----

/// 10 synced records of 30 bytes, then a batch of 6 records of 1,500 bytes (three
/// pages) whose fdatasync fails: written, never acknowledged.
fn log_with_unsynced_batch(fs: &SimFs) -> PathBuf {
    let mut w = synced_log(fs, 1 << 20, 10, 30, 5);
    for lsn in 11..=16 {
        w.append(1, &payload(lsn, 1500)).unwrap();
    }
    fs.fail_nth(FsOp::FileSync, 1, Fault::Io);
    assert!(w.sync().is_err());
    assert_eq!(w.durable_lsn(), 10);
    segments(fs).pop().unwrap()
}

#[test]
fn a_hole_in_the_unsynced_tail_is_a_torn_tail() {
    let fs = SimFs::new();
    let seg = log_with_unsynced_batch(&fs);
    let pages = fs.unsynced_pages(&seg);
    assert!(pages.len() >= 3, "{pages:?}");
    // The first unsynced page is lost, every later one (and the length) survives.
    fs.power_cut_choosing(|v| !matches!(v, Volatile::Page { index, .. } if index == pages[0]));
    let (mut w, report) = WalWriter::open(dir(), cfg(&fs, 1 << 20)).expect("a torn tail, not corruption");
    assert_eq!(report.last_lsn, 10);
    let tail = report.truncated_tail.expect("the torn tail is reported");
    assert_eq!(tail.segment, seg);
    assert_records(&read(&fs), 1, 10, 30);
    assert_eq!(w.append(1, &payload(11, 30)).unwrap(), 11);
    w.sync().unwrap();
    drop(w);
    fs.power_cut_lose_unsynced();
    assert_records(&read(&fs), 1, 11, 30);
}

#[test]
fn records_of_an_incomplete_batch_are_never_yielded() {
    let fs = SimFs::new();
    let seg = log_with_unsynced_batch(&fs);
    let pages = fs.unsynced_pages(&seg);
    let last = *pages.last().unwrap();
    // The batch's first pages survive (records 11.. are whole) but not its last one,
    // which held the record that closes the batch.
    fs.power_cut_choosing(|v| !matches!(v, Volatile::Page { index, .. } if index == last));
    let r = WalReader::open_with_fs(dir(), Arc::new(fs.clone())).unwrap();
    let read: Vec<WalRecord> = r.iter_from(0).collect::<Result<_, _>>().unwrap();
    assert_eq!(read.len(), 10, "the reader stops at the last complete batch");
    assert!(r.torn_tail().is_some());
    let (_, report) = WalWriter::open(dir(), cfg(&fs, 1 << 20)).unwrap();
    assert_eq!(report.last_lsn, 10);
}

#[test]
fn random_page_subsets_of_an_unsynced_batch_keep_all_or_none_of_it() {
    for seed in 0..200 {
        let fs = SimFs::new();
        log_with_unsynced_batch(&fs);
        fs.power_cut(seed);
        let (_, report) =
            WalWriter::open(dir(), cfg(&fs, 1 << 20)).unwrap_or_else(|e| panic!("seed {seed}: open failed: {e}"));
        let recs = read(&fs);
        assert_records(&recs[..10], 1, 10, 30);
        match report.last_lsn {
            10 => {}
            16 => assert!(recs[10..].iter().all(|r| r.payload == payload(r.lsn, 1500))),
            n => panic!("seed {seed}: the log ends at LSN {n}, inside the unsynced batch 11..=16"),
        }
    }
}

#[test]
fn a_new_segment_whose_first_page_was_lost_is_a_torn_header() {
    let fs = SimFs::new();
    let mut w = synced_log(&fs, 6000, 3, 1500, 1);
    // Records 4..=6 rotate into a new segment (header + 4.5 KiB: two pages), 7.. into
    // another; the fdatasync before that second rotation fails.
    for lsn in 4..=8 {
        w.append(1, &payload(lsn, 1500)).unwrap();
    }
    fs.fail_nth(FsOp::FileSync, 1, Fault::Io);
    assert!(w.sync().is_err());
    assert_eq!(fs.faults_fired(), 1);
    drop(w);
    let seg4 = dir().join(stockd_wal::segment_file_name(4));
    assert_eq!(fs.unsynced_pages(&seg4), [0, 1]);
    // The new segment's entry and second page survive; its first page (the header) not.
    fs.power_cut_choosing(|v| !matches!(v, Volatile::Page { file, index: 0 } if file == seg4));
    assert!(fs.read(&seg4).unwrap()[..24].iter().all(|&b| b == 0));
    let (mut w, report) = WalWriter::open(dir(), cfg(&fs, 6000)).expect("a torn header, not corruption");
    assert_eq!(report.last_lsn, 3);
    assert_eq!(report.truncated_tail.unwrap().offset, 0);
    assert_eq!(w.append(1, &payload(4, 1500)).unwrap(), 4);
    w.sync().unwrap();
    drop(w);
    fs.power_cut_lose_unsynced();
    assert_records(&read(&fs), 1, 4, 1500);
}

fn expect_corrupt(fs: &SimFs, seg: &Path, offset: u64, lsn: Lsn) {
    match WalWriter::open(dir(), cfg(fs, 1 << 20)) {
        Err(WalError::Corrupt { segment, offset: o, lsn: l, reason }) => {
            assert_eq!((segment.as_path(), o, l), (seg, offset, Some(lsn)), "{reason}");
        }
        Ok(_) => panic!("open accepted bit rot in a synced batch"),
        Err(e) => panic!("expected Corrupt, got {e}"),
    }
    let r = WalReader::open_with_fs(dir(), Arc::new(fs.clone())).unwrap();
    let items: Vec<_> = r.iter_from(0).collect();
    let (last, ok) = items.split_last().unwrap();
    assert_eq!(ok.len() as u64, lsn - 1, "records before the corruption are yielded");
    assert!(matches!(last, Err(WalError::Corrupt { offset: o, lsn: Some(l), .. }) if (*o, *l) == (offset, lsn)));
}

#[test]
fn a_bit_flip_in_a_synced_batch_mid_log_still_refuses() {
    let fs = SimFs::new();
    drop(synced_log(&fs, 1 << 20, 20, 30, 5));
    let recs = read(&fs);
    let victim = &recs[7]; // LSN 8, in the second batch; batches 3 and 4 follow
    let seg = segments(&fs).pop().unwrap();
    fs.corrupt(&seg, victim.offset as usize + stockd_wal::RECORD_HEADER_LEN + 3, |b| *b ^= 0x04);
    expect_corrupt(&fs, &seg, victim.offset, 8);
}

#[test]
fn a_bit_flip_in_a_synced_batch_refuses_even_before_a_torn_tail() {
    let fs = SimFs::new();
    let seg = log_with_unsynced_batch(&fs);
    let victim = read(&fs)[2].clone(); // LSN 3, in the first batch; batch 6..=10 follows
    fs.corrupt(&seg, victim.offset as usize + 5, |b| *b ^= 0x80);
    let pages = fs.unsynced_pages(&seg);
    fs.power_cut_choosing(|v| !matches!(v, Volatile::Page { index, .. } if index == pages[0]));
    expect_corrupt(&fs, &seg, victim.offset, 3);
}

// ---- the loop: random appends, syncs, faults, removals and power cuts ----

/// What the loop knows about the log it drives.
struct Model {
    /// `appended[lsn - 1]`: the payload appended with that LSN (and not since replaced).
    appended: Vec<Vec<u8>>,
    /// Highest LSN a `sync` acknowledged.
    acked: Lsn,
    /// Removals may have dropped records below this LSN.
    floor: Lsn,
    /// LSNs at which a batch ended (a `sync` call wrote up to there).
    batch_ends: Vec<Lsn>,
    /// Whether rotations can split batches (then the exact batch check is skipped).
    rotates: bool,
    /// `WalConfig::preallocate`: 0 (the file grows with every batch), small (the
    /// preallocated space is extended often, its zeros and the file length unsynced
    /// together with a batch) or the default (whole small segments zeroed at once).
    prealloc: u64,
}

fn loop_cfg(fs: &SimFs, m: &Model) -> WalConfig {
    WalConfig { preallocate: m.prealloc, ..cfg(fs, loop_segment_size(m.rotates)) }
}

#[derive(Default, Debug)]
struct Seen {
    cuts: u64,
    torn_tails: u64,
    writer_failures: u64,
}

fn loop_segment_size(rotates: bool) -> u64 {
    if rotates {
        700
    } else {
        1 << 20
    }
}

/// Drops the writer, optionally cuts power, reopens and checks the log against `m`.
fn reopen(fs: &SimFs, w: WalWriter, cut: Option<u64>, m: &mut Model, seen: &mut Seen, ctx: &str) -> WalWriter {
    drop(w);
    fs.disarm();
    if let Some(seed) = cut {
        fs.power_cut(seed);
        seen.cuts += 1;
    }
    let (w, report) = WalWriter::open(dir(), loop_cfg(fs, m)).unwrap_or_else(|e| panic!("{ctx}: open failed: {e}"));
    seen.torn_tails += u64::from(report.truncated_tail.is_some());
    assert!(report.last_lsn >= m.acked, "{ctx}: acknowledged LSN {} lost (log ends at {})", m.acked, report.last_lsn);
    if !m.rotates {
        assert!(
            m.batch_ends.contains(&report.last_lsn),
            "{ctx}: the log ends at LSN {}, inside a batch (batch ends {:?})",
            report.last_lsn,
            m.batch_ends
        );
    }
    let recs = read(fs);
    let first = recs.first().map_or(report.last_lsn + 1, |r| r.lsn);
    assert!(first <= m.floor.max(1), "{ctx}: the log starts at LSN {first}, above {}", m.floor);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r.lsn, first + i as u64, "{ctx}: LSNs are contiguous");
        assert_eq!(r.payload, m.appended[r.lsn as usize - 1], "{ctx}: payload of LSN {}", r.lsn);
    }
    assert_eq!(recs.last().map_or(first - 1, |r| r.lsn), report.last_lsn);
    // What is on disk now is durable (open synced it) and is the log from here on.
    m.appended.truncate(report.last_lsn as usize);
    m.acked = report.last_lsn;
    m.batch_ends.retain(|&e| e <= m.acked);
    m.batch_ends.push(m.acked);
    w
}

#[test]
fn random_appends_syncs_faults_and_power_cuts_keep_every_acknowledged_record() {
    let ops = [FsOp::Write, FsOp::FileSync, FsOp::DirSync, FsOp::Create];
    let mut seen = Seen::default();
    for seed in 0..200u64 {
        let mut rng = Rng::new(seed);
        let fs = SimFs::new();
        // Small segments rotate often; large ones let the batch check be exact.
        let rotates = seed % 2 == 0;
        let prealloc = [0, 1000, 5000, stockd_wal::DEFAULT_PREALLOCATE][(seed / 2 % 4) as usize];
        let mut m = Model { appended: Vec::new(), acked: 0, floor: 1, batch_ends: vec![0], rotates, prealloc };
        let (mut w, _) = WalWriter::open(dir(), loop_cfg(&fs, &m)).unwrap();
        for step in 0..60 {
            let ctx = format!("seed {seed} step {step}");
            match rng.below(10) {
                0..=4 => {
                    for _ in 0..=rng.below(6) {
                        let max = if rng.below(4) == 0 { 5000 } else { 200 };
                        let len = rng.below(max) as usize;
                        let p = rng.bytes(len);
                        if let Ok(lsn) = w.append(rng.next_u64() as u8, &p) {
                            m.appended.truncate(lsn as usize - 1);
                            m.appended.push(p);
                        }
                    }
                }
                5..=7 => {
                    if rng.below(3) == 0 {
                        fs.fail_nth(ops[rng.below(4) as usize], 1 + rng.below(3), Fault::NoSpace);
                    }
                    let next = w.next_lsn();
                    if let Ok(lsn) = w.sync() {
                        m.acked = lsn;
                    }
                    m.batch_ends.push(next - 1);
                }
                8 => {
                    // Even a failed call may have removed some segments.
                    let upto = 1 + rng.below(m.acked + 1);
                    let _ = w.remove_segments_before(upto);
                    m.floor = m.floor.max(upto);
                }
                _ => w = reopen(&fs, w, Some(rng.next_u64()), &mut m, &mut seen, &ctx),
            }
            if w.failure().is_some() {
                // A failed writer refuses everything: the process restarts, and half the
                // time the power is cut right then (during the failed fdatasync).
                seen.writer_failures += 1;
                let cut = (rng.below(2) == 0).then(|| rng.next_u64());
                w = reopen(&fs, w, cut, &mut m, &mut seen, &ctx);
            }
        }
    }
    // The loop must reach the cases it exists for.
    assert!(seen.cuts > 1000 && seen.writer_failures > 100 && seen.torn_tails > 20, "{seen:?}");
}

// ---- format version 3: preallocated space ----

/// Preallocation of the extension tests: batches of 40 records of 322 bytes (12,880
/// bytes over four pages, under a sixteenth of it) are small, so each extension
/// writes zeros ahead, and a cut can keep some of a batch's pages and not others.
const EXT_PREALLOC: u64 = 256 * 1024;
const EXT_BATCH: u64 = 40;
const EXT_PAYLOAD: usize = 300;

/// A log whose preallocated space is almost full of synced batches; then a batch
/// that runs past it, written (data, zeros beyond it and the new length all
/// unsynced) but whose fdatasync fails. Returns the segment, its synced length and
/// the last synced LSN (the failed batch is the `EXT_BATCH` after it).
fn log_with_unsynced_extension(fs: &SimFs) -> (PathBuf, u64, u64) {
    let config = WalConfig { preallocate: EXT_PREALLOC, ..cfg(fs, 1 << 20) };
    let (mut w, _) = WalWriter::open(dir(), config).unwrap();
    let mut lsn = 0;
    let (seg, synced_len) = loop {
        for _ in 0..EXT_BATCH {
            lsn += 1;
            w.append(1, &payload(lsn, EXT_PAYLOAD)).unwrap();
        }
        w.sync().unwrap();
        let seg = segments(fs).pop().unwrap();
        let len = fs.metadata(&seg).unwrap().len;
        let data_end = 24 + lsn * (EXT_PAYLOAD as u64 + 22);
        assert!(len > data_end, "space preallocated past the data");
        if len - data_end < EXT_BATCH * (EXT_PAYLOAD as u64 + 22) {
            break (seg, len);
        }
    };
    for i in 1..=EXT_BATCH {
        w.append(1, &payload(lsn + i, EXT_PAYLOAD)).unwrap();
    }
    fs.fail_nth(FsOp::FileSync, 1, Fault::Io);
    assert!(w.sync().is_err());
    assert!(fs.metadata(&seg).unwrap().len > synced_len, "the batch extended the preallocated space");
    (seg, synced_len, lsn)
}

#[test]
fn a_power_cut_during_an_extension_keeps_all_or_none_of_the_batch() {
    let mut outcomes = std::collections::BTreeSet::new();
    let mut synced = 0;
    for seed in 0..200 {
        let fs = SimFs::new();
        let (seg, synced_len, last) = log_with_unsynced_extension(&fs);
        synced = last;
        fs.power_cut(seed);
        let len_after_cut = fs.metadata(&seg).unwrap().len;
        assert!(len_after_cut >= synced_len, "seed {seed}: synced preallocated space lost");
        let (mut w, report) = WalWriter::open(dir(), WalConfig { preallocate: EXT_PREALLOC, ..cfg(&fs, 1 << 20) })
            .unwrap_or_else(|e| panic!("seed {seed}: open failed: {e}"));
        let recs = read(&fs);
        assert_records(&recs[..last as usize], 1, last, EXT_PAYLOAD);
        match report.last_lsn {
            n if n == last => assert_eq!(recs.len() as u64, last),
            n if n == last + EXT_BATCH => {
                assert!(recs[last as usize..].iter().all(|r| r.payload == payload(r.lsn, EXT_PAYLOAD)))
            }
            n => panic!("seed {seed}: the log ends at LSN {n}, inside the unsynced batch after {last}"),
        }
        outcomes.insert((report.last_lsn - last, report.truncated_tail.is_some()));
        // The log goes on from its logical end, and what is acknowledged then survives
        // any later cut.
        let next = report.last_lsn + 1;
        assert_eq!(w.append(1, &payload(next, 30)).unwrap(), next);
        w.sync().unwrap();
        drop(w);
        fs.power_cut(seed ^ 0xFFFF);
        let recs = read(&fs);
        assert_eq!(recs.last().unwrap().lsn, next, "seed {seed}");
        assert_eq!(recs.last().unwrap().payload, payload(next, 30));
    }
    assert!(synced > EXT_BATCH, "several batches filled the space first");
    assert!(outcomes.contains(&(0, true)) && outcomes.contains(&(EXT_BATCH, false)), "{outcomes:?}");
}

#[test]
fn losing_every_unsynced_page_of_an_extension_leaves_the_synced_log() {
    let fs = SimFs::new();
    let (seg, synced_len, last) = log_with_unsynced_extension(&fs);
    fs.power_cut_lose_unsynced();
    assert_eq!(fs.metadata(&seg).unwrap().len, synced_len, "the unsynced length is lost");
    let (_, report) = WalWriter::open(dir(), WalConfig { preallocate: EXT_PREALLOC, ..cfg(&fs, 1 << 20) }).unwrap();
    assert_eq!((report.last_lsn, report.truncated_tail), (last, None), "zeros after the synced data: a clean end");
}

#[test]
fn batches_inside_preallocated_space_change_no_file_length() {
    // The property the format exists for: an fdatasync covers only data pages (no
    // size change) except once per `preallocate` bytes.
    for (prealloc, expect_changes) in [(64 * 1024, 2), (0, 400)] {
        let fs = SimFs::new();
        let (mut w, _) = WalWriter::open(dir(), WalConfig { preallocate: prealloc, ..cfg(&fs, 1 << 20) }).unwrap();
        let seg = segments(&fs).pop().unwrap();
        let mut changes = 0;
        // 400 records of 322 bytes: about 126 KiB, two extensions of 64 KiB.
        for lsn in 1..=400 {
            let before = fs.metadata(&seg).unwrap().len;
            w.append(1, &payload(lsn, 300)).unwrap();
            w.sync().unwrap();
            changes += u64::from(fs.metadata(&seg).unwrap().len != before);
        }
        assert_eq!(changes, expect_changes, "preallocate {prealloc}");
        drop(w);
        fs.power_cut_lose_unsynced();
        assert_records(&read(&fs), 1, 400, 300);
    }
}
