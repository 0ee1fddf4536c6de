"""Watchers of the realistic load benchmark, in their own process (``bench_load.py``).

``python benchmarks/_load_watch.py --url U --per-execution K EXEC_ID [EXEC_ID ...]``

Runs ``K`` watchers of each execution through kitaru's own async client (``aevents()``, one
asyncio task each). Prints ``ready`` once every watcher received its first event (the
producer's warm-up), then, when every watcher has seen ``end``, one JSON line: per watcher its
execution, the progress events it received, how many distinct ``index`` values, how many came
again or out of order, the stream's final status; and for all watchers together a histogram of
publish-to-receive latency (``time.monotonic`` is one clock for every process on Linux) in
0.1 ms buckets, and the process's CPU seconds (``cpu_s``).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from _load_tally import Starts, Tally, main, run_all

from kitaru import KitaruClient


async def watch(url: str, exec_ids: list[str], per_execution: int) -> dict[str, Any]:
    client = KitaruClient(server_url=url)
    latency: Counter[int] = Counter()
    tallies = [Tally(e, latency) for e in exec_ids for _ in range(per_execution)]
    starts = Starts(len(tallies))

    async def one(tally: Tally) -> None:
        async with client.executions.aevents(tally.exec_id) as watcher:
            first = True
            async for event in watcher:
                tally.add(event.kind, event.index, event.payload, time.monotonic())
                if first:
                    first = False
                    starts.one()
            tally.final_status = watcher.final_status

    return await run_all(tallies, latency, starts, [asyncio.create_task(one(t)) for t in tallies])


if __name__ == "__main__":
    main(__doc__ or "", watch)
