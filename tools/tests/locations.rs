//! Multi-location logs (issue 9): a generated workload with a warehouse table, stock
//! at several locations, transfers (some in transit), receipts and reservations
//! allocated over several locations replays at every LSN to exactly the generator's
//! state, locations included; `replay` CSV and `--sku`, `inspect --records` and
//! `stats` show the location figures.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use stockd_engine::Transfer;
use stockd_engine::{Command, ReservationStatus};
use stockd_tools::testgen::{warehouses, Gen};

/// A 2-shard data dir with locations: 5 SKUs, `steps` workload steps.
fn generate_with_locations(dir: &std::path::Path, steps: usize) -> Gen {
    let mut g = Gen::create(dir, 2, 64 << 20, 11, T0);
    g.with_locations(warehouses());
    for i in 0..5 {
        g.set_item(&format!("SKU-{i}"), 4);
    }
    for _ in 0..steps {
        g.step();
    }
    // A few reservations still active at the end.
    let sku = |i: usize| stockd_engine::Sku::parse(&format!("SKU-{i}"), "sku").unwrap();
    for i in 0..4 {
        g.set_item_at(&sku(i), stockd_engine::location::LocationId::parse("wh-n2", "l").unwrap(), 3, None);
        g.reserve(vec![(sku(i), 2), (sku(i + 1), 1)], 3600);
    }
    g.sync();
    g
}

fn count(g: &Gen, f: impl Fn(&Command) -> bool) -> usize {
    g.log.iter().filter(|l| f(&l.command)).count()
}

fn json_of(args: &[&str]) -> Value {
    let o = run(args);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{args:?}: {err}");
    serde_json::from_str(&out).unwrap()
}

/// JSON lines of `inspect --records --format json`.
fn records(dir: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["inspect", dir, "--records", "--format", "json"];
    args.extend_from_slice(extra);
    let o = run(&args);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    out.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn replay_with_locations_matches_the_generator_at_every_lsn() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let g = generate_with_locations(&dir, 200);
    // The workload covers what this test is about.
    assert!(count(&g, |c| matches!(c, Command::Transfer(Transfer { in_transit: true, .. }))) >= 2);
    assert!(count(&g, |c| matches!(c, Command::Transfer(Transfer { in_transit: false, .. }))) >= 2);
    assert!(count(&g, |c| matches!(c, Command::ReceiveIncoming { .. })) >= 1);
    assert!(count(&g, |c| matches!(c, Command::ReserveLocal(_))) >= 1);
    let split = |c: &Command| match c {
        Command::ActivateReservation { allocations, .. } => {
            allocations.iter().any(|a| allocations.iter().any(|b| b.sku == a.sku && b.location != a.location))
        }
        _ => false,
    };
    assert!(count(&g, split) >= 1, "no reservation was allocated over several locations");
    let d = dir.to_str().unwrap();
    let o = run(&["verify", d, "--strict", "--check-every", "1"]);
    assert!(o.status.success(), "{:?}", text(&o));

    for e in &g.log {
        let json = json_of(&["replay", d, "--until", &e.lsn.to_string(), "--format", "json"]);
        let shard = Some(e.shard);
        assert_eq!(&items_of(&json, shard), e.items_after.as_ref().unwrap(), "shard {} LSN {}", e.shard, e.lsn);
        assert_eq!(&locations_of(&json, shard), e.locations_after.as_ref().unwrap(), "shard {} LSN {}", e.shard, e.lsn);
    }

    // At the end, every active reservation with exactly the generator's allocations.
    let json = json_of(&["replay", d, "--format", "json"]);
    let allocations = |a: &Value| {
        let n = |k: &str| a[k].as_u64().unwrap();
        (a["sku"].as_str().unwrap().to_string(), a["location"].as_str().unwrap().to_string(), n("quantity"))
    };
    let shown: BTreeMap<String, Vec<(String, String, u64)>> = json["reservations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let a = r["allocations"].as_array().unwrap().iter().map(allocations).collect();
            (r["reservation_id"].as_str().unwrap().to_string(), a)
        })
        .collect();
    let expected: BTreeMap<String, Vec<(String, String, u64)>> = g
        .states
        .iter()
        .flat_map(|s| s.reservations())
        .filter(|r| matches!(r.status, ReservationStatus::Active | ReservationStatus::Pending))
        .map(|r| {
            let a = r.allocations().iter().map(|a| (a.sku.to_string(), a.location.to_string(), a.quantity)).collect();
            (r.reservation_id.to_string(), a)
        })
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(shown, expected);
}

