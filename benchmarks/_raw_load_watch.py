"""Raw readers of the raw server's live streams, in their own process (the baseline of
``bench_load.py`` and ``bench_throughput.py``).

``python benchmarks/_raw_load_watch.py --url U --per-execution K [--nice N] STREAM [STREAM ...]``

The least a reader can do with the same frames: ``K`` readers of each stream's
``GET /live/<stream>`` (``_raw_server.py``), one asyncio task each on one httpx client,
reading raw chunks, splitting them into frames and decoding each frame's data with
``orjson.loads`` (the minimum of kitaru's watcher, which also keeps the cursor and builds an
``ExecutionEvent``). Same output as ``_load_watch.py``: ``ready`` once every reader received
its stream's first frame (the warm-up), then one JSON line with, per reader, its stream, the
progress events it received, how many distinct ``index`` values, how many came again or out of
order, the final status of the ``end`` frame, the receive times (``time.monotonic``) of the
first and last progress event; and for all readers together a histogram of publish-to-receive
latency in 0.1 ms buckets, and the process's CPU seconds (``cpu_s``).
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

import httpx
import orjson

BUCKET_S = 0.0001
PROGRESS = "kitaru.checkpoint.progress"


class Tally:
    """What one reader saw."""

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

    def add(self, event: dict[str, Any], now: float) -> None:
        if event["kind"] != PROGRESS:
            return
        data = event["payload"].get("data") or {}
        if data.get("warmup"):
            return
        self.progress += 1
        if self.first is None:
            self.first = now
        self.last = now
        index = event["index"]
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


async def read(client: httpx.AsyncClient, tally: Tally, started: Any) -> None:
    """One reader: the stream until its ``end`` frame."""
    loads = orjson.loads
    first = True
    rest = b""
    async with client.stream("GET", f"/live/{tally.exec_id}") as resp:
        resp.raise_for_status()
        async for piece in resp.aiter_raw():
            now = time.monotonic()
            frames = (rest + piece).split(b"\n\n")
            rest = frames.pop()
            for frame in frames:
                at = frame.find(b"data: ")
                data = loads(frame[at + 6 :])
                if frame.startswith(b"event: end"):
                    tally.final_status = data.get("status")
                    return
                tally.add(data, now)
            if first and frames:
                first = False
                started()


async def watch(url: str, exec_ids: list[str], per_execution: int) -> dict[str, Any]:
    latency: Counter[int] = Counter()
    tallies = [Tally(e, latency) for e in exec_ids for _ in range(per_execution)]
    count = 0
    all_started = asyncio.Event()

    def started() -> None:
        nonlocal count
        count += 1
        if count == len(tallies):
            all_started.set()

    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    timeout = httpx.Timeout(60.0, read=None)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as client:
        tasks = [asyncio.create_task(read(client, t, started)) for t in tallies]

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
    """Parse arguments, read, print the JSON report."""
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
