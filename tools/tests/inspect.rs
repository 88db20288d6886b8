//! `inspect` segment rows: `size` is the file's size (WAL format version 3 preallocates
//! zeros after the data), `data` is where the segment's records end.

mod common;

use common::*;

#[test]
fn inspect_reports_each_segments_file_size_and_data_end() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    generate(&dir, 200, 6, 4096);
    let o = run(&["inspect", dir.to_str().unwrap(), "--format", "json"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "segment")
        .collect();
    let mut checked = 0;
    for shard in 0..2 {
        let wal = dir.join(format!("shard-{shard:03}/wal"));
        let reader = stockd_wal::WalReader::open(&wal).unwrap();
        let records: Vec<_> = reader.iter_from(0).map(Result::unwrap).collect();
        for (i, seg) in reader.segments().iter().enumerate() {
            let name = seg.path.file_name().unwrap().to_str().unwrap();
            let row = rows.iter().find(|r| r["shard"] == shard && r["file"] == name).expect("a row per segment");
            let data_end = records.iter().filter(|r| r.segment == i).map(|r| r.end).max().unwrap();
            assert_eq!(row["size"].as_u64(), Some(std::fs::metadata(&seg.path).unwrap().len()), "{row}");
            assert_eq!(row["data"].as_u64(), Some(data_end), "{row}");
            assert!(data_end <= seg.size, "{row}");
            checked += 1;
        }
    }
    assert!(checked > 2, "several segments");
    assert!(
        rows.iter().any(|r| r["data"].as_u64() < r["size"].as_u64()),
        "some segment has preallocated space after its data: {rows:?}"
    );
}
