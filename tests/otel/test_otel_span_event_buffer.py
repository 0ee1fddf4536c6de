"""Span events are collected cheaply while the checkpoint runs and added when its span ends."""

from __future__ import annotations

import contextvars
import threading
import time

import kitaru
from kitaru import checkpoint, flow


def _checkpoint_span(traced):
    (span,) = [s for s in traced.spans() if s.parent_id]
    return span


def test_span_events_keep_the_time_they_were_published(make_traced):
    # Span events are added when the span ends, with the time each live event was published.
    traced = make_traced()

    @checkpoint
    def timed() -> None:
        for i in range(3):
            kitaru.progress(f"step {i}")
            time.sleep(0.002)

    @flow
    def timed_flow() -> None:
        timed()

    timed_flow.run().wait(10)
    (sdk_span,) = [s for s in traced.exporter.get_finished_spans() if s.parent is not None]
    published = [
        int(e.payload["kitaru"]["ts"] * 1e9)
        for e in traced.capture.events
        if e.kind == "kitaru.checkpoint.progress"
    ]
    assert [e.timestamp for e in sdk_span.events] == published
    assert sdk_span.events[-1].timestamp + 1_000_000 < sdk_span.end_time


def test_events_from_a_thread_outliving_the_checkpoint_are_ignored(make_traced):
    traced = make_traced()
    release = threading.Event()
    done = threading.Event()
    errors: list[BaseException] = []

    def late() -> None:
        release.wait(5)
        try:
            kitaru.progress("after the end")  # the copied context still names the checkpoint
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    @checkpoint
    def leaky() -> None:
        kitaru.progress("inside")
        threading.Thread(target=contextvars.copy_context().run, args=(late,)).start()

    @flow
    def leaky_flow() -> None:
        leaky()

    leaky_flow.run().wait(10)
    release.set()
    assert done.wait(5)
    span = _checkpoint_span(traced)
    assert [attrs["kitaru.event.message"] for _, attrs in span.events] == ["inside"]
    assert errors == []


def test_a_closed_buffer_ignores_new_events():
    from opentelemetry.sdk.trace import TracerProvider

    from kitaru.events._models import EventRecord
    from kitaru.otel._events import SpanEventBuffer
    from kitaru.otel._settings import BridgeSettings

    settings = BridgeSettings.resolve()
    span = TracerProvider().get_tracer("t").start_span("s")
    buffer = SpanEventBuffer(3)

    def record(i: int) -> EventRecord:
        body = {"message": f"m{i}", "data": {"i": i}}
        return EventRecord(None, "kitaru.checkpoint.progress", "c", i, body, 1.5 + i)  # type: ignore[arg-type]

    for i in range(1, 6):
        buffer.add(record(i))
    buffer.close(span, "c", settings)
    buffer.add(record(6))  # a thread publishing after the span ended
    buffer.close(span, "c", settings)
    span.end()
    assert [e.attributes["kitaru.event.index"] for e in span.events] == [1, 2, 5]
    assert [e.timestamp for e in span.events] == [2_500_000_000, 3_500_000_000, 6_500_000_000]
    assert span.attributes["kitaru.events.dropped"] == 2


def test_tool_and_lifecycle_events_outrank_coalesced_deltas():
    from opentelemetry.sdk.trace import TracerProvider

    from kitaru.events._models import EventRecord
    from kitaru.otel._events import SpanEventBuffer
    from kitaru.otel._settings import BridgeSettings

    settings = BridgeSettings.resolve()
    span = TracerProvider().get_tracer("t").start_span("s")
    buffer = SpanEventBuffer(4)

    def record(i: int, category: str, *, delta: bool = False) -> EventRecord:
        data: dict[str, object] = {"category": category}
        if delta or category == "lifecycle":
            data["delta_count"] = 3
        body = {"data": data}
        return EventRecord(None, "x.stream.event", "c", i, body, 1.0 + i)  # type: ignore[arg-type]

    buffer.add(record(1, "lifecycle"))  # started
    buffer.add(record(2, "text", delta=True))
    buffer.add(record(3, "text", delta=True))
    buffer.add(record(4, "tool_result"))  # evicts the newest kept delta (3)
    buffer.add(record(5, "tool_result"))  # evicts delta 2
    buffer.add(record(6, "text", delta=True))  # held back
    buffer.add(record(7, "lifecycle"))  # completed: no delta left to evict, held instead
    buffer.close(span, "c", settings)
    span.end()
    assert [e.attributes["kitaru.event.index"] for e in span.events] == [1, 4, 5, 7]
    assert span.attributes["kitaru.events.dropped"] == 3
