"""What a checkpoint costs around an empty body.

An empty ``@checkpoint`` called in a loop inside a flow, each call timed. Configurations:

* ``runtime only``: a store that writes nothing, no live events, no OpenTelemetry: the bare
  cost of the checkpoint machinery;
* ``lifecycle``: the same plus live-event publishing (``started``/``returned`` built, queued,
  encoded by the sender thread and handed to a transport that drops them; the checkpoint does
  not wait for them, only the flow's end flushes);
* ``lifecycle+span``: the same plus the OpenTelemetry bridge on an SDK provider whose exporter
  drops everything (a checkpoint span with its attributes, started and ended);
* ``local database``: the default local database mode (records written to SQLite; live events
  skipped), to show the durable record write inside a whole checkpoint.

Baseline: a plain empty function called inside ``tracer.start_as_current_span(...)`` on the same
kind of provider. The headline ``lifecycle+span`` row is measured in interleaved rounds: each
round a block of baseline calls and a block of ``lifecycle+span`` checkpoints of the same size
(which goes first alternates between rounds), and the row is the round whose ratio of the two
medians is the median ratio, so a neighbour's burst on this shared machine lands in one round
instead of in a whole block of one side; every round has its own row. The other rows, and
``lifecycle+span`` once more as one block, are measured one after the other against one block
of the baseline. Next to it, the SDK's own share of a checkpoint span, timed without kitaru:
``start_span`` with a checkpoint span's eight attributes under a parent, made current, the
status attribute set, ended (with the ``lifecycle`` figure, the bound a ``lifecycle+span``
checkpoint cannot go below while the SDK does that work). The durable record write is also
timed on its own: ``SqliteStore.save_checkpoint`` (local database mode) and
``HttpStore.save_checkpoint`` (server mode, against a kitaru server in a subprocess); a
checkpoint writes its record twice.

Target: ≤ 50 µs per checkpoint for lifecycle plus span (median).

Runtime log capture: ``logger.info`` timed inside a checkpoint with capture on, as a ratio to
the same call in the same flow outside any checkpoint (where capture is installed but skips the
record). The logger has a user handler writing formatted lines to memory, as an application
would; the capture bound is raised above the number of calls so every timed call is kept.
"""

from __future__ import annotations

import io
import logging
import statistics
import time
import uuid
from array import array
from typing import Any

from _common import (
    KitaruServer,
    Result,
    header,
    new_running_execution,
    null_otel_provider,
    parser,
    run_main,
    summary_ns,
    tempdir,
)
from _pairs import median_index

import kitaru.otel
from kitaru import checkpoint, flow
from kitaru.events._transport import NoopTransport
from kitaru.runtime import Runtime, set_runtime
from kitaru.runtime._logcapture import CaptureSettings, LogCapture
from kitaru.store import SqliteStore
from kitaru.store._records import AttemptRecord, CheckpointRecord

TARGET_US = 50.0
# lifecycle events + span against a plain function in an OTel span, measured in the same run
TARGET_RATIO = 2.0
# interleaved rounds of the headline row: (rounds, calls per block) for a full and a smoke run
ROUNDS_FULL = (15, 1_000)
ROUNDS_SMOKE = (3, 250)


class NullStore:
    """A store that keeps nothing (to time the checkpoint machinery without record writes)."""

    def create_execution(self, record: Any) -> None:
        """Discard."""

    def finish_execution(self, exec_id: str, status: str, **kwargs: Any) -> None:
        """Discard."""

    def heartbeat(self, exec_id: str) -> None:
        """Discard."""

    def get_execution(self, exec_id: str) -> None:
        """Nothing is kept."""

    def list_executions(self, **kwargs: Any) -> list[Any]:
        """Nothing is kept."""
        return []

    def save_checkpoint(self, record: Any) -> None:
        """Discard."""

    def find_cached(self, cache_key: str) -> None:
        """Nothing is kept."""

    def close(self) -> None:
        """Nothing to release."""


@checkpoint(name="empty")
def empty() -> None:
    """The empty body."""


