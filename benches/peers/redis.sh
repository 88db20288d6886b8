#!/usr/bin/env bash
# Starts / stops the Redis peer of the comparison: Debian's redis-server on loopback,
# in a temp dir, with appendonly yes + appendfsync always (every write fsynced before
# it is answered, the durable setting comparable to stockd's fsync mode).
#
#   benches/peers/redis.sh start   # installs redis-server if missing; prints the URL
#   benches/peers/redis.sh stop    # shuts it down and removes the dir
#
# Env: REDIS_PORT (default 6390, away from a packaged instance on 6379),
#      PEER_DIR (default ${TMPDIR:-/tmp}/stockd-peer-redis). Every wait is bounded.
set -euo pipefail
PORT="${REDIS_PORT:-6390}"
DIR="${PEER_DIR:-${TMPDIR:-/tmp}/stockd-peer-redis}"

install() {
    command -v redis-server >/dev/null && return 0
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "redis.sh: installing redis-server" >&2
    export DEBIAN_FRONTEND=noninteractive
    timeout 300 $sudo apt-get install -y -q redis-server >/dev/null ||
        { timeout 300 $sudo apt-get update -q >/dev/null && timeout 300 $sudo apt-get install -y -q redis-server >/dev/null; }
    command -v redis-server >/dev/null
}

ping() { timeout 2 redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null | grep -q PONG; }

case "${1:-}" in
start)
    install
    if ping; then
        echo "redis.sh: something already answers on 127.0.0.1:$PORT" >&2
        exit 1
    fi
    rm -rf "$DIR" && mkdir -p "$DIR"
    redis-server --bind 127.0.0.1 --port "$PORT" --dir "$DIR" --daemonize yes \
        --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log" \
        --appendonly yes --appendfsync always --save '' --maxclients 1000
    for _ in $(seq 1 150); do
        ping && { echo "redis://127.0.0.1:$PORT"; exit 0; }
        sleep 0.2
    done
    echo "redis.sh: redis-server did not answer within 30 s; log:" >&2
    tail -20 "$DIR/redis.log" >&2 || true
    exit 1
    ;;
stop)
    if [ -f "$DIR/redis.pid" ]; then
        pid="$(cat "$DIR/redis.pid")"
        timeout 10 redis-cli -h 127.0.0.1 -p "$PORT" shutdown nosave >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    fi
    rm -rf "$DIR"
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
