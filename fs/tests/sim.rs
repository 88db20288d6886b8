//! The `SimFs` durability model and fault injection, and `RealFs` basics.

use std::io::ErrorKind;
use std::path::Path;

use stockd_fs::{Fault, Fs, FsOp, RealFs, SimFs, Volatile, PAGE_SIZE};

fn read(fs: &dyn Fs, p: &str) -> Option<Vec<u8>> {
    fs.read(Path::new(p)).ok().map(|b| b.to_vec())
}

fn names(fs: &dyn Fs, dir: &str) -> Vec<String> {
    let mut v: Vec<String> = fs.read_dir(Path::new(dir)).unwrap().into_iter().map(|e| e.name).collect();
    v.sort();
    v
}

/// A synced file in a synced directory, the base of most cases below.
fn base() -> SimFs {
    let fs = SimFs::new();
    fs.create_dir_all(Path::new("/d")).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    let mut f = fs.create_new(Path::new("/d/a")).unwrap();
    f.write_all(b"synced").unwrap();
    f.sync_data().unwrap();
    fs.sync_dir(Path::new("/d")).unwrap();
    fs
}

#[test]
fn synced_data_and_entries_survive_and_unsynced_ones_are_lost() {
    let fs = base();
    let mut f = fs.open_append(Path::new("/d/a")).unwrap();
    f.write_all(b" and not").unwrap();
    assert_eq!(read(&fs, "/d/a").unwrap(), b"synced and not");
    fs.power_cut_lose_unsynced();
    assert_eq!(read(&fs, "/d/a").unwrap(), b"synced");
    assert!(f.write_all(b"x").is_err(), "a handle from before the cut is stale");
}

#[test]
fn a_synced_file_without_a_synced_directory_entry_is_lost() {
    let fs = base();
    let mut f = fs.create_new(Path::new("/d/b")).unwrap();
    f.write_all(b"data").unwrap();
    f.sync_data().unwrap();
    fs.power_cut_lose_unsynced();
    assert_eq!(read(&fs, "/d/b"), None, "the entry was never synced");

    let mut f = fs.create_new(Path::new("/d/b")).unwrap();
    f.write_all(b"data").unwrap();
    f.sync_data().unwrap();
    fs.sync_dir(Path::new("/d")).unwrap();
    fs.power_cut_lose_unsynced();
    assert_eq!(read(&fs, "/d/b").unwrap(), b"data");
}

#[test]
fn rename_and_remove_are_volatile_until_the_directory_is_synced() {
    let fs = base();
    fs.rename(Path::new("/d/a"), Path::new("/d/c")).unwrap();
    assert_eq!(names(&fs, "/d"), ["c"]);
    fs.power_cut_lose_unsynced();
    assert_eq!(names(&fs, "/d"), ["a"]);

    fs.remove_file(Path::new("/d/a")).unwrap();
    fs.power_cut_lose_unsynced();
    assert_eq!(names(&fs, "/d"), ["a"]);

    fs.rename(Path::new("/d/a"), Path::new("/d/c")).unwrap();
    fs.sync_dir(Path::new("/d")).unwrap();
    fs.power_cut_lose_unsynced();
    assert_eq!(names(&fs, "/d"), ["c"]);
    assert_eq!(read(&fs, "/d/c").unwrap(), b"synced");
}

#[test]
fn an_unsynced_directory_loses_its_whole_subtree() {
    let fs = SimFs::new();
    fs.create_dir_all(Path::new("/x/y")).unwrap();
    let mut f = fs.create_new(Path::new("/x/y/f")).unwrap();
    f.sync_data().unwrap();
    fs.sync_dir(Path::new("/x/y")).unwrap();
    fs.power_cut_lose_unsynced();
    assert!(!fs.exists(Path::new("/x")));
    assert!(!fs.exists(Path::new("/x/y/f")));
}