#[test]
fn csv_table_inspect_and_stats_show_locations() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let g = generate_with_locations(&dir, 200);
    let d = dir.to_str().unwrap();

    // CSV, one SKU: its item row, then one location row per location, figures adding up.
    let o = run(&["replay", d, "--sku", "SKU-1", "--format", "csv"]);
    let (csv, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    assert_eq!(&header[..7], ["kind", "sku", "shard", "on_hand", "available", "reserved", "sold"]);
    assert_eq!(&header[header.len() - 3..], ["incoming", "location", "allocations"]);
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
    let item = rows.iter().find(|r| r[0] == "item").unwrap();
    let locs: Vec<&Vec<&str>> = rows.iter().filter(|r| r[0] == "location").collect();
    let sku = stockd_engine::Sku::parse("SKU-1", "sku").unwrap();
    let state = g.states.iter().find_map(|s| s.item(&sku)).unwrap();
    assert_eq!(locs.len(), state.location_count(), "{csv}");
    assert!(rows.iter().filter(|r| r[0] != "reservation").all(|r| r[col("sku")] == "SKU-1"), "{csv}");
    for (name, total) in [("on_hand", state.on_hand), ("reserved", state.reserved), ("incoming", state.incoming)] {
        let sum: u64 = locs.iter().map(|r| r[col(name)].parse::<u64>().unwrap()).sum();
        assert_eq!((sum, item[col(name)].parse::<u64>().unwrap()), (total, total), "{name}: {csv}");
    }
    for (r, l) in locs.iter().zip(state.locations().iter()) {
        assert_eq!(r[col("location")], l.location.as_str());
    }

    // The table has a locations section.
    let (table, _) = text(&run(&["replay", d, "--sku", "SKU-1"]));
    assert!(table.contains("\nlocations:\nsku    shard  location"), "{table}");

    // inspect --records: transfers, receipts, warehouses, placements and allocations.
    let transfers = records(d, &["--type", "transfer"]);
    let logged: Vec<&Command> =
        g.log.iter().map(|l| &l.command).filter(|c| matches!(c, Command::Transfer(_))).collect();
    assert_eq!(transfers.len(), logged.len());
    for (row, c) in transfers.iter().zip(&logged) {
        let Command::Transfer(Transfer { sku, from, to, quantity, in_transit, .. }) = c else { unreachable!() };
        assert_eq!(row["sku"], sku.as_str());
        let q = row["quantities"].as_str().unwrap();
        assert!(q.starts_with(&format!("quantity={quantity} from={from} to={to}")), "{q}");
        assert_eq!(q.contains(" in_transit"), *in_transit, "{q}");
    }
    for row in records(d, &["--type", "receive"]) {
        let q = row["quantities"].as_str().unwrap();
        assert!(q.starts_with("quantity=") && q.contains(" location="), "{q}");
    }
    let wh = records(d, &["--type", "set_warehouses"]);
    assert_eq!(wh.len(), 2, "one per shard");
    assert_eq!(wh[0]["quantities"], "wh-n1[north,1] wh-n2[north,2] wh-s1[south,1]");
    let activations = records(d, &["--type", "activate"]);
    assert!(!activations.is_empty());
    for row in &activations {
        let q = row["quantities"].as_str().unwrap();
        assert!(q.split(' ').all(|a| a.contains(':') && a.contains('@')), "{q}");
    }
    let placed: Vec<Value> = records(d, &["--type", "place_hold", "--type", "reserve"]);
    assert!(placed.iter().any(|r| r["quantities"].as_str().unwrap().contains(" region=")), "{placed:?}");
    assert!(placed.iter().any(|r| r["quantities"].as_str().unwrap().contains(" strategy=")), "{placed:?}");
    assert!(placed.iter().any(|r| r["quantities"].as_str().unwrap().contains('@')), "{placed:?}");

    // stats: the new record types and the location figures.
    let o = run(&["stats", d, "--format", "csv"]);
    let (out, _) = text(&o);
    let transfer_units: u64 = logged
        .iter()
        .map(|c| match c {
            Command::Transfer(Transfer { quantity, .. }) => *quantity,
            _ => 0,
        })
        .sum();
    let receipts = count(&g, |c| matches!(c, Command::ReceiveIncoming { .. }));
    for line in [
        format!("records_by_type,TRANSFER,{}", logged.len()),
        format!("records_by_type,RECEIVE,{receipts}"),
        "records_by_type,SET_WAREHOUSES,2".to_string(),
        format!("locations,transfers,{}", logged.len()),
        format!("locations,transferred_units,{transfer_units}"),
        format!("locations,receipts,{receipts}"),
    ] {
        assert!(out.contains(&line), "{line} in {out}");
    }
    assert!(!out.contains("locations,split_lines,0\n"), "{out}");
}

#[test]
fn history_rows_name_the_locations_they_moved() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let g = generate_with_locations(&dir, 200);
    let d = dir.to_str().unwrap();
    let transfers = count(&g, |c| matches!(c, Command::Transfer(Transfer { sku, .. }) if sku.as_str() == "SKU-1"));
    assert!(transfers > 0, "the workload transfers SKU-1");
    let o = run(&["history", d, "--sku", "SKU-1", "--format", "json"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let rows: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!rows.is_empty());
    let moved: Vec<&Value> = rows.iter().filter(|r| r["type"] == "TRANSFER").collect();
    assert_eq!(moved.len(), transfers, "one TRANSFER row per transfer of SKU-1");
    for r in &rows {
        let changed = r["on_hand_before"] != r["on_hand_after"] || r["reserved_before"] != r["reserved_after"];
        if changed {
            let l = r["locations"].as_str().unwrap_or_else(|| panic!("no locations in {r}"));
            assert!(l.contains("->"), "{r}");
        }
    }
    for r in moved {
        // A transfer moves stock out of one location and into another (or its incoming).
        let l = r["locations"].as_str().unwrap();
        assert_eq!(l.split("; ").count(), 2, "{r}");
    }
}
