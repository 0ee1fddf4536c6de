"""One producer flow in server mode, with watcher processes started on its execution.

Shared by the throughput, latency and fan-out benchmarks. The flow has one checkpoint that first
publishes a warm-up event (so every watcher is connected and streaming before the clock starts),
waits for the watchers to say ``ready``, then publishes ``n`` progress events:

* as fast as it can, keeping the publisher's queue below its bound (it checks the queue every
  500 calls and waits while it is over 80 % full), so nothing is dropped and the figure is the
  pipeline's sustained rate, not the speed of filling a queue; or
* at a fixed ``rate`` (events per second), each event carrying its send time for latency.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from _common import Process, proc_cpu_seconds, proc_memory_mb, read_line

import kitaru
from kitaru import checkpoint, flow
from kitaru.runtime import set_runtime


@dataclass
class ProducerRun:
    """What one producer run measured (``time.monotonic`` seconds).

    ``producer_cpu_s``: this process's CPU seconds (all its threads: the flow, the publisher's
    sender and its helper) from releasing the flow until the flow had ended (its end flushes
    the publisher); ``watcher_cpu_s``: per watcher process, its CPU seconds from ``ready`` to
    its report (so without its imports and start); ``server``: the server's CPU and memory at
    those points when ``server_pid`` was given.
    """

    exec_id: str = ""
    n: int = 0
    t_start: float = 0.0
    t_calls_done: float = 0.0
    t_flushed: float = 0.0
    backpressure_seconds: float = 0.0
    publisher: dict[str, int] = field(default_factory=dict)
    watchers: list[dict[str, Any]] = field(default_factory=list)
    server: dict[str, float] = field(default_factory=dict)
    producer_cpu_s: float = 0.0
    watcher_cpu_s: list[float] = field(default_factory=list)

    @property
    def producer_rate(self) -> float:
        """Events per second from the first call until the publisher had handed all on."""
        return self.n / (self.t_flushed - self.t_start)

    def watcher_rates(self) -> list[float]:
        """Per watcher: events per second from the first call to that watcher's last event."""
        return [
            w["progress"] / (w["last"] - self.t_start) if w.get("last") else 0.0
            for w in self.watchers
        ]


def run_producer(
    url: str,
    n: int,
    start_watchers: Callable[[str], list[Process]],
    *,
    rate: float | None = None,
    server_pid: int | None = None,
    timeout: float = 600.0,
) -> ProducerRun:
    """Run the producer flow against ``url`` with the watchers ``start_watchers(exec_id)``."""
    from kitaru._compose import build_server_runtime

    rt = build_server_runtime(url, None)
    previous = set_runtime(rt)
    go = threading.Event()
    out = ProducerRun(n=n)
    limit = int(0.8 * rt.publisher._max_queue)
    low = limit // 2

    @checkpoint(name="producer")
    def produce() -> None:
        kitaru.progress("warming up", warmup=True, flush=True)
        if not go.wait(timeout):
            raise RuntimeError("the watchers did not get ready")
        progress = kitaru.progress
        stats = rt.publisher.stats
        clock = time.monotonic
        waited = 0.0
        t0 = out.t_start = clock()
        if rate is None:
            for i in range(n):
                progress("Processing item", percent=i / n, item=i)
                if i % 500 == 499 and stats().queued > limit:
                    w0 = clock()
                    while stats().queued > low:
                        time.sleep(0.0005)
                    waited += clock() - w0
        else:
            for i in range(n):
                due = t0 + i / rate
                now = clock()
                if due > now:
                    time.sleep(due - now)
                progress("tick", item=i, sent=clock())
        out.t_calls_done = clock()
        out.backpressure_seconds = waited
        rt.publisher.flush(timeout)
        out.t_flushed = clock()

    @flow(name="bench_producer")
    def producer_flow() -> None:
        produce()

    procs: list[Process] = []
    try:
        handle = producer_flow.run()
        out.exec_id = handle.exec_id
        procs = start_watchers(handle.exec_id)
        for proc in procs:
            line = read_line(proc, 120.0)
            if line != "ready":
                raise RuntimeError(f"unexpected watcher output {line!r}")
        if server_pid is not None:
            out.server["cpu_before"] = proc_cpu_seconds(server_pid)
            out.server["rss_before_mb"] = proc_memory_mb(server_pid)["rss"]
        cpu0 = time.process_time()
        go.set()
        handle.wait(timeout)
        out.producer_cpu_s = time.process_time() - cpu0
        if server_pid is not None:
            out.server["cpu_producer_done"] = proc_cpu_seconds(server_pid)
            out.server["rss_producer_done_mb"] = proc_memory_mb(server_pid)["rss"]
        for proc in procs:
            stdout, _ = proc.wait_output(timeout)
            report = json.loads(stdout.strip().splitlines()[-1])
            out.watchers.extend(report["watchers"])
            out.watcher_cpu_s.append(report["cpu_s"] - report["cpu_ready_s"])
        if server_pid is not None:
            out.server["cpu_watchers_done"] = proc_cpu_seconds(server_pid)
            mem = proc_memory_mb(server_pid)
            out.server["rss_watchers_done_mb"] = mem["rss"]
            out.server["rss_peak_mb"] = mem["hwm"]
        s = rt.publisher.stats()
        out.publisher = {"sent": s.sent, "dropped": s.dropped, "send_failures": s.send_failures}
    finally:
        go.set()
        for proc in procs:
            if proc.proc.poll() is None:
                proc.kill()
        set_runtime(previous)
        rt.shutdown()
    return out


def check_watchers(run: ProducerRun, fail: Callable[[str], None]) -> None:
    """Every watcher saw every progress event exactly once and the stream's ``end``."""
    for i, w in enumerate(run.watchers):
        if w["progress"] != run.n or w["unique"] != run.n or w["repeated"]:
            fail(
                f"watcher {i}: {w['progress']} progress events ({w['unique']} unique, "
                f"{w['repeated']} repeated), expected {run.n}"
            )
            return
        if w["final_status"] != "completed":
            fail(f"watcher {i}: stream ended with status {w['final_status']!r}")
            return
    if run.publisher.get("dropped"):
        fail(f"the publisher dropped {run.publisher['dropped']} events")
