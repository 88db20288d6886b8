//! stockd-server: the `stockd` binary. Will own the axum HTTP API and the Kafka front,
//! routing requests to the engine's shards and mapping engine errors to HTTP statuses.
//! Not built yet (issue 4); today `stockd` only prints what it will be.
