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
    let (state, used): (ShardState, usize) =
        bincode::serde::decode_from_slice(body, config).map_err(|e| format!("undecodable snapshot state: {e}"))?;
    if used != body.len() {
        return Err(format!("{} trailing bytes after the snapshot state", body.len() - used));
    }
    Ok(state)
}
