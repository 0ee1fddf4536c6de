"""What a dead or hung OTLP collector costs a flow: added wall time per checkpoint, and exit time.

Each scenario runs in a fresh process (so exit handlers and provider setup are real): a flow of
``--checkpoints`` empty checkpoints, OpenTelemetry configured only through the standard
``OTEL_*`` variables, local database mode. Scenarios:

* ``off``: no OpenTelemetry configuration (the baseline);
* ``healthy-http``: a local OTLP/HTTP receiver that answers 200 (the normal cost of tracing);
* ``closed-http`` / ``closed-grpc``: the endpoint is a closed port (connection refused);
* ``silent-http`` / ``silent-grpc``: the endpoint accepts connections and never answers.

For each: the flow's wall time (median of ``--repeat`` runs in the same process), the added
time per checkpoint against ``off``, and the time from the end of the last flow to the process
having exited (the exit handlers: kitaru's bounded exporter shutdown), also for a short script
of 5 checkpoints that exits before any batch was exported.

Usage::

    .venv/bin/python benchmarks/bench_otel_exporter_down.py [--checkpoints 500] [--repeat 3]

Writes ``benchmarks/results/bench_otel_exporter_down.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

CHILD = r"""
import json, sys, time
from kitaru import checkpoint, flow

@checkpoint
def empty(i):
    return i

@flow
def many(n):
    for i in range(n):
        empty(i)
    return n

n, repeat = int(sys.argv[1]), int(sys.argv[2])
many(1)  # warm up: runtime, store, provider
times = []
for _ in range(repeat):
    t0 = time.perf_counter()
    many(n)
    times.append(time.perf_counter() - t0)
print(json.dumps({"flow_seconds": times, "flow_end": time.time()}), flush=True)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Silent:
    """Accepts TCP connections and never answers (a hung collector)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
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
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.requests += 1
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
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "KITARU_"))}
    with tempfile.TemporaryDirectory(prefix="kitaru-bench-") as home:
        env["KITARU_HOME"] = home
        env.update(env_extra)
        started = time.time()
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
    line = proc.stdout.strip().splitlines()[-1]
    data = json.loads(line)
    flow = statistics.median(data["flow_seconds"])
    return {
        "flow_seconds": flow,
        "per_checkpoint_ms": flow / checkpoints * 1000,
        "exit_seconds": exited - data["flow_end"],
        "process_seconds": exited - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    silent = _Silent()
    healthy = _Healthy()
    closed = _free_port()  # bound and released: nothing listens there
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
    results: dict[str, dict[str, float]] = {}
    try:
        for name, env in scenarios.items():
            results[name] = _run(env, args.checkpoints, args.repeat)
            # A short script: it exits before any batch was exported, so kitaru cannot know
            # yet that the collector is down and waits its full shutdown bound.
            results[name]["exit_seconds_short_script"] = _run(env, 5, 1)["exit_seconds"]
    finally:
        silent.close()
        healthy.close()
    base = results["off"]["per_checkpoint_ms"]
    print(f"{args.checkpoints} empty checkpoints per flow, median of {args.repeat} flows")
    print(
        f"{'scenario':<14} {'ms/checkpoint':>14} {'added ms/ckpt':>14} {'exit s':>8}"
        f" {'exit s (5 ckpts)':>17}"
    )
    for name, r in results.items():
        r["added_ms_per_checkpoint"] = r["per_checkpoint_ms"] - base
        print(
            f"{name:<14} {r['per_checkpoint_ms']:>14.3f} {r['added_ms_per_checkpoint']:>14.3f}"
            f" {r['exit_seconds']:>8.3f} {r['exit_seconds_short_script']:>17.3f}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "bench_otel_exporter_down.json"
    out.write_text(
        json.dumps(
            {
                "benchmark": "otel_exporter_down",
                "checkpoints": args.checkpoints,
                "repeat": args.repeat,
                "python": platform.python_version(),
                "machine": platform.machine(),
                "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "healthy_requests": healthy.requests,
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
