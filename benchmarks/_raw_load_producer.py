"""One raw producer process of the realistic load benchmark's baseline (``bench_load.py``).

``python benchmarks/_raw_load_producer.py --url U --executions K --rate R --seconds S``

The least a producer can do for the same traffic as ``_load_producer.py``: plain httpx posting
the same progress events' JSON to the raw server (``_raw_server.py``), no flows, no runtime.
``K`` streams each publish ``R`` events per second for ``S`` seconds from one scheduling
thread; each event is encoded with orjson when it is due (carrying its ``sent`` time,
``time.monotonic``) and queued. One sender thread posts what is queued, batched as kitaru's
publisher batches (``src/kitaru/events/_publisher.py``): every stream's events in one
``POST /events``, at most 500 a request, one request at a time; what arrives while a request
is in flight goes in the next one, and an event that finds no request in flight goes at once
(no timer). Same protocol on stdin/stdout as ``_load_producer.py``:

1. posts one warm-up event per stream, prints ``{"exec_ids": [...]}``;
2. waits for a line ``go`` on stdin;
3. publishes, posts ``/end/<stream>`` for each stream once its events were sent, and prints
   ``{"published": {stream: n}, "publisher": {"sent": n, "dropped": 0, ...}, "late": s}``
   (``sent`` counts the warm-up events too).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from collections import deque
from typing import Any

import httpx
import orjson

MAX_BATCH = 500
POLL = 0.001
IDLE_WAIT = 0.05


def event(stream: str, index: int, data: dict[str, Any]) -> bytes:
    """One progress event as kitaru's publisher encodes ``kitaru.progress("tick", ...)``."""
    corr = "kitaru.checkpoint:ticker:" + stream.replace("-", "")
    now = time.time()
    meta = {
        "source": "kitaru",
        "checkpoint_name": "ticker",
        "correlation_id": corr,
        "execution_id": stream,
        "checkpoint_id": stream,
        "checkpoint_type": "checkpoint",
        "flow_name": "load_producer",
        "step_name": "ticker",
        "attempt": 1,
        "trace_id": "0" * 31 + "1",
        "ts": now,
    }
    return orjson.dumps(
        {
            "exec_id": stream,
            "kind": "kitaru.checkpoint.progress",
            "correlation_id": corr,
            "index": index,
            "checkpoint_id": stream,
            "checkpoint_name": "ticker",
            "step_name": "ticker",
            "ts": now,
            "payload": {"kitaru": meta, "message": "tick", "data": data},
        }
    )


class Sender:
    """The sender thread: one request in flight, what was queued meanwhile in the next.

    Args:
        client: The raw server's client.
        path: The ingest path (``/events``: several streams per request).
        poll: Seconds to sleep while the queue is empty (the publisher's poll while publishing
            is active), or ``None`` to sleep until :meth:`put` wakes it (its idle wait).
    """

    def __init__(self, client: httpx.Client, path: str = "/events", poll: float | None = POLL):
        self.client = client
        self.path = path
        self.poll = poll
        self.queue: deque[bytes] = deque()
        self.sent = 0
        self.requests = 0
        self.idle = False
        self.closed = False
        self.wake = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="raw-sender", daemon=True)

    def put(self, item: bytes) -> None:
        """Queue one encoded event; wake the sender if it waits for one."""
        self.queue.append(item)
        if self.idle:
            self.wake.set()

    def _run(self) -> None:
        queue = self.queue
        try:
            while True:
                if not queue:
                    if self.closed:
                        return
                    if self.poll is not None:
                        time.sleep(self.poll)
                        continue
                    # Announce the wait before the last look at the queue, so an event queued
                    # in between either is seen here or sets ``wake``.
                    self.wake.clear()
                    self.idle = True
                    if not queue and not self.closed:
                        self.wake.wait(IDLE_WAIT)
                    self.idle = False
                    continue
                batch = [queue.popleft() for _ in range(min(MAX_BATCH, len(queue)))]
                resp = self.client.post(self.path, content=b"[" + b",".join(batch) + b"]")
                resp.raise_for_status()
                self.sent += len(batch)
                self.requests += 1
        except BaseException as exc:  # reported by drain()
            self.error = exc

    def drain(self) -> None:
        """Until every queued event was sent; raises what the sender raised."""
        self.closed = True
        self.wake.set()
        self.thread.join()
        if self.error is not None:
            raise RuntimeError(f"raw sender failed: {self.error!r}") from self.error


def main() -> None:
    """Parse arguments, publish, print the reports."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--executions", type=int, required=True)
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--seconds", type=float, required=True)
    args = p.parse_args()
    streams = [str(uuid.uuid4()) for _ in range(args.executions)]
    n = int(args.rate * args.seconds)
    headers = {"content-type": "application/json"}
    with httpx.Client(base_url=args.url, headers=headers, timeout=60) as client:
        sender = Sender(client)
        for s in streams:
            client.post(f"/ingest/{s}", content=b"[" + event(s, 0, {"warmup": True}) + b"]")
            sender.sent += 1
        print(json.dumps({"exec_ids": streams}), flush=True)
        line = sys.stdin.readline().strip()
        if line != "go":
            raise SystemExit(f"expected 'go', got {line!r}")
        sender.thread.start()
        clock = time.monotonic
        t0 = clock()
        worst = 0.0
        k = len(streams)
        # The streams' events interleave in time (stream j's i-th event is due at
        # t0 + (i + j / k) / rate), as k independent executions at the same rate would.
        for step in range(n * k):
            i, j = divmod(step, k)
            due = t0 + (i + j / k) / args.rate
            now = clock()
            if due > now:
                time.sleep(due - now)
                now = clock()
            elif now - due > worst:
                worst = now - due
            sender.put(event(streams[j], i + 1, {"item": i, "sent": now}))
        sender.drain()
        for s in streams:
            client.post(f"/end/{s}").raise_for_status()
    print(
        json.dumps(
            {
                "published": {s: n for s in streams},
                "publisher": {
                    "sent": sender.sent,
                    "dropped": 0,
                    "send_failures": 0,
                    "requests": sender.requests,
                },
                "late": worst,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
