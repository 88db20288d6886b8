//! `stockd-wal verify DIR [--strict] [--check-every N]`.
//!
//! Per shard: every segment header and record checksum (the whole WAL on disk is
//! read, from its oldest record), every payload decoded, every record after the start
//! point applied with `ShardState::apply`; the full `check_invariants()` every N applied
//! records (`--check-every`, default 1000) and after the last; every snapshot file
//! verified, and compared with the replayed state at its LSN when the replay passes
//! it. Then the cross-shard `invariants::check_all`.

use std::collections::BTreeMap;
use std::process::ExitCode;
use stockd_engine::offline::decode_state;
use stockd_engine::ShardState;
use stockd_snapshots::read_snapshot_file;

use crate::cli::VerifyArgs;
use crate::data_dir::{choose_start, DataDir, ShardDir, StartAt};
use crate::scan::{Progress, ShardScan};
use crate::Error;

struct ShardOutcome {
    state: Option<ShardState>,
    problem: Option<String>,
    warnings: Vec<String>,
    summary: String,
}

pub fn run(args: &VerifyArgs) -> Result<ExitCode, Error> {
    let dd = DataDir::open(&args.dir)?;
    let progress = Progress::new(dd.total_wal_bytes());
    let outcomes: Vec<ShardOutcome> = dd.shards.iter().map(|s| verify_shard(s, args.check_every, &progress)).collect();
    progress.finish("verified");
    let mut problems: Vec<String> = outcomes.iter().filter_map(|o| o.problem.clone()).collect();
    let mut warnings: Vec<String> = outcomes.iter().flat_map(|o| o.warnings.clone()).collect();
    for o in &outcomes {
        println!("{}", o.summary);
    }
    if problems.is_empty() {
        let states: Vec<ShardState> = outcomes.into_iter().filter_map(|o| o.state).collect();
        if let Err(e) = stockd_engine::offline::check_all(&states) {
            warnings.push(format!(
                "cross-shard invariant at the end of the log: {e} (expected only while a reservation is in flight: a \
                 live writer, or a crash that Engine::open settles on recovery)"
            ));
        }
    }
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    if let Some(first) = problems.first() {
        eprintln!("verify FAILED: {first}");
        for p in problems.drain(1..) {
            eprintln!("also: {p}");
        }
        return Ok(ExitCode::from(1));
    }
    if args.strict && !warnings.is_empty() {
        eprintln!("verify FAILED (--strict): {}", warnings[0]);
        return Ok(ExitCode::from(1));
    }
    println!("OK: {} shard(s) verified{}", dd.shards.len(), if warnings.is_empty() { "" } else { " (with warnings)" });
    Ok(ExitCode::SUCCESS)
}

fn verify_shard(shard: &ShardDir, check_every: u64, progress: &Progress) -> ShardOutcome {
    let id = shard.shard;
    let mut out = ShardOutcome { state: None, problem: None, warnings: Vec::new(), summary: String::new() };
    let segs = shard.segments().len();
    // Snapshots: each must verify; valid ones are compared with the replay at their LSN.
    let mut compare: BTreeMap<u64, std::path::PathBuf> = BTreeMap::new();
    let snaps = match shard.snapshots() {
        Ok(s) => s,
        Err(e) => {
            out.problem = Some(format!("shard {id}: {e}"));
            out.summary = format!("shard {id}: FAILED");
            return out;
        }
    };
    for s in &snaps {
        match &s.valid {
            Ok(lsn) => {
                compare.insert(*lsn, s.path.clone());
            }
            Err(e) => {
                out.problem.get_or_insert(format!("shard {id}: snapshot {} is corrupt: {e}", s.path.display()));
            }
        }
    }
    let start = match choose_start(shard, StartAt::Earliest) {
        Ok(s) => s,
        Err(e) => {
            out.problem.get_or_insert(e.0);
            out.summary = format!("shard {id}: FAILED");
            return out;
        }
    };
    let start_lsn = start.lsn;
    let mut state = start.state;
    let (mut read, mut applied, mut first, mut last) = (0u64, 0u64, None, 0u64);
    let mut scan = ShardScan::new(shard, 0, progress);
    let check_snapshot = |lsn: u64, state: &ShardState| -> Option<String> {
        let path = compare.get(&lsn)?;
        let snap = read_snapshot_file(path).map_err(|e| e.to_string()).and_then(|s| decode_state(&s.payload));
        match snap {
            Ok(s) if &s == state => None,
            Ok(_) => Some(format!(
                "shard {id}: snapshot {} differs from the state the WAL replays to at LSN {lsn}",
                path.display()
            )),
            Err(e) => Some(format!("shard {id}: snapshot {}: {e}", path.display())),
        }
    };
    for rec in scan.by_ref() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                out.problem.get_or_insert(e.0);
                break;
            }
        };
        read += 1;
        first.get_or_insert(rec.lsn);
        last = rec.lsn;
        if rec.lsn <= start_lsn {
            continue;
        }
        if let Err(e) = super::replay::apply(&rec, &mut state) {
            out.problem.get_or_insert(e.0);
            break;
        }
        applied += 1;
        if applied.checked_rem(check_every) == Some(0) {
            if let Err(e) = state.check_invariants() {
                out.problem.get_or_insert(format!(
                    "{}: invariant broken (checked every {check_every} records; the first bad record is at or \
                     before this one, rerun with --check-every 1 to pinpoint): {e}",
                    crate::scan::locate(id, &rec.segment, rec.offset, rec.lsn)
                ));
                break;
            }
        }
        if let Some(p) = check_snapshot(rec.lsn, &state) {
            out.problem.get_or_insert(p);
            break;
        }
    }
    if out.problem.is_none() {
        if let Err(e) = state.check_invariants() {
            out.problem = Some(format!("shard {id}: invariant broken at the end of the log (LSN {last}): {e}"));
        }
    }
    if let Some(t) = scan.torn_tail() {
        out.warnings.push(format!(
            "shard {id}: torn tail in segment {} at offset {} ({} bytes after the last complete record at LSN {last}); \
             the engine truncates it on open",
            t.segment.display(),
            t.offset,
            t.bytes_dropped
        ));
    }
    let from = match start_lsn {
        0 => "empty state".to_string(),
        l => format!("snapshot at LSN {l}"),
    };
    out.summary = format!(
        "shard {id}: {} — {segs} segment(s), {read} records (LSN {}..{last}), {applied} applied from {from}, {} \
         snapshot(s)",
        if out.problem.is_some() { "FAILED" } else { "ok" },
        first.map_or("-".to_string(), |f| f.to_string()),
        snaps.len()
    );
    out.state = Some(state);
    out
}
