#!/usr/bin/env bash
# Starts / stops the PostgreSQL peer of the comparison: Debian's PostgreSQL, a fresh
# cluster (initdb) in a temp dir, listening on loopback only, with the durable
# defaults (fsync = on, synchronous_commit = on: every commit is flushed before it is
# answered). Run as root, the server runs as the `postgres` user (runuser).
#
#   benches/peers/postgres.sh start   # installs postgresql if missing; prints the URL
#   benches/peers/postgres.sh stop    # stops it and removes the cluster
#
# Env: PG_PORT (default 5439, away from a packaged cluster on 5432),
#      PEER_DIR (default ${TMPDIR:-/tmp}/stockd-peer-postgres). Every wait is bounded.
set -euo pipefail
PORT="${PG_PORT:-5439}"
DIR="${PEER_DIR:-${TMPDIR:-/tmp}/stockd-peer-postgres}"
DB=stockd

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

install() {
    [ -n "$(bindir)" ] && [ -x "$(bindir)/initdb" ] && return 0
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "postgres.sh: installing postgresql" >&2
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 $sudo apt-get install -y -q postgresql >/dev/null ||
        { timeout 300 $sudo apt-get update -q >/dev/null && timeout 600 $sudo apt-get install -y -q postgresql >/dev/null; }
    [ -x "$(bindir)/initdb" ]
}

# Runs a command as the cluster's owner: `postgres` when we are root, else ourselves.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

case "${1:-}" in
start)
    install
    BIN="$(bindir)"
    if timeout 5 "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
        echo "postgres.sh: something already answers on 127.0.0.1:$PORT" >&2
        exit 1
    fi
    rm -rf "$DIR" && mkdir -p "$DIR"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$DIR"
    as_owner timeout 120 "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust -E UTF8 >"$DIR/initdb.log" 2>&1 ||
        { cat "$DIR/initdb.log" >&2; exit 1; }
    as_owner timeout 90 "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/postgres.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c max_connections=200 -c shared_buffers=256MB -c fsync=on -c synchronous_commit=on" \
        start >/dev/null || { tail -20 "$DIR/postgres.log" >&2; exit 1; }
    timeout 30 "$BIN/psql" -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -c "CREATE DATABASE $DB" >/dev/null
    echo "postgres://postgres@127.0.0.1:$PORT/$DB"
    ;;
stop)
    BIN="$(bindir)"
    if [ -n "$BIN" ] && [ -f "$DIR/data/postmaster.pid" ]; then
        as_owner timeout 60 "$BIN/pg_ctl" -D "$DIR/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
            { pid="$(head -1 "$DIR/data/postmaster.pid")"; kill -9 "$pid" 2>/dev/null || true; }
    fi
    rm -rf "$DIR"
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
