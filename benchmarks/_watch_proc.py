"""Watchers in their own process (so they do not share the producer's interpreter lock).

``python benchmarks/_watch_proc.py --url U --exec-id E --watchers K [--latency] [--nice N]``

Runs ``K`` watchers of one execution through kitaru's own client: one uses the sync
``KitaruClient().executions.events()``; more use ``aevents()``, one asyncio task each. Prints
``ready`` once every watcher has received its first event, then, when every watcher has seen
``end``, one JSON line: per watcher the number of events, the ``(correlation_id, index)`` pairs
that were missing or repeated among progress events, and the receive times (``time.monotonic``,
comparable across processes on Linux) of the first and last progress event. With ``--latency``,
also each progress event's latency: receive time minus the ``sent`` field the producer put in
its data. The report also holds the process's CPU seconds (``time.process_time()``, all its
threads) when it printed ``ready`` (``cpu_ready_s``: imports, connecting, the warm-up event) and
at the end (``cpu_s``), read here because a finished process's CPU can no longer be read from
``/proc``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from kitaru import KitaruClient
from kitaru.events import CHECKPOINT_PROGRESS_KIND

_CPU: dict[str, float] = {}
"""This process's CPU seconds when it printed ``ready``."""


def _ready() -> None:
    """Note the CPU spent so far and say ``ready`` (the watcher got its first event)."""
    _CPU["ready"] = time.process_time()
    print("ready", flush=True)


class Tally:
    """What one watcher saw."""

    def __init__(self, latency: bool) -> None:
        self.events = 0
        self.progress = 0
        self.first: float | None = None
        self.last: float | None = None
        self.seen: set[tuple[str, int]] = set()
        self.repeated = 0
        self.latency: list[float] | None = [] if latency else None
        self.final_status: str | None = None

    def add(self, event: Any) -> None:
        now = time.monotonic()
        self.events += 1
        if event.kind != CHECKPOINT_PROGRESS_KIND:
            return
        data = event.payload.get("data") or {}
        if data.get("warmup"):
            return
        self.progress += 1
        if self.first is None:
            self.first = now
        self.last = now
        key = (event.correlation_id, event.index)
        if key in self.seen:
            self.repeated += 1
        self.seen.add(key)
        if self.latency is not None and "sent" in data:
            self.latency.append(now - data["sent"])

    def add_all(self, events: Iterable[Any], on_first: Callable[[], None]) -> None:
        """:meth:`add` for every event of ``events``, in order; ``on_first`` after the first.

        The same tally with the per-event work on local names (this runs in the measured
        watcher process, once per event).
        """
        clock = time.monotonic
        progress_kind = CHECKPOINT_PROGRESS_KIND
        seen = self.seen
        seen_add = seen.add
        latency = self.latency
        n = progress = repeated = 0
        first = last = None
        try:
            for event in events:
                n += 1
                if n == 1:
                    on_first()
                if event.kind != progress_kind:
                    continue
                data = event.payload.get("data") or {}
                if data.get("warmup"):
                    continue
                now = clock()
                progress += 1
                if first is None:
                    first = now
                last = now
                key = (event.correlation_id, event.index)
                if key in seen:
                    repeated += 1
                seen_add(key)
                if latency is not None and "sent" in data:
                    latency.append(now - data["sent"])
        finally:
            self.events += n
            self.progress += progress
            self.repeated += repeated
            if self.first is None:
                self.first = first
            if last is not None:
                self.last = last

    def report(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "progress": self.progress,
            "unique": len(self.seen),
            "repeated": self.repeated,
            "first": self.first,
            "last": self.last,
            "latency": self.latency,
            "final_status": self.final_status,
        }


def run_sync(url: str, exec_id: str, latency: bool) -> list[dict[str, Any]]:
    tally = Tally(latency)
    client = KitaruClient(server_url=url)
    with client.executions.events(exec_id) as watcher:
        tally.add_all(watcher, _ready)
        tally.final_status = watcher.final_status
    return [tally.report()]


async def run_async(url: str, exec_id: str, count: int, latency: bool) -> list[dict[str, Any]]:
    client = KitaruClient(server_url=url)
    tallies = [Tally(latency) for _ in range(count)]
    started = 0
    all_started = asyncio.Event()

    async def one(tally: Tally) -> None:
        nonlocal started
        async with client.executions.aevents(exec_id) as watcher:
            first = True
            async for event in watcher:
                tally.add(event)
                if first:
                    first = False
                    started += 1
                    if started == count:
                        all_started.set()
            tally.final_status = watcher.final_status

    tasks = [asyncio.create_task(one(t)) for t in tallies]

    async def announce() -> None:
        await all_started.wait()
        _CPU["ready"] = time.process_time()
        print("ready", flush=True)

    announcer = asyncio.create_task(announce())
    await asyncio.gather(*tasks)
    announcer.cancel()
    return [t.report() for t in tallies]


def main() -> None:
    """Parse arguments, watch, print the JSON report."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--exec-id", required=True)
    p.add_argument("--watchers", type=int, default=1)
    p.add_argument("--latency", action="store_true")
    p.add_argument("--nice", type=int, default=0, help="lower this process's CPU priority")
    args = p.parse_args()
    if args.nice:
        os.nice(args.nice)
    if args.watchers == 1:
        reports = run_sync(args.url, args.exec_id, args.latency)
    else:
        reports = asyncio.run(run_async(args.url, args.exec_id, args.watchers, args.latency))
    report = {"watchers": reports, "cpu_ready_s": _CPU.get("ready"), "cpu_s": time.process_time()}
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
