"""Sustained throughput from one producer through the server to one live watcher.

A kitaru server in a subprocess; a flow in this process publishes ``--events`` progress events
(200,000; 10,000 with ``--smoke``) from one checkpoint, as fast as the pipeline takes them
(see ``_producer.py``); one watcher (``KitaruClient().executions.events()``) follows the
execution live from another process. The figure: events per second from the first
``progress()`` call to the watcher receiving the last event. Every event must arrive exactly
once (checked; a loss fails the run, also with ``--smoke``).

Baseline: the raw ingest path, a minimal endpoint (``_raw_server.py``) that parses the same
batches (as many events per POST as the publisher puts in one when events are waiting, its
``_MAX_BATCH``; the same JSON) with orjson and inserts them into SQLite, fed as fast as one
client can. The two are measured in alternation, ``--pairs`` times (3; 1 with ``--smoke``):
raw ingest, then kitaru end to end, on the same two servers; the figure is the pair whose ratio
is the median, every pair is a row of its own (``_pairs.py``).

Measured once, before the pairs, to show where the time goes: kitaru's ingest endpoint alone,
fed the same prebuilt batches (no publisher, no watcher); and the raw live path: the same
batches posted to the raw server's live ingest (``POST /ingest/<stream>``: the raw insert, plus
SSE frames built once and appended to the stream's in-memory tail) with one raw reader of
``GET /live/<stream>`` in its own process (``_raw_load_watch.py``: raw chunks split into
frames, ``orjson.loads`` per frame), events per second from the first POST to the reader
receiving the last event: the bare stack doing kitaru's end-to-end work on the same cores.

CPU per event, in µs (rows): for the median pair's kitaru run, the server's (from releasing
the flow until the watcher's report), the producer process's (all its threads, from releasing
the flow to the flow's end, which flushes the publisher) and the watcher process's (from its
``ready`` to its report, so without its imports); for the raw live path, the raw server's
(first POST to the reader's report) and the raw reader process's (``ready`` to its report).
The client of the raw live path posts prebuilt bodies, so its CPU is not comparable to the
producer's and is not reported.

Targets: ≥ 50,000 events/s and ≥ 0.6 of the raw ingest path.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from _common import (
    KitaruServer,
    Process,
    RawServer,
    Result,
    batches,
    child_env,
    header,
    new_running_execution,
    parser,
    proc_cpu_seconds,
    read_line,
    run_main,
    tempdir,
    wire_events,
)
from _pairs import pair_rows
from _producer import ProducerRun, check_watchers, run_producer

from kitaru.events._publisher import _MAX_BATCH as PUBLISHER_BATCH
from kitaru.remote import HttpStore

HERE = Path(__file__).resolve().parent
TARGET_RATE = 50_000
TARGET_RATIO = 0.6


def post_all(url: str, path: str, bodies: list[bytes], events: int, batch: int) -> float:
    """POST every body (``batch`` events each, ``events`` in all) in turn; events per second,
    the first body (a warm-up of the connection) not counted."""
    first = min(batch, events)
    with httpx.Client(base_url=url, headers={"content-type": "application/json"}) as client:
        client.post(path, content=bodies[0])  # warm the connection (not counted)
        t0 = time.perf_counter()
        for body in bodies[1:]:
            resp = client.post(path, content=body)
            resp.raise_for_status()
        elapsed = time.perf_counter() - t0
    return (events - first) / elapsed


@dataclass
class RawLive:
    """One run of the raw live path: its rate and CPU seconds of the raw server and reader."""

    rate: float
    server_cpu_s: float
    reader_cpu_s: float


def raw_live(raw: RawServer, n: int, batch: int, fail: Callable[[str], None]) -> RawLive:
    """The raw live path: ``n`` events in the same batches to ``/ingest/<stream>``, one raw
    reader in its own process; events per second from the first POST to its last event."""
    stream = str(uuid.uuid4())
    warm = orjson.loads(wire_events(stream, 1)[0])
    warm["payload"]["data"] = {"warmup": True}
    headers = {"content-type": "application/json"}
    bodies = batches(wire_events(stream, n), batch)
    with httpx.Client(base_url=raw.url, headers=headers, timeout=60) as client:
        client.post(f"/ingest/{stream}", content=b"[" + orjson.dumps(warm) + b"]")
        reader = Process(
            [sys.executable, str(HERE / "_raw_load_watch.py"), "--url", raw.url, stream],
            env=child_env(),
        )
        if read_line(reader, 120.0) != "ready":
            raise RuntimeError("the raw reader did not get ready")
        cpu0 = proc_cpu_seconds(raw.pid)
        t0 = time.monotonic()
        for body in bodies:
            client.post(f"/ingest/{stream}", content=body).raise_for_status()
        client.post(f"/end/{stream}").raise_for_status()
    out, _ = reader.wait_output(600)
    server_cpu = proc_cpu_seconds(raw.pid) - cpu0
    report = json.loads(out.strip().splitlines()[-1])
    w = report["watchers"][0]
    if w["progress"] != n or w["unique"] != n or w["repeated"] or w["out_of_order"]:
        fail(f"raw live reader: {w}, expected {n} progress events once, in order")
    if w["final_status"] != "completed":
        fail(f"raw live reader: stream ended with status {w['final_status']!r}")
    rate = float(w["progress"] / (w["last"] - t0)) if w["last"] else 0.0
    return RawLive(rate, server_cpu, report["cpu_s"] - report["cpu_ready_s"])


def watcher_proc(url: str, exec_id: str) -> list[Process]:
    """One watcher process."""
    here = str(HERE / "_watch_proc.py")
    return [
        Process(
            [sys.executable, here, "--url", url, "--exec-id", exec_id, "--watchers", "1"],
            env=child_env(),
        )
    ]


def ingest_only(server: KitaruServer, n: int, batch: int) -> float:
    """Kitaru's ingest endpoint alone: ``n`` prebuilt events of a new execution, posted."""
    store = HttpStore(server.url)
    exec_id = new_running_execution(store, "bench_ingest")
    store.close()
    path = f"/api/v1/executions/{exec_id}/events"
    return post_all(server.url, path, batches(wire_events(exec_id, n), batch), n, batch)