def time_checkpoints(n: int) -> array[int]:
    """Per-call ns of ``n`` empty checkpoints in one flow (after 50 untimed warm-up calls)."""
    times: array[int] = array("q", bytes(8 * n))

    @flow(name="bench_checkpoint")
    def run() -> None:
        clock = time.perf_counter_ns
        for _ in range(50):
            empty()
        for i in range(n):
            t0 = clock()
            empty()
            times[i] = clock() - t0

    run()
    return times


def time_logger_info(n: int) -> tuple[array[int], array[int], int]:
    """Per-call ns of ``logger.info`` outside, then inside, a checkpoint; and lines captured."""
    log = logging.getLogger("kitaru_bench.user")
    log.setLevel(logging.INFO)
    log.propagate = False
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    log.addHandler(handler)
    outside: array[int] = array("q", bytes(8 * n))
    inside: array[int] = array("q", bytes(8 * n))
    captured = 0
    clock = time.perf_counter_ns

    @checkpoint(name="logging")
    def logging_body() -> None:
        for i in range(n):
            t0 = clock()
            log.info("item %d of %d", i, n)
            inside[i] = clock() - t0

    @flow(name="bench_logging")
    def run() -> None:
        logging_body()  # warm-up: installs the capture hooks
        for i in range(n):
            t0 = clock()
            log.info("item %d of %d", i, n)
            outside[i] = clock() - t0
        logging_body()

    class Counting(NullStore):
        def append_logs(self, lines: Any) -> None:
            nonlocal captured
            captured += len(lines)

    rt = Runtime(Counting(), None, mode="local", capture_logs=True)
    cap = rt.log_capture
    assert isinstance(cap, LogCapture)
    cap.settings = CaptureSettings(enabled=True, max_lines=n + 10, max_bytes=64 * n + 1024)
    previous = set_runtime(rt)
    try:
        run()
    finally:
        set_runtime(previous)
        rt.shutdown()
        log.removeHandler(handler)
    return outside, inside, captured


def time_plain_span(n: int) -> array[int]:
    """Per-call ns of an empty function inside ``start_as_current_span``."""
    provider = null_otel_provider()
    tracer = provider.get_tracer("bench")

    def body() -> None:
        pass

    times: array[int] = array("q", bytes(8 * n))
    clock = time.perf_counter_ns
    start = tracer.start_as_current_span
    try:
        for i in range(n):
            t0 = clock()
            with start("kitaru.checkpoint empty"):
                body()
            times[i] = clock() - t0
    finally:
        provider.shutdown()
    return times


def time_span_alone(n: int) -> array[int]:
    """Per-call ns of the SDK work behind one checkpoint span, without kitaru around it.

    ``start_span`` under a parent span with a checkpoint span's eight attributes, made current,
    the status attribute set, ended, the context restored: the part of a ``lifecycle+span``
    checkpoint that belongs to the SDK.
    """
    from opentelemetry import context as otel_context
    from opentelemetry import trace

    from kitaru.otel import _attributes as attr

    provider = null_otel_provider()
    tracer = provider.get_tracer("bench")
    flow_span = tracer.start_span(attr.FLOW_SPAN_PREFIX + "bench_checkpoint")
    parent = trace.set_span_in_context(flow_span)
    exec_id = str(uuid.uuid4())
    attributes: dict[str, Any] = {
        attr.EXECUTION_ID: exec_id,
        attr.FLOW_NAME: "bench_checkpoint",
        attr.CHECKPOINT_NAME: "empty",
        attr.CHECKPOINT_TYPE: "checkpoint",
        attr.CHECKPOINT_ID: str(uuid.uuid4()),
        attr.CHECKPOINT_STEP: "empty_2",
        attr.CHECKPOINT_ATTEMPT: 1,
        attr.CORRELATION_ID: f"kitaru.checkpoint:empty:{uuid.uuid4().hex}",
    }
    times: array[int] = array("q", bytes(8 * n))
    clock = time.perf_counter_ns
    start, attach, detach = tracer.start_span, otel_context.attach, otel_context.detach
    in_context = trace.set_span_in_context
    try:
        for i in range(n):
            t0 = clock()
            span = start(attr.CHECKPOINT_SPAN_PREFIX + "empty", parent, attributes=attributes)
            token = attach(in_context(span, parent))
            span.set_attribute(attr.CHECKPOINT_STATUS, "returned")
            span.end()
            detach(token)
            times[i] = clock() - t0
    finally:
        flow_span.end()
        provider.shutdown()
    return times


