//! Encoding of a whole `ShardState` as a snapshot payload:
//! `[STATE_VERSION: u8][bincode 2 (standard, serde) of ShardState]`. The snapshot
//! file around it (magic, LSN, CRC) is snapshots/FORMAT.md.

use crate::shard_state::ShardState;

/// 2: items carry `sales_blocked`.
pub const STATE_VERSION: u8 = 3;

pub fn encode_state(state: &ShardState) -> Vec<u8> {
    let mut out = vec![STATE_VERSION];
    bincode::serde::encode_into_std_write(state, &mut out, bincode::config::standard())
        .expect("encoding into a Vec cannot fail");
    out
}

pub fn decode_state(payload: &[u8]) -> Result<ShardState, String> {
    let (&version, body) = payload.split_first().ok_or("empty snapshot payload")?;
    if version != STATE_VERSION {
        return Err(format!("unknown snapshot state version {version} (this build reads {STATE_VERSION})"));
    }
    // A limit, so a corrupt length prefix is an error, not a huge allocation.
    let config = bincode::config::standard().with_limit::<{ stockd_snapshots::MAX_PAYLOAD_LEN as usize }>();
    let (mut state, used): (ShardState, usize) =
        bincode::serde::decode_from_slice(body, config).map_err(|e| format!("undecodable snapshot state: {e}"))?;
    if used != body.len() {
        return Err(format!("{} trailing bytes after the snapshot state", body.len() - used));
    }
    state.after_decode();
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Command;
    use crate::sku::{OrderId, Sku};

    #[test]
    fn a_decoded_state_shares_sku_and_order_text_like_a_live_one() {
        let mut state = ShardState::new(0);
        let sku = Sku::parse("SKU-1", "sku").unwrap();
        let set = Command::SetItem {
            sku: sku.clone(),
            on_hand: 10,
            low_stock_threshold: None,
            max_per_order: None,
            expected_version: None,
            location: None,
            incoming: None,
        };
        state.apply(&set, 1_000).unwrap();
        let reserve = Command::ReserveLocal {
            order_id: OrderId::parse("o-1", "orderId").unwrap(),
            lines: vec![(Sku::parse("SKU-1", "sku").unwrap(), 2)],
            ttl_secs: 60,
            metadata: None,
            placement: Default::default(),
        };
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
}
