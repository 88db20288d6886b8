#!/usr/bin/env bash
# Everything CI checks, in order: formatting, the Prometheus alert rules (promtool),
# lints, the workspace's tests, the OpenAPI document (validator and API fuzzer against
# the real binary), that the fuzz targets compile, the loom models (release,
# loom's own cfg), and the benchmarks in smoke mode (each bench runs once to prove it
# works; nothing is timed).
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n=== %s (%s)\n' "$1" "$(date +%T)"; }

step "format"
cargo fmt --all -- --check
step "prometheus rules"
# The alert rules parse and their unit tests pass (deploy/prometheus). promtool comes
# with Debian's prometheus package (.ci/run installs it); missing, the step fails.
command -v promtool >/dev/null || { echo "promtool is missing (apt-get install prometheus)" >&2; exit 1; }
promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts_test.yml
step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "tests"
cargo test --workspace --locked
step "openapi"
# The served OpenAPI document passes openapi-spec-validator, and schemathesis against
# the running binary finds no 5xx and no answer off its schema (bounded: about 2 min).
bash scripts/openapi-check.sh
step "fuzz targets compile"
# Each fuzz crate is its own workspace (cargo-fuzz runs them on nightly, FUZZING.md);
# checked here so they cannot rot unseen.
for crate in engine/fuzz wal/fuzz snapshots/fuzz server/fuzz; do
  CARGO_PROFILE_DEV_DEBUG=0 cargo check --manifest-path "$crate/Cargo.toml" --bins --locked \
    --target-dir target/fuzz-check
done
step "loom models"
RUSTFLAGS="--cfg stockd_loom" LOOM_MAX_PREEMPTIONS=2 CARGO_PROFILE_RELEASE_DEBUG=0 \
  cargo test -p stockd-loom-tests --release --locked --target-dir target/loom
if [ -d benches/benches ]; then
  step "benchmarks, smoke mode"
  # No debug info here: smoke mode only checks the benches run (saves ~1 GB of disk).
  STOCKD_BENCH_SMOKE=1 CARGO_PROFILE_BENCH_DEBUG=0 cargo bench -p stockd-benches --locked -- --test
fi
step "done"