def _record(exec_id: str, seq: int) -> CheckpointRecord:
    return CheckpointRecord(
        checkpoint_id=str(uuid.uuid4()),
        exec_id=exec_id,
        name="empty",
        step_name=f"empty_{seq}",
        seq=seq,
        checkpoint_type="checkpoint",
        status="running",
        attempts=[
            AttemptRecord(
                attempt=1,
                correlation_id=f"kitaru.checkpoint:empty:{uuid.uuid4().hex}",
                status="running",
                started_at=time.time(),
            )
        ],
        started_at=time.time(),
    )


def time_record_writes(store: Any, n: int) -> array[int]:
    """Per-call ns of ``store.save_checkpoint`` (each record written twice, like a checkpoint)."""
    exec_id = new_running_execution(store, "bench_checkpoint")
    times: array[int] = array("q", bytes(8 * n))
    clock = time.perf_counter_ns
    for i in range(0, n, 2):
        rec = _record(exec_id, i)
        for j in (i, i + 1):
            if j >= n:
                break
            t0 = clock()
            store.save_checkpoint(rec)
            times[j] = clock() - t0
            rec.status = "completed"
    return times


def time_config(
    res: Result, name: str, store: Any, transport: Any, otel: bool, n: int
) -> array[int]:
    """Per-call ns of ``n`` empty checkpoints on a runtime of its own, released afterwards.

    A fresh runtime on ``store`` and ``transport`` (and, with ``otel``, a fresh null-export
    provider configured for kitaru) for this one call, so calls can be repeated without one
    leaving queued events, spans or a configured bridge to the next. Checks that every
    lifecycle event was sent and every span exported (``res.fail`` otherwise).
    """
    rt = Runtime(store, transport, mode="local")
    previous = set_runtime(rt)
    provider = None
    try:
        if otel:
            provider = null_otel_provider()
            kitaru.otel.configure(tracer_provider=provider)
        times = time_checkpoints(n)
        if transport is not None:
            p = rt.publisher.stats()
            if p.dropped or p.sent < 2 * n:
                res.fail(f"{name}: {p.sent} lifecycle events sent, {p.dropped} dropped")
        if provider is not None:
            provider.force_flush()
            spans = provider.exporter.spans
            if spans < n:
                res.fail(f"{name}: only {spans} checkpoint spans reached the exporter")
    finally:
        if provider is not None:
            kitaru.otel.shutdown()
            provider.shutdown()
        set_runtime(previous)
        rt.shutdown()
    return times


def time_rounds(res: Result, rounds: int, block: int) -> list[tuple[float, float]]:
    """``(baseline, lifecycle+span)`` medians in µs of ``rounds`` interleaved rounds.

    Each round times ``block`` plain functions in an OTel span and ``block`` ``lifecycle+span``
    checkpoints (on a fresh runtime and provider, see ``time_config``); the baseline goes first
    in even rounds and second in odd ones, so neither side always follows the other.
    """
    pairs: list[tuple[float, float]] = []
    for r in range(rounds):
        sides: dict[str, float] = {}
        for side in ("baseline", "checkpoint") if r % 2 == 0 else ("checkpoint", "baseline"):
            if side == "baseline":
                times = time_plain_span(block)
            else:
                times = time_config(
                    res, "lifecycle+span", NullStore(), NoopTransport(), True, block
                )
            sides[side] = summary_ns(times)["median"] / 1000
        pairs.append((sides["baseline"], sides["checkpoint"]))
    return pairs