#[test]
fn a_power_cut_can_keep_a_later_page_and_lose_an_earlier_one() {
    let fs = base();
    let mut f = fs.open_append(Path::new("/d/a")).unwrap();
    f.write_all(&vec![7u8; 3 * PAGE_SIZE]).unwrap();
    let pages = fs.unsynced_pages(Path::new("/d/a"));
    assert_eq!(pages, [0, 1, 2, 3]);
    // Keep only the last page: the bytes of pages 1 and 2 read back as zeros.
    fs.power_cut_choosing(|v| matches!(v, Volatile::Page { index: 3, .. }));
    let b = read(&fs, "/d/a").unwrap();
    assert_eq!(b.len(), 6 + 3 * PAGE_SIZE, "the length stretches to cover the kept page");
    assert_eq!(&b[..6], b"synced");
    assert!(b[6..PAGE_SIZE].iter().all(|&x| x == 0), "page 0 lost: durable bytes, then zeros");
    assert!(b[PAGE_SIZE..3 * PAGE_SIZE].iter().all(|&x| x == 0));
    assert!(b[3 * PAGE_SIZE..].iter().all(|&x| x == 7));

    // Random cuts: some seed keeps a later page without an earlier one; it is seeded,
    // so the same seed gives the same outcome.
    let mut saw_hole = false;
    for seed in 0..64 {
        let outcome = |seed| {
            let fs = base();
            let mut f = fs.open_append(Path::new("/d/a")).unwrap();
            f.write_all(&vec![7u8; 3 * PAGE_SIZE]).unwrap();
            fs.power_cut(seed);
            read(&fs, "/d/a").unwrap()
        };
        let b = outcome(seed);
        assert_eq!(b, outcome(seed), "seed {seed} is deterministic");
        let page_kept = |i: usize| b.len() > i * PAGE_SIZE + 10 && b[i * PAGE_SIZE + 10] == 7;
        saw_hole |= !page_kept(1) && page_kept(2);
    }
    assert!(saw_hole, "random cuts must produce holes, not just suffixes");
}

#[test]
fn unsynced_truncation_may_be_undone() {
    let fs = base();
    let mut f = fs.open_append(Path::new("/d/a")).unwrap();
    f.set_len(2).unwrap();
    fs.power_cut_lose_unsynced();
    assert_eq!(read(&fs, "/d/a").unwrap(), b"synced");
    let mut f = fs.open_append(Path::new("/d/a")).unwrap();
    f.set_len(2).unwrap();
    f.sync_data().unwrap();
    fs.power_cut_lose_unsynced();
    assert_eq!(read(&fs, "/d/a").unwrap(), b"sy");
}

#[test]
fn faults_fire_on_the_nth_operation_and_are_counted() {
    let fs = base();
    let mut f = fs.open_append(Path::new("/d/a")).unwrap();
    let writes = fs.count(FsOp::Write);
    fs.fail_nth(FsOp::Write, 2, Fault::NoSpace);
    f.write_all(b"1234").unwrap();
    let e = f.write_all(b"abcd").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::StorageFull);
    assert!(e.to_string().contains("injected fault"), "{e}");
    assert_eq!(read(&fs, "/d/a").unwrap(), b"synced1234ab", "a failed write is a short write");
    f.write_all(b"!").unwrap();
    assert_eq!((fs.count(FsOp::Write) - writes, fs.faults_fired()), (3, 1));

    for (op, n) in [(FsOp::FileSync, 1), (FsOp::DirSync, 1), (FsOp::Rename, 1), (FsOp::Remove, 1), (FsOp::Create, 1)] {
        fs.fail_nth(op, n, Fault::Io);
    }
    assert!(f.sync_data().is_err());
    assert!(fs.sync_dir(Path::new("/d")).is_err());
    assert!(fs.rename(Path::new("/d/a"), Path::new("/d/b")).is_err());
    assert!(fs.remove_file(Path::new("/d/a")).is_err());
    assert!(fs.create_new(Path::new("/d/n")).is_err());
    assert_eq!(fs.faults_fired(), 6);
    assert_eq!(names(&fs, "/d"), ["a"], "failed operations change nothing");
    f.sync_data().unwrap();
}

#[test]
fn real_fs_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = RealFs;
    let dir = tmp.path().join("a/b");
    stockd_fs::create_dir_all_durable(&fs, &dir).unwrap();
    let p = dir.join("f");
    let mut f = fs.create_new(&p).unwrap();
    f.write_all(b"hello ").unwrap();
    f.write_all(b"world").unwrap();
    f.sync_data().unwrap();
    assert_eq!(f.len().unwrap(), 11);
    f.set_len(5).unwrap();
    fs.sync_dir(&dir).unwrap();
    assert_eq!(&*fs.read(&p).unwrap(), b"hello");
    let mut buf = [0u8; 3];
    assert_eq!(fs.open_read(&p).unwrap().read_at(2, &mut buf).unwrap(), 3);
    assert_eq!(&buf, b"llo");
    assert!(fs.create_new(&p).is_err(), "create_new refuses an existing file");
    fs.rename(&p, &dir.join("g")).unwrap();
    let entries = fs.read_dir(&dir).unwrap();
    assert_eq!((entries.len(), entries[0].name.as_str(), entries[0].is_file), (1, "g", true));
    fs.remove_file(&dir.join("g")).unwrap();
    assert!(fs.read_dir(&dir).unwrap().is_empty());
    assert!(fs.open_read(&dir.join("g")).is_err());
}

