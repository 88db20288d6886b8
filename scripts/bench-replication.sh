#!/usr/bin/env bash
# The replication run of BENCHMARKS.md (issue 14): starts its own tansu broker and
# stockd nodes on loopback, measures, stops everything and removes its data.
#
#   1. side by side: a local-only `stockd serve` and a `--replication kafka` leader
#      (with one standby following it) under the same stockd-load HTTP flash and
#      mixed loads, alternated, ROUNDS times; the standby's /health lagRecords is
#      sampled every LAG_EVERY s during each replicated load (max, final at the end of
#      the load, and the time until it is 0 again);
#   2. catch-up: CATCHUP_RECORDS more reservations are written to the leader, then a
#      node with an empty data directory joins as a read replica (`--role replica`):
#      changelog messages / time from its start until it reports caughtUp with
#      lagRecords 0;
#   3. failover, FAILOVERS times, on three nodes (the catch-up node stays; with
#      FAILOVER_NODES=2 it is stopped first): a writer
#      (curl, one reserve at a time, moving to the next node on anything but 201)
#      follows the leader; the leader is killed with -9; time from the kill to the
#      first 201 from another node. The killed node is restarted (it rejoins as a
#      standby) and given SETTLE s to join the leader group before the next round.
#
#   4. embedded (phase `embedded`): the embedded batch client (stockd-load --target
#      embedded, EMBEDDED_CLIENTS clients submitting batches of EMBEDDED_BATCH) on a
#      local-only engine and on a replicated one (`--replicate-to`: the same start-up
#      as `stockd serve --replication kafka`, leading), alternated, ROUNDS times.
#
# The nodes run without the Kafka order-event front (--kafka-no-consume
# --kafka-no-publish): the figures are replication's alone.
#
#   scripts/bench-replication.sh
#   SKIP_BUILD=1 OUT=/tmp/repl scripts/bench-replication.sh
#   PHASES=embedded,failover scripts/bench-replication.sh     # a selection, in this order
#
# Env (defaults): CONNECTIONS=64 STOCK=10000 ATTEMPTS=20000 (flash), MIXED_OPS=40000
# SKUS=1000 MIXED_STOCK=100000 (mixed), ROUNDS=2, SHARDS=2, SESSION=6s
# (--leader-session-timeout), CATCHUP_RECORDS=200000, FAILOVERS=5, SETTLE=10 (s a
# restarted node gets to join the leader group before the next kill), LAG_EVERY=0.2,
# BASE_PORT=18190 (broker BASE_PORT, local-only +1, nodes +2..+4), TANSU (the broker
# binary; default: on PATH or ~/.cargo/bin/tansu), OUT (raw outputs; default a temp dir
# that is printed), RUN_TIMEOUT=1800 s for the whole run, PHASES=http,catchup,failover,embedded
# (a comma list), EMBEDDED_CLIENTS=4 EMBEDDED_BATCH=4096 EMBEDDED_ATTEMPTS=400000.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
CONNECTIONS="${CONNECTIONS:-64}"
STOCK="${STOCK:-10000}"
ATTEMPTS="${ATTEMPTS:-20000}"
MIXED_OPS="${MIXED_OPS:-40000}"
SKUS="${SKUS:-1000}"
MIXED_STOCK="${MIXED_STOCK:-100000}"
ROUNDS="${ROUNDS:-2}"
SHARDS="${SHARDS:-2}"
SESSION="${SESSION:-6s}"
CATCHUP_RECORDS="${CATCHUP_RECORDS:-200000}"
FAILOVERS="${FAILOVERS:-5}"
SETTLE="${SETTLE:-10}"
LAG_EVERY="${LAG_EVERY:-0.2}"
BASE_PORT="${BASE_PORT:-18190}"
RUN_TIMEOUT="${RUN_TIMEOUT:-1800}"
PHASES=",${PHASES:-http,catchup,failover,embedded},"
EMBEDDED_CLIENTS="${EMBEDDED_CLIENTS:-4}"
EMBEDDED_BATCH="${EMBEDDED_BATCH:-4096}"
EMBEDDED_ATTEMPTS="${EMBEDDED_ATTEMPTS:-400000}"
phase() { [[ "$PHASES" == *",$1,"* ]]; }
TANSU="${TANSU:-$(command -v tansu || echo "$HOME/.cargo/bin/tansu")}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$CARGO_TARGET_DIR/release"
OUT="${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/stockd-replication.XXXXXX")}"
mkdir -p "$OUT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/stockd-replication-data.XXXXXX")"
DEADLINE=$(($(date +%s) + RUN_TIMEOUT))
BROKER="127.0.0.1:$BASE_PORT"
LOCAL_PORT=$((BASE_PORT + 1))
declare -A PORT=([n1]=$((BASE_PORT + 2)) [n2]=$((BASE_PORT + 3)) [n3]=$((BASE_PORT + 4)))
declare -A PID=()
BG=()

