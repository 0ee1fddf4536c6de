#!/usr/bin/env bash
# Stop the Redis server started by start-redis.sh with the same --dir (keeps its data).
# Idempotent: nothing running is not an error.
#
# Usage: scripts/services/stop-redis.sh [--dir FOLDER]
set -euo pipefail
SVC_NAME=redis
# shellcheck source=_common.sh
. "$(dirname "$0")/_common.sh"
svc_parse_args "$@"

pidfile="$SVC_DIR/redis.pid"
[ -f "$pidfile" ] || exit 0
pid="$(cat "$pidfile")"
if kill -0 "$pid" 2>/dev/null; then
  kill -TERM "$pid"  # Redis saves its append-only file and exits
  for _ in $(seq 1 200); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$pid" 2>/dev/null; then
    svc_log "redis-server $pid did not stop in 10 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
fi
rm -f "$pidfile"
