//! Fuzz target: the engine's WAL payload decoder, `decode_record(type, payload)`, and
//! the replay of whatever it decodes on a populated shard state. Never a panic: a
//! record either decodes or is a clear error, and `apply` answers `Ok` or `Err`.
//! Input: `[type byte][payload]`. The CI face is engine/tests/decode_props.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stockd_engine::offline::{command_type, decode_record};
use stockd_engine::{Adjust, SetItem};
use stockd_engine::{AdjustReason, Command, OrderId, Outcome, ReservationKey, ShardState, Sku};

const NOW: u64 = 1_700_000_000_000;

fn populated_state() -> ShardState {
    let sku = |s: &str| Sku::parse(s, "sku").unwrap();
    let order = |s: &str| OrderId::parse(s, "orderId").unwrap();
    let mut s = ShardState::new(0);
    let mut apply = |c: Command| s.apply(&c, NOW).unwrap();
    for (name, on_hand) in [("a", 10), ("b", 3)] {
        apply(Command::SetItem(SetItem::on_hand(sku(name), on_hand)));
    }
    apply(Command::AdjustItem(Adjust {
        sku: sku("a"),
        delta: 1,
        reason: AdjustReason::Restock,
        note: None,
        idempotency_key: Some("k1".into()),
        expected_version: None,
        location: None,
    }));
    for (o, q) in [("o1", 2), ("o2", 1)] {
        let opened = apply(Command::OpenReservation {
            order_id: order(o),
            lines: vec![(sku("a"), q)],
            ttl_secs: 600,
            metadata: None,
        });
        let Outcome::Opened(r) = opened.outcome else { unreachable!() };
        let placed = apply(Command::PlaceHold {
            reservation_id: r.reservation_id,
            order_id: order(o),
            lines: vec![(sku("a"), q)],
            placement: Default::default(),
        });
        let Outcome::Placed { allocations, .. } = placed.outcome else { unreachable!() };
        apply(Command::ActivateReservation { reservation_id: r.reservation_id, allocations });
    }
    apply(Command::CommitReservation { key: ReservationKey::Order(order("o2")), quantities: None });
    s
}

fuzz_target!(|data: &[u8]| {
    let Some((&record_type, payload)) = data.split_first() else { return };
    match decode_record(record_type, payload) {
        Ok(record) => {
            assert_eq!(command_type(&record.command), record_type);
            let mut state = populated_state();
            let _ = state.apply(&record.command, record.now);
            let _ = state.check_invariants();
        }
        Err(e) => assert!(!e.is_empty()),
    }
});
