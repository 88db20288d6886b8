mod common;

use common::*;
use stockd_wal::{WalError, WalReader, WalWriter};

#[test]
fn removes_only_wholly_covered_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let records = random_records(41, 200, 300);
    write_log(tmp.path(), config(2048), &records, 3);
    let (mut w, _) = WalWriter::open(tmp.path(), config(2048)).unwrap();
    let firsts: Vec<u64> = WalReader::open(tmp.path()).unwrap().segments().iter().map(|s| s.first_lsn).collect();
    assert!(firsts.len() >= 6);

    // Nothing is wholly below the first segment's end.
    assert_eq!(w.remove_segments_before(0).unwrap(), 0);
    assert_eq!(w.remove_segments_before(firsts[1] - 1).unwrap(), 0);
    // Segment 0 holds firsts[0]..firsts[1]-1: all < firsts[1].
    assert_eq!(w.remove_segments_before(firsts[1]).unwrap(), 1);
    // An LSN in the middle of segment 3 removes segments 1 and 2 only.
    assert_eq!(w.remove_segments_before(firsts[3] + 1).unwrap(), 2);
    let left: Vec<u64> = WalReader::open(tmp.path()).unwrap().segments().iter().map(|s| s.first_lsn).collect();
    assert_eq!(left, firsts[3..]);

    // Everything past the end: all but the active segment go.
    let n = firsts.len();
    assert_eq!(w.remove_segments_before(u64::MAX).unwrap(), n - 4);
    assert_eq!(segment_paths(tmp.path()).len(), 1);
    let active_first = firsts[n - 1];

    // The remaining log still reads, reopens and continues.
    let r = WalReader::open(tmp.path()).unwrap();
    let rest: Vec<_> = r.iter_from(active_first).collect::<Result<_, _>>().unwrap();
    assert_matches(&rest, &records[active_first as usize - 1..], active_first);
    assert!(matches!(
        r.iter_from(1).next(),
        Some(Err(WalError::LsnUnavailable { requested: 1, oldest })) if oldest == active_first
    ));
    assert_eq!(r.iter_from(0).count(), rest.len(), "0 = from the oldest available");
    assert_eq!(w.append(1, b"x").unwrap(), 201);
    w.sync().unwrap();
    drop(w);
    let (w, report) = WalWriter::open(tmp.path(), config(2048)).unwrap();
    assert_eq!(report.last_lsn, 201);
    assert_eq!(report.records, 201 - active_first + 1);
    assert_eq!(w.next_lsn(), 202);
}

/// The real filesystem, except that the first `metadata` call of a segment file
/// removes the oldest segment first: retention running between a reader's listing and
/// its look at each file.
#[derive(Debug)]
struct RemovesFrontOnce {
    dir: std::path::PathBuf,
    armed: std::sync::atomic::AtomicBool,
}

impl RemovesFrontOnce {
    fn remove_front(&self) {
        if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            std::fs::remove_file(&segment_paths(&self.dir)[0]).unwrap();
        }
    }
}

impl stockd_fs::Fs for RemovesFrontOnce {
    fn create_dir_all(&self, p: &std::path::Path) -> std::io::Result<()> {
        stockd_fs::RealFs.create_dir_all(p)
    }
    fn metadata(&self, p: &std::path::Path) -> std::io::Result<stockd_fs::Metadata> {
        self.remove_front();
        stockd_fs::RealFs.metadata(p)
    }
    fn read_dir(&self, d: &std::path::Path) -> std::io::Result<Vec<stockd_fs::DirEntry>> {
        stockd_fs::RealFs.read_dir(d)
    }
    fn create_new(&self, p: &std::path::Path) -> std::io::Result<Box<dyn stockd_fs::FsFile>> {
        stockd_fs::RealFs.create_new(p)
    }
    fn create(&self, p: &std::path::Path) -> std::io::Result<Box<dyn stockd_fs::FsFile>> {
        stockd_fs::RealFs.create(p)
    }
    fn open_append(&self, p: &std::path::Path) -> std::io::Result<Box<dyn stockd_fs::FsFile>> {
        stockd_fs::RealFs.open_append(p)
    }
    fn open_read(&self, p: &std::path::Path) -> std::io::Result<Box<dyn stockd_fs::FsFile>> {
        stockd_fs::RealFs.open_read(p)
    }
    fn read(&self, p: &std::path::Path) -> std::io::Result<stockd_fs::FileBytes> {
        stockd_fs::RealFs.read(p)
    }
    fn rename(&self, a: &std::path::Path, b: &std::path::Path) -> std::io::Result<()> {
        stockd_fs::RealFs.rename(a, b)
    }
    fn remove_file(&self, p: &std::path::Path) -> std::io::Result<()> {
        stockd_fs::RealFs.remove_file(p)
    }
    fn sync_dir(&self, d: &std::path::Path) -> std::io::Result<()> {
        stockd_fs::RealFs.sync_dir(d)
    }
    fn try_lock(&self, p: &std::path::Path) -> std::io::Result<Option<stockd_fs::FsLock>> {
        stockd_fs::RealFs.try_lock(p)
    }
}

#[test]
fn a_reader_opened_while_retention_removes_the_front_segment_lists_again() {
    let tmp = tempfile::tempdir().unwrap();
    let records = random_records(43, 200, 300);
    write_log(tmp.path(), config(2048), &records, 3);
    let before = segment_paths(tmp.path()).len();
    let fs = std::sync::Arc::new(RemovesFrontOnce { dir: tmp.path().into(), armed: true.into() });
    let r = WalReader::open_with_fs(tmp.path(), fs.clone()).unwrap();
    assert!(!fs.armed.load(std::sync::atomic::Ordering::SeqCst), "the segment was removed during the open");
    assert_eq!(r.segments().len(), before - 1, "the listing taken after the removal");
    let oldest = r.segments()[0].first_lsn;
    let rest: Vec<_> = r.iter_from(oldest).collect::<Result<_, _>>().unwrap();
    assert_matches(&rest, &records[oldest as usize - 1..], oldest);
}

#[test]
fn a_segment_removed_after_the_reader_listed_it_reads_as_unavailable_not_as_io() {
    let tmp = tempfile::tempdir().unwrap();
    let records = random_records(44, 200, 300);
    write_log(tmp.path(), config(2048), &records, 3);
    let r = WalReader::open(tmp.path()).unwrap();
    let firsts: Vec<u64> = r.segments().iter().map(|s| s.first_lsn).collect();
    std::fs::remove_file(&r.segments()[0].path).unwrap();
    let first = r.iter_from(0).next().expect("an item");
    assert!(
        matches!(first, Err(WalError::LsnUnavailable { requested: 1, oldest }) if oldest == firsts[1]),
        "{first:?}"
    );
    // Records in the segments still there read as before.
    let rest: Vec<_> = r.iter_from(firsts[1]).collect::<Result<_, _>>().unwrap();
    assert_matches(&rest, &records[firsts[1] as usize - 1..], firsts[1]);
}
