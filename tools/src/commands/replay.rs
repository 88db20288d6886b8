//! `stockd-wal replay DIR --until <LSN|time>`: the state as it was then. Also the
//! replay loop the other subcommands share.

use serde_json::{json, Value};
use std::io::Write;
use std::process::ExitCode;
use stockd_engine::location::LocationStock;
use stockd_engine::{Item, Millis, Reservation, ReservationStatus, ShardState};

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
    stockd_engine::offline::apply_logged(state, &rec.command, rec.now, rec.legacy).map_err(|e| {
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
    let mut items: Vec<(usize, &Item)> =
        states.iter().flat_map(|s| s.items().map(move |i| (s.shard(), i))).filter(|(_, i)| want(&i.sku)).collect();
    items.sort_by(|a, b| a.1.sku.cmp(&b.1.sku));
    let mut reservations: Vec<(usize, &Reservation)> = states
        .iter()
        .flat_map(|s| s.reservations().map(move |r| (s.shard(), r)))
        .filter(|(_, r)| matches!(r.status, ReservationStatus::Active | ReservationStatus::Pending))
        .filter(|(_, r)| r.lines.iter().any(|l| want(&l.sku)))
        .collect();
    reservations.sort_by_key(|(_, r)| r.reservation_id); // id order is the ids' text order

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
            let items: Vec<Value> = items
                .iter()
                .map(|(shard, i)| {
                    let mut o = to_obj(&ITEM_COLS, item_row(*shard, i));
                    let stocks = i.locations();
                    let locations = stocks.iter().map(|l| to_obj(&LOCATION_COLS[2..], location_figures(l)));
                    o["locations"] = Value::Array(locations.collect());
                    o
                })
                .collect();
            let reservations: Vec<Value> = reservations
                .iter()
                .map(|(shard, r)| {
                    let mut o = to_obj(&RES_COLS[..RES_COLS.len() - 1], reservation_row(*shard, r));
                    let held = r.allocations();
                    let allocations = held.iter().map(|a| {
                        let (sku, location) = (a.sku.as_str(), a.location.as_str());
                        json!({"sku": sku, "location": location, "quantity": a.quantity, "committed": a.committed})
                    });
                    o["allocations"] = Value::Array(allocations.collect());
                    o
                })
                .collect();
            let doc = json!({ "until": until, "shards": shard_info, "items": items, "reservations": reservations });
            serde_json::to_writer_pretty(&mut out, &doc).map_err(|e| Error::new(format!("cannot write: {e}")))?;
            writeln!(out).map_err(Error::io)?;
        }
        Format::Csv => write_csv(&mut out, &items, &reservations)?,
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
            let mut w = RowWriter::new(&mut out, Format::Table, &ITEM_COLS);
            for (shard, i) in &items {
                w.row(item_row(*shard, i))?;
            }
            w.finish()?;
            writeln!(out, "\nlocations:").map_err(Error::io)?;
            let mut w = RowWriter::new(&mut out, Format::Table, &LOCATION_COLS);
            for (shard, i) in &items {
                for l in i.locations().iter() {
                    let mut row = vec![json!(i.sku.as_str()), json!(shard)];
                    row.extend(location_figures(l));
                    w.row(row)?;
                }
            }
            w.finish()?;
            writeln!(out, "\nactive reservations:").map_err(Error::io)?;
            let mut w = RowWriter::new(&mut out, Format::Table, &RES_COLS);
            for (shard, r) in &reservations {
                let mut row = reservation_row(*shard, r);
                row.push(json!(super::allocations_str(&r.allocations())));
                w.row(row)?;
            }
            w.finish()?;
        }
    }
    out.flush().map_err(Error::io)?;
    Ok(ExitCode::SUCCESS)
}

const ITEM_COLS: [&str; 9] =
    ["sku", "shard", "on_hand", "available", "reserved", "sold", "incoming", "version", "updated_at"];
/// `sku`, `shard`, then one location's figures (the keys of JSON `locations` entries).
const LOCATION_COLS: [&str; 8] = ["sku", "shard", "location", "on_hand", "available", "reserved", "sold", "incoming"];
const RES_COLS: [&str; 7] = ["reservation_id", "order_id", "shard", "status", "expires_at", "lines", "allocations"];

fn item_row(shard: usize, i: &Item) -> Vec<Value> {
    vec![
        json!(i.sku.as_str()),
        json!(shard),
        json!(i.on_hand),
        json!(i.available()),
        json!(i.reserved),
        json!(i.sold),
        json!(i.incoming),
        json!(i.version),
        json!(format_millis(i.updated_at)),
    ]
}

/// location, on_hand, available, reserved, sold, incoming.
fn location_figures(l: &LocationStock) -> Vec<Value> {
    vec![
        json!(l.location.as_str()),
        json!(l.on_hand),
        json!(l.available()),
        json!(l.reserved),
        json!(l.sold),
        json!(l.incoming),
    ]
}

/// Every column of `RES_COLS` but `allocations`.
fn reservation_row(shard: usize, r: &Reservation) -> Vec<Value> {
    vec![
        json!(r.reservation_id),
        json!(r.order_id.as_str()),
        json!(shard),
        json!(r.status.as_str()),
        json!(format_millis(r.expires_at)),
        json!(r.lines.iter().map(|l| format!("{}:{}", l.sku, l.quantity)).collect::<Vec<_>>().join(" ")),
    ]
}

/// CSV: one table, rows told apart by `kind`: `item`, then one `location` row per
/// location of that item (its figures in the item columns, `version`/`updated_at`
/// empty), then `reservation`. Columns added for locations come last, so readers by
/// position of the older layout keep working.
fn write_csv(
    out: &mut dyn Write,
    items: &[(usize, &Item)],
    reservations: &[(usize, &Reservation)],
) -> Result<(), Error> {
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
        "incoming",
        "location",
        "allocations",
    ];
    let nulls = |n: usize| std::iter::repeat_n(Value::Null, n);
    let mut w = RowWriter::new(out, Format::Csv, &cols);
    for (shard, i) in items {
        let [sku, shard_v, on_hand, available, reserved, sold, incoming, version, updated] =
            <[Value; 9]>::try_from(item_row(*shard, i)).expect("9 columns");
        let mut row = vec![json!("item"), sku, shard_v, on_hand, available, reserved, sold, version, updated];
        row.extend(nulls(5));
        row.extend([incoming, Value::Null, Value::Null]);
        w.row(row)?;
        for l in i.locations().iter() {
            let [location, on_hand, available, reserved, sold, incoming] =
                <[Value; 6]>::try_from(location_figures(l)).expect("6 columns");
            let mut row =
                vec![json!("location"), json!(i.sku.as_str()), json!(shard), on_hand, available, reserved, sold];
            row.extend(nulls(7));
            row.extend([incoming, location, Value::Null]);
            w.row(row)?;
        }
    }
    for (shard, r) in reservations {
        let mut row = vec![json!("reservation"), Value::Null, json!(shard)];
        row.extend(nulls(6));
        let [id, order, _, status, expires, lines] =
            <[Value; 6]>::try_from(reservation_row(*shard, r)).expect("6 columns");
        row.extend([id, order, status, expires, lines, Value::Null, Value::Null]);
        row.push(json!(super::allocations_str(&r.allocations())));
        w.row(row)?;
    }
    w.finish()
}