#[test]
fn positional_writes_are_volatile_per_page_until_synced() {
    let fs = base();
    let p = Path::new("/d/a");
    let mut f = fs.open_append(p).unwrap();
    // Written zeros, synced: the preallocated space a WAL writes into.
    f.write_at(6, &vec![0u8; 3 * PAGE_SIZE]).unwrap();
    f.sync_data().unwrap();
    assert!(fs.unsynced_pages(p).is_empty());
    // Overwrite inside the synced length, across pages 0..=2.
    f.write_at(10, &vec![9u8; 2 * PAGE_SIZE]).unwrap();
    assert_eq!(fs.unsynced_pages(p), [0, 1, 2]);
    let len = 6 + 3 * PAGE_SIZE;
    assert_eq!(f.len().unwrap(), len as u64, "a write inside the file keeps its length");
    // Keep page 2 only: pages 0 and 1 read back as their durable bytes (zeros).
    fs.power_cut_choosing(|v| matches!(v, Volatile::Page { index: 2, .. }));
    let b = read(&fs, "/d/a").unwrap();
    assert_eq!(b.len(), len);
    assert_eq!(&b[..6], b"synced");
    assert!(b[6..2 * PAGE_SIZE].iter().all(|&x| x == 0), "lost pages read as the durable zeros");
    assert!(b[2 * PAGE_SIZE..10 + 2 * PAGE_SIZE].iter().all(|&x| x == 9), "the kept page");
    assert!(b[10 + 2 * PAGE_SIZE..].iter().all(|&x| x == 0));

    // A synced positional write survives any cut.
    let mut f = fs.open_append(p).unwrap();
    f.write_at(1, b"YNC").unwrap();
    f.sync_data().unwrap();
    fs.power_cut_lose_unsynced();
    assert_eq!(&read(&fs, "/d/a").unwrap()[..6], b"sYNCed");
}

#[test]
fn a_positional_write_past_the_end_extends_with_zeros_and_its_length_is_volatile() {
    let fs = base();
    let p = Path::new("/d/a");
    let mut f = fs.open_append(p).unwrap();
    f.write_at(PAGE_SIZE as u64 + 4, b"far").unwrap();
    let b = read(&fs, "/d/a").unwrap();
    assert_eq!(b.len(), PAGE_SIZE + 7);
    assert!(b[6..PAGE_SIZE + 4].iter().all(|&x| x == 0), "the gap reads as zeros");
    assert_eq!(fs.unsynced_pages(p), [0, 1], "the gap's pages and the written one are unsynced");
    // An append after a positional write goes to the end.
    f.write_all(b"!").unwrap();
    assert_eq!(&read(&fs, "/d/a").unwrap()[PAGE_SIZE + 4..], b"far!");
    fs.power_cut_lose_unsynced();
    assert_eq!(read(&fs, "/d/a").unwrap(), b"synced", "unsynced extension lost");
}

#[test]
fn positional_write_faults_are_counted_and_write_half() {
    let fs = base();
    let p = Path::new("/d/a");
    let mut f = fs.open_append(p).unwrap();
    let before = fs.count(FsOp::Write);
    fs.fail_nth(FsOp::Write, 2, Fault::NoSpace);
    f.write_at(0, b"S").unwrap();
    let e = f.write_at(2, b"ABCD").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::StorageFull);
    assert_eq!((fs.count(FsOp::Write) - before, fs.faults_fired()), (2, 1));
    assert_eq!(read(&fs, "/d/a").unwrap(), b"SyABed", "the failed write wrote its first half");
    let mut r = fs.open_read(p).unwrap();
    assert!(r.write_at(0, b"x").is_err(), "a read-only handle refuses positional writes");
}

#[test]
fn real_fs_positional_writes_land_at_their_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = RealFs;
    let p = tmp.path().join("f");
    let mut f = fs.create_new(&p).unwrap();
    f.write_all(b"0123456789").unwrap();
    // On a handle opened for appending, too (Linux ignores pwrite offsets on O_APPEND).
    let mut f = fs.open_append(&p).unwrap();
    f.write_at(2, b"ab").unwrap();
    f.write_at(12, b"Z").unwrap();
    f.write_all(b"end").unwrap();
    f.sync_data().unwrap();
    assert_eq!(&*fs.read(&p).unwrap(), b"01ab456789\0\0Zend");
    f.set_len(4).unwrap();
    f.write_all(b"+").unwrap();
    assert_eq!(&*fs.read(&p).unwrap(), b"01ab+", "an append after shortening goes to the new end");
}