for tool in curl jq awk; do command -v "$tool" >/dev/null || { echo "bench-replication: needs $tool" >&2; exit 1; }; done
[ -x "$TANSU" ] || { echo "bench-replication: no tansu broker at $TANSU (cargo install tansu --version 0.6.0 --locked --features dynostore)" >&2; exit 1; }

stop_pid() { # pid: TERM, up to 10 s, then KILL
    kill "$1" 2>/dev/null || return 0
    for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.2; done
    kill -9 "$1" 2>/dev/null || true
}
cleanup() {
    for p in "${BG[@]}"; do kill "$p" 2>/dev/null || true; done
    for name in "${!PID[@]}"; do stop_pid "${PID[$name]}"; done
    rm -rf "$WORK"
}
trap cleanup EXIT

left() { local l=$((DEADLINE - $(date +%s))); [ "$l" -gt 0 ] || { echo "bench-replication: out of time" >&2; exit 1; }; echo "$l"; }
now() { echo "${EPOCHREALTIME/./}"; } # µs
wait_until() { # seconds description command...
    local secs="$1" what="$2"
    shift 2
    local end=$(($(date +%s) + secs))
    until "$@"; do
        [ "$(date +%s)" -lt "$end" ] || { echo "bench-replication: timed out after $secs s waiting for $what" >&2; exit 1; }
        sleep 0.1
    done
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [ -z "${SKIP_BUILD:-}" ]; then
    timeout "$(left)" cargo build --release -q -p stockd-server -p stockd-benches --bins
fi

# --- the broker and the nodes -----------------------------------------------------
RUST_LOG=error "$TANSU" broker --listener-url "tcp://$BROKER" --advertised-listener-url "tcp://$BROKER" \
    --storage-engine memory://tansu/ >"$OUT/tansu.log" 2>&1 &
PID[tansu]=$!
wait_until 30 "the broker on $BROKER" port_open "$BASE_PORT"

start_local() {
    mkdir -p "$WORK/local"
    "$BIN/stockd" serve --listen "127.0.0.1:$LOCAL_PORT" --data-dir "$WORK/local" --shards "$SHARDS" \
        >>"$OUT/local.log" 2>&1 &
    PID[local]=$!
    wait_until 60 "the local-only node" port_open "$LOCAL_PORT"
}
start_node() { # name [flags...] (its data dir is kept between starts)
    local name="$1"
    shift
    mkdir -p "$WORK/$name"
    RUST_LOG="warn,stockd_server::replication=info" "$BIN/stockd" serve --listen "127.0.0.1:${PORT[$name]}" \
        --data-dir "$WORK/$name" --shards "$SHARDS" --replication kafka --kafka-brokers "$BROKER" --node-id "$name" \
        --changelog-replication-factor 1 --leader-session-timeout "$SESSION" --kafka-no-consume --kafka-no-publish \
        "$@" >>"$OUT/$name.log" 2>&1 &
    PID[$name]=$!
    wait_until 60 "node $name to listen" port_open "${PORT[$name]}"
}
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:${PORT[$1]}/ready")" = 200 ]; }
health() { curl -s --max-time 2 "http://127.0.0.1:${PORT[$1]}/health" || echo '{}'; }
# caught up: `caughtUp` and no lag
caught_up() { [ "$(health "$1" | jq -r '.data.replication | "\(.caughtUp) \(.lagRecords)"')" = "true 0" ]; }
end_offsets() { health "$1" | jq '[.data.replication.shards[].endOffset] | add'; }

