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
latency in 0.1 ms buckets, and the process's CPU seconds at the end (``cpu_s``) and when it
printed ``ready`` (``cpu_ready_s``).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import httpx
import orjson
from _load_tally import Starts, Tally, main, run_all


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
                tally.add(data["kind"], data["index"], data["payload"], now)
            if first and frames:
                first = False
                started()


async def watch(url: str, exec_ids: list[str], per_execution: int) -> dict[str, Any]:
    latency: Counter[int] = Counter()
    tallies = [Tally(e, latency) for e in exec_ids for _ in range(per_execution)]
    starts = Starts(len(tallies))
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    timeout = httpx.Timeout(60.0, read=None)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as client:
        tasks = [asyncio.create_task(read(client, t, starts.one)) for t in tallies]
        return await run_all(tallies, latency, starts, tasks)


if __name__ == "__main__":
    main(__doc__ or "", watch)
