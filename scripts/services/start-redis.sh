#!/usr/bin/env bash
# Start a Redis server for kitaru's tests and local replicas: 127.0.0.1 only, on the given
# port or a free one, with its data (append-only file), log and pid file in one folder.
# Installs Debian's redis-server package first if `redis-server` is missing (needs root or
# sudo). Idempotent: if the folder's server is already running, it only prints its URL.
#
# Usage: scripts/services/start-redis.sh [--port N] [--dir FOLDER] [--install-only]
#   default folder: ${KITARU_SERVICES_DIR:-${TMPDIR:-/tmp}/kitaru-services}/redis
# Prints the server's URL (redis://127.0.0.1:PORT/0) on stdout once it answers PING.
# Stop it with scripts/services/stop-redis.sh [--dir FOLDER].
set -euo pipefail
SVC_NAME=redis
# shellcheck source=_common.sh
. "$(dirname "$0")/_common.sh"
svc_parse_args "$@"

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  svc_apt_install redis-server redis-tools
fi

[ "$SVC_INSTALL_ONLY" = 1 ] && exit 0  # --install-only: just make sure it is installed

mkdir -p "$SVC_DIR"
SVC_DIR="$(cd "$SVC_DIR" && pwd)"
if [ -f "$SVC_DIR/port" ] && [ -f "$SVC_DIR/redis.pid" ] \
  && kill -0 "$(cat "$SVC_DIR/redis.pid")" 2>/dev/null; then
  port="$(cat "$SVC_DIR/port")"
  if [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ]; then
    echo "redis://127.0.0.1:$port/0"
    exit 0
  fi
fi

# Reuse the folder's port on a restart (clients keep their URL), unless told otherwise.
port="${SVC_PORT:-$( [ -f "$SVC_DIR/port" ] && cat "$SVC_DIR/port" || true)}"
[ -n "$port" ] && [ "$port" != 0 ] || port="$(svc_free_port)"
echo "$port" > "$SVC_DIR/port"
# Append-only file with fsync every second: a restarted Redis keeps the event logs (cursors
# stay valid). No RDB snapshots: the AOF is enough and snapshots would fork a copy.
redis-server --bind 127.0.0.1 --port "$port" --protected-mode yes \
  --daemonize yes --dir "$SVC_DIR" --pidfile "$SVC_DIR/redis.pid" --logfile "$SVC_DIR/redis.log" \
  --appendonly yes --appendfsync everysec --save "" >/dev/null

for _ in $(seq 1 200); do
  if [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ]; then
    echo "redis://127.0.0.1:$port/0"
    exit 0
  fi
  sleep 0.05
done
tail -n 20 "$SVC_DIR/redis.log" >&2 || true
svc_die "redis-server did not answer on 127.0.0.1:$port"
