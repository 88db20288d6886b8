//! `stockd-wal history DIR --sku S`: the stock transaction history of one SKU.
//!
//! Derived by the engine, the same rows `GET /items/{sku}/history` serves
//! (`stockd_engine::offline::read_history`): the SKU's shard is replayed from its
//! oldest start point, a row is written when a record changed the item's figures
//! (onHand, reserved, sold) or its existence, or named the SKU (SET, ADJUST, DELETE,
//! TRANSFER, RECEIVE, BLOCK_SALES / UNBLOCK_SALES), and a released hold whose header
//! lives on another shard is typed RELEASE or EXPIRE by replaying that shard. This
//! command only renders the rows.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::process::ExitCode;
use stockd_engine::offline::{read_history, HistoryEntry, HistoryQuery};
use stockd_engine::time::format_millis;

use crate::cli::HistoryArgs;
use crate::data_dir::DataDir;
use crate::Error;

use crate::output::RowWriter;

pub const COLUMNS: [&str; 16] = [
    "time",
    "lsn",
    "shard",
    "type",
    "quantity",
    "on_hand_before",
    "on_hand_after",
    "available_before",
    "available_after",
    "reserved_before",
    "reserved_after",
    "sold_after",
    "order_id",
    "reservation_id",
    "reason",
    "locations",
];

pub fn run(args: &HistoryArgs) -> Result<ExitCode, Error> {
    let dd = DataDir::open(&args.dir)?;
    let n = dd.shards.len();
    // Offline: every record in the WAL is shown; no live engine answers headers.
    let everything = vec![u64::MAX; n];
    let query = HistoryQuery { limit: usize::MAX, ..HistoryQuery::default() };
    let page = read_history(&dd.root, n, &everything, &args.sku, &query, &mut |_| HashMap::new())
        .map_err(|e| Error::new(e.to_string()))?;
    if let Some((first, last)) = page.pruned {
        eprintln!("note: WAL records {first}..={last} were pruned after a snapshot; their rows cannot be shown");
    }
    let mut w = RowWriter::new(std::io::stdout().lock(), args.format, &COLUMNS);
    for e in page.entries {
        w.row(row(e))?;
    }
    w.finish()?;
    Ok(ExitCode::SUCCESS)
}

fn row(e: HistoryEntry) -> Vec<Value> {
    let figures = |f: Option<stockd_engine::offline::Figures>| match f {
        Some(f) => (json!(f.on_hand), json!(f.available()), json!(f.reserved), json!(f.sold)),
        None => (Value::Null, Value::Null, Value::Null, Value::Null),
    };
    let (ob, ab, rb, _) = figures(e.before);
    let (oa, aa, ra, sa) = figures(e.after);
    vec![
        json!(format_millis(e.at)),
        json!(e.lsn),
        json!(e.shard),
        json!(e.kind),
        json!(e.quantity),
        ob,
        oa,
        ab,
        aa,
        rb,
        ra,
        sa,
        e.order_id.map_or(Value::Null, Value::String),
        e.reservation_id.map_or(Value::Null, Value::String),
        e.reason.map_or(Value::Null, Value::String),
        location_changes(&e.locations).map_or(Value::Null, Value::String),
    ]
}

/// The locations whose figures a row changed, e.g.
/// `wh-a onHand 5->2; wh-b incoming 0->3`; None when no location changed.
fn location_changes(changes: &[stockd_engine::offline::LocationChange]) -> Option<String> {
    let parts: Vec<String> = changes
        .iter()
        .filter_map(|c| {
            let moved: Vec<String> =
                [("onHand", c.on_hand), ("reserved", c.reserved), ("sold", c.sold), ("incoming", c.incoming)]
                    .iter()
                    .filter(|(_, (p, q))| p != q)
                    .map(|(name, (p, q))| format!("{name} {p}->{q}"))
                    .collect();
            (!moved.is_empty()).then(|| format!("{} {}", c.location, moved.join(" ")))
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}
