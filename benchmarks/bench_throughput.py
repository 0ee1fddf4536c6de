"""Sustained throughput from one producer through the server to one live watcher.

A kitaru server in a subprocess; a flow in this process publishes ``--events`` progress events
(200,000; 10,000 with ``--smoke``) from one checkpoint, as fast as the pipeline takes them
(see ``_producer.py``); one watcher (``KitaruClient().executions.events()``) follows the
execution live from another process. The figure: events per second from the first
``progress()`` call to the watcher receiving the last event. Every event must arrive exactly
once (checked; a loss fails the run, also with ``--smoke``).

Baseline, same run: the raw ingest path, a minimal endpoint (``_raw_server.py``) that parses
the same batches (500 events per POST, the same JSON) with orjson and inserts them into SQLite,
fed as fast as one client can. It is measured before and after the kitaru run and averaged.
Also reported: kitaru's ingest endpoint alone, fed the same prebuilt batches (no publisher, no
watcher), to show where the time goes; and the raw live path: the same batches posted to the raw
server's live ingest (``POST /ingest/<stream>``: the raw insert, plus SSE frames built once and
appended to the stream's in-memory tail) with one raw reader of ``GET /live/<stream>`` in its
own process (``_raw_load_watch.py``: raw chunks split into frames, ``orjson.loads`` per frame),
events per second from the first POST to the reader receiving the last event: the bare stack
doing kitaru's end-to-end work on the same cores (measured before and after the kitaru run,
averaged, like the raw ingest).

Targets: ≥ 50,000 events/s and ≥ 0.6 of the raw ingest path.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

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
    parser,
    read_line,
    run_main,
    tempdir,
    wire_events,
)
from _producer import check_watchers, run_producer

HERE = Path(__file__).resolve().parent
TARGET_RATE = 50_000
TARGET_RATIO = 0.6


def post_all(url: str, path: str, bodies: list[bytes]) -> float:
    """POST every body in turn; events per second (500 per body, the last maybe fewer)."""
    with httpx.Client(base_url=url, headers={"content-type": "application/json"}) as client:
        client.post(path, content=bodies[0])  # warm the connection (not counted)
        t0 = time.perf_counter()
        for body in bodies[1:]:
            resp = client.post(path, content=body)
            resp.raise_for_status()
        elapsed = time.perf_counter() - t0
    return (len(bodies) - 1) * 500 / elapsed


def raw_live(url: str, n: int, fail: Callable[[str], None]) -> float:
    """The raw live path: ``n`` events in the same batches to ``/ingest/<stream>``, one raw
    reader in its own process; events per second from the first POST to its last event."""
    stream = str(uuid.uuid4())
    warm = orjson.loads(wire_events(stream, 1)[0])
    warm["payload"]["data"] = {"warmup": True}
    headers = {"content-type": "application/json"}
    bodies = batches(wire_events(stream, n))
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        client.post(f"/ingest/{stream}", content=b"[" + orjson.dumps(warm) + b"]")
        reader = Process(
            [sys.executable, str(HERE / "_raw_load_watch.py"), "--url", url, stream],
            env=child_env(),
        )
        if read_line(reader, 120.0) != "ready":
            raise RuntimeError("the raw reader did not get ready")
        t0 = time.monotonic()
        for body in bodies:
            client.post(f"/ingest/{stream}", content=body).raise_for_status()
        client.post(f"/end/{stream}").raise_for_status()
    out, _ = reader.wait_output(600)
    w = json.loads(out.strip().splitlines()[-1])["watchers"][0]
    if w["progress"] != n or w["unique"] != n or w["repeated"] or w["out_of_order"]:
        fail(f"raw live reader: {w}, expected {n} progress events once, in order")
    if w["final_status"] != "completed":
        fail(f"raw live reader: stream ended with status {w['final_status']!r}")
    return float(w["progress"] / (w["last"] - t0)) if w["last"] else 0.0


def watcher_proc(url: str, exec_id: str) -> list[Process]:
    """One watcher process."""
    here = str(HERE / "_watch_proc.py")
    return [
        Process(
            [sys.executable, here, "--url", url, "--exec-id", exec_id, "--watchers", "1"],
            env=child_env(),
        )
    ]


def main() -> int:
    """Run the benchmark; see the module docstring."""
    p = parser(__doc__)
    p.add_argument("--events", type=int, default=None)
    args = p.parse_args()
    n = args.events or (10_000 if args.smoke else 200_000)
    res = Result("throughput", args.smoke, params={"events": n, "batch": 500})
    header("throughput: one producer -> server -> one live watcher", res)

    raw_rates: list[float] = []
    raw_live_rates: list[float] = []
    with tempdir() as home:
        raw = RawServer("--db", str(home / "raw.db"))
        server = KitaruServer(home / "server.db")
        try:
            raw_bodies = batches(wire_events("raw-exec", n))
            raw_rates.append(post_all(raw.url, "/ingest", raw_bodies))
            raw_live_rates.append(raw_live(raw.url, n, res.fail))

            from kitaru.remote import HttpStore
            from kitaru.store import ExecutionRecord

            store = HttpStore(server.url)
            ingest_id = str(uuid.uuid4())
            store.create_execution(
                ExecutionRecord(
                    exec_id=ingest_id,
                    flow_name="bench_ingest",
                    flow_ref=None,
                    status="running",
                    created_at=time.time(),
                )
            )
            store.close()
            kitaru_ingest = post_all(
                server.url,
                f"/api/v1/executions/{ingest_id}/events",
                batches(wire_events(ingest_id, n)),
            )

            run = run_producer(server.url, n, lambda exec_id: watcher_proc(server.url, exec_id))
            check_watchers(run, res.fail)
            if not args.smoke:
                raw_live_rates.append(raw_live(raw.url, n, res.fail))
                raw_rates.append(post_all(raw.url, "/ingest", raw_bodies))
        finally:
            server.stop()
            raw.stop()

    raw_rate = sum(raw_rates) / len(raw_rates)
    raw_live_rate = sum(raw_live_rates) / len(raw_live_rates)
    e2e = run.watcher_rates()[0]
    res.figures.update(
        {
            "raw_ingest_rates": raw_rates,
            "raw_ingest_rate": raw_rate,
            "raw_live_rates": raw_live_rates,
            "raw_live_rate": raw_live_rate,
            "kitaru_ingest_only_rate": kitaru_ingest,
            "producer_rate": run.producer_rate,
            "watcher_rate": e2e,
            "producer_backpressure_seconds": run.backpressure_seconds,
            "publisher": run.publisher,
            "watcher": {k: v for k, v in run.watchers[0].items() if k != "latency"},
        }
    )
    res.row(
        "producer -> server -> watcher",
        e2e,
        "ev/s",
        baseline=raw_rate,
        baseline_name="raw ingest",
        target=f"≥ {TARGET_RATE:,} ev/s and ≥ {TARGET_RATIO:g}x raw",
        met=e2e >= TARGET_RATE and e2e / raw_rate >= TARGET_RATIO,
    )
    res.row(
        "producer -> server -> watcher, vs the raw live path",
        e2e,
        "ev/s",
        baseline=raw_live_rate,
        baseline_name="raw ingest + raw live reader",
    )
    res.row(
        "raw live path: ingest -> one raw reader",
        raw_live_rate,
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
    return res.finish()


if __name__ == "__main__":
    run_main(main)
