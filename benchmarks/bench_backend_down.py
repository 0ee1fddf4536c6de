"""One million ``kitaru.progress()`` calls while the server is unreachable.

Server mode against a kitaru server in a subprocess. One flow, one checkpoint:

1. ``up``: progress() calls while the server is up (the same per-call timing as below);
2. the server is killed (SIGKILL: a crash, not a clean stop);
3. ``down``: ``--calls`` progress() calls (1,000,000; 100,000 with ``--smoke``), each timed,
   with the process's resident memory read from ``/proc/self/status`` before and after;
4. the server is started again on the same port and database, the checkpoint returns (its
   record write is retried until the server answers), and the publisher delivers what it
   still holds.

Checks: memory growth ≤ 50 MB; per-call cost unchanged (median and p99 against ``up``, in the
same run); every event is accounted for: ``published == delivered + dropped`` exactly, where
``delivered`` is counted by a watcher reading the execution back from the restarted server and
``dropped`` comes from the publisher's counters. A mismatch (an event lost without being counted)
fails the run, also with ``--smoke``.
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

import kitaru
from kitaru import KitaruClient, checkpoint, flow
from kitaru.events import CHECKPOINT_PROGRESS_KIND
from kitaru.runtime import set_runtime

TARGET_MB = 50.0


def main() -> int:
    """Run the benchmark; see the module docstring."""
    p = parser(__doc__)
    p.add_argument("--calls", type=int, default=None, help="progress() calls while down")
    args = p.parse_args()
    n_down = args.calls or (100_000 if args.smoke else 1_000_000)
    n_up = 5_000 if args.smoke else 50_000
    res = Result("backend_down", args.smoke, params={"calls_down": n_down, "calls_up": n_up})
    header("backend down: progress() with the server unreachable", res)

    from kitaru._compose import build_server_runtime

    with tempdir() as home:
        db = home / "server.db"
        server = KitaruServer(db)
        port = server.port
        rt = build_server_runtime(server.url, None)
        previous = set_runtime(rt)
        up: array[int] = array("q", bytes(8 * n_up))
        down: array[int] = array("q", bytes(8 * n_down))
        mem: dict[str, Any] = {}
        state: dict[str, Any] = {}

        @checkpoint(name="steady")
        def steady(start: int, stop: int) -> None:
            clock = time.perf_counter_ns
            progress = kitaru.progress
            for i in range(start, stop):
                t0 = clock()
                progress("Processing item", percent=0.5, item=i)
                up[i] = clock() - t0

        @checkpoint(name="outage")
        def outage() -> None:
            nonlocal server
            server.kill()
            clock = time.perf_counter_ns
            progress = kitaru.progress
            gc.collect()
            mem["before"] = proc_memory_mb()
            t_start = time.perf_counter()
            for i in range(n_down):
                t0 = clock()
                progress("Processing item", percent=0.5, item=i)
                down[i] = clock() - t0
            state["down_seconds"] = time.perf_counter() - t_start
            gc.collect()
            mem["after"] = proc_memory_mb()
            state["stats_down"] = rt.publisher.stats()
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

        @flow(name="bench_backend_down")
        def run() -> None:
            for start in range(0, n_up, 50):
                steady(start, min(n_up, start + 50))
            outage()

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

    checkpoints = n_up // 50 + (1 if n_up % 50 else 0) + 1
    published = n_up + n_down + 2 * checkpoints
    progress_seen = watched.get(CHECKPOINT_PROGRESS_KIND, 0)
    growth = mem["after"]["rss"] - mem["before"]["rss"]
    s_up, s_down = summary_ns(up), summary_ns(down)
    sd = state["stats_down"]
    res.figures.update(
        {
            "per_call_ns_up": s_up,
            "per_call_ns_down": s_down,
            "memory_mb": mem,
            "rss_growth_mb": growth,
            "down_seconds": state["down_seconds"],
            "publisher_while_down": {
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
            "server_restart_errors": state.get("restart_errors", []),
        }
    )
    res.row(
        "RSS growth over the outage",
        growth,
        "MB",
        target=f"≤ {TARGET_MB:g} MB",
        met=growth <= TARGET_MB,
    )
    res.row(
        "progress() median, server down",
        s_down["median"] / 1000,
        "µs",
        baseline=s_up["median"] / 1000,
        baseline_name="server up",
        target="unchanged (≤ 1.25x)",
        met=s_down["median"] <= 1.25 * s_up["median"],
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
    if progress_seen + stats.dropped_overflow != n_up + n_down:
        res.fail(
            f"progress events unaccounted for: {n_up + n_down} published, {progress_seen} "
            f"delivered, {stats.dropped_overflow} dropped"
        )
    if stats.dropped_lifecycle:
        res.fail(f"{stats.dropped_lifecycle} lifecycle events were dropped")
    if sd.dropped_overflow == 0:
        res.fail("no drops while the server was down: the outage was not measured")
    print(
        f"  published {published:,}, delivered {total:,}, dropped {stats.dropped:,} "
        f"(send failures {stats.send_failures})"
    )
    return res.finish()


if __name__ == "__main__":
    run_main(main)
