"""The raw live path with one producer: the bare-stack bound of the fan-out and latency figures.

Used by ``bench_fanout.py`` and ``bench_latency.py``, in the same run as kitaru's figure. A raw
server (``_raw_server.py --db``) in a subprocess; a raw producer in this process posts ``n``
progress events of one stream to ``POST /ingest/<stream>``; raw readers (``_raw_load_watch.py``:
httpx streaming ``GET /live/<stream>``, frames split, ``orjson.loads`` per frame) in their own
processes, all connected and streaming (they have the warm-up event) before the first event.

The producer does what kitaru's publisher does with the least work: the calling thread encodes
each event with orjson (``_raw_load_producer.event``: the same JSON as a ``kitaru.progress``
event) and queues it; one sender thread posts what is queued, at most 500 events a request, one
request at a time; what arrives while a request is in flight goes in the next one, and a
sender with nothing queued is woken by the next event (no polling delay). Either as fast as it
can, with kitaru's producer's bound on the queue (``_producer.py``: checked every 500 events,
waiting while it holds more than 8,000 until it holds 4,000), or on a fixed schedule of
``rate`` events per second, each carrying its send time (``time.monotonic``) for latency.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from _common import Process, RawServer, child_env, read_line
from _load_tally import BUCKET_S
from _raw_load_producer import Sender, event

__all__ = ["RawRun", "bucket_percentiles", "check_raw", "reader_sizes", "run_raw"]

HERE = Path(__file__).resolve().parent
QUEUE_HIGH = 8_000
QUEUE_LOW = 4_000


@dataclass
class RawRun:
    """What one raw run measured (``time.monotonic`` seconds)."""

    n: int = 0
    t_start: float = 0.0
    t_sent: float = 0.0
    requests: int = 0
    readers: list[dict[str, Any]] = field(default_factory=list)
    latency_buckets: dict[int, int] = field(default_factory=dict)

    @property
    def producer_rate(self) -> float:
        """Events per second from the first event until the server had answered for all."""
        return self.n / (self.t_sent - self.t_start)


def reader_sizes(count: int, per_process: int) -> list[int]:
    """Readers per process: ``per_process`` in each, the rest in the last."""
    return [min(per_process, count - i) for i in range(0, count, per_process)]


def run_raw(
    home: Path,
    n: int,
    readers: int,
    *,
    per_process: int = 50,
    nice: int = 0,
    rate: float | None = None,
    timeout: float = 600.0,
) -> RawRun:
    """One raw run on a fresh raw server: ``n`` events, ``readers`` raw readers."""
    stream = str(uuid.uuid4())
    server = RawServer("--db", str(home / f"raw-{time.monotonic_ns()}.db"))
    procs: list[Process] = []
    out = RawRun(n=n)
    headers = {"content-type": "application/json"}
    try:
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
            warm = event(stream, 0, {"warmup": True})
            client.post(f"/ingest/{stream}", content=b"[" + warm + b"]").raise_for_status()
            argv = [sys.executable, str(HERE / "_raw_load_watch.py"), "--url", server.url]
            argv += ["--nice", str(nice)] if nice else []
            for m in reader_sizes(readers, per_process):
                procs.append(Process([*argv, "--per-execution", str(m), stream], env=child_env()))
            for proc in procs:
                line = read_line(proc, 120.0)
                if line != "ready":
                    raise RuntimeError(f"unexpected raw reader output {line!r}")
            sender = Sender(client, f"/ingest/{stream}", poll=None)
            sender.thread.start()
            clock = time.monotonic
            t0 = out.t_start = clock()
            if rate is None:
                for i in range(n):
                    sender.put(event(stream, i + 1, {"percent": i / n, "item": i}))
                    if i % 500 == 499 and len(sender.queue) > QUEUE_HIGH:
                        while len(sender.queue) > QUEUE_LOW:
                            time.sleep(0.0005)
            else:
                for i in range(n):
                    due = t0 + i / rate
                    now = clock()
                    if due > now:
                        time.sleep(due - now)
                    sender.put(event(stream, i + 1, {"item": i, "sent": clock()}))
            sender.drain()
            out.t_sent = clock()
            out.requests = sender.requests
            client.post(f"/end/{stream}").raise_for_status()
        for proc in procs:
            stdout, _ = proc.wait_output(timeout)
            report = json.loads(stdout.strip().splitlines()[-1])
            out.readers.extend(report["watchers"])
            for k, v in report["latency_buckets"].items():
                out.latency_buckets[int(k)] = out.latency_buckets.get(int(k), 0) + v
    finally:
        for proc in procs:
            if proc.proc.poll() is None:
                proc.kill()
        server.stop()
    return out


def check_raw(run: RawRun, readers: int, fail: Callable[[str], None]) -> bool:
    """Every raw reader got every event once, in order, and ``end``; ``False`` (and a
    failure recorded) otherwise."""
    if len(run.readers) != readers:
        fail(f"{len(run.readers)} of {readers} raw readers reported")
        return False
    for i, w in enumerate(run.readers):
        if (
            w["progress"] != run.n
            or w["unique"] != run.n
            or w["repeated"]
            or w["out_of_order"]
            or w["final_status"] != "completed"
        ):
            fail(f"raw reader {i}: {w}, expected {run.n} progress events once, in order, end")
            return False
    return True


def bucket_percentiles(buckets: dict[int, int], qs: tuple[float, ...]) -> list[float]:
    """Percentiles (seconds) of a latency histogram of ``BUCKET_S`` buckets, each value read
    as its bucket's middle."""
    total = sum(buckets.values())
    if not total:
        return [float("nan")] * len(qs)
    out = []
    for q in qs:
        rank = min(total - 1, int(q * total))
        seen = 0
        for k in sorted(buckets):
            seen += buckets[k]
            if seen > rank:
                out.append((k + 0.5) * BUCKET_S)
                break
    return out
