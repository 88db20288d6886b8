#!/usr/bin/env bash
# The side-by-side run of BENCHMARKS.md: builds the release binaries, starts the
# peers (benches/peers/), two `stockd serve` (durability fsync and none) and the
# reference handler `stockd-ceiling` (the same routes from a Mutex<HashMap>, no
# durability: the ceiling of HTTP on this machine) on loopback (and SQLite, in
# process, synchronous=FULL), drives each with the same
# generator (stockd-load) on the same `flash` and
# `mixed` workloads, one after another in this one run, stops everything, and prints a
# table with ratios. Also runs the embedded engine (durable / no-sync / memory) flash.
#
#   benches/run-comparison.sh            # everything
#   SKIP_BUILD=1 benches/run-comparison.sh
#
# Env (defaults): CLIENTS=64 STOCK=10000 ATTEMPTS=20000 (flash), MIXED_OPS=40000
# SKUS=1000 MIXED_STOCK=100000 (mixed), EMB_STOCK=100000 EMB_ATTEMPTS=120000
# (embedded flash), BATCH=4096 BATCH_CLIENTS=4 BATCH_STOCK=1000000
# BATCH_ATTEMPTS=1200000 (embedded flash, batch-submitting clients), ROUNDS=3 (rounds of
# the HTTP and peer runs; each figure is the median round), SHARDS (stockd shards;
# default: stockd's own), OUT (a dir for
# the raw outputs and .hgrm files; default a temp dir that is printed).
# Every wait is bounded; the whole run is bounded by RUN_TIMEOUT seconds (1800).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
CLIENTS="${CLIENTS:-64}"
STOCK="${STOCK:-10000}"
ATTEMPTS="${ATTEMPTS:-20000}"
MIXED_OPS="${MIXED_OPS:-40000}"
SKUS="${SKUS:-1000}"
MIXED_STOCK="${MIXED_STOCK:-100000}"
EMB_STOCK="${EMB_STOCK:-100000}"
EMB_ATTEMPTS="${EMB_ATTEMPTS:-120000}"
BATCH="${BATCH:-4096}"
BATCH_CLIENTS="${BATCH_CLIENTS:-4}"
BATCH_STOCK="${BATCH_STOCK:-1000000}"
BATCH_ATTEMPTS="${BATCH_ATTEMPTS:-1200000}"
RUN_TIMEOUT="${RUN_TIMEOUT:-1800}"
ROUNDS="${ROUNDS:-3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$CARGO_TARGET_DIR/release"
OUT="${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/stockd-comparison.XXXXXX")}"
mkdir -p "$OUT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/stockd-comparison-data.XXXXXX")"
PIDS=()
SHARD_ARGS=()
[ -n "${SHARDS:-}" ] && SHARD_ARGS=(--shards "$SHARDS")
DEADLINE=$(($(date +%s) + RUN_TIMEOUT))

cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$pid" 2>/dev/null || true
    done
    benches/peers/redis.sh stop || true
    benches/peers/postgres.sh stop || true
    rm -rf "$WORK"
}
trap cleanup EXIT

left() { local l=$((DEADLINE - $(date +%s))); [ "$l" -gt 0 ] || { echo "run-comparison: out of time" >&2; exit 1; }; echo "$l"; }

if [ -z "${SKIP_BUILD:-}" ]; then
    timeout "$(left)" cargo build --release -q -p stockd-server -p stockd-benches --bins
fi

