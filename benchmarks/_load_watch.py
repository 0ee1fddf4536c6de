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

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter
from typing import Any

from kitaru import KitaruClient
from kitaru.events import CHECKPOINT_PROGRESS_KIND

BUCKET_S = 0.0001


class Tally:
    """What one watcher saw."""

    def __init__(self, exec_id: str, latency: Counter[int]) -> None:
        self.exec_id = exec_id
        self.progress = 0
        self.seen: set[int] = set()
        self.repeated = 0
        self.out_of_order = 0
        self.last_index = -1
        self.latency = latency
        self.final_status: str | None = None

    def add(self, event: Any) -> None:
        now = time.monotonic()
        if event.kind != CHECKPOINT_PROGRESS_KIND:
            return
        data = event.payload.get("data") or {}
        if data.get("warmup"):
            return
        self.progress += 1
        index = event.index
        if index in self.seen:
            self.repeated += 1
        elif index < self.last_index:
            self.out_of_order += 1
        self.seen.add(index)
        self.last_index = max(self.last_index, index)
        sent = data.get("sent")
        if isinstance(sent, float):
            self.latency[int((now - sent) / BUCKET_S)] += 1

    def report(self) -> dict[str, Any]:
        return {
            "exec_id": self.exec_id,
            "progress": self.progress,
            "unique": len(self.seen),
            "repeated": self.repeated,
            "out_of_order": self.out_of_order,
            "final_status": self.final_status,
        }


async def watch(url: str, exec_ids: list[str], per_execution: int) -> dict[str, Any]:
    client = KitaruClient(server_url=url)
    latency: Counter[int] = Counter()
    tallies = [Tally(e, latency) for e in exec_ids for _ in range(per_execution)]
    started = 0
    all_started = asyncio.Event()

    async def one(tally: Tally) -> None:
        nonlocal started
        async with client.executions.aevents(tally.exec_id) as watcher:
            first = True
            async for event in watcher:
                tally.add(event)
                if first:
                    first = False
                    started += 1
                    if started == len(tallies):
                        all_started.set()
            tally.final_status = watcher.final_status

    tasks = [asyncio.create_task(one(t)) for t in tallies]

    async def announce() -> None:
        await all_started.wait()
        print("ready", flush=True)

    announcer = asyncio.create_task(announce())
    await asyncio.gather(*tasks)
    announcer.cancel()
    return {
        "watchers": [t.report() for t in tallies],
        "latency_buckets": {str(k): v for k, v in latency.items()},
        "cpu_s": time.process_time(),
    }


def main() -> None:
    """Parse arguments, watch, print the JSON report."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--per-execution", type=int, default=1)
    p.add_argument("--nice", type=int, default=0, help="lower this process's CPU priority")
    p.add_argument("exec_ids", nargs="+")
    args = p.parse_args()
    if args.nice:
        os.nice(args.nice)
    report = asyncio.run(watch(args.url, args.exec_ids, args.per_execution))
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
