//! `stockd-wal inspect DIR [--records ...]`.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::process::ExitCode;

use super::{order_of, quantities_of, reservation_id_of, skus_of};
use crate::cli::{Format, InspectArgs, Point};
use crate::data_dir::DataDir;
use crate::output::RowWriter;
use crate::scan::{wal_error, Merged, Progress, ShardScan};
use crate::Error;
use stockd_engine::time::format_millis;

pub fn run(args: &InspectArgs) -> Result<ExitCode, Error> {
    let dd = DataDir::open(&args.dir)?;
    if let Some(s) = args.shard {
        if s >= dd.shards.len() {
            return Err(Error::new(format!("--shard {s}: the directory has {} shards", dd.shards.len())));
        }
    }
    if args.records {
        records(&dd, args)
    } else {
        layout(&dd, args)
    }
}

/// Segments (with LSN ranges and record counts, from a full verified scan) and
/// snapshots of every shard.
fn layout(dd: &DataDir, args: &InspectArgs) -> Result<ExitCode, Error> {
    let progress = Progress::new(dd.total_wal_bytes());
    let mut seg_rows = Vec::new();
    let mut snap_rows = Vec::new();
    let mut problems = Vec::new();
    for shard in dd.shards.iter().filter(|s| args.shard.is_none_or(|x| x == s.shard)) {
        let segs = shard.segments();
        // Per segment: records, first LSN, last LSN, end of its data.
        let mut counts: Vec<(u64, Option<u64>, Option<u64>, u64)> =
            vec![(0, None, None, stockd_wal::SEGMENT_HEADER_LEN as u64); segs.len()];
        let mut it = shard.wal.iter_from(0);
        for r in it.by_ref() {
            match r {
                Ok(r) => {
                    progress.record(r.payload.len() as u64 + stockd_wal::RECORD_HEADER_LEN as u64);
                    let c = &mut counts[r.segment];
                    c.0 += 1;
                    c.1.get_or_insert(r.lsn);
                    c.2 = Some(r.lsn);
                    c.3 = r.end;
                }
                Err(e) => problems.push(wal_error(shard.shard, &e).0),
            }
        }
        if let Some(t) = it.torn_tail() {
            problems.push(format!(
                "warning: shard {}: torn tail in {} at offset {} ({} bytes)",
                shard.shard,
                t.segment.display(),
                t.offset,
                t.bytes_dropped
            ));
        }
        for (seg, (n, first, last, data)) in segs.iter().zip(counts) {
            let file = seg.path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
            seg_rows.push(vec![
                json!(shard.shard),
                json!(file),
                json!(first.unwrap_or(seg.first_lsn)),
                last.map_or(Value::Null, |l| json!(l)),
                json!(seg.size),
                json!(data.min(seg.size)),
                json!(n),
            ]);
        }
        for s in shard.snapshots()? {
            let file = s.path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
            let valid = match &s.valid {
                Ok(_) => "yes".to_string(),
                Err(e) => format!("no: {e}"),
            };
            snap_rows.push(vec![json!(shard.shard), json!(file), json!(s.name_lsn), json!(s.size), json!(valid)]);
        }
    }
    progress.finish("scanned");
    let stdout = std::io::stdout().lock();
    match args.format {
        Format::Table => {
            println!("segments:");
            let mut w = RowWriter::new(
                std::io::stdout().lock(),
                Format::Table,
                &["shard", "file", "first_lsn", "last_lsn", "size", "data", "records"],
            );
            for r in seg_rows {
                w.row(r)?;
            }
            w.finish()?;
            println!("\nsnapshots:");
            let mut w = RowWriter::new(stdout, Format::Table, &["shard", "file", "lsn", "size", "valid"]);
            for r in snap_rows {
                w.row(r)?;
            }
            w.finish()?;
        }
        f => {
            let cols = ["kind", "shard", "file", "first_lsn", "last_lsn", "lsn", "size", "data", "records", "valid"];
            let mut w = RowWriter::new(stdout, f, &cols);
            for r in seg_rows {
                let [shard, file, first, last, size, data, n] = <[Value; 7]>::try_from(r).expect("7 columns");
                w.row(vec![json!("segment"), shard, file, first, last, Value::Null, size, data, n, Value::Null])?;
            }
            for r in snap_rows {
                let [shard, file, lsn, size, valid] = <[Value; 5]>::try_from(r).expect("5 columns");
                let none = Value::Null;
                w.row(vec![
                    json!("snapshot"),
                    shard,
                    file,
                    none.clone(),
                    none.clone(),
                    lsn,
                    size,
                    none.clone(),
                    none,
                    valid,
                ])?;
            }
            w.finish()?;
        }
    }
    let mut failed = false;
    for p in problems {
        failed |= !p.starts_with("warning:");
        eprintln!("{p}");
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn records(dd: &DataDir, args: &InspectArgs) -> Result<ExitCode, Error> {
    let progress = Progress::new(dd.total_wal_bytes());
    let from_lsn = match args.from {
        Some(Point::Lsn(l)) => l,
        _ => 0,
    };
    let scans: Vec<ShardScan> = dd
        .shards
        .iter()
        .filter(|s| args.shard.is_none_or(|x| x == s.shard))
        .map(|s| {
            // An LSN older than the oldest segment just means "from the start".
            let from = s.first_wal_lsn().map_or(0, |f| if from_lsn < f { 0 } else { from_lsn });
            ShardScan::new(s, from, &progress)
        })
        .collect();
    let cols = ["shard", "lsn", "time", "type", "sku", "order_id", "reservation_id", "quantities"];
    let mut w = RowWriter::new(std::io::stdout().lock(), args.format, &cols);
    // reservation id -> (orderId, SKUs), learned from PLACE_HOLD, to show and filter the
    // records that name only the reservation id.
    let mut known: HashMap<String, (String, Vec<String>)> = HashMap::new();
    let mut shown = 0u64;
    for rec in Merged::new(scans) {
        let rec = rec?;
        let c = &rec.command;
        if let stockd_engine::Command::PlaceHold { reservation_id, order_id, lines, .. } = c {
            let e = known.entry(reservation_id.to_string()).or_insert_with(|| (order_id.to_string(), Vec::new()));
            e.1.extend(lines.iter().map(|(s, _)| s.to_string()));
        }
        let in_range = |p: Option<Point>, after: bool| match p {
            None => true,
            Some(Point::Lsn(l)) => (rec.lsn >= l) == after || rec.lsn == l,
            Some(Point::Time(t)) => (rec.now >= t) == after || rec.now == t,
        };
        if !in_range(args.from, true) || !in_range(args.to, false) {
            continue;
        }
        if !args.types.is_empty() && !args.types.iter().any(|t| t == c.kind()) {
            continue;
        }
        let rid = reservation_id_of(c);
        let learned = rid.as_deref().and_then(|id| known.get(id));
        let mut skus: Vec<String> = skus_of(c).iter().map(|s| s.to_string()).collect();
        if let stockd_engine::Command::ActivateReservation { allocations, .. } = c {
            // Allocations name every SKU of the reservation (its PLACE_HOLDs on other
            // shards may come later in the merge).
            skus = allocations.iter().map(|a| a.sku.to_string()).collect();
        }
        if skus.is_empty() {
            if let Some((_, s)) = learned {
                skus = s.clone();
            }
        }
        skus.dedup();
        let order = order_of(c).or_else(|| learned.map(|(o, _)| o.clone()));
        if let Some(sku) = &args.sku {
            if !skus.iter().any(|s| s == sku.as_str()) {
                continue;
            }
        }
        if let Some(o) = &args.order {
            if order.as_deref() != Some(o.as_str()) {
                continue;
            }
        }
        shown += 1;
        w.row(vec![
            json!(rec.shard),
            json!(rec.lsn),
            json!(format_millis(rec.now)),
            json!(c.kind()),
            json!(skus.join(" ")),
            order.map_or(Value::Null, Value::String),
            rid.map_or(Value::Null, |r| json!(r)),
            json!(quantities_of(c)),
        ])?;
    }
    w.finish()?;
    progress.finish(&format!("listed {shown} of"));
    Ok(ExitCode::SUCCESS)
}
