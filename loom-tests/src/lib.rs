//! stockd-loom-tests: loom models of the engine's cross-thread code — the bounded
//! request queue and its backpressure, the one-shot reply slot, a real shard loop's
//! "reply only after the sync, in order" path, and shutdown with requests in flight.
//!
//! The models live in `tests/` and compile only under the project's own cfg, so a
//! plain `cargo test --workspace` skips them. Run them (as CI does) with:
//!
//! ```text
//! RUSTFLAGS="--cfg stockd_loom" LOOM_MAX_PREEMPTIONS=2 \
//!   cargo test -p stockd-loom-tests --release --target-dir target/loom
//! ```
//!
//! `--cfg stockd_loom` switches only stockd's `sync` shim (engine/src/sync/) to
//! loom's types; tokio, crossbeam and the rest build as usual. `model` holds what
//! the shard models share (a shard over a model log, its write, a client racing
//! shutdown).

#[cfg(stockd_loom)]
pub mod model;
