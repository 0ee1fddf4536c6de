"""The Redis event log end to end, against the SQLite log end to end.

A kitaru server in a subprocess, first with its default SQLite store and log (the baseline),
then with a Redis event log (a Redis started for the run from ``scripts/services/``) and the
same SQLite store. Each time one raw reader opens the stream of a running execution, ``--events``
(50,000; 5,000 with ``--smoke``) progress events are posted in batches of 500 by one client,
the execution is finished, and the reader is timed until ``end`` (frames counted on the socket,
so client parsing does not cap the figure). This is ``quick_stream_throughput.py``'s "live"
figure. Also reported: the kitaru server's CPU seconds meanwhile, and with Redis's own added
(what the Redis log costs the machine in all). Checked: the reader received every event.

Target: the Redis log at ≥ 0.8x the SQLite log's end-to-end rate.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from _common import KitaruServer, Result, header, parser, proc_cpu_seconds, run_main, tempdir
from bench_storage import _service
from quick_stream_throughput import bodies, new_execution, post_all, read_stream

from kitaru import _wire

TARGET = 0.8


def live(
    server: KitaruServer, n: int, res: Result, label: str, redis_pid: int | None = None
) -> dict[str, Any]:
    """Events per second from the first post until the reader had ``end``.

    Also the CPU seconds of the kitaru server and of Redis (``redis_pid``) meanwhile.
    """
    with httpx.Client(base_url=server.url, timeout=120) as c:
        exec_id = new_execution(c)
        payloads = bodies(exec_id, n)
        got: dict[str, float] = {}
        reader = threading.Thread(target=read_stream, args=(server.port, exec_id, got))
        reader.start()
        time.sleep(0.3)  # let the stream reach its wait
        cpu0, t0 = proc_cpu_seconds(server.pid), time.perf_counter()
        redis0 = proc_cpu_seconds(redis_pid) if redis_pid else 0.0
        post_all(server.url, exec_id, payloads, 1)
        c.post(
            _wire.path_finish(exec_id),
            json={"status": "completed", "output": None, "error_type": None},
        ).raise_for_status()
        reader.join(300)
    if got.get("frames") != n:
        res.fail(f"{label}: the reader got {got.get('frames')} of {n} events")
    elapsed = got["end"] - t0
    return {
        "events_per_s": n / elapsed,
        "server_cpu_s": proc_cpu_seconds(server.pid) - cpu0,
        "redis_cpu_s": proc_cpu_seconds(redis_pid) - redis0 if redis_pid else 0.0,
    }


def main() -> int:
    """Run the benchmark; see the module docstring."""
    p = parser(__doc__)
    p.add_argument("--events", type=int, default=None)
    args = p.parse_args()
    n = args.events or (5_000 if args.smoke else 50_000)
    res = Result("redis", args.smoke, params={"events": n})
    header(f"Redis log vs SQLite log, end to end, {n:,} events", res)
    with tempdir() as home:
        server = KitaruServer(home / "sqlite.db")
        try:
            base = live(server, n, res, "sqlite")
        finally:
            server.stop()
        services = Path(tempfile.mkdtemp(prefix="kitaru-bench-services-"))
        services.chmod(0o755)
        try:
            url = _service("redis", services / "redis")
            redis_pid = int((services / "redis" / "redis.pid").read_text())
            server = KitaruServer(home / "store.db", extra=["--event-log", url])
            try:
                red = live(server, n, res, "redis", redis_pid)
            finally:
                server.stop()
        finally:
            _service("redis", services / "redis", stop=True)
            shutil.rmtree(services, ignore_errors=True)
    res.figures.update({"sqlite": base, "redis": red})
    ratio = red["events_per_s"] / base["events_per_s"]
    res.row(
        "live end to end, Redis log",
        red["events_per_s"],
        "ev/s",
        baseline=base["events_per_s"],
        baseline_name="SQLite log",
        target=f"≥ {TARGET:g}x SQLite",
        met=ratio >= TARGET,
    )
    res.row(
        "server CPU, Redis log",
        red["server_cpu_s"],
        "s",
        baseline=base["server_cpu_s"],
        baseline_name="SQLite log",
    )
    res.row(
        "server + Redis CPU, Redis log",
        red["server_cpu_s"] + red["redis_cpu_s"],
        "s",
        baseline=base["server_cpu_s"],
        baseline_name="SQLite log",
    )
    return res.finish()


if __name__ == "__main__":
    run_main(main)
