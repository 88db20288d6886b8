//! Encoding of a whole `ShardState` as a snapshot payload:
//! `[STATE_VERSION: u8][bincode 2 (standard, serde) of (ShardState, clock_floor u64,
//! return ledger [(ReturnKey, ReturnLedger)], movement keys [(MovementKey,
//! MovementRecord)])]`. Version 5 (still read) had no movement keys (none are
//! remembered); version 4 (still read) had no
//! ledger (it decodes as an empty one); version 3 (still read) had no clock floor
//! either (it decodes with a floor of 0; the replayed records then set it, as
//! before). The snapshot file around it (magic, LSN, CRC) is snapshots/FORMAT.md; the
//! versions are listed in engine/FORMAT.md.

use crate::shard_state::{MovementKey, MovementRecord, ReturnKey, ReturnLedger, ShardState};
use crate::Millis;

/// 2: items carry `sales_blocked`. 3: locations. 4: the shard's clock floor. 5: the
/// return ledger. 6: the idempotency keys of transfers and receipts.
pub const STATE_VERSION: u8 = 6;
/// Older versions, still decoded.
const STATE_VERSION_NO_MOVEMENT_KEYS: u8 = 5;
const STATE_VERSION_NO_LEDGER: u8 = 4;
const STATE_VERSION_NO_FLOOR: u8 = 3;

/// What a version-5 payload holds after its version byte.
type StateV5 = (ShardState, Millis, Vec<(ReturnKey, ReturnLedger)>);
/// What a version-6 payload holds after its version byte.
type StateV6 = (ShardState, Millis, Vec<(ReturnKey, ReturnLedger)>, Vec<(MovementKey, MovementRecord)>);

pub fn encode_state(state: &ShardState) -> Vec<u8> {
    let mut out = vec![STATE_VERSION];
    let ledger: Vec<(&ReturnKey, &ReturnLedger)> = state.returns.iter().collect();
    let keys: Vec<(&MovementKey, &MovementRecord)> = state.movement_keys().iter().collect();
    bincode::serde::encode_into_std_write(
        (state, state.clock_floor(), ledger, keys),
        &mut out,
        bincode::config::standard(),
    )
    .expect("encoding into a Vec cannot fail");
    out
}

pub fn decode_state(payload: &[u8]) -> Result<ShardState, String> {
    let (&version, body) = payload.split_first().ok_or("empty snapshot payload")?;
    // A limit, so a corrupt length prefix is an error, not a huge allocation.
    let config = bincode::config::standard().with_limit::<{ stockd_snapshots::MAX_PAYLOAD_LEN as usize }>();
    let undecodable = |e: bincode::error::DecodeError| format!("undecodable snapshot state: {e}");
    let (mut state, used) = match version {
        STATE_VERSION => {
            let ((mut state, floor, ledger, keys), used): (StateV6, usize) =
                bincode::serde::decode_from_slice(body, config).map_err(undecodable)?;
            state.clock_floor = floor;
            state.returns = ledger.into_iter().collect();
            state.movement_keys = keys.into_iter().collect();
            (state, used)
        }
        STATE_VERSION_NO_MOVEMENT_KEYS => {
            let ((mut state, floor, ledger), used): (StateV5, usize) =
                bincode::serde::decode_from_slice(body, config).map_err(undecodable)?;
            state.clock_floor = floor;
            state.returns = ledger.into_iter().collect();
            (state, used)
        }
        STATE_VERSION_NO_LEDGER => {
            let ((mut state, floor), used): ((ShardState, Millis), usize) =
                bincode::serde::decode_from_slice(body, config).map_err(undecodable)?;
            state.clock_floor = floor;
            (state, used)
        }
        STATE_VERSION_NO_FLOOR => bincode::serde::decode_from_slice(body, config).map_err(undecodable)?,
        _ => {
            return Err(format!(
                "unknown snapshot state version {version} (this build reads {STATE_VERSION_NO_FLOOR} to \
                 {STATE_VERSION})"
            ))
        }
    };
    if used != body.len() {
        return Err(format!("{} trailing bytes after the snapshot state", body.len() - used));
    }
    state.after_decode();
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Command, ReserveLocal, SetItem};
    use crate::sku::{OrderId, Sku};

    #[test]
    fn a_decoded_state_shares_sku_and_order_text_like_a_live_one() {
        let mut state = ShardState::new(0);
        let sku = Sku::parse("SKU-1", "sku").unwrap();
        let set = Command::SetItem(SetItem::on_hand(sku.clone(), 10));
        state.apply(&set, 1_000).unwrap();
        let reserve = Command::ReserveLocal(ReserveLocal {
            order_id: OrderId::parse("o-1", "orderId").unwrap(),
            lines: vec![(Sku::parse("SKU-1", "sku").unwrap(), 2)],
            ttl_secs: 60,
            metadata: None,
            placement: Default::default(),
        });
        state.apply(&reserve, 1_000).unwrap();
        let decoded = decode_state(&encode_state(&state)).unwrap();
        assert_eq!(decoded, state);
        let item_sku = &decoded.items[&sku].sku;
        let header = decoded.reservations.values().next().unwrap();
        assert!(header.lines[0].sku.shares_text_with(item_sku));
        let (order, id) = decoded.by_order.iter().next().unwrap();
        assert_eq!(id, &header.reservation_id);
        let hold = &decoded.holds[id];
        assert!(hold.allocations[0].sku.shares_text_with(item_sku));
        assert!(order.shares_text_with(&header.order_id));
        assert!(hold.order_id.shares_text_with(&header.order_id));
    }

    #[test]
    fn the_clock_floor_round_trips_and_a_version_3_payload_still_decodes() {
        let mut state = ShardState::new(3);
        let set = Command::SetItem(SetItem::on_hand(Sku::parse("SKU-1", "sku").unwrap(), 10));
        state.apply(&set, 1_700_000_123_456).unwrap();
        assert_eq!(state.clock_floor(), 1_700_000_123_456);
        let decoded = decode_state(&encode_state(&state)).unwrap();
        assert_eq!(decoded.clock_floor(), 1_700_000_123_456);
        assert_eq!(decoded, state);
        // Version 3, as the previous encoder wrote it: the state alone.
        let mut v3 = vec![STATE_VERSION_NO_FLOOR];
        bincode::serde::encode_into_std_write(&state, &mut v3, bincode::config::standard()).unwrap();
        let old = decode_state(&v3).unwrap();
        assert_eq!(old.clock_floor(), 0);
        assert_eq!(old, ShardState { clock_floor: 0, ..state.clone() });
        // Version 5: no movement keys (none are remembered).
        let mut v5 = vec![STATE_VERSION_NO_MOVEMENT_KEYS];
        let ledger: Vec<(ReturnKey, ReturnLedger)> = Vec::new();
        bincode::serde::encode_into_std_write(
            (&state, state.clock_floor(), ledger),
            &mut v5,
            bincode::config::standard(),
        )
        .unwrap();
        let five = decode_state(&v5).unwrap();
        assert!(five.movement_keys().is_empty());
        assert_eq!(five, state);
        // Other versions are refused by name.
        let mut v9 = v3.clone();
        v9[0] = 9;
        assert!(decode_state(&v9).unwrap_err().contains("version 9"));
    }
}
