"""One producer process of the realistic load benchmark (``bench_load.py``).

``python benchmarks/_load_producer.py --url U --executions K --rate R --seconds S``

Starts ``K`` flow executions in server mode (one background thread each, like
``flow.run()``). Each has one checkpoint that publishes a warm-up event, waits for ``go``, then
publishes ``kitaru.progress("tick", item=i, sent=<time.monotonic()>)`` at ``R`` events per
second for ``S`` seconds. Protocol on stdin/stdout (one JSON object a line):

1. prints ``{"exec_ids": [...]}`` once every execution has published its warm-up event;
2. waits for a line ``go`` on stdin;
3. prints ``{"published": {exec_id: n}, "publisher": {...}, "late": s}`` once every execution
   finished (``late``: the most any event was published behind its schedule, in seconds).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

import kitaru
from kitaru import checkpoint, flow
from kitaru.runtime import current_flow, set_runtime


def main() -> None:
    """Parse arguments, run the executions, print the reports."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--executions", type=int, required=True)
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--seconds", type=float, required=True)
    args = p.parse_args()
    from kitaru._compose import build_server_runtime

    rt = build_server_runtime(args.url, None)
    set_runtime(rt)
    go = threading.Event()
    warmed = threading.Semaphore(0)
    published: dict[str, int] = {}
    late = [0.0]
    n = int(args.rate * args.seconds)

    @checkpoint(name="ticker")
    def tick() -> None:
        run = current_flow()
        assert run is not None
        kitaru.progress("warming up", warmup=True, flush=True)
        warmed.release()
        if not go.wait(600):
            raise RuntimeError("no go")
        clock = time.monotonic
        progress = kitaru.progress
        t0 = clock()
        worst = 0.0
        for i in range(n):
            due = t0 + i / args.rate
            now = clock()
            if due > now:
                time.sleep(due - now)
                now = clock()
            elif now - due > worst:
                worst = now - due
            progress("tick", item=i, sent=now)
            published[run.exec_id] = i + 1
        late[0] = max(late[0], worst)

    @flow(name="load_producer")
    def producer() -> None:
        tick()

    handles = [producer.run() for _ in range(args.executions)]
    for _ in handles:
        if not warmed.acquire(timeout=120):
            raise SystemExit("an execution did not warm up within 120 s")
    print(json.dumps({"exec_ids": [h.exec_id for h in handles]}), flush=True)
    line = sys.stdin.readline().strip()
    if line != "go":
        raise SystemExit(f"expected 'go', got {line!r}")
    go.set()
    for h in handles:
        h.wait(600)
    stats = rt.publisher.stats()
    rt.shutdown()
    print(
        json.dumps(
            {
                "published": published,
                "publisher": {
                    "sent": stats.sent,
                    "dropped": stats.dropped,
                    "send_failures": stats.send_failures,
                },
                "late": late[0],
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