if phase http; then start_local; fi
if phase http || phase catchup || phase failover; then
    start_node n1
    wait_until 120 "n1 to lead" ready n1
    start_node n2
    wait_until 120 "n2 to catch up" caught_up n2
fi
LEADER=n1
STANDBY=n2

# --- 1. side by side, with the standby's lag sampled -------------------------------
offsets() { jq '[.data.replication.shards[]?.offset] | add // "null"'; }
sample_lag() { # standby leader file: "µs lagRecords behind" lines every LAG_EVERY s until killed
    # lagRecords: the standby's own figure (the log's end as of its last fetch);
    # behind: changelog messages the leader's reader has read back (its confirmed
    # writes) minus those the standby has read.
    local s l
    while :; do
        s=$(health "$1")
        l=$(health "$2" | offsets)
        echo "$(now) $(jq -r '.data.replication.lagRecords // "null"' <<<"$s") $(awk -v a="$l" -v b="$(offsets <<<"$s")" 'BEGIN { print a - b }')" >>"$3"
        sleep "$LAG_EVERY"
    done
}
declare -A RESULT LAG
load() { # name args...
    local name="$1"
    shift
    echo "== $name: stockd-load $*" >&2
    if ! timeout "$(left)" "$BIN/stockd-load" "$@" --hgrm "$OUT/$name.hgrm" >"$OUT/$name.txt" 2>&1; then
        echo "bench-replication: $name FAILED:" >&2
        cat "$OUT/$name.txt" >&2
        RESULT[$name]='{"verdict":"FAILED"}'
        return 0
    fi
    RESULT[$name]="$(grep '^{' "$OUT/$name.txt" | tail -1)"
    grep -E '^(reserve|successful|mixed|latency|errors|verdict|invariants)' "$OUT/$name.txt" | sed 's/^/   /' >&2
}
replicated_load() { # name args...: the load against the leader, the standby's lag sampled
    local name="$1" lagfile="$OUT/$1.lag"
    : >"$lagfile"
    sample_lag "$STANDBY" "$LEADER" "$lagfile" &
    local sampler=$!
    BG+=("$sampler")
    load "$@"
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    local t_end final drained
    t_end=$(now)
    final=$(health "$STANDBY" | jq -r '.data.replication.lagRecords')
    wait_until 120 "the standby to drain" caught_up "$STANDBY"
    drained=$((($(now) - t_end) / 1000))
    local max behind
    max=$(awk '$2 ~ /^[0-9]+$/ && $2 > m { m = $2 } END { print m + 0 }' "$lagfile")
    behind=$(awk '$3 ~ /^-?[0-9]+$/ && $3 > m { m = $3 } END { print m + 0 }' "$lagfile")
    LAG[$name]="lagRecords max $max, $final at the end, 0 after $drained ms; behind the leader max $behind ($(wc -l <"$lagfile") samples)"
    echo "   standby lag: ${LAG[$name]}" >&2
}
FLASH=(--workload flash --connections "$CONNECTIONS" --stock "$STOCK" --attempts "$ATTEMPTS")
MIXED=(--workload mixed --connections "$CONNECTIONS" --stock "$MIXED_STOCK" --skus "$SKUS" --attempts "$MIXED_OPS")
echo "compilers running at start: $(pgrep -c rustc || true) (measure on a quiet machine)" >&2
if phase http; then
    for r in $(seq 1 "$ROUNDS"); do
        for w in flash mixed; do
            if [ "$w" = flash ]; then W=("${FLASH[@]}"); else W=("${MIXED[@]}"); fi
            load "local-$w-$r" --target http --url "http://127.0.0.1:$LOCAL_PORT" "${W[@]}"
            replicated_load "repl-$w-$r" --target http --url "http://127.0.0.1:${PORT[$LEADER]}" "${W[@]}"
        done
    done
    stop_pid "${PID[local]}"
    unset 'PID[local]'
