"""Latency from ``kitaru.progress()`` to a live watcher at 1,000 events per second.

A flow in this process publishes ``progress("tick", item=i, sent=time.monotonic())`` on a fixed
schedule of 1,000 events per second for ``--seconds`` (10; 1.5 with ``--smoke``); one watcher
(``KitaruClient().executions.events()``) in another process takes each event's receive time
minus its ``sent`` field (``CLOCK_MONOTONIC`` is shared by all processes on Linux). Reported:
p50, p99, p99.9 and the maximum. Every event must arrive exactly once (checked).

Baseline, same run: the round trip of one trivial HTTP request (``GET /health``) to a minimal
server on the same stack (``_raw_server.py``): the floor of one localhost exchange on this
machine at this load. A published event needs at least one such exchange (the publisher's POST)
plus the stream write to the watcher.

Raw bound, same run (``_raw_live.py``, before kitaru's run): the same traffic on the bare stack:
a raw producer in this process sending the same progress events at 1,000 per second, each
carrying its send time, batched as the publisher batches (one request in flight, what arrives
meanwhile in the next), to ``_raw_server.py``'s live path (``POST /ingest/<stream>``: orjson +
SQLite, frames built once into an in-memory tail; ``GET /live/<stream>``), and one raw reader
(``_raw_load_watch.py``) in its own process; p50/p99 publish -> reader (0.1 ms buckets), and
kitaru's p50/p99 as ratios to them. The raw reader must get every event once, in order, and
``end`` (checked, also with ``--smoke``).

Target: p99 ≤ 10 ms.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import httpx
from _common import (
    KitaruServer,
    Process,
    RawServer,
    Result,
    child_env,
    header,
    parser,
    run_main,
    summary_ns,
    tempdir,
)
from _producer import check_watchers, run_producer
from _raw_live import bucket_percentiles, check_raw, run_raw

RATE = 1_000.0
TARGET_P99_MS = 10.0


def http_round_trips(url: str, n: int) -> list[float]:
    """Seconds per ``GET /health``, ``n`` times, paced like the producer."""
    out = []
    with httpx.Client(base_url=url) as client:
        client.get("/health")
        for _ in range(n):
            t0 = time.perf_counter()
            client.get("/health")
            out.append(time.perf_counter() - t0)
            time.sleep(max(0.0, 1 / RATE - out[-1]))
    return out


def main() -> int:
    """Run the benchmark; see the module docstring."""
    p = parser(__doc__)
    p.add_argument("--seconds", type=float, default=None)
    args = p.parse_args()
    seconds = args.seconds or (1.5 if args.smoke else 10.0)
    n = int(seconds * RATE)
    res = Result("latency", args.smoke, params={"rate": RATE, "events": n})
    header("latency: progress() -> watcher at 1,000 events/s", res)

    script = str(Path(__file__).resolve().parent / "_watch_proc.py")
    with tempdir() as home:
        raw = RawServer()
        server = KitaruServer(home / "server.db")
        try:
            rtt = http_round_trips(raw.url, min(n, 2000))
            raw_run = run_raw(home, n, 1, rate=RATE)
            check_raw(raw_run, 1, res.fail)
            run = run_producer(
                server.url,
                n,
                lambda exec_id: [
                    Process(
                        [
                            sys.executable,
                            script,
                            "--url",
                            server.url,
                            "--exec-id",
                            exec_id,
                            "--latency",
                        ],
                        env=child_env(),
                    )
                ],
                rate=RATE,
            )
            check_watchers(run, res.fail)
        finally:
            server.stop()
            raw.stop()

    lat = summary_ns([x * 1e9 for x in (run.watchers[0]["latency"] or [])])
    base = summary_ns([x * 1e9 for x in rtt])
    achieved = n / (run.t_calls_done - run.t_start)
    raw_p50, raw_p99, raw_p999 = (
        x * 1e3 for x in bucket_percentiles(raw_run.latency_buckets, (0.5, 0.99, 0.999))
    )
    res.figures.update(
        {
            "latency_ns": lat,
            "http_round_trip_ns": base,
            "achieved_rate": achieved,
            "rtt_mean_ms": statistics.mean(rtt) * 1000,
            "raw_live_ms": {"median": raw_p50, "p99": raw_p99, "p999": raw_p999},
            "raw_live_requests": raw_run.requests,
            "raw_live_rate": n / (raw_run.t_sent - raw_run.t_start),
        }
    )
    res.row(
        "progress() -> watcher p50",
        lat["median"] / 1e6,
        "ms",
        baseline=base["median"] / 1e6,
        baseline_name="HTTP RTT p50",
    )
    res.row(
        "progress() -> watcher p99",
        lat["p99"] / 1e6,
        "ms",
        baseline=base["p99"] / 1e6,
        baseline_name="HTTP RTT p99",
        target=f"≤ {TARGET_P99_MS:g} ms",
        met=lat["p99"] / 1e6 <= TARGET_P99_MS,
    )
    res.row("progress() -> watcher p99.9", lat["p999"] / 1e6, "ms")
    res.row("progress() -> watcher max", lat["max"] / 1e6, "ms")
    res.row("achieved publish rate", achieved, "ev/s")
    res.row(
        "raw live path p50",
        raw_p50,
        "ms",
        baseline=base["median"] / 1e6,
        baseline_name="HTTP RTT p50",
    )
    res.row(
        "raw live path p99", raw_p99, "ms", baseline=base["p99"] / 1e6, baseline_name="HTTP RTT p99"
    )
    res.row(
        "progress() -> watcher p50, vs raw live path",
        lat["median"] / 1e6,
        "ms",
        baseline=raw_p50,
        baseline_name="raw live path p50",
    )
    res.row(
        "progress() -> watcher p99, vs raw live path",
        lat["p99"] / 1e6,
        "ms",
        baseline=raw_p99,
        baseline_name="raw live path p99",
    )
    return res.finish()


if __name__ == "__main__":
    run_main(main)
