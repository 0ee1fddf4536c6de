"""One million ``kitaru.progress()`` calls while the server is unreachable.

Server mode against a kitaru server in a subprocess. One flow, ``--rounds`` rounds (5; 3 with
``--smoke``) of:

1. ``up``: progress() calls while the server is up (checkpoints of 50 calls, each call timed);
2. the server is killed (SIGKILL: a crash, not a clean stop);
3. ``down``: this round's share of ``--calls`` progress() calls (1,000,000 in all; 100,000
   with ``--smoke``), each timed, with the process's resident memory read from
   ``/proc/self/status`` before and after;
4. the server is started again on the same port and database, and the publisher delivers what
   it still holds before the next round (so every ``up`` phase starts from an empty queue).

The cost figure is a ratio of two medians measured a minute apart on a shared machine, so it is
measured as alternating pairs (``up``, ``down``, ``up``, ``down``, ...) and the pair with the
median ratio is reported, every pair in its own row (``_pairs.py``).

Checks: memory growth over each outage ≤ 50 MB; per-call cost unchanged (median ratio of the
pairs, and p99 of all calls, against ``up``); every event is accounted for:
``published == delivered + dropped`` exactly, where ``delivered`` is counted by a watcher
reading the execution back from the restarted server and ``dropped`` comes from the publisher's
counters. A mismatch (an event lost without being counted) fails the run, also with ``--smoke``.
"""

from __future__ import annotations

import gc
import time
from array import array
from typing import Any

from _common import (
    KitaruServer,
    Result,
    header,
    parser,
    proc_memory_mb,
    run_main,
    summary_ns,
    tempdir,
)
from _pairs import pair_rows

import kitaru
from kitaru import KitaruClient, checkpoint, flow
from kitaru.events import CHECKPOINT_PROGRESS_KIND
from kitaru.runtime import set_runtime

TARGET_MB = 50.0
TARGET_RATIO = 1.25
CHUNK = 50  # progress() calls per checkpoint while the server is up


