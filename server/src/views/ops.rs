//! The operations answers: `/health` and `/ready`.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// The answer to `/health` (also the `details` of its 503 when a WAL has failed).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthView {
    /// fsync, ... (`--durability`).
    pub durability: &'static str,
    /// Per shard, the last log sequence number synced to disk.
    pub durable_lsn: Vec<u64>,
    pub flows: FlowsView,
    /// With the Kafka front (`--kafka-brokers`): its producer, consumers, lag and
    /// broker state.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub kafka: Option<Value>,
    /// With an outbox consumer (the Kafka publisher).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbox: Option<OutboxView>,
    /// With `--replication kafka`: role, leader, epoch, lag.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub replication: Option<Value>,
    pub shards: usize,
    /// ok or failed.
    pub status: &'static str,
    pub version: &'static str,
    /// ok or failed.
    pub wal: &'static str,
    /// Why the WAL failed; null while it is ok.
    #[schema(required = true)]
    pub wal_reason: Option<String>,
}

/// The flows' internal steps, the expiry sweep and the reconciler: `sweepFailures` >
/// 0 means the sweep failed (and was retried); the reconciler figures are non-zero
/// only after a flow was cut short.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlowsView {
    pub reconciled_aborted: u64,
    pub reconciled_settled: u64,
    pub steps_deferred: u64,
    pub sweep_failures: u64,
}

impl From<stockd_engine::FlowStats> for FlowsView {
    fn from(f: stockd_engine::FlowStats) -> FlowsView {
        FlowsView {
            reconciled_aborted: f.reconciled_aborted,
            reconciled_settled: f.reconciled_settled,
            steps_deferred: f.steps_deferred,
            sweep_failures: f.sweep_failures,
        }
    }
}

/// The outbox retention, per shard: the acknowledged LSN, the bytes kept for it,
/// whether the shard refuses new writes over the ceiling, and the records dropped.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutboxView {
    pub acked_lsn: Vec<u64>,
    pub events_dropped: Vec<u64>,
    pub held_bytes: Vec<u64>,
    /// `--outbox-max-bytes`; null: no ceiling.
    #[schema(required = true)]
    pub max_bytes: Option<u64>,
    /// refuse or drop.
    pub policy: &'static str,
    pub refusing: Vec<bool>,
}

/// The answer to `/ready`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadyView {
    /// Always true (a node that is not ready answers 503).
    pub ready: bool,
}
