#!/usr/bin/env bash
# Installs the Debian packages the test suite needs that are not Go-built:
#   chromium        browser tests of the web view (driven by Playwright, never its own browser)
#   redis-server    the Redis Streams event log tests
#   postgresql      the PostgreSQL store tests
#   openssl         a throwaway certificate for the live-event connection's TLS test
# Prometheus comes from scripts/tools/install-prometheus.sh. Only missing packages are
# installed, so a second run takes a moment. Services are not left running: tests start their
# own on 127.0.0.1.
set -euo pipefail

log() { printf '[install-system-deps] %s\n' "$*" >&2; }

here="$(cd "$(dirname "$0")" && pwd)"
# Redis and PostgreSQL: the service scripts know what each needs.
bash "$here/services/start-redis.sh" --install-only
bash "$here/services/start-postgres.sh" --install-only

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if [ "${#need[@]}" -eq 0 ]; then
  log "all present (chromium, openssl, redis-server, postgresql)"
  exit 0
fi

SUDO=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { log "not root and no sudo: install ${need[*]} yourself"; exit 1; }
  SUDO=(sudo)
fi

# Keep maintainer scripts from starting services (the tests start their own).
POLICY=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
  "${SUDO[@]}" chmod 755 "$POLICY"
  created_policy=1
fi
cleanup() { if [ "$created_policy" = 1 ]; then "${SUDO[@]}" rm -f "$POLICY"; fi; }
trap cleanup EXIT

log "installing ${need[*]} (apt-get update first)"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
log "done"