def _kitaru_figures(run: ProducerRun) -> dict[str, Any]:
    """One kitaru run's figures for the result file."""
    return {
        "watcher_rate": run.watcher_rates()[0],
        "producer_rate": run.producer_rate,
        "producer_backpressure_seconds": run.backpressure_seconds,
        "publisher": run.publisher,
        "watcher": {k: v for k, v in run.watchers[0].items() if k != "latency"},
        "server": run.server,
        "producer_cpu_s": run.producer_cpu_s,
        "watcher_cpu_s": run.watcher_cpu_s,
    }


def main() -> int:
    """Run the benchmark; see the module docstring."""
    p = parser(__doc__)
    p.add_argument("--events", type=int, default=None)
    p.add_argument("--pairs", type=int, default=None, help="rounds (default 3; 1 with --smoke)")
    args = p.parse_args()
    n = args.events or (10_000 if args.smoke else 200_000)
    rounds = args.pairs or (1 if args.smoke else 3)
    batch = PUBLISHER_BATCH
    res = Result("throughput", args.smoke, params={"events": n, "batch": batch, "pairs": rounds})
    header(f"throughput: one producer -> server -> one live watcher, {rounds} pairs", res)

    pairs: list[tuple[float, ProducerRun]] = []
    with tempdir() as home:
        raw = RawServer("--db", str(home / "raw.db"))
        server = KitaruServer(home / "server.db")
        try:
            raw_bodies = batches(wire_events("raw-exec", n), batch)
            live = raw_live(raw, n, batch, res.fail)
            kitaru_ingest = ingest_only(server, n, batch)
            for i in range(rounds):
                raw_rate = post_all(raw.url, "/ingest", raw_bodies, n, batch)
                run = run_producer(
                    server.url,
                    n,
                    lambda exec_id: watcher_proc(server.url, exec_id),
                    server_pid=server.pid,
                )
                check_watchers(run, res.fail)
                pairs.append((raw_rate, run))
                print(
                    f"  pair {i + 1}: raw ingest {raw_rate:,.0f} ev/s, "
                    f"end to end {run.watcher_rates()[0]:,.0f} ev/s",
                    flush=True,
                )
        finally:
            server.stop()
            raw.stop()

    m = pair_rows(
        res,
        "producer -> server -> watcher",
        "ev/s",
        [(raw_rate, run.watcher_rates()[0]) for raw_rate, run in pairs],
        baseline_name="raw ingest",
        target=f"≥ {TARGET_RATE:,} ev/s and ≥ {TARGET_RATIO:g}x raw",
        at_least=TARGET_RATIO,
        min_value=TARGET_RATE,
    )
    raw_rate, run = pairs[m]
    e2e = run.watcher_rates()[0]
    res.figures.update(
        {
            "raw_ingest_rates": [r for r, _ in pairs],
            "raw_ingest_rate": raw_rate,
            "raw_live_rate": live.rate,
            "kitaru_ingest_only_rate": kitaru_ingest,
            "median_pair": m,
            "pairs": [_kitaru_figures(r) for _, r in pairs],
            **_kitaru_figures(run),
        }
    )
    res.row(
        "producer -> server -> watcher, vs the raw live path",
        e2e,
        "ev/s",
        baseline=live.rate,
        baseline_name="raw ingest + raw live reader",
    )
    res.row(
        "raw live path: ingest -> one raw reader",
        live.rate,
        "ev/s",
        baseline=raw_rate,
        baseline_name="raw ingest",
    )
    res.row(
        "producer (until all handed to the server)",
        run.producer_rate,
        "ev/s",
        baseline=raw_rate,
        baseline_name="raw ingest",
    )
    res.row(
        "kitaru ingest endpoint alone (prebuilt batches)",
        kitaru_ingest,
        "ev/s",
        baseline=raw_rate,
        baseline_name="raw ingest",
    )
    cpu_rows(res, run, live, n)
    return res.finish()


def cpu_rows(res: Result, run: ProducerRun, live: RawLive, n: int) -> None:
    """CPU µs per event of each process: kitaru's (median pair) and the raw live path's."""
    us = 1e6 / n
    server = (run.server["cpu_watchers_done"] - run.server["cpu_before"]) * us
    raw_server, raw_reader = live.server_cpu_s * us, live.reader_cpu_s * us
    watcher = sum(run.watcher_cpu_s) * us
    cpu = {
        "server_us_per_event": server,
        "producer_us_per_event": run.producer_cpu_s * us,
        "watcher_us_per_event": watcher,
        "raw_server_us_per_event": raw_server,
        "raw_reader_us_per_event": raw_reader,
    }
    res.figures["cpu"] = cpu
    res.row("CPU per event: server", server, "µs", baseline=raw_server, baseline_name="raw server")
    res.row("CPU per event: producer process", run.producer_cpu_s * us, "µs")
    res.row(
        "CPU per event: watcher process",
        watcher,
        "µs",
        baseline=raw_reader,
        baseline_name="raw reader",
    )
    res.row("CPU per event: raw live path, raw server", raw_server, "µs")
    res.row("CPU per event: raw live path, raw reader", raw_reader, "µs")


if __name__ == "__main__":
    run_main(main)
