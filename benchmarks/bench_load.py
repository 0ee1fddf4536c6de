"""A realistic load, many executions at a human pace, many watchers.

``--executions`` (20) flow executions run at once in ``--producers`` (4) producer processes
(``_load_producer.py``), each publishing ``--rate`` (100) progress events per second for
``--seconds`` (20): 2,000 events/s in all. ``--per-execution`` (10) watchers follow each
execution (200 in all), as ``aevents()`` tasks spread over ``--watcher-procs`` (4) processes
(``_load_watch.py``, at a lower CPU priority, ``nice 10``, as in the fan-out benchmark: on a
2-core machine they would otherwise take the cores from the server they measure). Every
watcher is connected and has the execution's warm-up event before the first progress event.

Run on each backend of ``--backends``: ``raw`` (the baseline, below), ``sqlite`` (the server's
default SQLite store and log) and ``redis+postgres`` (a Redis event log and a PostgreSQL store,
both started for the run from ``scripts/services/``).

The ``raw`` phase is the same load on the bare stack, in the same run: the raw server
(``_raw_server.py``: bare ASGI on the same uvicorn, orjson + one SQLite transaction per request,
frames built once at ingest and appended to in-memory tails), raw producer processes
(``_raw_load_producer.py``: plain httpx posting the same events' JSON, batched as kitaru's
publisher batches) and raw readers (``_raw_load_watch.py``: httpx streaming, frames split and
their data decoded with ``orjson.loads``), in the same numbers of processes, the readers at the
same ``nice``. kitaru's p99, server CPU per 100,000 delivered events and watcher processes' CPU
are reported as ratios to it: what a missed target is bounded by on this machine.

Checked on every phase (a failure fails the run, also with ``--smoke``): every watcher received
every progress event of its execution exactly once, in order, and the stream's ``end`` with
status ``completed``; every producer handed every event on and dropped none (published = sent,
nothing unaccounted).

Reported: publish → watcher latency p50 and p99 (all watchers' events together); the server's
CPU seconds from the first progress event until every watcher had ``end``, per 100,000
delivered events (kitaru's also next to the fan-out (firehose) benchmark's last result, when
there is one); the watcher processes' CPU seconds per 100,000 delivered; the server's peak
resident memory; events per ingest request (from kitaru's ``/metrics``, the raw server's
``/stats``: how well producers share requests).

Targets: p99 ≤ 25 ms; nothing lost; server CPU ≤ 0.5 s per 100,000 delivered events.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from _common import (
    RESULTS,
    ROOT,
    KitaruServer,
    Process,
    RawServer,
    Result,
    child_env,
    header,
    machine,
    parser,
    proc_cpu_seconds,
    proc_memory_mb,
    read_line,
    run_main,
    tempdir,
)

TARGET_P99_MS = 25.0
TARGET_CPU_PER_100K = 0.5
NICE = 10
BUCKET_S = 0.0001
HERE = Path(__file__).resolve().parent
_INGEST_COUNT = re.compile(r"^kitaru_server_ingest_duration_seconds_count (\d+)$", re.MULTILINE)


def ingest_requests(url: str) -> int:
    """Accepted ingest requests so far, from the server's ``/metrics``."""
    found = _INGEST_COUNT.search(httpx.get(url + "/metrics", timeout=10).text)
    return int(found.group(1)) if found else 0


def _service(name: str, folder: Path) -> str:
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "services" / f"start-{name}.sh"), "--dir", str(folder)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"start-{name}.sh failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout.strip().splitlines()[-1]


def _stop_service(name: str, folder: Path) -> None:
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "services" / f"stop-{name}.sh"), "--dir", str(folder)],
        capture_output=True,
        timeout=60,
        check=False,
    )


def percentile(buckets: dict[int, int], q: float) -> float:
    """The ``q`` quantile (ms) of a histogram of 0.1 ms buckets."""
    total = sum(buckets.values())
    if not total:
        return float("nan")
    rank = q * total
    seen = 0
    for key in sorted(buckets):
        seen += buckets[key]
        if seen >= rank:
            return (key + 1) * BUCKET_S * 1000
    return max(buckets) * BUCKET_S * 1000


def raw_requests(url: str) -> int:
    """Ingest requests so far, from the raw server's ``/stats``."""
    return int(httpx.get(url + "/stats", timeout=10).json()["requests"])


@dataclass(frozen=True)
class Side:
    """The processes and counters of one side of the comparison: kitaru's, or the raw one."""

    producer: str
    watcher: str
    requests: Callable[[str], int]
    extra_sent: int
    """Events a producer sends per execution beyond its progress events (warm-up, lifecycle)."""


KITARU = Side("_load_producer.py", "_load_watch.py", ingest_requests, 3)
RAW = Side("_raw_load_producer.py", "_raw_load_watch.py", raw_requests, 1)


