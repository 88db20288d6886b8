#!/usr/bin/env bash
# The OpenAPI check of CI (scripts/test.sh, step "openapi"): starts the real `stockd`
# binary on loopback with a fresh data dir, fetches /api/v1/openapi.json, validates
# it with openapi-spec-validator, then runs schemathesis against the running server:
# every operation, positive and negative inputs, bounded in examples and time, and
# fails on any 5xx, any answer that does not match the schema the document gives
# for its status (every error answer is the ErrorEnvelope), and any request that
# breaks the document's rules yet is accepted (negative_data_rejection). The server
# runs with an admin token, which schemathesis sends, so the admin routes' security
# holds as documented.
#
#   scripts/openapi-check.sh [STOCKD_BINARY]     # default: target/debug/stockd, built if missing
#
# Env: OPENAPI_MAX_EXAMPLES (25 per operation), OPENAPI_MAX_TIME (seconds of
# schemathesis, 100), OPENAPI_SEED (fixed by default: a run is reproducible), OUT (a
# dir to keep the document, the server log and schemathesis' report).
# The tools live in a venv under target/ (pinned versions, installed with pip from
# PyPI when missing).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
MAX_EXAMPLES="${OPENAPI_MAX_EXAMPLES:-25}"
MAX_TIME="${OPENAPI_MAX_TIME:-100}"
SEED="${OPENAPI_SEED:-16}"
VENV="${CARGO_TARGET_DIR:-$ROOT/target}/openapi-venv"
PINS=(openapi-spec-validator==0.9.0 schemathesis==4.32.5 hypothesis==6.170.27)
BIN="${1:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/stockd}"

if [ ! -x "$VENV/bin/st" ] || [ ! -x "$VENV/bin/openapi-spec-validator" ]; then
    echo "openapi-check: installing ${PINS[*]} into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PINS[@]}"
fi
if [ ! -x "$BIN" ]; then
    cargo build --locked -p stockd-server --bin stockd
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/stockd-openapi.XXXXXX")"
KEEP="${OUT:-}"
OUT="${OUT:-$WORK/out}"
mkdir -p "$OUT" "$WORK/data"
PID=""
PASSED=""
cleanup() {
    if [ -n "$PID" ]; then
        kill "$PID" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$PID" 2>/dev/null || true
    fi
    # The outputs stay for a failed run (or when OUT was given).
    if [ -n "$PASSED" ] && [ -z "$KEEP" ]; then rm -rf "$WORK"; else rm -rf "$WORK/data"; fi
}
trap cleanup EXIT

# Port 0: the server picks a free one and prints `listening on ADDR`.
TOKEN="openapi-check-token"
"$BIN" serve --listen 127.0.0.1:0 --data-dir "$WORK/data" --admin-token "$TOKEN" \
    >"$OUT/stdout.log" 2>"$OUT/server.log" &
PID=$!
ADDR=""
for _ in $(seq 1 150); do
    ADDR="$(sed -n 's/^listening on //p' "$OUT/stdout.log" | head -1)"
    [ -n "$ADDR" ] && break
    kill -0 "$PID" 2>/dev/null || { echo "openapi-check: stockd exited" >&2; cat "$OUT/server.log" >&2; exit 1; }
    sleep 0.2
done
[ -n "$ADDR" ] || { echo "openapi-check: stockd did not listen within 30 s" >&2; exit 1; }
BASE="http://$ADDR"
echo "openapi-check: stockd at $BASE (pid $PID), outputs in $OUT"

"$VENV/bin/python" - "$BASE/api/v1/openapi.json" "$OUT/openapi.json" <<'EOF'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=10) as r, open(sys.argv[2], "wb") as f:
    f.write(r.read())
EOF
"$VENV/bin/openapi-spec-validator" "$OUT/openapi.json"

# Bounded: at most MAX_EXAMPLES cases per operation and MAX_TIME seconds in all, and
# the whole step is killed (and fails) past twice that.
# From the work dir: schemathesis keeps its replay store in the current directory.
# One worker: with two threads, hypothesis' lambda descriptions call `ast` concurrently
# and CPython 3.11 (gh-106905) then raises "AST constructor recursion depth mismatch"
# inside the tool, a runtime error that failed a CI run with the server healthy.
status=0
(cd "$WORK" && timeout --kill-after=10 $((MAX_TIME * 2 + 30)) \
    "$VENV/bin/st" run "$OUT/openapi.json" --url "$BASE" -H "Authorization: Bearer $TOKEN" \
    --checks not_a_server_error,response_schema_conformance,content_type_conformance,negative_data_rejection \
    --max-examples "$MAX_EXAMPLES" --max-time "$MAX_TIME" --seed "$SEED" \
    --phases examples,coverage,fuzzing --workers 1 --request-timeout 10 \
    --generation-database none --no-color \
    --report junit --report-dir "$OUT") || status=$?
if [ "$status" -ne 0 ]; then
    echo "openapi-check: schemathesis failed (exit $status); server log: $OUT/server.log" >&2
    tail -20 "$OUT/server.log" >&2 || true
    exit "$status"
fi
# The server must have survived the run.
kill -0 "$PID" 2>/dev/null || { echo "openapi-check: stockd died during the run" >&2; exit 1; }
PASSED=1
echo "openapi-check: the document is valid and schemathesis found no 5xx, no schema mismatch and no invalid request accepted"
