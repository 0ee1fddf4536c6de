"""Fan-out, 100 concurrent watchers on one running execution.

A kitaru server in a subprocess (its CPU time and memory read from ``/proc/<pid>``); a flow in
this process publishes ``--events`` progress events (20,000; 300 with ``--smoke``) as fast as
the pipeline takes them (see ``_producer.py``), twice:

1. with one watcher (the baseline, same run);
2. with ``--watchers`` watchers (100), all ``aevents()`` tasks in one other process, all
   connected and streaming before the first event is published.

The watcher process runs at a lower CPU priority (``nice 10``) in both runs: on a 2-core machine
100 watchers parsing 100 times the events would otherwise take CPU from the producer and the
server simply by sharing the cores, which is not what this measures (in production they run
elsewhere); the server's own work per watcher is what counts. They still must receive everything.

Reported: the producer's throughput with many watchers against one; the server's CPU seconds
while producing and until every watcher had everything, and per delivered event; its resident
memory before the watchers connected, at the end, and its peak. Every watcher must receive every
event exactly once and the stream's ``end`` (checked; a loss fails the run, also with
``--smoke``).

Target: every watcher receives every event; producer throughput within 10 % of one watcher.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from _common import (
    KitaruServer,
    Process,
    Result,
    child_env,
    header,
    parser,
    proc_memory_mb,
    run_main,
    tempdir,
)
from _producer import ProducerRun, check_watchers, run_producer

TARGET_DROP = 0.10
NICE = 10


def main() -> int:
    """Run the benchmark; see the module docstring."""
    p = parser(__doc__)
    p.add_argument("--events", type=int, default=None)
    p.add_argument("--watchers", type=int, default=100)
    args = p.parse_args()
    n = args.events or (300 if args.smoke else 20_000)
    k = args.watchers
    res = Result("fanout", args.smoke, params={"events": n, "watchers": k})
    header(f"fan-out: {k} watchers on one running execution", res)
    script = str(Path(__file__).resolve().parent / "_watch_proc.py")
    runs: dict[int, ProducerRun] = {}
    idle_rss: dict[int, float] = {}

    with tempdir() as home:
        server = KitaruServer(home / "server.db")
        try:
            for count in (1, k):

                def start(exec_id: str, count: int = count) -> list[Process]:
                    idle_rss[count] = proc_memory_mb(server.pid)["rss"]
                    argv = [sys.executable, script, "--url", server.url, "--exec-id", exec_id]
                    argv += ["--nice", str(NICE)]
                    return [Process([*argv, "--watchers", str(count)], env=child_env())]

                run = run_producer(server.url, n, start, server_pid=server.pid)
                check_watchers(run, res.fail)
                runs[count] = run
        finally:
            server.stop()

    one, many = runs[1], runs[k]
    figures: dict[str, Any] = {}
    for count, run in runs.items():
        s = run.server
        figures[f"watchers_{count}"] = {
            "producer_rate": run.producer_rate,
            "slowest_watcher_rate": min(run.watcher_rates()),
            "server_cpu_producing_s": s["cpu_producer_done"] - s["cpu_before"],
            "server_cpu_total_s": s["cpu_watchers_done"] - s["cpu_before"],
            "server_rss_idle_mb": idle_rss[count],
            "server_rss_streaming_mb": s["rss_before_mb"],
            "server_rss_end_mb": s["rss_watchers_done_mb"],
            "server_rss_peak_mb": s["rss_peak_mb"],
            "backpressure_seconds": run.backpressure_seconds,
        }
    res.figures.update(figures)
    ratio = many.producer_rate / one.producer_rate
    res.row(
        f"producer throughput, {k} watchers",
        many.producer_rate,
        "ev/s",
        baseline=one.producer_rate,
        baseline_name="1 watcher",
        target=f"≥ {1 - TARGET_DROP:.2f}x of 1 watcher",
        met=ratio >= 1 - TARGET_DROP,
    )
    res.row(
        f"slowest of {k} watchers (first call to its last event)",
        min(many.watcher_rates()),
        "ev/s",
        baseline=one.watcher_rates()[0],
        baseline_name="1 watcher",
    )
    fk, f1 = figures[f"watchers_{k}"], figures["watchers_1"]
    res.row(
        f"server CPU until all {k} watchers done",
        fk["server_cpu_total_s"],
        "s",
        baseline=f1["server_cpu_total_s"],
        baseline_name="1 watcher",
    )
    per_event_us = fk["server_cpu_total_s"] / (n * k) * 1e6
    res.row("server CPU per delivered event", per_event_us, "µs")
    res.row(
        f"server RSS added by {k} streaming watchers",
        fk["server_rss_streaming_mb"] - fk["server_rss_idle_mb"],
        "MB",
    )
    res.row(f"server RSS peak ({k} watchers)", fk["server_rss_peak_mb"], "MB")
    res.row(
        "every watcher got every event once",
        float(sum(1 for w in many.watchers if w["unique"] == n and not w["repeated"])),
        f"of {k}",
        target=f"{k} of {k}",
        met=all(w["unique"] == n and not w["repeated"] for w in many.watchers),
    )
    return res.finish()


if __name__ == "__main__":
    run_main(main)
