"""What the load benchmark's watcher processes share: the per-watcher tally and the report.

Used by ``_load_watch.py`` (kitaru's watchers) and ``_raw_load_watch.py`` (the raw readers of
the baseline), so both count, check and report the same way. It imports nothing of kitaru, so
the raw readers' CPU figure does not include kitaru's import.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

BUCKET_S = 0.0001
"""Width of one publish-to-receive latency bucket, in seconds."""

PROGRESS = "kitaru.checkpoint.progress"


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
        self.first: float | None = None
        self.last: float | None = None

    def add(self, kind: str, index: int, payload: dict[str, Any], now: float) -> None:
        """Count one received event (warm-up and non-progress events are not counted)."""
        if kind != PROGRESS:
            return
        data = payload.get("data") or {}
        if data.get("warmup"):
            return
        self.progress += 1
        if self.first is None:
            self.first = now
        self.last = now
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
            "first": self.first,
            "last": self.last,
        }


class Starts:
    """Prints ``ready`` once every watcher received its first event."""

    def __init__(self, watchers: int) -> None:
        self.left = watchers
        self.all = asyncio.Event()
        self.cpu_ready: float | None = None

    def one(self) -> None:
        self.left -= 1
        if self.left == 0:
            self.all.set()

    async def announce(self) -> None:
        await self.all.wait()
        self.cpu_ready = time.process_time()
        print("ready", flush=True)


async def run_all(
    tallies: list[Tally], latency: Counter[int], starts: Starts, tasks: list[Awaitable[None]]
) -> dict[str, Any]:
    """Run the watchers' tasks to their ends; the process's JSON report."""
    announcer = asyncio.create_task(starts.announce())
    await asyncio.gather(*tasks)
    announcer.cancel()
    return {
        "watchers": [t.report() for t in tallies],
        "latency_buckets": {str(k): v for k, v in latency.items()},
        "cpu_ready_s": starts.cpu_ready,
        "cpu_s": time.process_time(),
    }


def main(doc: str, watch: Callable[[str, list[str], int], Awaitable[dict[str, Any]]]) -> None:
    """Parse a watcher process's arguments, run ``watch``, print its JSON report."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
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
