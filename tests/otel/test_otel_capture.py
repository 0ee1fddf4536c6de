"""``kitaru.testing.capture_events()`` wires observers as the default runtime does."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import kitaru
from kitaru import checkpoint, flow
from kitaru.otel import KitaruOtelObserver
from kitaru.testing import capture_events


@checkpoint
def step(x: int) -> int:
    kitaru.progress("half", percent=0.5)
    return x * 2


@flow
def doubled(x: int) -> int:
    return step(x)


@pytest.fixture
def global_provider() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter


def test_capture_sees_what_production_sees_with_a_global_provider(global_provider):
    with capture_events() as captured:
        assert doubled(2) == 4
    spans = {s.context.span_id for s in global_provider.get_finished_spans()}
    assert len(spans) == 2  # the flow span and the checkpoint span
    progress = [e for e in captured.events if e.kind == "kitaru.checkpoint.progress"]
    assert progress and progress[0].span_id is not None
    assert int(progress[0].span_id, 16) in spans


def test_default_observers_can_be_left_out(global_provider):
    with capture_events(default_observers=False) as captured:
        assert doubled(2) == 4
    assert global_provider.get_finished_spans() == ()
    assert all(e.span_id is None for e in captured.events)


def test_without_opentelemetry_nothing_is_added():
    with capture_events() as captured:
        assert doubled(2) == 4
        assert not [o for o in captured.runtime.observers if isinstance(o, KitaruOtelObserver)]
