#!/usr/bin/env bash
# Builds the observability tools that kitaru's OpenTelemetry end-to-end tests run,
# into .tools/bin/ (git-ignored):
#
#   .tools/bin/jaeger    Jaeger v2 all-in-one (`cmd/jaeger` of github.com/jaegertracing/jaeger
#                        v1.75.0), pinned by scripts/tools/jaeger/go.mod + go.sum
#   .tools/bin/otelcol   an OpenTelemetry Collector built by the OpenTelemetry Collector
#                        Builder from collector-config/builder.yaml
#   .tools/bin/victoria-logs  VictoriaLogs (`app/victoria-logs` of
#                        github.com/VictoriaMetrics/VictoriaLogs v1.52.2, Apache-2.0), a log
#                        store with its web UI built in; pinned by scripts/tools/victorialogs/
#   prometheus           Debian's package, through scripts/tools/install-prometheus.sh
#
# Usage: scripts/tools/build-tools.sh [--force] [jaeger] [otelcol] [victorialogs] [prometheus]
#   no tool named: all four.  --force: rebuild even when the cache has a binary.
#
# Built binaries are cached outside the checkout, keyed by a hash of everything that
# goes into them (go.mod/go.sum or builder.yaml, versions, Go version, platform):
#   ${KITARU_TOOLS_CACHE:-$HOME/.cache/kitaru-tools}/<tool>-<hash>/
# and hard-linked (or copied) into .tools/bin/. The first run compiles for 15-30 minutes
# on a 2-core machine (Jaeger ~7.5 min idle, the collector ~5-9 min, plus 2-3 min of
# module downloads on a new machine); later runs on the same machine - also from a
# fresh clone, as CI does - take well under a second.
set -euo pipefail

JAEGER_VERSION="v1.75.0"
JAEGER_PKG="github.com/jaegertracing/jaeger/cmd/jaeger"
VLOGS_VERSION="v1.52.2"
VLOGS_PKG="github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs"
# The builder release; keep it equal to the component versions in collector-config/builder.yaml.
OCB_VERSION="v0.155.0"
OCB_MODULE="go.opentelemetry.io/collector/cmd/builder"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN_DIR="$ROOT/.tools/bin"
CACHE_DIR="${KITARU_TOOLS_CACHE:-${HOME:-/root}/.cache/kitaru-tools}"

log() { printf '[build-tools] %s\n' "$*" >&2; }
die() { printf '[build-tools] error: %s\n' "$*" >&2; exit 1; }

force=0
tools=()
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    jaeger|otelcol|victorialogs|prometheus) tools+=("$arg") ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument: $arg (expected --force, jaeger, otelcol, victorialogs or prometheus)" ;;
  esac
done
[ "${#tools[@]}" -gt 0 ] || tools=(jaeger otelcol victorialogs prometheus)

wants() { local t; for t in "${tools[@]}"; do [ "$t" = "$1" ] && return 0; done; return 1; }

needs_go() {
  command -v go >/dev/null 2>&1 || die "'go' is not on PATH (Go 1.26 or newer is needed to build $1)"
}

# Never let `go` try to fetch another toolchain: only the installed one is used.
export GOTOOLCHAIN=local

# sha256 of the given files' contents (without comment and blank lines, so editing a
# comment does not cost a rebuild) plus an extra string; first 20 hex digits.
input_hash() {
  local extra="$1"; shift
  { printf '%s\n' "$extra"; cat "$@" | grep -Ev '^[[:space:]]*(#|//|$)'; } | sha256sum | cut -c1-20
}

# Hard-link (same file system) or copy a cached binary into .tools/bin/.
install_bin() {
  local src="$1" name="$2"
  mkdir -p "$BIN_DIR"
  rm -f "$BIN_DIR/$name"
  ln "$src" "$BIN_DIR/$name" 2>/dev/null || cp "$src" "$BIN_DIR/$name"
  chmod +x "$BIN_DIR/$name"
}

# A per-cache lock, so two runs (e.g. a developer and CI) do not build the same thing twice.
mkdir -p "$CACHE_DIR"
exec 9>"$CACHE_DIR/.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
fi

platform_key() { printf '%s %s/%s' "$(go env GOVERSION)" "$(go env GOOS)" "$(go env GOARCH)"; }

build_jaeger() {
  needs_go jaeger
  local mod_dir="$ROOT/scripts/tools/jaeger"
  [ -f "$mod_dir/go.mod" ] && [ -f "$mod_dir/go.sum" ] || die "missing $mod_dir/go.mod or go.sum"
  local key; key="$(input_hash "jaeger $JAEGER_VERSION $JAEGER_PKG $(platform_key)" "$mod_dir/go.mod" "$mod_dir/go.sum")"
  local out="$CACHE_DIR/jaeger-$key"
  if [ "$force" = 0 ] && [ -x "$out/jaeger" ]; then
    log "jaeger $JAEGER_VERSION: cached ($out)"
  else
    log "building jaeger $JAEGER_VERSION (first run takes a few minutes)..."
    local start=$SECONDS tmp="$out.tmp.$$"
    rm -rf "$tmp" && mkdir -p "$tmp"
    (
      cd "$mod_dir"
      # -mod=readonly: the committed go.mod/go.sum are the whole truth; a build that
      # needs a change to them fails instead of editing them.
      go build -mod=readonly -trimpath \
        -ldflags "-s -w -X github.com/jaegertracing/jaeger/internal/version.latestVersion=$JAEGER_VERSION" \
        -o "$tmp/jaeger" "$JAEGER_PKG"
    ) || { rm -rf "$tmp"; die "jaeger build failed"; }
    rm -rf "$out" && mv "$tmp" "$out"
    log "jaeger $JAEGER_VERSION built in $((SECONDS - start))s"
  fi
  install_bin "$out/jaeger" jaeger
}

