# Shared helpers of scripts/services/*.sh (sourced, not run).
# shellcheck shell=bash

svc_log() { printf '[%s] %s\n' "$SVC_NAME" "$*" >&2; }
svc_die() { printf '[%s] error: %s\n' "$SVC_NAME" "$*" >&2; exit 1; }

# A TCP port on 127.0.0.1 that nothing listens on right now.
svc_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# apt-get install PACKAGES as root (or with sudo), without starting the packaged services:
# the tests run their own servers on free ports.
svc_apt_install() {
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || svc_die "not root and no sudo: install Debian's $* yourself"
    sudo=(sudo)
  fi
  command -v apt-get >/dev/null 2>&1 || svc_die "apt-get not found: install $* yourself"
  local policy=/usr/sbin/policy-rc.d created=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    created=1
  fi
  svc_log "installing Debian packages: $*"
  local status=0
  if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; then
    "${sudo[@]}" apt-get update -qq >/dev/null || true
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null || status=$?
  fi
  if [ "$created" = 1 ]; then "${sudo[@]}" rm -f "$policy"; fi
  [ "$status" = 0 ] || svc_die "apt-get install $* failed"
}

# Parse --port N and --dir D (defaults: a free port; $KITARU_SERVICES_DIR/<name>).
svc_parse_args() {
  SVC_PORT=""
  SVC_INSTALL_ONLY=0
  SVC_DIR="${KITARU_SERVICES_DIR:-${TMPDIR:-/tmp}/kitaru-services}/$SVC_NAME"
  while [ $# -gt 0 ]; do
    case "$1" in
      --port) SVC_PORT="$2"; shift 2 ;;
      --dir) SVC_DIR="$2"; shift 2 ;;
      --install-only) SVC_INSTALL_ONLY=1; shift ;;
      -h|--help) sed -n '2,/^set -/p' "$0" | sed 's/^# \{0,1\}//;/^set -/d'; exit 0 ;;
      *) svc_die "unknown argument: $1" ;;
    esac
  done
}