wait_port() { # host port seconds
    for _ in $(seq 1 $(($3 * 5))); do
        (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
        sleep 0.2
    done
    echo "run-comparison: nothing listens on $1:$2 after $3 s" >&2
    return 1
}

start_stockd() { # name port durability
    mkdir -p "$WORK/$1"
    "$BIN/stockd" serve --listen "127.0.0.1:$2" --data-dir "$WORK/$1" --durability "$3" "${SHARD_ARGS[@]}" \
        >"$OUT/$1.log" 2>&1 &
    PIDS+=($!)
    wait_port 127.0.0.1 "$2" 60
}

REDIS_URL="$(timeout 600 benches/peers/redis.sh start)"
PG_URL="$(timeout 900 benches/peers/postgres.sh start)"
start_stockd stockd-fsync 18080 fsync
start_stockd stockd-none 18081 none
"$BIN/stockd-ceiling" --listen 127.0.0.1:18082 >"$OUT/ceiling.log" 2>&1 &
PIDS+=($!)
wait_port 127.0.0.1 18082 60

# field NAME < json-line
field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p"; }

declare -A RESULT
run() { # name args...
    local name="$1"
    shift
    echo "== $name: stockd-load $*" >&2
    if ! timeout "$(left)" "$BIN/stockd-load" "$@" --hgrm "$OUT/$name.hgrm" >"$OUT/$name.txt" 2>&1; then
        echo "run-comparison: $name FAILED:" >&2
        cat "$OUT/$name.txt" >&2
        RESULT[$name]='{"verdict":"FAILED"}'
        return 0
    fi
    RESULT[$name]="$(grep '^{' "$OUT/$name.txt" | tail -1)"
    grep -E '^(reserve|successful|mixed|latency|errors|group|verdict|invariants)' "$OUT/$name.txt" | sed 's/^/   /' >&2
}

echo "compilers running at start: $(pgrep -c rustc || true) (measure on a quiet machine)" >&2
run embedded-batch-flash --target embedded --workload flash --clients "$BATCH_CLIENTS" --batch "$BATCH" \
    --stock "$BATCH_STOCK" --attempts "$BATCH_ATTEMPTS" "${SHARD_ARGS[@]}"
for target in embedded embedded-nosync memory; do
    run "$target-flash" --target "$target" --workload flash --clients "$CLIENTS" \
        --stock "$EMB_STOCK" --attempts "$EMB_ATTEMPTS" "${SHARD_ARGS[@]}"
done
FLASH=(--workload flash --connections "$CLIENTS" --stock "$STOCK" --attempts "$ATTEMPTS")
MIXED=(--workload mixed --connections "$CLIENTS" --stock "$MIXED_STOCK" --skus "$SKUS" --attempts "$MIXED_OPS")
# ROUNDS rounds, each running every target once in turn (so all see the same
# background load); each target's figure is its median round (ok/s on flash, ops/s on
# mixed), and that round's other figures (p99, ...) go with it.
for r in $(seq 1 "$ROUNDS"); do
    for w in flash mixed; do
        if [ "$w" = flash ]; then W=("${FLASH[@]}"); else W=("${MIXED[@]}"); fi
        run "http-fsync-$w.r$r" --target http --url http://127.0.0.1:18080 "${W[@]}"
        run "http-none-$w.r$r" --target http --url http://127.0.0.1:18081 "${W[@]}"
        run "ceiling-$w.r$r" --target http --url http://127.0.0.1:18082 "${W[@]}"
        run "redis-$w.r$r" --target redis --url "$REDIS_URL" "${W[@]}"
        run "postgres-$w.r$r" --target postgres --url "$PG_URL" "${W[@]}"
        mkdir -p "$OUT/sqlite-$w.r$r"
        run "sqlite-$w.r$r" --target sqlite --data-dir "$OUT/sqlite-$w.r$r" "${W[@]}"
    done
done
for t in http-fsync http-none ceiling redis postgres sqlite; do
    for w in flash mixed; do
        if [ "$w" = flash ]; then key=ok_per_s; else key=throughput; fi
        # The rounds' JSON lines sorted by the figure; the middle one (a failed
        # round sorts first, as 0).
        lines=()
        for r in $(seq 1 "$ROUNDS"); do lines+=("$(field "$key" <<<"${RESULT[$t-$w.r$r]}")"$'\t'"${RESULT[$t-$w.r$r]}"); done
        RESULT[$t-$w]="$(printf '%s\n' "${lines[@]}" | sort -t$'\t' -k1,1g | sed -n "$(((ROUNDS + 1) / 2))p" | cut -f2-)"
        # A round that failed its verdict fails the figure, whichever round is the median.
        failed=0
        for r in $(seq 1 "$ROUNDS"); do
            [ "$(field verdict <<<"${RESULT[$t-$w.r$r]}")" = OK ] || failed=$((failed + 1))
        done
        if [ "$failed" -gt 0 ]; then
            RESULT[$t-$w]="$(sed "s/\"verdict\":\"[^\"]*\"/\"verdict\":\"FAILED-$failed-of-$ROUNDS\"/" <<<"${RESULT[$t-$w]}")"
        fi
        echo "   $t-$w: $key by round $(printf '%s ' "${lines[@]%%$'\t'*}")-> median $(field "$key" <<<"${RESULT[$t-$w]}")" >&2
    done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); clients $CLIENTS; raw outputs in $OUT"
