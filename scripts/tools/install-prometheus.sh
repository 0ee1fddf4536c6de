#!/usr/bin/env bash
# Installs Prometheus for kitaru's end-to-end tests from Debian's `prometheus` package,
# unless a `prometheus` binary is already on PATH.
#
# The tests start their own Prometheus (`prometheus --config.file=... --web.listen-address=
# 127.0.0.1:<free port> --storage.tsdb.path=<tmp>`), so the Debian service must not be left
# running: the package's maintainer scripts are told not to start it (policy-rc.d, exit
# 101), and if a prometheus service is running afterwards anyway, it is stopped.
#
# Needs root (or sudo) for apt-get. Usage: scripts/tools/install-prometheus.sh
set -euo pipefail

log() { printf '[install-prometheus] %s\n' "$*" >&2; }
die() { printf '[install-prometheus] error: %s\n' "$*" >&2; exit 1; }

if command -v prometheus >/dev/null 2>&1; then
  log "prometheus already installed: $(command -v prometheus) ($(prometheus --version 2>&1 | head -n 1))"
  exit 0
fi

SUDO=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "not root and no sudo: install Debian's 'prometheus' package yourself"
  SUDO=(sudo)
fi
command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install Prometheus 2.x yourself and put 'prometheus' on PATH"

# Keep the package's maintainer scripts from starting the service (the standard Debian
# mechanism; container images often ship such a policy-rc.d already).
POLICY=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\n# temporary: written by kitaru scripts/tools/install-prometheus.sh\nexit 101\n' \
    | "${SUDO[@]}" tee "$POLICY" >/dev/null
  "${SUDO[@]}" chmod 755 "$POLICY"
  created_policy=1
fi
cleanup() { if [ "$created_policy" = 1 ]; then "${SUDO[@]}" rm -f "$POLICY"; fi; }
trap cleanup EXIT

log "installing Debian's prometheus package (apt-get update + install)..."
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q >/dev/null
"${SUDO[@]}" apt-get install -y -q --no-install-recommends prometheus >/dev/null

# If a service manager started it anyway, stop it: it would hold 127.0.0.1:9090.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  "${SUDO[@]}" systemctl stop prometheus.service 2>/dev/null || true
  "${SUDO[@]}" systemctl disable prometheus.service 2>/dev/null || true
elif [ -x /etc/init.d/prometheus ]; then
  if "${SUDO[@]}" /etc/init.d/prometheus status >/dev/null 2>&1; then
    "${SUDO[@]}" /etc/init.d/prometheus stop || true
  fi
fi

command -v prometheus >/dev/null 2>&1 || die "the prometheus package installed no 'prometheus' on PATH"
log "installed $(command -v prometheus) ($(prometheus --version 2>&1 | head -n 1))"