fi

# --- 2. catch-up of an empty standby -----------------------------------------------
CATCHUP="not measured (phase catchup not selected)"
if phase catchup; then
    load seed --target http --url "http://127.0.0.1:${PORT[$LEADER]}" --workload flash --connections "$CONNECTIONS" \
        --stock "$CATCHUP_RECORDS" --attempts "$CATCHUP_RECORDS"
    wait_until 120 "the standby to drain" caught_up "$STANDBY"
    MESSAGES=$(end_offsets "$LEADER")
    t0=$(now)
    # a read replica (`--role replica`: never in the leader group), so that joining cannot
    # start a take-over and the figure is the reader's alone
    start_node n3 --role replica
    wait_until 900 "n3 to catch up" caught_up n3
    CATCHUP_US=$(($(now) - t0))
    CATCHUP="$MESSAGES changelog messages in $((CATCHUP_US / 1000)) ms = $(awk -v m="$MESSAGES" -v u="$CATCHUP_US" 'BEGIN { printf "%.0f", m / (u / 1e6) }') messages/s (from process start to caughtUp, lag 0)"
    echo "== catch-up: $CATCHUP" >&2
    stop_pid "${PID[n3]}"
    unset 'PID[n3]'
fi

# --- 3. failover (three nodes: n3 stays as a second standby; FAILOVER_NODES=2: stopped) -
FAILOVER_MS=()
if phase failover; then
    if [ "${FAILOVER_NODES:-3}" = 2 ]; then
        NODES=(n1 n2)
    else
        NODES=(n1 n2 n3)
        start_node n3 # now a standby (its data dir is caught up)
        wait_until 300 "n3 to catch up as a standby" caught_up n3
        sleep "$SETTLE"
    fi
    writer() { # log first-port: "µs port code" per answer; moves to the next node on anything but 201
        local ports=() i=0 n=0 code port node
        for node in "${NODES[@]}"; do ports+=("${PORT[$node]}"); done
        while [ "${ports[$i]}" != "$2" ]; do i=$((i + 1)); done
        while :; do
            n=$((n + 1))
            port="${ports[$i]}"
            code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST -H 'content-type: application/json' \
                --data "{\"orderId\":\"fo-$BASHPID-$n\",\"items\":[{\"sku\":\"FAILOVER-1\",\"quantity\":1}],\"expiresIn\":3600}" \
                "http://127.0.0.1:$port/api/v1/inventory/reserve" || true)
            echo "$(now) $port $code" >>"$1"
            if [ "$code" != 201 ]; then
                i=$(((i + 1) % ${#ports[@]}))
                sleep 0.005
            fi
        done
    }
    the_leader() { for n in "${NODES[@]}"; do [ "$n" != "$1" ] && ready "$n" && { echo "$n"; return 0; }; done; return 1; }
    # the leader may have moved (a joining node can be given the leader partition)
    find_leader() {
        LEADER=""
        for _ in $(seq 1 600); do LEADER=$(the_leader "${1:-none}") && break; sleep 0.1; done
        [ -n "$LEADER" ] || { echo "bench-replication: no node reports /ready" >&2; exit 1; }
    }
    find_leader
    code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'content-type: application/json' --data '{"onHand":100000000}' \
        "http://127.0.0.1:${PORT[$LEADER]}/api/v1/inventory/items/FAILOVER-1")
    case "$code" in 200 | 201) ;; *) echo "bench-replication: creating FAILOVER-1 on $LEADER: HTTP $code" >&2; exit 1 ;; esac
    for i in $(seq 1 "$FAILOVERS"); do
        find_leader
        log="$OUT/failover-$i.log"
        : >"$log"
        writer "$log" "${PORT[$LEADER]}" &
        w=$!
        BG+=("$w")
        wait_until 30 "writes on the leader" grep -q " ${PORT[$LEADER]} 201$" "$log"
        sleep 1
        t_kill=$(now)
        kill -9 "${PID[$LEADER]}"
        wait "${PID[$LEADER]}" 2>/dev/null || true
        dead_port="${PORT[$LEADER]}"
        first() { awk -v t="$t_kill" -v p="$dead_port" '$1 > t && $2 != p && $3 == 201 { print $1, $2; exit }' "$log"; }
        have_first() { [ -n "$(first)" ]; }
        if ! (wait_until "${FAILOVER_WAIT:-60}" "the first acknowledged write on another node" have_first); then
            FAILOVER_MS+=("none-within-${FAILOVER_WAIT:-60}s")
            echo "== failover $i: $LEADER killed -> no acknowledged write within ${FAILOVER_WAIT:-60} s; stopping the failover rounds" >&2
            kill "$w" 2>/dev/null || true
            break
        fi
        read -r t_ack new_port < <(first)
        kill "$w" 2>/dev/null || true
        wait "$w" 2>/dev/null || true
        ms=$(((t_ack - t_kill) / 1000))
        FAILOVER_MS+=("$ms")
        dead="$LEADER"
        find_leader "$dead"
        echo "== failover $i: $dead killed -> first 201 from $LEADER (port $new_port) after $ms ms" >&2
        if [ "$i" -lt "$FAILOVERS" ]; then
            start_node "$dead"
            wait_until 300 "$dead to rejoin and catch up" caught_up "$dead"
            sleep "$SETTLE"
        fi
    done
