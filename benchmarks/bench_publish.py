"""What one ``kitaru.progress()`` call costs the calling thread.

``kitaru.progress("Processing item", percent=0.5, item=i)`` inside a checkpoint, timed call by
call with ``perf_counter_ns``, in three modes:

* ``local``: local database mode (no server: the event is built, then skipped);
* ``server``: server mode against a kitaru server in a subprocess (the event is queued and the
  publisher's sender thread encodes and posts it, competing for the interpreter lock);
* ``server+otel``: the same with ``kitaru.otel.configure()`` on an SDK provider whose batch
  processor feeds an exporter that drops everything (so every call also adds a span event).
* ``server+otel+logs``: the same with an SDK logger provider too (same kind of null exporter),
  so every call also becomes an OpenTelemetry log record (queued on the calling thread,
  emitted by kitaru's emitter thread, which competes for the interpreter lock).

Each checkpoint publishes 50 events (below the bridge's per-span cap of 64, so every call pays
for a span event). A checkpoint does not wait for its events to be sent; the sender drains the
queue (10,000 events) faster than the calls fill it, and a dropped event fails the run: this is
the normal path (the overflow path is ``bench_backend_down.py``).

Baselines, same process, same run, same per-call timing:

* ``Logger.info("Processing item %d", i)`` into a ``QueueHandler`` drained by a
  ``QueueListener`` (the standard library's "don't block the caller" logging);
* a bare OpenTelemetry ``span.add_event`` with the same four attributes the bridge adds, on a
  recording SDK span of the same provider setup;
* ``deque.append`` of a prebuilt dict (the floor: what enqueueing alone costs).

Targets: median ≤ 3 µs without OpenTelemetry, ≤ 8 µs with it (spans, or spans and log
records) and, with log records on, at most one ``Logger.info`` (ratio ≤ 1).
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
import statistics
import time
from array import array
from collections import deque
from typing import Any

from _common import (
    KitaruServer,
    Result,
    header,
    null_otel_logger_provider,
    null_otel_provider,
    parser,
    run_main,
    summary_ns,
    tempdir,
    timer_overhead_ns,
)

import kitaru
from kitaru import checkpoint, flow
from kitaru.runtime import Runtime, set_runtime
from kitaru.store import SqliteStore

CHUNK = 50  # events per checkpoint (below the bridge's default span-event cap of 64)
TARGET_PLAIN_US = 3.0
TARGET_OTEL_US = 8.0


def time_progress(n: int) -> tuple[array[int], list[float]]:
    """Per-call ns of ``n`` progress() calls, and per-checkpoint means timed without the timer."""
    times: array[int] = array("q", bytes(8 * n))
    batched: list[float] = []

    @checkpoint(name="publisher")
    def work(start: int, stop: int) -> None:
        clock = time.perf_counter_ns
        progress = kitaru.progress
        for i in range(start, stop):
            t0 = clock()
            progress("Processing item", percent=0.5, item=i)
            times[i] = clock() - t0

    @checkpoint(name="publisher_batched")
    def work_batched(count: int) -> None:
        progress = kitaru.progress
        t0 = time.perf_counter_ns()
        for i in range(count):
            progress("Processing item", percent=0.5, item=i)
        batched.append((time.perf_counter_ns() - t0) / count)

    @flow(name="bench_publish")
    def run() -> None:
        for start in range(0, n, CHUNK):
            work(start, min(n, start + CHUNK))
        for _ in range(max(1, n // CHUNK // 4)):
            work_batched(CHUNK)

    run()
    return times, batched


def time_logger(n: int) -> array[int]:
    """Per-call ns of ``Logger.info`` into a ``QueueHandler`` drained by a listener thread."""
    q: queue.SimpleQueue[Any] = queue.SimpleQueue()
    logger = logging.getLogger("bench.queue")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = logging.handlers.QueueHandler(q)
    logger.addHandler(handler)
    listener = logging.handlers.QueueListener(q, logging.NullHandler())
    listener.start()
    times: array[int] = array("q", bytes(8 * n))
    clock = time.perf_counter_ns
    info = logger.info
    try:
        for i in range(n):
            t0 = clock()
            info("Processing item %d", i)
            times[i] = clock() - t0
    finally:
        listener.stop()
        logger.removeHandler(handler)
    return times


def time_add_event(n: int) -> array[int]:
    """Per-call ns of a bare ``span.add_event`` (a new span every ``CHUNK`` events)."""
    provider = null_otel_provider()
    tracer = provider.get_tracer("bench")
    times: array[int] = array("q", bytes(8 * n))
    clock = time.perf_counter_ns
    try:
        for start in range(0, n, CHUNK):
            span = tracer.start_span("kitaru.checkpoint publisher")
            add = span.add_event
            for i in range(start, min(n, start + CHUNK)):
                t0 = clock()
                add(
                    "kitaru.checkpoint.progress",
                    {
                        "kitaru.event.index": i,
                        "kitaru.event.message": "Processing item",
                        "kitaru.event.data.percent": 0.5,
                        "kitaru.event.data.item": i,
                    },
                )
                times[i] = clock() - t0
            span.end()
    finally:
        provider.shutdown()
    return times


def time_enqueue(n: int) -> float:
    """Mean ns of ``deque.append`` of a prebuilt dict (timed in one block)."""
    d: deque[dict[str, Any]] = deque()
    item = {"message": "Processing item", "data": {"percent": 0.5, "item": 1}}
    append = d.append
    t0 = time.perf_counter_ns()
    for _ in range(n):
        append(item)
    return (time.perf_counter_ns() - t0) / n


def main() -> int:
    """Run the benchmark; see the module docstring."""
    args = parser(__doc__).parse_args()
    n = 4_000 if args.smoke else 50_000
    res = Result(
        "publish", args.smoke, params={"calls_per_mode": n, "events_per_checkpoint": CHUNK}
    )
    header("publish cost on the calling thread: kitaru.progress()", res)

    overhead = timer_overhead_ns()
    res.figures["timer_overhead_ns"] = overhead
    print(f"  (each per-call figure includes about {overhead:.0f} ns of timer overhead)")

    stats: dict[str, dict[str, float]] = {}
    stats["enqueue_prebuilt_dict"] = {"mean": time_enqueue(n * 10)}
    stats["logger_queuehandler"] = summary_ns(time_logger(n))
    stats["otel_add_event"] = summary_ns(time_add_event(n))

    with tempdir() as home:
        # Local database mode.
        store = SqliteStore(home / "local.db")
        local_rt = Runtime(store, None, mode="local")
        previous = set_runtime(local_rt)
        try:
            times, batched = time_progress(n)
            stats["local"] = {**summary_ns(times), "batched_mean": statistics.median(batched)}
        finally:
            set_runtime(previous)
            local_rt.shutdown()

        # Server mode (without, then with OpenTelemetry).
        server = KitaruServer(home / "server.db")
        try:
            from kitaru._compose import build_server_runtime

            for mode in ("server", "server+otel", "server+otel+logs"):
                rt = build_server_runtime(server.url, None)
                previous = set_runtime(rt)
                provider = None
                log_provider = None
                observer = None
                try:
                    if mode.startswith("server+otel"):
                        import kitaru.otel

                        provider = null_otel_provider()
                        if mode.endswith("+logs"):
                            log_provider = null_otel_logger_provider()
                        observer = kitaru.otel.configure(
                            tracer_provider=provider,
                            logger_provider=log_provider,
                            log_records=log_provider is not None,
                        )
                    times, batched = time_progress(n)
                    pstats = rt.publisher.stats()
                    stats[mode] = {
                        **summary_ns(times),
                        "batched_mean": statistics.median(batched),
                        "sent": pstats.sent,
                        "dropped": pstats.dropped,
                    }
                    if pstats.dropped:
                        res.fail(f"{mode}: the publisher dropped {pstats.dropped} events")
                    if provider is not None:
                        provider.force_flush()
                        spans = provider.exporter.spans
                        stats[mode]["spans_exported"] = spans
                        if spans < n // CHUNK:
                            res.fail(f"{mode}: only {spans} spans reached the exporter")
                    if log_provider is not None and observer is not None:
                        emitter = observer.log_emitter
                        if emitter is not None:
                            emitter.force_flush(30.0)
                        log_provider.force_flush()
                        stats[mode]["log_records_exported"] = log_provider.exporter.records
                        stats[mode]["log_records_dropped"] = emitter.dropped if emitter else 0
                        if log_provider.exporter.records == 0:
                            res.fail(f"{mode}: no log record reached the exporter")
                finally:
                    if provider is not None:
                        import kitaru.otel

                        kitaru.otel.shutdown()
                        provider.shutdown()
                    if log_provider is not None:
                        log_provider.shutdown()
                    set_runtime(previous)
                    rt.shutdown()
        finally:
            server.stop()

    res.figures["per_call_ns"] = stats
    log_med = stats["logger_queuehandler"]["median"]
    otel_med = stats["otel_add_event"]["median"]
    print(
        f"  baselines: enqueue prebuilt dict {stats['enqueue_prebuilt_dict']['mean']:.0f} ns, "
        f"Logger.info->QueueHandler median {log_med / 1000:.2f} µs "
        f"(p99 {stats['logger_queuehandler']['p99'] / 1000:.2f}), "
        f"span.add_event median {otel_med / 1000:.2f} µs "
        f"(p99 {stats['otel_add_event']['p99'] / 1000:.2f})"
    )
    for mode, target in (
        ("local", TARGET_PLAIN_US),
        ("server", TARGET_PLAIN_US),
        ("server+otel", TARGET_OTEL_US),
        ("server+otel+logs", TARGET_OTEL_US),
    ):
        s = stats[mode]
        med_us = s["median"] / 1000
        res.row(
            f"progress() median, {mode}",
            med_us,
            "µs",
            baseline=log_med / 1000,
            baseline_name="Logger.info",
            target=f"≤ {target:g} µs",
            met=med_us <= target,
        )
        res.row(
            f"progress() p99, {mode}",
            s["p99"] / 1000,
            "µs",
            baseline=log_med / 1000,
            baseline_name="Logger.info",
        )
        res.row(
            f"progress() median vs span.add_event, {mode}",
            med_us,
            "µs",
            baseline=otel_med / 1000,
            baseline_name="add_event",
        )
        res.row(f"progress() mean without timer, {mode}", s["batched_mean"] / 1000, "µs")
    logs = stats["server+otel+logs"]
    res.row(
        "progress() median with spans + log records, as a ratio to Logger.info",
        logs["median"] / log_med,
        "x",
        target="≤ 1 (one Logger.info)",
        met=logs["median"] <= log_med,
    )
    print(
        f"  log records: {logs.get('log_records_exported', 0)} exported, "
        f"{logs.get('log_records_dropped', 0)} dropped by the emitter's bound"
    )
    return res.finish()


if __name__ == "__main__":
    run_main(main)
