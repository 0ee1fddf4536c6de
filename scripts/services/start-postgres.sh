#!/usr/bin/env bash
# Start a PostgreSQL server for kitaru's tests and local replicas: 127.0.0.1 only, on the
# given port or a free one, with its cluster, socket and log in one folder, and a database
# `kitaru` owned by the role `kitaru` (trust authentication: loopback only, for tests).
# Installs Debian's postgresql package first if initdb/pg_ctl are missing (needs root or
# sudo). PostgreSQL refuses to run as root, so as root the server runs as the `postgres`
# system user (created if missing) and the folder is given to it. Idempotent: if the
# folder's server is already running, it only prints its URL.
#
# Usage: scripts/services/start-postgres.sh [--port N] [--dir FOLDER] [--install-only]
#   default folder: ${KITARU_SERVICES_DIR:-${TMPDIR:-/tmp}/kitaru-services}/postgres
#   (as root, every parent folder must be searchable by other users, e.g. mode 755)
# Prints postgresql://kitaru@127.0.0.1:PORT/kitaru on stdout once the server takes queries.
# Stop it with scripts/services/stop-postgres.sh [--dir FOLDER].
set -euo pipefail
SVC_NAME=postgres
# shellcheck source=_common.sh
. "$(dirname "$0")/_common.sh"
svc_parse_args "$@"

find_bin() {
  local name="$1" found
  found="$(command -v "$name" 2>/dev/null || true)"
  if [ -z "$found" ]; then
    found="$(ls -1d /usr/lib/postgresql/*/bin/"$name" 2>/dev/null | sort -V | tail -n 1 || true)"
  fi
  printf '%s' "$found"
}
if [ -z "$(find_bin initdb)" ] || [ -z "$(find_bin pg_ctl)" ] || [ -z "$(find_bin postgres)" ]; then
  svc_apt_install postgresql
fi
INITDB="$(find_bin initdb)"; PG_CTL="$(find_bin pg_ctl)"
BINDIR="$(dirname "$(readlink -f "$PG_CTL")")"
PSQL="$(command -v psql 2>/dev/null || echo "$BINDIR/psql")"
[ -x "$INITDB" ] && [ -x "$PG_CTL" ] || svc_die "initdb/pg_ctl not found after installing postgresql"

[ "$SVC_INSTALL_ONLY" = 1 ] && exit 0  # --install-only: just make sure it is installed

as_owner=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
  as_owner=(runuser -u postgres --)
fi

mkdir -p "$SVC_DIR"
SVC_DIR="$(cd "$SVC_DIR" && pwd)"
DATA="$SVC_DIR/data"
if [ "$(id -u)" = 0 ]; then chown postgres "$SVC_DIR"; chmod 700 "$SVC_DIR"; fi

ready() {  # ready PORT: the server answers a query as role kitaru on database kitaru
  "$PSQL" -X -q -h 127.0.0.1 -p "$1" -U kitaru -d kitaru -c 'select 1' >/dev/null 2>&1
}

if [ -f "$SVC_DIR/port" ] && [ -f "$DATA/postmaster.pid" ]; then
  port="$(cat "$SVC_DIR/port")"
  if ready "$port"; then
    echo "postgresql://kitaru@127.0.0.1:$port/kitaru"
    exit 0
  fi
fi

if [ ! -f "$DATA/PG_VERSION" ]; then
  "${as_owner[@]}" "$INITDB" -D "$DATA" -U kitaru --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
    >"$SVC_DIR/initdb.log" 2>&1 || { cat "$SVC_DIR/initdb.log" >&2; svc_die "initdb failed"; }
fi

port="${SVC_PORT:-$( [ -f "$SVC_DIR/port" ] && cat "$SVC_DIR/port" || true)}"
[ -n "$port" ] && [ "$port" != 0 ] || port="$(svc_free_port)"
echo "$port" > "$SVC_DIR/port"
# synchronous_commit=off: a crash may lose the last few hundred milliseconds of commits but
# never corrupts anything; the tests and benchmarks do not need more on a shared disk.
opts="-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$SVC_DIR"
opts="$opts -c max_connections=300 -c synchronous_commit=off -c shared_buffers=64MB"
"${as_owner[@]}" "$PG_CTL" -D "$DATA" -l "$SVC_DIR/postgres.log" -o "$opts" -w -t 60 start \
  >/dev/null || { tail -n 20 "$SVC_DIR/postgres.log" >&2; svc_die "pg_ctl start failed"; }

for _ in $(seq 1 200); do
  if "$PSQL" -X -q -h 127.0.0.1 -p "$port" -U kitaru -d postgres -c 'select 1' >/dev/null 2>&1; then
    "$PSQL" -X -q -h 127.0.0.1 -p "$port" -U kitaru -d postgres -tAc \
      "select 1 from pg_database where datname='kitaru'" | grep -q 1 \
      || "$PSQL" -X -q -h 127.0.0.1 -p "$port" -U kitaru -d postgres -c 'create database kitaru' >/dev/null
    if ready "$port"; then
      echo "postgresql://kitaru@127.0.0.1:$port/kitaru"
      exit 0
    fi
  fi
  sleep 0.05
done
tail -n 20 "$SVC_DIR/postgres.log" >&2 || true
svc_die "PostgreSQL did not answer on 127.0.0.1:$port"
