#!/usr/bin/env bash
# make demo: start a kitaru server, run a fan-out flow against it, watch its live lanes with
# `kitaru events`, then print the flow's trace tree and trace ID. Works without a terminal too
# (CI runs it with CI=true and no TTY: the watcher then prints plain lines).
#
# Optional: OTEL_EXPORTER_OTLP_ENDPOINT (export the trace, e.g. http://127.0.0.1:14318 for the
# Jaeger of collector-config/jaeger.yaml, or :4318 for the Collector of otelcol.yaml),
# KITARU_TRACE_URL_TEMPLATE (print a link, e.g. http://127.0.0.1:16686/trace/{trace_id}),
# DEMO_SPEED (scale the flow's pauses; 0.3 is faster).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
if [ ! -x "$PY" ]; then
  echo "demo: $PY not found; run 'make demo' (it installs the environment first)" >&2
  exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/kitaru-demo.XXXXXX")
server_pid=""
flow_pid=""

stop() {
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
  stop "$flow_pid"
  stop "$server_pid"
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "demo: interrupted" >&2; exit 130' INT TERM

# The demo gets its own database and home: it never touches ~/.kitaru or another server.
export KITARU_HOME="$work/home"
unset KITARU_SERVER_URL KITARU_API_TOKEN

echo "==> starting a kitaru server on a free 127.0.0.1 port"
"$PY" -m kitaru.cli server start --host 127.0.0.1 --port 0 --db "$work/server.db" \
  --log-level warning >"$work/server.log" 2>&1 &
server_pid=$!

url=""
for _ in $(seq 1 200); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "demo: the server exited:" >&2
    cat "$work/server.log" >&2
    exit 1
  fi
  url=$(grep -oE 'http://127\.0\.0\.1:[0-9]+' "$work/server.log" | head -n 1 || true)
  [ -n "$url" ] && break
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "demo: the server did not start in 20 s:" >&2
  cat "$work/server.log" >&2
  exit 1
fi
export KITARU_SERVER_URL="$url"
echo "    server at $KITARU_SERVER_URL"

echo "==> running examples/demo.py (plan -> read_source.map(4 sources) -> summarize)"
"$PY" examples/demo.py --exec-id-file "$work/exec_id" --speed "${DEMO_SPEED:-1}" \
  >"$work/flow.log" 2>&1 &
flow_pid=$!

for _ in $(seq 1 300); do
  [ -s "$work/exec_id" ] && break
  if ! kill -0 "$flow_pid" 2>/dev/null; then
    echo "demo: the flow exited before it started:" >&2
    cat "$work/flow.log" >&2
    exit 1
  fi
  sleep 0.05
done
exec_id=$(cat "$work/exec_id")

echo "==> kitaru events $exec_id"
watch_status=0
"$PY" -m kitaru.cli events "$exec_id" || watch_status=$?

flow_status=0
wait "$flow_pid" || flow_status=$?
flow_pid=""
echo
echo "==> the flow's output and its trace"
cat "$work/flow.log"

if [ "$watch_status" -ne 0 ] || [ "$flow_status" -ne 0 ]; then
  echo "demo: failed (watcher exit $watch_status, flow exit $flow_status)" >&2
  exit 1
fi
echo
echo "==> demo finished: the watcher saw the execution complete (exit 0)"
