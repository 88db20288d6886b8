#!/usr/bin/env bash
# Where a server's CPU goes: `stockd serve` and the reference handler `stockd-ceiling`
# side by side on loopback, one stockd-load run each (after a warm-up run) of flash and
# of mixed, and the CPU time (utime + stime from /proc/PID/task/*/stat) each thread
# group spent per operation.
#
#   benches/thread-cpu.sh [DURABILITY=fsync]
#
# Env: BIN (release binaries; default target/release), PORT_S (18290), PORT_C (18291).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${BIN:-$ROOT/target/release}"
DUR="${1:-fsync}"
PS="${PORT_S:-18290}"; PC="${PORT_C:-18291}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/stockd-threads.XXXXXX")"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
"$BIN/stockd" serve --listen "127.0.0.1:$PS" --data-dir "$WORK/data" --durability "$DUR" >"$WORK/stockd.log" 2>&1 &
PIDS+=($!)
"$BIN/stockd-ceiling" --listen "127.0.0.1:$PC" >"$WORK/ceiling.log" 2>&1 &
PIDS+=($!)
for port in "$PS" "$PC"; do
    for _ in $(seq 1 150); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.2; done
done
TCK=$(getconf CLK_TCK)
# Thread name → CPU ticks, summed over threads of one name.
ticks() {
    for t in /proc/"$1"/task/*; do echo "$(tr ' ' _ <"$t/comm") $(awk '{print $14 + $15}' "$t/stat")"; done |
        awk '{a[$1] += $2} END {for (k in a) print k, a[k]}' | sort
}
for w in flash mixed; do
    if [ "$w" = flash ]; then
        N=40000; ARGS=(--workload flash --connections 64 --stock 20000 --attempts "$N")
    else
        N=80000; ARGS=(--workload mixed --connections 64 --stock 100000 --skus 1000 --attempts "$N")
    fi
    for side in "stockd ${PIDS[0]} $PS" "ceiling ${PIDS[1]} $PC"; do
        read -r name pid port <<<"$side"
        "$BIN/stockd-load" --target http --url "http://127.0.0.1:$port" "${ARGS[@]}" >/dev/null 2>&1
        ticks "$pid" >"$WORK/before"
        "$BIN/stockd-load" --target http --url "http://127.0.0.1:$port" "${ARGS[@]}" >"$WORK/run.txt"
        ticks "$pid" >"$WORK/after"
        echo "== $name $w: $(grep -E '^(reserve|mixed)' "$WORK/run.txt" | head -1)"
        join "$WORK/before" "$WORK/after" | awk -v n="$N" -v t="$TCK" \
            '{d = ($3 - $2) / t * 1e6 / n; s += d; printf "   %-20s %6.1f µs CPU per op\n", $1, d}
             END {printf "   %-20s %6.1f µs CPU per op\n", "total", s}'
    done
done