def main() -> int:
    """Run the benchmark; see the module docstring."""
    args = parser(__doc__).parse_args()
    n = 500 if args.smoke else 5_000
    rounds, block = ROUNDS_SMOKE if args.smoke else ROUNDS_FULL
    res = Result(
        "checkpoint",
        args.smoke,
        params={"checkpoints": n, "rounds": rounds, "calls_per_block": block},
    )
    header("checkpoint overhead (empty body)", res)
    pairs = time_rounds(res, rounds, block)
    stats: dict[str, dict[str, float]] = {}
    stats["plain_function_in_otel_span"] = summary_ns(time_plain_span(n))
    stats["checkpoint_span_alone"] = summary_ns(time_span_alone(n))

    with tempdir() as home:
        configs: list[tuple[str, Any, Any, bool]] = [
            ("runtime only", NullStore(), None, False),
            ("lifecycle", NullStore(), NoopTransport(), False),
            ("lifecycle+span", NullStore(), NoopTransport(), True),
            ("local database", SqliteStore(home / "local.db"), None, False),
        ]
        for name, store, transport, otel in configs:
            stats[name] = summary_ns(time_config(res, name, store, transport, otel, n))

        sqlite = SqliteStore(home / "records.db")
        try:
            stats["record_write_sqlite"] = summary_ns(time_record_writes(sqlite, n))
        finally:
            sqlite.close()
        server = KitaruServer(home / "server.db")
        try:
            from kitaru.remote import HttpStore

            http = HttpStore(server.url)
            try:
                stats["record_write_http"] = summary_ns(time_record_writes(http, min(n, 1000)))
            finally:
                http.close()
        finally:
            server.stop()

    outside, inside, captured = time_logger_info(n)
    stats["logger_info_outside"] = summary_ns(outside)
    stats["logger_info_captured"] = summary_ns(inside)
    if captured != 2 * n:
        res.fail(f"log capture kept {captured} of {2 * n} logged lines")

    res.figures["per_checkpoint_ns"] = stats
    base = stats["plain_function_in_otel_span"]["median"] / 1000
    ratios = [subject / baseline for baseline, subject in pairs]
    m = median_index(ratios)
    paired_base, paired = pairs[m]
    res.row(
        "checkpoint median, lifecycle+span",
        paired,
        "µs",
        baseline=paired_base,
        baseline_name="fn in OTel span, same round",
        target=f"≤ {TARGET_RATIO:g}x and ≤ {TARGET_US:g} µs",
        met=ratios[m] <= TARGET_RATIO and paired <= TARGET_US,
    )
    for i, (b, c) in enumerate(pairs, 1):
        res.row(
            f"checkpoint median, lifecycle+span, round {i} of {len(pairs)}",
            c,
            "µs",
            baseline=b,
            baseline_name="fn in OTel span, same round",
        )
    res.figures["round_ratios"] = {
        "rounds": len(pairs),
        "calls_per_block": block,
        "ratios": ratios,
        "median": statistics.median(ratios),
        "min": min(ratios),
        "max": max(ratios),
    }
    for name in ("runtime only", "lifecycle", "lifecycle+span", "local database"):
        row = f"checkpoint median, {name}"
        if name == "lifecycle+span":
            row += ", one block after the baseline"
        res.row(
            row,
            stats[name]["median"] / 1000,
            "µs",
            baseline=base,
            baseline_name="fn in OTel span",
        )
        res.row(f"checkpoint p99, {name}", stats[name]["p99"] / 1000, "µs")
    res.row(
        "checkpoint span alone (SDK: 8 attributes, current, status, end)",
        stats["checkpoint_span_alone"]["median"] / 1000,
        "µs",
        baseline=base,
        baseline_name="fn in OTel span",
    )
    for name, label in (("record_write_sqlite", "SQLite"), ("record_write_http", "HTTP")):
        res.row(
            f"record write median ({label}, x2 per checkpoint)",
            stats[name]["median"] / 1000,
            "µs",
        )
        res.row(f"record write p99 ({label})", stats[name]["p99"] / 1000, "µs")
    res.row(
        "logger.info median, in a checkpoint (capture on)",
        stats["logger_info_captured"]["median"] / 1000,
        "µs",
        baseline=stats["logger_info_outside"]["median"] / 1000,
        baseline_name="outside a checkpoint",
    )
    res.row(
        "logger.info p99, in a checkpoint (capture on)",
        stats["logger_info_captured"]["p99"] / 1000,
        "µs",
        baseline=stats["logger_info_outside"]["p99"] / 1000,
        baseline_name="outside a checkpoint",
    )
    return res.finish()


if __name__ == "__main__":
    run_main(main)
