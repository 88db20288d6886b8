#!/usr/bin/env bash
# Instructions ShardState::apply spends per one-unit reserve on a hot SKU, per
# allocation case, counted by callgrind (no machine noise): a run that builds and
# applies N reserves minus one that only builds them. Usage: benches/allocation-cost.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-20000}"
cargo build --release -q -p stockd-benches --example allocation_cost
bin="${CARGO_TARGET_DIR:-target}/release/examples/allocation_cost"
count() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$@" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'; }
printf '%-22s %12s %8s\n' case instr/reserve ratio
base=""
for case in one_location four_priority four_priority_region four_most_available four_single_location four_named; do
  full=$(count "$case" "$n")
  zero=$(count "$case" "$n" build-only)
  per=$(( (full - zero) / n ))
  [ -z "$base" ] && base=$per
  printf '%-22s %12d %8s\n' "$case" "$per" "$(awk -v a="$per" -v b="$base" 'BEGIN { printf "%.2f", a / b }')"
done
