//! `history --sku` matches the operations the generator applied.

mod common;

use common::*;
use stockd_engine::shard_of_sku;
use stockd_engine::{Adjust, SetItem};
use stockd_engine::{Command, ReservationStatus, Sku};

#[test]
fn history_of_a_sku_matches_the_operations_applied() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let g = generate(&dir, 400, 4, 64 << 20);
    for name in ["SKU-0", "SKU-1", "SKU-2", "SKU-3"] {
        let sku = Sku::parse(name, "sku").unwrap();
        let shard = shard_of_sku(&sku, 2);
        // Expected rows: every record on the SKU's shard that changed its figures.
        let mut expected = Vec::new();
        let mut prev = None;
        for l in g.log.iter().filter(|l| l.shard == shard) {
            let after = l.items_after.as_ref().unwrap().get(name).copied();
            let names = matches!(&l.command, Command::SetItem(SetItem { sku: s, .. }) | Command::AdjustItem(Adjust { sku: s, .. }) | Command::DeleteItem { sku: s, .. } if s == &sku);
            let fig = |f: Option<(u64, u64, u64, u64)>| f.map(|(o, _, r, s)| (o, r, s));
            if fig(after) != fig(prev) || names {
                let kind = match &l.command {
                    Command::SetItem(_) => "SET",
                    Command::AdjustItem(_) => "ADJUST",
                    Command::DeleteItem { .. } => "DELETE",
                    Command::PlaceHold { .. } => "RESERVE",
                    Command::CommitHold { .. } | Command::CommitReservation { .. } => "CONFIRM",
                    // Header and hold on one shard: the header's step moves the stock.
                    Command::ReleaseReservation { .. } | Command::AbortReservation { .. } => "RELEASE",
                    Command::ExpireReservation { .. } | Command::ExpireDue { .. } => "EXPIRE",
                    Command::ReleaseHold { reservation_id } => match g.finished_as.get(reservation_id) {
                        Some(ReservationStatus::Expired) => "EXPIRE",
                        _ => "RELEASE",
                    },
                    other => panic!("unexpected {other:?}"),
                };
                expected.push((l.lsn, kind.to_string(), after));
            }
            prev = after;
        }
        assert!(expected.len() > 5, "{name}: only {} rows", expected.len());
        let o = run(&["history", dir.to_str().unwrap(), "--sku", name, "--format", "json"]);
        let (out, err) = text(&o);
        assert!(o.status.success(), "{err}");
        let rows: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let got: Vec<_> = rows
            .iter()
            .map(|r| {
                let after = r["on_hand_after"].as_u64().map(|o| {
                    let n = |k: &str| r[k].as_u64().unwrap();
                    (o, n("available_after"), n("reserved_after"), n("sold_after"))
                });
                (r["lsn"].as_u64().unwrap(), r["type"].as_str().unwrap().to_string(), after)
            })
            .collect();
        assert_eq!(got, expected, "{name}");
        assert!(got.iter().any(|r| r.1 == "RESERVE") && got.iter().any(|r| r.1 == "CONFIRM"), "{name}: {got:?}");
    }
    let all: String = ["SKU-0", "SKU-1", "SKU-2", "SKU-3"]
        .iter()
        .map(|s| text(&run(&["history", dir.to_str().unwrap(), "--sku", s])).0)
        .collect();
    assert!(all.contains("EXPIRE"), "the workload expires some reservations");
}
