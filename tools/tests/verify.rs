//! `verify`: fails exactly where a flipped bit is; a torn tail is a warning (exit 0)
//! unless `--strict`.

mod common;

use common::*;

fn record_offset(wal: &std::path::Path, lsn: u64) -> (std::path::PathBuf, u64) {
    let reader = stockd_wal::WalReader::open(wal).unwrap();
    let r = reader.iter_from(lsn).next().unwrap().unwrap();
    assert_eq!(r.lsn, lsn);
    (reader.segments()[r.segment].path.clone(), r.offset)
}

#[test]
fn verify_passes_on_a_good_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    generate(&dir, 200, 6, 4096);
    let o = run(&["verify", dir.to_str().unwrap(), "--strict", "--check-every", "1"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains("OK: 2 shard(s) verified"), "{out}");
    assert!(err.contains("records/s"), "{err}");
}

#[test]
fn verify_names_the_segment_and_offset_of_a_flipped_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let g = generate(&dir, 200, 6, 4096);
    let shard0 = g.log.iter().filter(|l| l.shard == 0).count() as u64;
    for (lsn, byte) in [(shard0 / 2, 20u64), (shard0 / 3, 9), (2, 17)] {
        let copy = tmp.path().join(format!("copy-{lsn}-{byte}"));
        std::fs::create_dir_all(copy.join("shard-000/wal")).unwrap();
        for f in snapshot_files(&dir).keys() {
            let rel = f.strip_prefix(&dir).unwrap();
            std::fs::create_dir_all(copy.join(rel).parent().unwrap()).unwrap();
            std::fs::copy(f, copy.join(rel)).unwrap();
        }
        let (seg, off) = record_offset(&copy.join("shard-000/wal"), lsn);
        let mut bytes = std::fs::read(&seg).unwrap();
        bytes[(off + byte) as usize] ^= 0x10;
        std::fs::write(&seg, bytes).unwrap();
        let o = run(&["verify", copy.to_str().unwrap()]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
        let name = seg.file_name().unwrap().to_str().unwrap();
        assert!(err.contains("verify FAILED: shard 0"), "{err}");
        assert!(err.contains(name) && err.contains(&format!("offset {off}")), "want {name} offset {off}: {err}");
        assert!(err.contains(&format!("LSN {lsn}")), "{err}");
    }
}

#[test]
fn a_torn_tail_is_a_warning_unless_strict() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    generate(&dir, 100, 6, 64 << 20);
    let seg = dir.join("shard-001/wal/00000000000000000001.wal");
    // The log's data end: the file is longer (WAL format version 3 preallocates zeros).
    let len = {
        let reader = stockd_wal::WalReader::open(&dir.join("shard-001/wal")).unwrap();
        let last = reader.iter_from(0).map(Result::unwrap).last().unwrap();
        last.offset + (stockd_wal::RECORD_HEADER_LEN + last.payload.len()) as u64
    };
    assert!(std::fs::metadata(&seg).unwrap().len() > len + 9, "preallocated space after the data");
    // Half a record, written into the preallocated space: a torn write.
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &[40, 0, 0, 0, 1, 2, 3, 4, 9], len).unwrap();
    drop(f);
    let o = run(&["verify", dir.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(err.contains("torn tail") && err.contains(&format!("offset {len}")), "{err}");
    let o = run(&["verify", dir.to_str().unwrap(), "--strict"]);
    assert_eq!(o.status.code(), Some(1), "{:?}", text(&o));
    assert!(text(&o).1.contains("torn tail"));
}
