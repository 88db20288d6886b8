//! `stockd-wal replay DIR --until <LSN|time>`: the state as it was then. Also the
//! replay loop the other subcommands share.

use serde_json::{json, Value};
use std::io::Write;
use std::process::ExitCode;
use stockd_engine::{Millis, ReservationStatus, ShardState};

use crate::cli::{Format, Point, ReplayArgs};
use crate::data_dir::{choose_start, DataDir, ShardDir, Start, StartAt};
use crate::output::RowWriter;
use crate::scan::{locate, Progress, Rec, ShardScan};
use crate::Error;
use stockd_engine::time::format_millis;

/// Replays one shard from `start`, calling `each` for every record with LSN > the
/// start's and within `until` (records are applied by `each`). Stops at the first
/// record past `until` (records of one shard are in time order). Returns the state,
/// the last LSN handed to `each` (or the start LSN) and the torn tail, if any.
pub fn replay_shard(
    shard: &ShardDir,
    start: Start,
    until: Option<Point>,
    progress: &Progress,
    mut each: impl FnMut(&Rec, &mut ShardState) -> Result<(), Error>,
) -> Result<(ShardState, u64), Error> {
    let mut state = start.state;
    let mut last = start.lsn;
    for rec in ShardScan::new(shard, start.lsn + 1, progress) {
        let rec = rec?;
        match until {
            Some(Point::Lsn(u)) if rec.lsn > u => break,
            Some(Point::Time(t)) if rec.now > t => break,
            _ => {}
        }
        each(&rec, &mut state)?;
        last = rec.lsn;
    }
    Ok((state, last))
}

/// Applies a record as the engine did; an error names where it is.
pub fn apply(rec: &Rec, state: &mut ShardState) -> Result<stockd_engine::Applied, Error> {
    state.apply(&rec.command, rec.now).map_err(|e| {
        Error::new(format!(
            "{}: {} failed on replay: {e}",
            locate(rec.shard, &rec.segment, rec.offset, rec.lsn),
            rec.command.kind()
        ))
    })
}

/// The start a replay up to `until` uses: the newest usable snapshot at or before an
/// LSN; for a time (whose LSN is unknown), the oldest usable start.
pub fn start_for(shard: &ShardDir, until: Option<Point>) -> Result<Start, Error> {
    match until {
        None => choose_start(shard, StartAt::LatestAtOrBefore(u64::MAX)),
        Some(Point::Lsn(l)) => choose_start(shard, StartAt::LatestAtOrBefore(l)),
        Some(Point::Time(_)) => choose_start(shard, StartAt::Earliest),
    }
}

