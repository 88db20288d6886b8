//! A snapshot an engine wrote still opens: the payload of a shard state (state
//! version 4) captured from the engine as it was on 2026-12-05, holding what a
//! snapshot can hold — items at named locations, an ACTIVE reservation (its expiry
//! timer), a committed and a released one (the retention clock), a remembered
//! adjustment key. Today's code must decode it to the state the same commands build
//! now; a change of the layout that breaks this needs a new STATE_VERSION and a
//! decoder for version 4 (this test then keeps proving it).

use stockd_engine::location::Placement;
use stockd_engine::offline::{decode_state, encode_state, STATE_VERSION};
use stockd_engine::*;

mod common;
use common::*;

const START: Millis = 1_700_000_000_000;

/// The state the golden bytes were made from.
fn state() -> ShardState {
    let mut st = ShardState::new(0);
    let l = |s: &str| LocationId::parse(s, "location").unwrap();
    let mut now = START;
    let mut apply = |st: &mut ShardState, c: Command| {
        now += 1_000;
        st.apply(&c, now).unwrap_or_else(|e| panic!("{e}"));
    };
    let set = |s: &str, location: Option<&str>, on_hand| {
        Command::SetItem(SetItem { location: location.map(l), ..SetItem::on_hand(sku(s), on_hand) })
    };
    apply(&mut st, set("A", Some("berlin"), 10));
    apply(&mut st, set("A", Some("paris"), 5));
    apply(&mut st, set("B", None, 7));
    let reserve = |o: &str, lines: Vec<(Sku, u64)>, ttl_secs| {
        Command::ReserveLocal(ReserveLocal {
            order_id: order(o),
            lines,
            ttl_secs,
            metadata: Some(r#"{"userId":"u-1"}"#.into()),
            placement: Placement::default(),
        })
    };
    apply(&mut st, reserve("o-active", vec![(sku("A"), 3)], 7_776_000));
    apply(&mut st, reserve("o-committed", vec![(sku("A"), 2), (sku("B"), 1)], 900));
    apply(&mut st, Command::CommitReservation { key: ReservationKey::Order(order("o-committed")), quantities: None });
    apply(&mut st, reserve("o-released", vec![(sku("B"), 2)], 900));
    apply(
        &mut st,
        Command::ReleaseReservation {
            key: ReservationKey::Order(order("o-released")),
            reason: "CUSTOMER_CANCELLED".into(),
        },
    );
    apply(
        &mut st,
        Command::AdjustItem(Adjust {
            sku: sku("B"),
            delta: 4,
            reason: AdjustReason::Restock,
            note: Some("pallet".into()),
            idempotency_key: Some("po-1".into()),
            expected_version: None,
            location: None,
        }),
    );
    st
}

const GOLDEN: &str = concat!(
    "04000302014101410d0302000102066265726c696e080302000570617269730500000000000005fde86be5cf8b010000",
    "fd707fe5cf8b010000014201420a0001000000000006fdb873e5cf8b010000fd288be5cf8b0100000124363535336631",
    "30342d303030302d303030302d303030302d303030303030303030303030086f2d616374697665010141066265726c69",
    "6e0300032436353533663130342d303030302d303030302d303030302d30303030303030303030303024363535336631",
    "30342d303030302d303030302d303030302d303030303030303030303030086f2d616374697665010101410300010141",
    "066265726c696e0300fda077e5cf8b010000fda0cf619f8d010000000001107b22757365724964223a22752d31227d24",
    "36353533663130372d303030302d303030302d303030302d3030303030303030303030322436353533663130372d3030",
    "30302d303030302d303030302d3030303030303030303030320a6f2d72656c656173656403010142020000fd5883e5cf",
    "8b010000fdf83ef3cf8b01000001fd4087e5cf8b0100000112435553544f4d45525f43414e43454c4c454401107b2275",
    "7365724964223a22752d31227d2436353533663130352d303030302d303030302d303030302d30303030303030303030",
    "30312436353533663130352d303030302d303030302d303030302d3030303030303030303030310b6f2d636f6d6d6974",
    "74656402020141020201420101020141066265726c696e02020142000101fd887be5cf8b010000fd2837f3cf8b010000",
    "01fd707fe5cf8b0100000001107b22757365724964223a22752d31227d03086f2d616374697665243635353366313034",
    "2d303030302d303030302d303030302d3030303030303030303030300a6f2d72656c6561736564243635353366313037",
    "2d303030302d303030302d303030302d3030303030303030303030320b6f2d636f6d6d69747465642436353533663130",
    "352d303030302d303030302d303030302d30303030303030303030303101fda0cf619f8d010000243635353366313034",
    "2d303030302d303030302d303030302d30303030303030303030303002fd707fe5cf8b0100002436353533663130352d",
    "303030302d303030302d303030302d303030303030303030303031fd4087e5cf8b0100002436353533663130372d3030",
    "30302d303030302d303030302d30303030303030303030303201014204706f2d3108fd288be5cf8b01000001420a0001",
    "000000000006fdb873e5cf8b010000fd288be5cf8b01000001fd288be5cf8b010000014204706f2d3100fd288be5cf8b",
    "010000",
);

fn bytes(hex: &str) -> Vec<u8> {
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
}

#[test]
fn a_snapshot_written_before_decodes_to_the_same_state_and_encodes_to_the_same_bytes() {
    let st = state();
    let golden = bytes(GOLDEN);
    assert_eq!(golden[0], 4, "state version 4");
    assert_ne!(golden[0], STATE_VERSION, "written today: version 5 (the return ledger); version 4 still decodes");
    let decoded = decode_state(&golden).unwrap();
    assert_eq!(decoded, st, "decodes to the state the same commands build today");
    decoded.check_invariants().unwrap();
    assert_eq!(decoded.next_deadline(), Some(START + 4_000 + 7_776_000_000), "the 90-day hold's timer");
    // Today's encoding of the same state reads back the same (its hash maps come out
    // in a per-process order, so the bytes themselves are not compared).
    assert_eq!(decode_state(&encode_state(&st)).unwrap(), st);
    // A version-4 state has no return ledger: it decodes as an empty one.
    assert!(decoded.return_ledger().is_empty());
}