def run_load(
    url: str, server_pid: int, args: Any, res: Result, label: str, side: Side = KITARU
) -> dict[str, Any]:
    """One load run against the server at ``url``; its figures (failures go to ``res``)."""
    per_proc = [args.executions // args.producers] * args.producers
    for i in range(args.executions % args.producers):
        per_proc[i] += 1
    producers = [
        Process(
            [
                sys.executable,
                str(HERE / side.producer),
                "--url",
                url,
                "--executions",
                str(k),
                "--rate",
                str(args.rate),
                "--seconds",
                str(args.seconds),
            ],
            env=child_env(),
            stdin=True,
        )
        for k in per_proc
        if k
    ]
    watchers: list[Process] = []
    try:
        exec_ids: list[str] = []
        for proc in producers:
            exec_ids += json.loads(read_line(proc, 180.0))["exec_ids"]
        groups = [exec_ids[i :: args.watcher_procs] for i in range(args.watcher_procs)]
        for group in groups:
            if not group:
                continue
            argv = [sys.executable, str(HERE / side.watcher), "--url", url]
            argv += ["--per-execution", str(args.per_execution), "--nice", str(NICE), *group]
            watchers.append(Process(argv, env=child_env()))
        for proc in watchers:
            line = read_line(proc, 180.0)
            if line != "ready":
                raise RuntimeError(f"unexpected watcher output {line!r}")
        requests0 = side.requests(url)
        cpu0 = proc_cpu_seconds(server_pid)
        t0 = time.monotonic()
        for proc in producers:
            proc.send_line("go")
        reports = []
        for proc in producers:
            reports.append(json.loads(read_line(proc, args.seconds * 4 + 300)))
            proc.wait_output(60)
        t_produced = time.monotonic()
        seen: list[dict[str, Any]] = []
        latency: dict[int, int] = {}
        watcher_cpu = 0.0
        for proc in watchers:
            out, _ = proc.wait_output(args.seconds * 4 + 300)
            report = json.loads(out.strip().splitlines()[-1])
            seen += report["watchers"]
            watcher_cpu += report["cpu_s"]
            for key, count in report["latency_buckets"].items():
                latency[int(key)] = latency.get(int(key), 0) + count
        t_done = time.monotonic()
        cpu = proc_cpu_seconds(server_pid) - cpu0
        peak_rss = proc_memory_mb(server_pid)["hwm"]
        requests = side.requests(url) - requests0
    finally:
        for proc in (*producers, *watchers):
            if proc.proc.poll() is None:
                proc.kill()

    published: dict[str, int] = {}
    for report in reports:
        published.update(report["published"])
        pub = report["publisher"]
        expected_sent = sum(report["published"].values()) + side.extra_sent * len(
            report["published"]
        )
        if pub["dropped"] or pub["sent"] != expected_sent:
            res.fail(
                f"{label}: a producer sent {pub['sent']} events and dropped {pub['dropped']}; "
                f"expected {expected_sent} sent, none dropped"
            )
    per_exec: dict[str, int] = {}
    for w in seen:
        exec_id = w["exec_id"]
        per_exec[exec_id] = per_exec.get(exec_id, 0) + 1
        want = published.get(exec_id)
        if (
            want is None
            or w["progress"] != want
            or w["unique"] != want
            or w["repeated"]
            or w["out_of_order"]
            or w["final_status"] != "completed"
        ):
            res.fail(f"{label}: a watcher of {exec_id} saw {w}, expected {want} progress events")
    if set(per_exec) != set(published) or any(v != args.per_execution for v in per_exec.values()):
        res.fail(f"{label}: watchers per execution {per_exec}, expected {args.per_execution}")
    delivered = sum(w["progress"] for w in seen)
    total_published = sum(published.values())
    return {
        "executions": len(published),
        "watchers": len(seen),
        "published": total_published,
        "delivered": delivered,
        "publish_seconds": t_produced - t0,
        "until_all_ended_seconds": t_done - t0,
        "latency_p50_ms": percentile(latency, 0.50),
        "latency_p99_ms": percentile(latency, 0.99),
        "latency_max_ms": percentile(latency, 1.0),
        "server_cpu_s": cpu,
        "server_cpu_s_per_100k": cpu / delivered * 1e5 if delivered else float("nan"),
        "server_peak_rss_mb": peak_rss,
        "watcher_procs_cpu_s_per_100k": watcher_cpu / delivered * 1e5 if delivered else 0.0,
        "ingest_requests": requests,
        "events_per_ingest_request": total_published / requests if requests else float("nan"),
        "producer_late_max_s": max(r["late"] for r in reports),
    }


def firehose_cpu_per_100k() -> tuple[float, str] | None:
    """The fan-out benchmark's server CPU per 100,000 delivered events, from its last result."""
    for name in ("fanout.json", "fanout.smoke.json"):
        path = RESULTS / name
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        k = data["params"]["watchers"]
        n = data["params"]["events"]
        cpu = data["figures"].get(f"watchers_{k}", {}).get("server_cpu_total_s")
        if cpu:
            return cpu / (n * k) * 1e5, f"{name} ({data['when']})"
    return None


def main() -> int:
    """Run the benchmark; see the module docstring."""
    p = parser(__doc__)
    p.add_argument("--executions", type=int, default=None)
    p.add_argument("--producers", type=int, default=None)
    p.add_argument("--rate", type=float, default=None)
    p.add_argument("--seconds", type=float, default=None)
    p.add_argument("--per-execution", type=int, default=None)
    p.add_argument("--watcher-procs", type=int, default=None)
    p.add_argument("--backends", default=None, help="comma list of raw, sqlite, redis+postgres")
    args = p.parse_args()
    smoke = args.smoke
    args.executions = args.executions or (4 if smoke else 20)
    args.producers = args.producers or (2 if smoke else 4)
    args.rate = args.rate or (50.0 if smoke else 100.0)
    args.seconds = args.seconds or (3.0 if smoke else 20.0)
    args.per_execution = args.per_execution or (3 if smoke else 10)
    args.watcher_procs = args.watcher_procs or 2 if smoke else args.watcher_procs or 4
    default = "raw,sqlite" if smoke else "raw,sqlite,redis+postgres"
    backends = list(dict.fromkeys((args.backends or default).split(",")))
    params = {k: v for k, v in vars(args).items() if k != "smoke"}
    res = Result("load", smoke, params={**params, "backends": backends})
    header(
        f"realistic load: {args.executions} executions x {args.rate:g} ev/s, "
        f"{args.executions * args.per_execution} watchers",
        res,
    )
    firehose = firehose_cpu_per_100k()
    for backend in backends:
        res.figures[backend] = run_backend(backend, args, res)
        print(f"  ran {backend}: load {machine()['loadavg'][0]:.2f}", flush=True)
    raw = res.figures.get("raw")
    for backend in backends:
        figures = res.figures[backend]
        res.row(
            f"load {backend}: delivered events",
            float(figures["delivered"]),
            f"of {figures['published'] * args.per_execution}",
            target="all, once, in order",
            met=figures["delivered"] == figures["published"] * args.per_execution
            and not res.failures,
        )
        res.row(f"load {backend}: latency p50", figures["latency_p50_ms"], "ms")
        is_kitaru = backend != "raw" and raw is not None
        res.row(
            f"load {backend}: latency p99",
            figures["latency_p99_ms"],
            "ms",
            baseline=raw["latency_p99_ms"] if is_kitaru else None,
            baseline_name="raw live",
            target=f"≤ {TARGET_P99_MS:g} ms" if backend != "raw" else None,
            met=figures["latency_p99_ms"] <= TARGET_P99_MS if backend != "raw" else None,
        )
        res.row(
            f"load {backend}: server CPU per 100k delivered",
            figures["server_cpu_s_per_100k"],
            "s",
            baseline=raw["server_cpu_s_per_100k"] if is_kitaru else None,
            baseline_name="raw live",
            target=f"≤ {TARGET_CPU_PER_100K:g} s" if backend != "raw" else None,
            met=figures["server_cpu_s_per_100k"] <= TARGET_CPU_PER_100K
            if backend != "raw"
            else None,
        )
        if firehose and backend != "raw":
            res.row(
                f"load {backend}: server CPU per 100k, vs the firehose",
                figures["server_cpu_s_per_100k"],
                "s",
                baseline=firehose[0],
                baseline_name="firehose fan-out (other run)",
            )
        res.row(
            f"load {backend}: watcher processes' CPU per 100k delivered",
            figures["watcher_procs_cpu_s_per_100k"],
            "s",
            baseline=raw["watcher_procs_cpu_s_per_100k"] if is_kitaru else None,
            baseline_name="raw readers",
        )
        res.row(f"load {backend}: server peak RSS", figures["server_peak_rss_mb"], "MB")
        res.row(
            f"load {backend}: events per ingest request",
            figures["events_per_ingest_request"],
            f"({figures['ingest_requests']} requests)",
        )
    if firehose:
        res.note(f"firehose figure from {firehose[1]}")
    return res.finish()


def run_backend(backend: str, args: Any, res: Result) -> dict[str, Any]:
    """Start ``backend``'s server (and services), run the load against it, stop everything."""
    with tempdir() as home:
        services = Path(tempfile.mkdtemp(prefix="kitaru-bench-services-"))
        services.chmod(0o755)  # PostgreSQL runs as its own user and must reach its folder
        started: list[str] = []
        server: KitaruServer | RawServer | None = None
        try:
            if backend == "raw":
                server = RawServer("--db", str(home / "raw.db"))
                return run_load(server.url, server.pid, args, res, backend, RAW)
            if backend == "sqlite":
                server = KitaruServer(home / "server.db")
            elif backend == "redis+postgres":
                redis_url = _service("redis", services / "redis")
                started.append("redis")
                pg_url = _service("postgres", services / "postgres")
                started.append("postgres")
                server = KitaruServer(pg_url, extra=["--event-log", redis_url])  # type: ignore[arg-type]
            else:
                raise SystemExit(f"unknown backend {backend!r} (raw, sqlite, redis+postgres)")
            return run_load(server.url, server.pid, args, res, backend)
        finally:
            if server is not None:
                server.stop()
            for name in reversed(started):
                _stop_service(name, services / name)
            shutil.rmtree(services, ignore_errors=True)


if __name__ == "__main__":
    run_main(main)
