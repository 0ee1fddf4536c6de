"""Fan-out, 100 concurrent watchers on one running execution.

A kitaru server in a subprocess (its CPU time and memory read from ``/proc/<pid>``); a flow in
this process publishes ``--events`` progress events (20,000; 300 with ``--smoke``) as fast as
the pipeline takes them (see ``_producer.py``), in alternation ``--pairs`` times (3; 1 with
``--smoke``), each pair on a fresh server:

1. with one watcher (the baseline, same run);
2. with ``--watchers`` watchers (100), ``aevents()`` tasks in other processes (at most
   ``--per-process``, 50, in each), all connected and streaming before the first event is
   published.

The watcher processes run at a lower CPU priority (``nice 10``) in both runs: on a 2-core
machine 100 watchers parsing 100 times the events would otherwise take CPU from the producer
and the server simply by sharing the cores, which is not what this measures (in production
they run elsewhere); the server's own work per watcher is what counts. They still must receive
everything. Two processes of 50 rather than one of 100 let them catch up on both cores once
the producer is done, which halves the run's length; the producer's figure does not depend on
it (they are at nice 10 while it runs).

Reported: the producer's throughput with many watchers against one, as the median of the
pairs' ratios (every pair's figures are rows too, see ``_pairs.py``); for the median pair, the
server's CPU seconds while producing and until every watcher had everything, and per
delivered event; its resident memory before the watchers connected, at the end, and its peak.
Every watcher of every run must receive every event exactly once and the stream's ``end``
(checked; a loss fails the run, also with ``--smoke``).

Raw bound, same run (``_raw_live.py``): the same measurement on the bare stack, right after
kitaru's pair in each of the first ``--raw-pairs`` rounds (1 by default: the 100 raw readers
need about 45 s at nice 10 to read their 2,000,000 frames once the producer is done, which
bounds the run's added time; ``--raw-pairs 3`` alternates with every kitaru pair):
``_raw_server.py``'s live path (``/ingest/<stream>``, in-memory tails of frames built once,
``/live/<stream>``) on a fresh raw server, a raw producer batching as the publisher does (one
request in flight) publishing the same number of events as fast as it can, and 1 then
``--watchers`` raw readers (``_raw_load_watch.py``) in the same process layout and at the same
nice level as kitaru's watchers. Reported: the raw producer's rate with many readers against
one (median pair, every pair listed), and kitaru's median ratio divided by the raw one (how
much of the bare stack's own fan-out cost kitaru adds, or saves). Every raw reader of every
run must receive every event once, in order, and ``end`` (checked, also with ``--smoke``).

Target: every watcher receives every event; producer throughput within 10 % of one watcher.
"""

from __future__ import annotations

import sys
import time
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
from _pairs import median_index, pair_rows
from _producer import ProducerRun, check_watchers, run_producer
from _raw_live import RawRun, check_raw, run_raw

TARGET_DROP = 0.10
NICE = 10


def _figures(run: ProducerRun) -> dict[str, Any]:
    s = run.server
    return {
        "producer_rate": run.producer_rate,
        "slowest_watcher_rate": min(run.watcher_rates()),
        "server_cpu_producing_s": s["cpu_producer_done"] - s["cpu_before"],
        "server_cpu_total_s": s["cpu_watchers_done"] - s["cpu_before"],
        "server_rss_idle_mb": s["rss_idle_mb"],
        "server_rss_streaming_mb": s["rss_before_mb"],
        "server_rss_end_mb": s["rss_watchers_done_mb"],
        "server_rss_peak_mb": s["rss_peak_mb"],
        "backpressure_seconds": run.backpressure_seconds,
    }


def one_pair(home: Path, n: int, k: int, per_process: int, res: Result) -> list[ProducerRun]:
    """The producer with one watcher, then with ``k``, on a fresh server; both checked."""
    script = str(Path(__file__).resolve().parent / "_watch_proc.py")
    server = KitaruServer(home / f"server-{time.monotonic_ns()}.db")
    out: list[ProducerRun] = []
    idle_rss: dict[int, float] = {}
    try:
        for count in (1, k):

            def start(exec_id: str, count: int = count) -> list[Process]:
                idle_rss[count] = proc_memory_mb(server.pid)["rss"]
                argv = [sys.executable, script, "--url", server.url, "--exec-id", exec_id]
                argv += ["--nice", str(NICE)]
                sizes = [min(per_process, count - i) for i in range(0, count, per_process)]
                return [Process([*argv, "--watchers", str(m)], env=child_env()) for m in sizes]

            run = run_producer(server.url, n, start, server_pid=server.pid)
            check_watchers(run, res.fail)
            if len(run.watchers) != count:
                res.fail(f"{len(run.watchers)} of {count} watchers reported")
            run.server["rss_idle_mb"] = idle_rss[count]
            out.append(run)
    finally:
        server.stop()
    return out


def raw_pair(home: Path, n: int, k: int, per_process: int, res: Result) -> list[RawRun]:
    """The raw producer with one raw reader, then with ``k``, each on a fresh raw server."""
    out = []
    for count in (1, k):
        run = run_raw(home, n, count, per_process=per_process, nice=NICE)
        check_raw(run, count, res.fail)
        out.append(run)
    return out


