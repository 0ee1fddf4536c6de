"""What a dead or hung OTLP collector costs a flow, and how long the process takes to exit.

Each scenario runs in a fresh process (so provider setup and exit handlers are the real ones): a
flow of ``N`` empty checkpoints, each call timed, in local database mode, with OpenTelemetry set
up only through the standard ``OTEL_*`` variables, with all three signals on: spans, live events
as log records (``OTEL_LOGS_EXPORTER=otlp``) and kitaru's SDK metrics
(``OTEL_METRICS_EXPORTER=otlp``, exported every 0.5 s so the dead collector is hit during the
run, not only at exit). Scenarios:

* ``off``: no OpenTelemetry configuration (the baseline: the bridge is not even installed);
* ``healthy-http``: a local OTLP/HTTP receiver that answers 200 (the normal cost of tracing);
* ``closed-http`` / ``closed-grpc``: the endpoint is a closed port (connection refused);
* ``silent-http`` / ``silent-grpc``: the endpoint accepts connections and never answers.

Figures per scenario: the median and mean time of one checkpoint call and what it adds to
``off``; the time from the end of the last flow to the process having exited (kitaru's bounded
exporter shutdown at exit), for that long run and for a short script of 5 checkpoints that exits
before any batch was exported (so kitaru cannot know yet that the collector is down).

Targets: a dead or hung collector adds at most 1 ms per checkpoint (median) and the
process exits within 1.5 s of its last flow.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from _common import Result, child_env, free_port, header, parser, run_main, tempdir

TARGET_ADDED_MS = 1.0
TARGET_EXIT_S = 1.5

CHILD = r"""
import json, statistics, sys, time
from kitaru import checkpoint, flow

@checkpoint
def empty(i):
    return i

n, repeat = int(sys.argv[1]), int(sys.argv[2])
times = []

@flow
def many(n):
    clock = time.perf_counter_ns
    for i in range(n):
        t0 = clock()
        empty(i)
        times.append(clock() - t0)

many(min(n, 20))  # warm up: runtime, store, provider
times.clear()
for _ in range(repeat):
    many(n)
print(json.dumps({
    "median_ns": statistics.median(times),
    "mean_ns": statistics.fmean(times),
    "p99_ns": sorted(times)[int(0.99 * (len(times) - 1))],
    "flow_end": time.time(),
}), flush=True)
"""


class _Silent:
    """Accepts TCP connections and never answers (a hung collector)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = int(self.sock.getsockname()[1])
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


class _Healthy:
    """Answers every OTLP/HTTP export with 200."""

    def __init__(self) -> None:
        self.requests = 0
        self.paths: set[str] = set()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.requests += 1
                outer.paths.add(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _run(env_extra: dict[str, str], checkpoints: int, repeat: int) -> dict[str, float]:
    with tempdir() as home:
        env = child_env(KITARU_HOME=str(home), **env_extra)
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(checkpoints), str(repeat)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        exited = time.time()
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed: {proc.stderr[-2000:]}")
    data: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    data["exit_s"] = exited - data.pop("flow_end")
    return data


def main() -> int:
    args = parser(__doc__).parse_args()
    checkpoints, repeat = (100, 1) if args.smoke else (500, 3)
    res = Result(
        "otel_exporter_down", args.smoke, params={"checkpoints": checkpoints, "repeat": repeat}
    )
    header("a dead or hung OTLP collector: cost per checkpoint and exit time", res)
    silent, healthy, closed = _Silent(), _Healthy(), free_port()
    scenarios: dict[str, dict[str, str]] = {
        "off": {},
        "healthy-http": {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{healthy.port}"},
        "closed-http": {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{closed}"},
        "silent-http": {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{silent.port}"},
        "closed-grpc": {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{closed}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        },
        "silent-grpc": {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{silent.port}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        },
    }
    signals = {
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_METRIC_EXPORT_INTERVAL": "500",
    }
    for name, env in scenarios.items():
        if name != "off":
            env.update(signals)
    figures: dict[str, Any] = {}
    try:
        for name, env in scenarios.items():
            figures[name] = _run(env, checkpoints, repeat)
            figures[name]["exit_s_short_script"] = _run(env, 5, 1)["exit_s"]
    finally:
        silent.close()
        healthy.close()
    res.figures["scenarios"] = figures
    res.figures["healthy_receiver_requests"] = healthy.requests
    res.figures["healthy_receiver_paths"] = sorted(healthy.paths)
    if healthy.requests == 0:
        res.fail("the healthy receiver got no export: tracing was not set up from OTEL_*")
    missing = {"/v1/traces", "/v1/logs", "/v1/metrics"} - healthy.paths
    if missing:
        res.fail(f"the healthy receiver got nothing on {sorted(missing)}: a signal was off")
    base_ms = figures["off"]["median_ns"] / 1e6
    base_mean_ms = figures["off"]["mean_ns"] / 1e6
    for name, fig in figures.items():
        med_ms = fig["median_ns"] / 1e6
        added = med_ms - base_ms
        fig["added_median_ms"] = added
        fig["added_mean_ms"] = fig["mean_ns"] / 1e6 - base_mean_ms
        down = name.startswith(("closed", "silent"))
        res.row(
            f"checkpoint median, {name}",
            med_ms,
            "ms",
            baseline=base_ms,
            baseline_name="off",
            target=f"added ≤ {TARGET_ADDED_MS:g} ms" if down else None,
            met=(added <= TARGET_ADDED_MS) if down else None,
        )
        res.row(f"checkpoint mean, {name}", fig["mean_ns"] / 1e6, "ms")
        for key, label in (("exit_s", f"{checkpoints}x{repeat}"), ("exit_s_short_script", "5")):
            res.row(
                f"exit after last flow ({label} ckpts), {name}",
                fig[key],
                "s",
                baseline=figures["off"][key],
                baseline_name="off",
                target=f"≤ {TARGET_EXIT_S:g} s" if down else None,
                met=(fig[key] <= TARGET_EXIT_S) if down else None,
            )
    res.note(
        "per-checkpoint figures include the local SQLite record writes; the machine is shared, "
        "so compare within one run"
    )
    means = ", ".join(f"{k} {v['added_mean_ms']:+.3f}" for k, v in figures.items())
    print(f"  mean added per checkpoint (ms): {means}")
    return res.finish()


if __name__ == "__main__":
    run_main(main)
