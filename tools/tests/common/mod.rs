#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use stockd_tools::testgen::{Gen, LocationFigures};

pub const T0: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_stockd-wal"))
}

pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run stockd-wal")
}

pub fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// A generated 2-shard data dir with `steps` random workload steps over `skus` SKUs.
pub fn generate(dir: &Path, steps: usize, skus: usize, segment_size: u64) -> Gen {
    let mut g = Gen::create(dir, 2, segment_size, 7, T0);
    for i in 0..skus {
        g.set_item(&format!("SKU-{i}"), 10 + i as u64);
    }
    for _ in 0..steps {
        g.step();
    }
    g.sync();
    g
}

/// Every file under `dir` with its bytes.
pub fn snapshot_files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// The shard's item figures at the end of a `replay --format json` output.
pub fn items_of(json: &serde_json::Value, shard: Option<usize>) -> BTreeMap<String, (u64, u64, u64, u64)> {
    json["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| shard.is_none_or(|s| i["shard"].as_u64() == Some(s as u64)))
        .map(|i| {
            let n = |k: &str| i[k].as_u64().unwrap();
            (i["sku"].as_str().unwrap().to_string(), (n("on_hand"), n("available"), n("reserved"), n("sold")))
        })
        .collect()
}

/// The shard's items' `incoming` and locations (`[on_hand, available, reserved, sold,
/// incoming]` by location) in a `replay --format json` output.
pub fn locations_of(json: &serde_json::Value, shard: Option<usize>) -> BTreeMap<String, LocationFigures> {
    json["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| shard.is_none_or(|s| i["shard"].as_u64() == Some(s as u64)))
        .map(|i| {
            let locations = i["locations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| {
                    let n = |k: &str| l[k].as_u64().unwrap();
                    let figures = [n("on_hand"), n("available"), n("reserved"), n("sold"), n("incoming")];
                    (l["location"].as_str().unwrap().to_string(), figures)
                })
                .collect();
            (i["sku"].as_str().unwrap().to_string(), (i["incoming"].as_u64().unwrap(), locations))
        })
        .collect()
}
