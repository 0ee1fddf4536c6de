#!/usr/bin/env bash
# Stop the PostgreSQL server started by start-postgres.sh with the same --dir (keeps its
# data). Idempotent: nothing running is not an error.
#
# Usage: scripts/services/stop-postgres.sh [--dir FOLDER]
set -euo pipefail
SVC_NAME=postgres
# shellcheck source=_common.sh
. "$(dirname "$0")/_common.sh"
svc_parse_args "$@"

DATA="$SVC_DIR/data"
[ -f "$DATA/postmaster.pid" ] || exit 0
PG_CTL="$(command -v pg_ctl 2>/dev/null || ls -1d /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort -V | tail -n 1)"
as_owner=()
if [ "$(id -u)" = 0 ]; then as_owner=(runuser -u postgres --); fi
# Fast mode: disconnect clients, write a checkpoint, exit.
"${as_owner[@]}" "$PG_CTL" -D "$DATA" -m fast -w -t 20 stop >/dev/null 2>&1 \
  || "${as_owner[@]}" "$PG_CTL" -D "$DATA" -m immediate -w -t 10 stop >/dev/null 2>&1 || true