def main() -> int:
    """Run the benchmark; see the module docstring."""
    p = parser(__doc__)
    p.add_argument("--events", type=int, default=None)
    p.add_argument("--watchers", type=int, default=100)
    p.add_argument("--per-process", type=int, default=50, help="watchers per process")
    p.add_argument("--pairs", type=int, default=None, help="rounds (default 3; 1 with --smoke)")
    p.add_argument(
        "--raw-pairs", type=int, default=1, help="rounds with a raw pair too (default 1)"
    )
    args = p.parse_args()
    n = args.events or (300 if args.smoke else 20_000)
    k = args.watchers
    rounds = args.pairs or (1 if args.smoke else 3)
    raw_rounds = max(1, min(rounds, args.raw_pairs))
    params = {
        "events": n,
        "watchers": k,
        "per_process": args.per_process,
        "pairs": rounds,
        "raw_pairs": raw_rounds,
    }
    res = Result("fanout", args.smoke, params=params)
    header(f"fan-out: {k} watchers on one running execution, {rounds} pairs", res)
    pairs: list[list[ProducerRun]] = []
    raw_pairs: list[list[RawRun]] = []
    with tempdir() as home:
        for i in range(rounds):
            one, many = one_pair(home, n, k, args.per_process, res)
            pairs.append([one, many])
            print(
                f"  pair {i + 1}: producer {one.producer_rate:,.0f} ev/s with 1 watcher, "
                f"{many.producer_rate:,.0f} with {k} (ratio "
                f"{many.producer_rate / one.producer_rate:.2f})",
                flush=True,
            )
            if i >= raw_rounds:
                continue
            raw_one, raw_many = raw_pair(home, n, k, args.per_process, res)
            raw_pairs.append([raw_one, raw_many])
            print(
                f"  raw pair {i + 1}: producer {raw_one.producer_rate:,.0f} ev/s with 1 reader, "
                f"{raw_many.producer_rate:,.0f} with {k} (ratio "
                f"{raw_many.producer_rate / raw_one.producer_rate:.2f})",
                flush=True,
            )
    res.figures["pairs"] = [
        {f"watchers_{run_k}": _figures(run) for run_k, run in zip((1, k), pair, strict=True)}
        for pair in pairs
    ]
    m = pair_rows(
        res,
        f"producer throughput, {k} watchers",
        "ev/s",
        [(one.producer_rate, many.producer_rate) for one, many in pairs],
        baseline_name="1 watcher",
        target=f"≥ {1 - TARGET_DROP:.2f}x of 1 watcher",
        at_least=1 - TARGET_DROP,
    )
    one, many = pairs[m]
    f1, fk = res.figures["pairs"][m]["watchers_1"], res.figures["pairs"][m][f"watchers_{k}"]
    res.figures.update({"median_pair": m + 1, "watchers_1": f1, f"watchers_{k}": fk})
    raw_rows(res, pairs, raw_pairs, n, k)
    res.row(
        f"slowest of {k} watchers (first call to its last event)",
        min(many.watcher_rates()),
        "ev/s",
        baseline=one.watcher_rates()[0],
        baseline_name="1 watcher",
    )
    res.row(
        f"server CPU until all {k} watchers done",
        fk["server_cpu_total_s"],
        "s",
        baseline=f1["server_cpu_total_s"],
        baseline_name="1 watcher",
    )
    res.row(
        f"server CPU while producing, {k} watchers",
        fk["server_cpu_producing_s"],
        "s",
        baseline=f1["server_cpu_producing_s"],
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
    complete = [
        all(w["unique"] == n and not w["repeated"] for w in pair[1].watchers) for pair in pairs
    ]
    res.row(
        "every watcher got every event once",
        float(sum(1 for w in many.watchers if w["unique"] == n and not w["repeated"])),
        f"of {k}",
        target=f"{k} of {k}, every pair",
        met=all(complete),
    )
    return res.finish()


def raw_rows(
    res: Result,
    pairs: list[list[ProducerRun]],
    raw_pairs: list[list[RawRun]],
    n: int,
    k: int,
) -> None:
    """The raw bound's rows: its median pair, every pair, kitaru's ratio over the raw one."""
    m = pair_rows(
        res,
        f"raw fan-out: producer rate {k} readers / 1",
        "ev/s",
        [(one.producer_rate, many.producer_rate) for one, many in raw_pairs],
        baseline_name="1 raw reader",
    )
    ratios = [many.producer_rate / one.producer_rate for one, many in pairs]
    raw_ratios = [many.producer_rate / one.producer_rate for one, many in raw_pairs]
    kitaru_ratio = ratios[median_index(ratios)]
    same_rounds = ratios[: len(raw_ratios)]
    res.figures["raw"] = {
        "median_pair": m + 1,
        "pairs": [
            {
                f"readers_{count}": {"producer_rate": run.producer_rate, "requests": run.requests}
                for count, run in zip((1, k), pair, strict=True)
            }
            for pair in raw_pairs
        ],
        "ratios": raw_ratios,
        "kitaru_over_raw_per_round": [a / b for a, b in zip(same_rounds, raw_ratios, strict=True)],
    }
    res.row(
        f"fan-out ratio ({k}/1), kitaru vs raw",
        round(kitaru_ratio, 3),
        "x",
        baseline=round(raw_ratios[m], 3),
        baseline_name=f"raw {k}/1",
    )
    complete = sum(
        1
        for pair in raw_pairs
        for w in pair[1].readers
        if w["unique"] == n and not w["repeated"] and not w["out_of_order"]
    )
    res.row(
        "every raw reader got every event once, in order",
        float(complete),
        f"of {k * len(raw_pairs)}",
        target="all, every pair",
        met=complete == k * len(raw_pairs),
    )


if __name__ == "__main__":
    run_main(main)