fi

# --- 4. the embedded batch client, local-only against replicated ---------------------
if phase embedded; then
    EMB=(--target embedded --workload flash --shards "$SHARDS" --clients "$EMBEDDED_CLIENTS" --batch "$EMBEDDED_BATCH"
        --stock "$EMBEDDED_ATTEMPTS" --attempts "$EMBEDDED_ATTEMPTS")
    for r in $(seq 1 "$ROUNDS"); do
        load "local-embedded-$r" "${EMB[@]}"
        load "repl-embedded-$r" "${EMB[@]}" --replicate-to "$BROKER"
    done
fi

# --- the table ------------------------------------------------------------------------
field() {
    local j="${RESULT[$2]:-}"
    [ -n "$j" ] || j='{}'
    jq -r ".$1 // \"-\"" <<<"$j"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $SHARDS shards; $CONNECTIONS connections; session timeout $SESSION; raw outputs in $OUT"
echo
echo "| round | workload | local ops/s | replicated ops/s | ratio | local ok/s | replicated ok/s | ratio | local p99 µs | replicated p99 µs | ratio | standby lag (records) | verdicts |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for r in $(seq 1 "$ROUNDS"); do
    for w in flash mixed embedded; do
        l="local-$w-$r" p="repl-$w-$r"
        [ -n "${RESULT[$l]:-}${RESULT[$p]:-}" ] || continue
        echo "| $r | $w | $(field throughput "$l") | $(field throughput "$p") | $(ratio "$(field throughput "$p")" "$(field throughput "$l")") | $(field ok_per_s "$l") | $(field ok_per_s "$p") | $(ratio "$(field ok_per_s "$p")" "$(field ok_per_s "$l")") | $(field p99_us "$l") | $(field p99_us "$p") | $(ratio "$(field p99_us "$p")" "$(field p99_us "$l")") | ${LAG[$p]:-} | $(field verdict "$l") / $(field verdict "$p") |"
    done
done
echo
if phase catchup; then
    echo "seed for catch-up: $(field ok_per_s seed) ok/s, verdict $(field verdict seed)"
    echo "catch-up: $CATCHUP"
fi
if phase failover; then
    sorted=$(printf '%s\n' "${FAILOVER_MS[@]}" | grep -E '^[0-9]+$' | sort -n | tr '\n' ' ')
    echo "failover (kill -9 -> first 201 on the new leader), ms: ${FAILOVER_MS[*]}; sorted: $sorted"
    printf '%s\n' "${FAILOVER_MS[@]}" | grep -E '^[0-9]+$' | sort -n | awk '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "failover min %d ms, median %s ms, max %d ms (%d rounds)\n", a[1], m, a[NR], NR }'
fi
echo "compilers running at end: $(pgrep -c rustc || true)"
