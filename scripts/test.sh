#!/usr/bin/env bash
# Everything CI checks: formatting, lints, the whole workspace's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