def main() -> int:
    """Run the benchmark; see the module docstring."""
    p = parser(__doc__)
    p.add_argument("--calls", type=int, default=None, help="progress() calls while down, in all")
    p.add_argument("--rounds", type=int, default=None, help="alternating up/down rounds (5)")
    args = p.parse_args()
    rounds = max(1, args.rounds or (3 if args.smoke else 5))
    n_down = args.calls or (100_000 if args.smoke else 1_000_000)
    n_up = 2_000 if args.smoke else 20_000  # per round
    shares = [n_down // rounds + (1 if r < n_down % rounds else 0) for r in range(rounds)]
    res = Result(
        "backend_down",
        args.smoke,
        params={"calls_down": n_down, "calls_up_per_round": n_up, "rounds": rounds},
    )
    header("backend down: progress() with the server unreachable", res)

    from kitaru._compose import build_server_runtime

    with tempdir() as home:
        db = home / "server.db"
        server = KitaruServer(db)
        port = server.port
        rt = build_server_runtime(server.url, None)
        previous = set_runtime(rt)
        up = [array("q", bytes(8 * n_up)) for _ in range(rounds)]
        down = [array("q", bytes(8 * k)) for k in shares]
        growth: list[float] = []
        outage_drops: list[int] = []
        state: dict[str, Any] = {"down_seconds": 0.0}

        @checkpoint(name="steady")
        def steady(times: array[int], start: int, stop: int) -> None:
            clock = time.perf_counter_ns
            progress = kitaru.progress
            for i in range(start, stop):
                t0 = clock()
                progress("Processing item", percent=0.5, item=i)
                times[i] = clock() - t0

        @checkpoint(name="outage")
        def outage(times: array[int]) -> None:
            nonlocal server
            server.kill()
            clock = time.perf_counter_ns
            progress = kitaru.progress
            dropped_before = rt.publisher.stats().dropped_overflow
            gc.collect()
            before = proc_memory_mb()["rss"]
            t_start = time.perf_counter()
            for i in range(len(times)):
                t0 = clock()
                progress("Processing item", percent=0.5, item=i)
                times[i] = clock() - t0
            state["down_seconds"] += time.perf_counter() - t_start
            gc.collect()
            growth.append(proc_memory_mb()["rss"] - before)
            stats_down = rt.publisher.stats()
            state["stats_down"] = stats_down
            outage_drops.append(stats_down.dropped_overflow - dropped_before)
            # Back on the same port and database, for the record write and the delivery.
            for attempt in range(3):
                try:
                    server = KitaruServer(db, port=port)
                    break
                except RuntimeError as exc:
                    state.setdefault("restart_errors", []).append(str(exc)[-500:])
                    if attempt == 2:
                        raise
                    time.sleep(1.0)
            # The next round's ``up`` phase starts from an empty queue, as the first did.
            if not rt.publisher.flush(60.0):
                state.setdefault("undrained_rounds", 0)
                state["undrained_rounds"] += 1

        @flow(name="bench_backend_down")
        def run() -> None:
            for r in range(rounds):
                for start in range(0, n_up, CHUNK):
                    steady(up[r], start, min(n_up, start + CHUNK))
                outage(down[r])

        try:
            handle = run.run()
            handle.wait(timeout=600)
            exec_id = handle.exec_id
            drained = rt.publisher.flush(60.0)
            stats = rt.publisher.stats()
            watched: dict[str, int] = {}
            client = KitaruClient(server_url=server.url)
            total = 0
            for event in client.executions.events(exec_id):
                watched[event.kind] = watched.get(event.kind, 0) + 1
                total += 1
        finally:
            set_runtime(previous)
            rt.shutdown()
            server.stop()

    checkpoints = rounds * (n_up // CHUNK + (1 if n_up % CHUNK else 0) + 1)
    published = rounds * n_up + n_down + 2 * checkpoints
    progress_seen = watched.get(CHECKPOINT_PROGRESS_KIND, 0)
    per_round = [(summary_ns(u), summary_ns(d)) for u, d in zip(up, down, strict=True)]
    s_up = summary_ns([t for times in up for t in times])
    s_down = summary_ns([t for times in down for t in times])
    sd = state["stats_down"]
    res.figures.update(
        {
            "per_call_ns_up": s_up,
            "per_call_ns_down": s_down,
            "per_round_ns": [{"up": u, "down": d} for u, d in per_round],
            "rss_growth_mb_per_outage": growth,
            "dropped_per_outage": outage_drops,
            "down_seconds": state["down_seconds"],
            "publisher_after_last_outage": {
                "queued": sd.queued,
                "sent": sd.sent,
                "dropped_overflow": sd.dropped_overflow,
                "send_failures": sd.send_failures,
            },
            "publisher_final": {
                "sent": stats.sent,
                "queued": stats.queued,
                "dropped": stats.dropped,
                "dropped_overflow": stats.dropped_overflow,
                "dropped_lifecycle": stats.dropped_lifecycle,
                "send_failures": stats.send_failures,
            },
            "published": published,
            "watched_total": total,
            "watched_by_kind": watched,
            "drained": drained,
            "undrained_rounds": state.get("undrained_rounds", 0),
            "server_restart_errors": state.get("restart_errors", []),
        }
    )
    worst = max(growth)
    res.row(
        "RSS growth over the outage",
        worst,
        "MB",
        target=f"≤ {TARGET_MB:g} MB",
        met=worst <= TARGET_MB,
    )
    pair_rows(
        res,
        "progress() median, server down",
        "µs",
        [(u["median"] / 1000, d["median"] / 1000) for u, d in per_round],
        baseline_name="server up",
        target=f"unchanged (≤ {TARGET_RATIO:g}x)",
        at_most=TARGET_RATIO,
    )
    res.row(
        "progress() p99, server down",
        s_down["p99"] / 1000,
        "µs",
        baseline=s_up["p99"] / 1000,
        baseline_name="server up",
    )
    res.row("events dropped (counted)", float(stats.dropped), "")
    res.row("events delivered after recovery (watcher)", float(total), "")
    if not drained:
        res.fail("the publisher did not drain within 60 s after the server came back")
    if total + stats.dropped != published:
        res.fail(
            f"events unaccounted for: published {published}, delivered {total}, "
            f"dropped {stats.dropped} (delivered + dropped should equal published)"
        )
    if progress_seen + stats.dropped_overflow != rounds * n_up + n_down:
        res.fail(
            f"progress events unaccounted for: {rounds * n_up + n_down} published, {progress_seen} "
            f"delivered, {stats.dropped_overflow} dropped"
        )
    if stats.dropped_lifecycle:
        res.fail(f"{stats.dropped_lifecycle} lifecycle events were dropped")
    if min(outage_drops) == 0:
        res.fail(f"an outage without drops ({outage_drops}): the overflow was not measured")
    print(
        f"  published {published:,}, delivered {total:,}, dropped {stats.dropped:,} "
        f"(send failures {stats.send_failures})"
    )
    return res.finish()


if __name__ == "__main__":
    run_main(main)
