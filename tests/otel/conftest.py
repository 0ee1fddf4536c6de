"""Fixtures of the OpenTelemetry tests: an in-memory provider and clean OTel globals."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry._logs import _internal as logs_api
from opentelemetry.metrics import _internal as metrics_api
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once
from spantree import S, from_sdk, render

import kitaru.otel
from kitaru.otel import KitaruOtelObserver
from kitaru.testing import EventCapture, capture_events


def reset_trace_globals() -> None:
    """The global providers can be set once per process; tests need them unset again."""
    trace._TRACER_PROVIDER_SET_ONCE = Once()  # type: ignore[attr-defined]
    trace._TRACER_PROVIDER = None  # type: ignore[attr-defined]
    logs_api._LOGGER_PROVIDER_SET_ONCE = Once()
    logs_api._LOGGER_PROVIDER = None
    metrics_api._METER_PROVIDER_SET_ONCE = Once()
    metrics_api._METER_PROVIDER = None


@pytest.fixture(autouse=True)
def clean_otel() -> Iterator[None]:
    reset_trace_globals()
    kitaru.otel.shutdown(timeout=2.0)
    yield
    kitaru.otel.shutdown(timeout=2.0)
    reset_trace_globals()


@dataclass
class Traced:
    provider: TracerProvider
    exporter: InMemorySpanExporter
    capture: EventCapture
    bridge: KitaruOtelObserver

    def spans(self) -> list[S]:
        return from_sdk(self.exporter.get_finished_spans())

    def tree(self, *, events: bool = True) -> list[str]:
        return render(self.spans(), events=events)


@pytest.fixture
def make_traced(tmp_path: Any) -> Iterator[Callable[..., Traced]]:
    """``make_traced(**opts)``: a capture whose runtime has a bridge on an in-memory provider."""
    stack: list[Any] = []

    def make(**options: Any) -> Traced:
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        bridge = KitaruOtelObserver(tracer_provider=provider, **options)
        cm = capture_events(tmp_path / f"home-{len(stack)}", observers=(bridge,))
        capture = cm.__enter__()
        stack.append(cm)
        return Traced(provider, exporter, capture, bridge)

    yield make
    while stack:
        stack.pop().__exit__(None, None, None)


@pytest.fixture
def traced(make_traced: Callable[..., Traced]) -> Traced:
    return make_traced()