build_otelcol() {
  needs_go otelcol
  local manifest="$ROOT/collector-config/builder.yaml"
  [ -f "$manifest" ] || die "missing $manifest"
  local key; key="$(input_hash "otelcol ocb $OCB_VERSION $(platform_key)" "$manifest")"
  local out="$CACHE_DIR/otelcol-$key"
  if [ "$force" = 0 ] && [ -x "$out/otelcol" ]; then
    log "otelcol (builder $OCB_VERSION): cached ($out)"
  else
    # The builder itself, cached per version.
    local ocb_dir="$CACHE_DIR/ocb-$OCB_VERSION-$(go env GOOS)-$(go env GOARCH)"
    if [ ! -x "$ocb_dir/builder" ]; then
      log "installing the OpenTelemetry Collector Builder $OCB_VERSION..."
      GOBIN="$ocb_dir" go install "$OCB_MODULE@$OCB_VERSION" || die "installing the builder failed"
    fi
    log "building otelcol from collector-config/builder.yaml with builder $OCB_VERSION (first run takes a few minutes)..."
    local start=$SECONDS tmp="$out.tmp.$$"
    rm -rf "$tmp" && mkdir -p "$tmp"
    cp "$manifest" "$tmp/builder.yaml"
    # The manifest's output_path (./_build) is relative to where the builder runs: the
    # cache, never the checkout. GOFLAGS -e: the builder's `go mod tidy` also resolves
    # the test-only imports of every component, and some of those module versions
    # (e.g. contrib's pkg/golden) are not served by the module proxy here; -e lets
    # tidy go on, and the real build below still fails on anything the binary needs.
    (
      cd "$tmp"
      GOFLAGS="$(go env GOFLAGS) -e" "$ocb_dir/builder" --config=builder.yaml
    ) >"$tmp/builder.log" 2>&1 || {
      tail -n 40 "$tmp/builder.log" >&2
      die "otelcol build failed (full log: $tmp/builder.log)"
    }
    mkdir -p "$tmp/bin" && mv "$tmp/_build/otelcol" "$tmp/bin/otelcol"
    rm -rf "$tmp/_build"
    rm -rf "$out" && mkdir -p "$out"
    mv "$tmp/bin/otelcol" "$tmp/builder.yaml" "$tmp/builder.log" "$out/"
    rm -rf "$tmp"
    log "otelcol built in $((SECONDS - start))s"
  fi
  install_bin "$out/otelcol" otelcol
}

build_victorialogs() {
  needs_go victoria-logs
  local mod_dir="$ROOT/scripts/tools/victorialogs"
  [ -f "$mod_dir/go.mod" ] && [ -f "$mod_dir/go.sum" ] || die "missing $mod_dir/go.mod or go.sum"
  local key; key="$(input_hash "victorialogs $VLOGS_VERSION $VLOGS_PKG $(platform_key)" "$mod_dir/go.mod" "$mod_dir/go.sum")"
  local out="$CACHE_DIR/victorialogs-$key"
  if [ "$force" = 0 ] && [ -x "$out/victoria-logs" ]; then
    log "victoria-logs $VLOGS_VERSION: cached ($out)"
  else
    log "building victoria-logs $VLOGS_VERSION (first run takes a few minutes)..."
    local start=$SECONDS tmp="$out.tmp.$$"
    rm -rf "$tmp" && mkdir -p "$tmp"
    (
      cd "$mod_dir"
      # The web UI's files are embedded by the program itself (app/vlselect/vmui).
      go build -mod=readonly -trimpath -ldflags "-s -w" -o "$tmp/victoria-logs" "$VLOGS_PKG"
    ) || { rm -rf "$tmp"; die "victoria-logs build failed"; }
    rm -rf "$out" && mv "$tmp" "$out"
    log "victoria-logs $VLOGS_VERSION built in $((SECONDS - start))s"
  fi
  install_bin "$out/victoria-logs" victoria-logs
}

total_start=$SECONDS
if wants jaeger; then build_jaeger; fi
if wants otelcol; then build_otelcol; fi
if wants victorialogs; then build_victorialogs; fi
if wants prometheus; then "$ROOT/scripts/tools/install-prometheus.sh"; fi
log "done in $((SECONDS - total_start))s; binaries in ${BIN_DIR#"$ROOT"/}/"