echo
printf '| %-22s | %-8s | %12s | %10s | %8s | %8s | %8s | %-9s |\n' run workload "ok/s" "ops/s" "p50 µs" "p99 µs" "max µs" verdict
printf '|%s|%s|%s|%s|%s|%s|%s|%s|\n' ------------------------ ---------- -------------- ------------ ---------- ---------- ---------- -----------
for name in embedded-batch-flash embedded-flash embedded-nosync-flash memory-flash \
    http-fsync-flash http-none-flash ceiling-flash redis-flash postgres-flash sqlite-flash \
    http-fsync-mixed http-none-mixed ceiling-mixed redis-mixed postgres-mixed sqlite-mixed; do
    j="${RESULT[$name]:-}"
    printf '| %-22s | %-8s | %12s | %10s | %8s | %8s | %8s | %-9s |\n' "${name%-*}" "${name##*-}" \
        "$(field ok_per_s <<<"$j")" "$(field throughput <<<"$j")" "$(field p50_us <<<"$j")" \
        "$(field p99_us <<<"$j")" "$(field max_us <<<"$j")" "$(field verdict <<<"$j")"
done
g() { field "$2" <<<"${RESULT[$1]:-}"; }
echo "compilers running at end: $(pgrep -c rustc || true)"
echo
echo "ratios (same run):"
echo "  flash ok/s   http-fsync / postgres   = $(ratio "$(g http-fsync-flash ok_per_s)" "$(g postgres-flash ok_per_s)")   (target >= 20)"
echo "  flash ok/s   http-fsync / redis      = $(ratio "$(g http-fsync-flash ok_per_s)" "$(g redis-flash ok_per_s)")   (target >= 1.1)"
echo "  flash ok/s   http-fsync / ceiling    = $(ratio "$(g http-fsync-flash ok_per_s)" "$(g ceiling-flash ok_per_s)")   (target >= 0.9)"
echo "  flash ok/s   ceiling / redis         = $(ratio "$(g ceiling-flash ok_per_s)" "$(g redis-flash ok_per_s)")"
echo "  mixed ops/s  http-fsync / postgres   = $(ratio "$(g http-fsync-mixed throughput)" "$(g postgres-mixed throughput)")   (target >= 4)"
echo "  mixed ops/s  http-fsync / redis      = $(ratio "$(g http-fsync-mixed throughput)" "$(g redis-mixed throughput)")   (target >= 1.0)"
echo "  mixed ops/s  http-fsync / ceiling    = $(ratio "$(g http-fsync-mixed throughput)" "$(g ceiling-mixed throughput)")   (target >= 0.9)"
echo "  mixed ops/s  ceiling / redis         = $(ratio "$(g ceiling-mixed throughput)" "$(g redis-mixed throughput)")"
echo "  mixed ops/s  http-fsync / sqlite     = $(ratio "$(g http-fsync-mixed throughput)" "$(g sqlite-mixed throughput)")   (target >= 4)"
echo "  flash ok/s   http-fsync / http-none  = $(ratio "$(g http-fsync-flash ok_per_s)" "$(g http-none-flash ok_per_s)")   (target >= 0.9)"
echo "  flash p99    http-fsync / http-none  = $(ratio "$(g http-fsync-flash p99_us)" "$(g http-none-flash p99_us)")   (target <= 1.5)"
echo "  mixed ops/s  http-fsync / http-none  = $(ratio "$(g http-fsync-mixed throughput)" "$(g http-none-mixed throughput)")   (target >= 0.9)"
echo "  mixed p99    http-fsync / http-none  = $(ratio "$(g http-fsync-mixed p99_us)" "$(g http-none-mixed p99_us)")   (target <= 1.5)"
