#!/usr/bin/env bash
# A/B of two stockd builds on the HTTP path, on a shared machine: both servers run side
# by side on loopback, and stockd-load drives them in alternation (A then B, flash then
# mixed, ROUNDS times), so both see the same background load. Per run it prints the
# figure (flash: successful reservations/s; mixed: ops/s), p99 µs, the verdict, and the
# server's CPU time per operation (utime + stime of the process, µs), context switches
# per operation (all its threads) and the involuntary ones among them (preempted, not
# blocked); then the median of the per-round B/A ratios and of the switches per op.
# CPU per operation moves far less with the background load than throughput does.
#
#   benches/ab-http.sh BIN_A BIN_B [ROUNDS=5] [DURABILITY=fsync]
#
# Env: LOAD (stockd-load binary; default target/release/stockd-load), PORT_A (18190),
# PORT_B (18191), CLIENTS (64). A and B may be the same binary with different
# environments: A_ENV / B_ENV (e.g. A_ENV="TOKIO_WORKER_THREADS=1").
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
A="$1"; B="$2"; ROUNDS="${3:-5}"; DUR="${4:-fsync}"
LOAD="${LOAD:-$ROOT/target/release/stockd-load}"
PA_PORT="${PORT_A:-18190}"; PB_PORT="${PORT_B:-18191}"; CLIENTS="${CLIENTS:-64}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/stockd-ab.XXXXXX")"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
start() { # bin port env dir
    mkdir -p "$WORK/$4"
    env ${3:-} "$1" serve --listen "127.0.0.1:$2" --data-dir "$WORK/$4" --durability "$DUR" >"$WORK/$4.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 150); do (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return 0; sleep 0.2; done
    echo "ab-http: $1 does not listen on $2" >&2; exit 1
}
start "$A" "$PA_PORT" "${A_ENV:-}" a; PA=${PIDS[0]}
start "$B" "$PB_PORT" "${B_ENV:-}" b; PB=${PIDS[1]}
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
csw() { cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ {s += $2} END {print s}'; }
ncsw() { cat /proc/"$1"/task/*/status | awk '/^nonvoluntary_ctxt_switches/ {s += $2} END {print s}'; }
TCK=$(getconf CLK_TCK)
field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p"; }
for i in $(seq 1 "$ROUNDS"); do
    for w in flash mixed; do
        if [ "$w" = flash ]; then W=(--workload flash --stock 10000 --attempts 20000); K=ok_per_s; N=20000
        else W=(--workload mixed --stock 100000 --skus 1000 --attempts 40000); K=throughput; N=40000; fi
        for side in A B; do
            if [ "$side" = A ]; then port=$PA_PORT; pid=$PA; else port=$PB_PORT; pid=$PB; fi
            c0=$(cpu "$pid"); s0=$(csw "$pid"); n0=$(ncsw "$pid")
            j=$("$LOAD" --target http --url "http://127.0.0.1:$port" --connections "$CLIENTS" "${W[@]}" | grep '^{' | tail -1) || j='{"verdict":"FAILED"}'
            c1=$(cpu "$pid"); s1=$(csw "$pid"); n1=$(ncsw "$pid")
            echo "$i $w $side $(field "$K" <<<"$j") $(field p99_us <<<"$j") $(field verdict <<<"$j") \
$(awk -v c=$((c1 - c0)) -v t="$TCK" -v n=$N 'BEGIN {printf "%.1f", c / t * 1e6 / n}') \
$(awk -v c=$((s1 - s0)) -v n=$N 'BEGIN {printf "%.2f", c / n}') \
$(awk -v c=$((n1 - n0)) -v n=$N 'BEGIN {printf "%.2f", c / n}')"
        done
    done
done | tee "$WORK/runs.txt"
echo "columns: round workload side figure p99_us verdict cpu_us_per_op csw_per_op involuntary_csw_per_op"
python3 - "$WORK/runs.txt" <<'PY'
import statistics as st, sys
rows = [l.split() for l in open(sys.argv[1]) if len(l.split()) == 9]
for w in ("flash", "mixed"):
    def col(side, c):
        return {r[0]: float(r[c]) for r in rows if r[1] == w and r[2] == side and r[c] not in ("", "FAILED")}
    a, b, ca, cb = col("A", 3), col("B", 3), col("A", 6), col("B", 6)
    sa, sb = col("A", 7), col("B", 7)
    thr = [b[k] / a[k] for k in a if k in b and a[k] > 0]
    cpu = [cb[k] / ca[k] for k in ca if k in cb and ca[k] > 0]
    if thr and cpu:
        print(f"{w}: B/A figure median {st.median(thr):.3f} [{' '.join(f'{x:.2f}' for x in thr)}]; "
              f"B/A cpu per op median {st.median(cpu):.3f} [{' '.join(f'{x:.2f}' for x in cpu)}]; "
              f"csw per op median A {st.median(sa.values()):.2f} B {st.median(sb.values()):.2f}")
PY