pub fn run(args: &ReplayArgs) -> Result<ExitCode, Error> {
    let format = match (args.format, &args.out) {
        (Some(f), _) => f,
        (None, Some(path)) => match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("json") => Format::Json,
            Some("csv") => Format::Csv,
            _ => {
                return Err(Error::new(format!(
                    "--out {}: cannot tell the format from the extension; use .json or .csv, or --format",
                    path.display()
                )))
            }
        },
        (None, None) => Format::Table,
    };
    if args.out.is_some() && format == Format::Table {
        return Err(Error::new("--out writes json or csv, not table"));
    }
    let dd = DataDir::open(&args.dir)?;
    let progress = Progress::new(dd.total_wal_bytes());
    let mut states = Vec::new();
    let mut shard_info = Vec::new();
    for shard in &dd.shards {
        let start = start_for(shard, args.until)?;
        let (start_lsn, snap) = (start.lsn, start.snapshot.clone());
        let mut first_now: Option<Millis> = None;
        let (state, last) = replay_shard(shard, start, args.until, &progress, |rec, st| {
            first_now.get_or_insert(rec.now);
            apply(rec, st).map(|_| ())
        })?;
        if let (Some(Point::Time(t)), Some(_)) = (args.until, &snap) {
            if last == start_lsn && first_now.is_some_and(|f| f > t) {
                return Err(Error::new(format!(
                    "shard {}: {} is before the oldest state that can be rebuilt (snapshot at LSN {start_lsn}; the \
                     WAL before it was removed)",
                    shard.shard,
                    format_millis(t)
                )));
            }
        }
        shard_info.push(json!({
            "shard": shard.shard,
            "started_from": snap.map_or("empty".to_string(), |p| p.display().to_string()),
            "last_lsn": last,
        }));
        states.push(state);
    }
    progress.finish("replayed");

    let want = |sku: &stockd_engine::Sku| args.sku.as_ref().is_none_or(|s| s == sku);
    let item_cols = ["sku", "shard", "on_hand", "available", "reserved", "sold", "version", "updated_at"];
    let items: Vec<Vec<Value>> = states
        .iter()
        .flat_map(|s| s.items().map(move |i| (s.shard(), i)))
        .filter(|(_, i)| want(&i.sku))
        .map(|(shard, i)| {
            vec![
                json!(i.sku.as_str()),
                json!(shard),
                json!(i.on_hand),
                json!(i.available()),
                json!(i.reserved),
                json!(i.sold),
                json!(i.version),
                json!(format_millis(i.updated_at)),
            ]
        })
        .collect();
    let res_cols = ["reservation_id", "order_id", "shard", "status", "expires_at", "lines"];
    let mut reservations: Vec<Vec<Value>> = states
        .iter()
        .flat_map(|s| s.reservations().map(move |r| (s.shard(), r)))
        .filter(|(_, r)| matches!(r.status, ReservationStatus::Active | ReservationStatus::Pending))
        .filter(|(_, r)| r.lines.iter().any(|l| want(&l.sku)))
        .map(|(shard, r)| {
            vec![
                json!(r.reservation_id),
                json!(r.order_id.as_str()),
                json!(shard),
                json!(r.status.as_str()),
                json!(format_millis(r.expires_at)),
                json!(r.lines.iter().map(|l| format!("{}:{}", l.sku, l.quantity)).collect::<Vec<_>>().join(" ")),
            ]
        })
        .collect();
    reservations.sort_by(|a, b| a[0].as_str().cmp(&b[0].as_str()));
    let mut items = items;
    items.sort_by(|a, b| a[0].as_str().cmp(&b[0].as_str()));

    let mut out: Box<dyn Write> = match &args.out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).map_err(|e| Error::new(format!("cannot create {}: {e}", p.display())))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let until = match args.until {
        None => json!({ "end": true }),
        Some(Point::Lsn(l)) => json!({ "lsn": l }),
        Some(Point::Time(t)) => json!({ "time": format_millis(t) }),
    };
    match format {
        Format::Json => {
            let to_obj = |cols: &[&str], row: Vec<Value>| -> Value {
                Value::Object(cols.iter().map(|c| c.to_string()).zip(row).collect())
            };
            let doc = json!({
                "until": until,
                "shards": shard_info,
                "items": items.into_iter().map(|r| to_obj(&item_cols, r)).collect::<Vec<_>>(),
                "reservations": reservations.into_iter().map(|r| to_obj(&res_cols, r)).collect::<Vec<_>>(),
            });
            serde_json::to_writer_pretty(&mut out, &doc).map_err(|e| Error::new(format!("cannot write: {e}")))?;
            writeln!(out).map_err(Error::io)?;
        }
        Format::Csv => {
            // One table: item rows, then reservation rows, told apart by `kind`.
            let cols = [
                "kind",
                "sku",
                "shard",
                "on_hand",
                "available",
                "reserved",
                "sold",
                "version",
                "updated_at",
                "reservation_id",
                "order_id",
                "status",
                "expires_at",
                "lines",
            ];
            let mut w = RowWriter::new(&mut out, Format::Csv, &cols);
            for r in items {
                let mut row = vec![json!("item")];
                row.extend(r);
                row.extend([Value::Null, Value::Null, Value::Null, Value::Null, Value::Null]);
                w.row(row)?;
            }
            for r in reservations {
                let [id, order, shard, status, expires, lines] = <[Value; 6]>::try_from(r).expect("6 columns");
                let mut row = vec![json!("reservation"), Value::Null, shard];
                row.extend([Value::Null, Value::Null, Value::Null, Value::Null, Value::Null, Value::Null]);
                row.extend([id, order, status, expires, lines]);
                w.row(row)?;
            }
            w.finish()?;
        }
        Format::Table => {
            let lsns: Vec<String> =
                shard_info.iter().map(|s| format!("shard {} LSN {}", s["shard"], s["last_lsn"])).collect();
            let at = match args.until {
                None => "the end of the log".to_string(),
                Some(Point::Lsn(l)) => format!("LSN {l} (per shard)"),
                Some(Point::Time(t)) => format_millis(t),
            };
            writeln!(out, "state at {at}: {}", lsns.join(", ")).map_err(Error::io)?;
            writeln!(out, "\nitems:").map_err(Error::io)?;
            let mut w = RowWriter::new(&mut out, Format::Table, &item_cols);
            for r in items {
                w.row(r)?;
            }
            w.finish()?;
            writeln!(out, "\nactive reservations:").map_err(Error::io)?;
            let mut w = RowWriter::new(&mut out, Format::Table, &res_cols);
            for r in reservations {
                w.row(r)?;
            }
            w.finish()?;
        }
    }
    out.flush().map_err(Error::io)?;
    Ok(ExitCode::SUCCESS)
}
