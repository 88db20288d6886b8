//! Clear errors and a non-zero exit for a bad directory, version or filter.

mod common;

use common::*;

fn fails(args: &[&str], code: i32, needle: &str) {
    let o = run(args);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(code), "{args:?}: {out}\n{err}");
    assert!(err.contains(needle), "{args:?}: want {needle:?} in: {err}");
}

#[test]
fn bad_directories_fail_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    fails(&["inspect", missing.to_str().unwrap()], 2, "cannot open");
    fails(&["verify", tmp.path().to_str().unwrap()], 2, "is not a stockd data directory");
    let dir = tmp.path().join("data");
    generate(&dir, 20, 3, 64 << 20);
    let d = dir.to_str().unwrap();
    std::fs::write(dir.join("stockd.manifest"), "stockd-data 1\nshards 3\n").unwrap();
    fails(&["stats", d], 2, "shard-002 is missing");
    std::fs::write(dir.join("stockd.manifest"), "stockd-data 9\nshards 2\n").unwrap();
    fails(&["replay", d], 2, "unknown data directory format version");
    std::fs::write(dir.join("stockd.manifest"), "stockd-data 1\nshards 2\n").unwrap();
    // A segment from a future WAL format.
    let seg = dir.join("shard-000/wal/00000000000000000001.wal");
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[8] = stockd_wal::FORMAT_VERSION as u8 + 1;
    std::fs::write(&seg, bytes).unwrap();
    let want = format!("unknown WAL format version {}", stockd_wal::FORMAT_VERSION + 1);
    fails(&["verify", d], 1, &want);
    fails(&["replay", d], 2, &want);
}

#[test]
fn bad_filters_fail_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    generate(&dir, 20, 3, 64 << 20);
    let d = dir.to_str().unwrap();
    fails(&["inspect", d, "--records", "--from", "yesterday"], 2, "RFC 3339");
    fails(&["inspect", d, "--records", "--to", "2026-02-30T00:00:00Z"], 2, "RFC 3339");
    fails(&["inspect", d, "--records", "--type", "BOGUS"], 2, "unknown record type");
    fails(&["replay", d, "--until", "noon"], 2, "RFC 3339");
    fails(&["history", d, "--sku", "bad sku"], 2, "sku");
    fails(&["replay", d, "--out", "/tmp/x.txt"], 2, "extension");
    // Filters that parse are applied.
    let o = run(&["inspect", d, "--records", "--type", "set_item", "--format", "json"]);
    let (out, _) = text(&o);
    assert!(o.status.success());
    assert!(out.lines().count() >= 3 && out.lines().all(|l| l.contains("\"type\":\"SET_ITEM\"")), "{out}");
    let o = run(&["inspect", d, "--records", "--from", "3", "--to", "4", "--format", "csv"]);
    let (out, _) = text(&o);
    assert_eq!(out.lines().count(), 1 + 4, "{out}");
}
