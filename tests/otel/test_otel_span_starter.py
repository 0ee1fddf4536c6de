"""Checkpoint spans started with kitaru's own attributes: the same span as the SDK's public path.

``span_starter`` stores attributes kitaru built itself without the SDK checking them again, only
where nothing can tell the difference (docs/opentelemetry.md, "Cost on the checkpoint path");
everywhere else it takes the public path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import NoOpTracer, SpanKind

from kitaru.otel import _sdk_tracer
from kitaru.otel._sdk_tracer import TraceIdRatioSampler, set_own_attribute, span_starter

ATTRIBUTES: dict[str, Any] = {
    "kitaru.execution.id": "e1",
    "kitaru.flow.name": "f",
    "kitaru.checkpoint.name": "fetch",
    "kitaru.checkpoint.type": "checkpoint",
    "kitaru.checkpoint.id": "c1",
    "kitaru.checkpoint.step": "fetch_2",
    "kitaru.checkpoint.attempt": 2,
    "kitaru.correlation_id": "kitaru.checkpoint:fetch:" + "ab" * 16,
}


class Checks:
    """Counts the SDK's checks of checkpoint span attributes (``BoundedAttributes._set_items``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = BoundedAttributes._set_items

        def counted(bounded: BoundedAttributes, attributes: Mapping[str, Any]) -> None:
            if "kitaru.checkpoint.id" in attributes:
                self.count += 1
            original(bounded, attributes)

        monkeypatch.setattr(BoundedAttributes, "_set_items", counted)


def provider_with(
    *processors: SpanProcessor, sampler: Sampler | None = None, limits: SpanLimits | None = None
) -> tuple[TracerProvider, InMemorySpanExporter]:
    provider = TracerProvider(sampler=sampler, span_limits=limits)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    for processor in processors:
        provider.add_span_processor(processor)
    return provider, exporter


def both(provider: TracerProvider, exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    """One span started by the starter and one by ``start_span``, under the same parent."""
    tracer = provider.get_tracer("t")
    parent_span = tracer.start_span("parent")
    parent = trace.set_span_in_context(parent_span, otel_context.Context())
    span_starter(tracer)("kitaru.checkpoint fetch", parent, dict(ATTRIBUTES)).end()
    tracer.start_span("kitaru.checkpoint fetch", parent, SpanKind.INTERNAL, ATTRIBUTES).end()
    parent_span.end()
    return list(exporter.get_finished_spans())[:2]


def same(spans: Sequence[ReadableSpan]) -> None:
    fast, public = spans
    assert fast.name == public.name and fast.kind == public.kind
    assert fast.parent is not None and public.parent is not None
    assert fast.parent.span_id == public.parent.span_id
    assert list(fast.attributes.items()) == list(public.attributes.items())  # order too
    assert fast.dropped_attributes == public.dropped_attributes


@pytest.mark.parametrize(
    "sampler",
    [None, ALWAYS_ON, ParentBased(TraceIdRatioSampler(1.0))],
    ids=["default", "always-on", "parent-based-ratio"],
)
def test_known_samplers_and_quiet_processors_skip_the_second_check(
    monkeypatch: pytest.MonkeyPatch, sampler: Sampler | None
) -> None:
    checks = Checks(monkeypatch)
    provider, exporter = provider_with(sampler=sampler)
    spans = both(provider, exporter)
    same(spans)
    assert dict(spans[0].attributes) == ATTRIBUTES
    # the public path's span is checked; the starter's is not
    assert checks.count == 1


class ReadsAttributes(Sampler):
    """Samples only checkpoint spans of attempt 2: it reads the attributes."""

    def should_sample(self, parent_context: Any, trace_id: int, name: str, *args: Any,
                      **kwargs: Any) -> SamplingResult:  # fmt: skip
        attributes = args[1] if len(args) > 1 else kwargs.get("attributes")
        attempt = (attributes or {}).get("kitaru.checkpoint.attempt")
        keep = name == "parent" or attempt == 2
        return SamplingResult(Decision.RECORD_AND_SAMPLE if keep else Decision.DROP, attributes)

    def get_description(self) -> str:
        return "ReadsAttributes"


def test_a_sampler_that_reads_attributes_gets_them(monkeypatch: pytest.MonkeyPatch) -> None:
    checks = Checks(monkeypatch)
    provider, exporter = provider_with(sampler=ReadsAttributes())
    spans = both(provider, exporter)
    same(spans)
    assert dict(spans[0].attributes) == ATTRIBUTES
    assert checks.count == 2


class SeesStart(SpanProcessor):
    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        if span.name.startswith("kitaru."):
            self.seen.append(dict(span.attributes))


def test_a_processor_that_looks_at_the_start_sees_every_attribute() -> None:
    watcher = SeesStart()
    provider, exporter = provider_with(watcher)
    same(both(provider, exporter))
    assert watcher.seen == [ATTRIBUTES, ATTRIBUTES]


def test_a_processor_added_later_is_noticed(monkeypatch: pytest.MonkeyPatch) -> None:
    checks = Checks(monkeypatch)
    provider, exporter = provider_with()
    tracer = provider.get_tracer("t")
    start = span_starter(tracer)
    start("kitaru.checkpoint a", otel_context.Context(), dict(ATTRIBUTES)).end()
    assert checks.count == 0
    watcher = SeesStart()
    provider.add_span_processor(watcher)
    start("kitaru.checkpoint b", otel_context.Context(), dict(ATTRIBUTES)).end()
    assert watcher.seen == [ATTRIBUTES]
    assert [dict(s.attributes) for s in exporter.get_finished_spans()] == [ATTRIBUTES] * 2


@pytest.mark.parametrize(
    "limits",
    [SpanLimits(max_span_attribute_length=4), SpanLimits(max_span_attributes=3)],
    ids=["value-length", "attribute-count"],
)
def test_span_limits_apply_as_in_the_sdk(limits: SpanLimits) -> None:
    provider, exporter = provider_with(limits=limits)
    spans = both(provider, exporter)
    same(spans)
    assert dict(spans[0].attributes) != ATTRIBUTES  # the limit did cut something


def test_unsampled_and_non_sdk_tracers() -> None:
    provider, exporter = provider_with(sampler=ALWAYS_OFF)
    span = span_starter(provider.get_tracer("t"))("x", otel_context.Context(), ATTRIBUTES)
    assert not span.is_recording()
    span.end()
    assert exporter.get_finished_spans() == ()
    span = span_starter(NoOpTracer())("x", otel_context.Context(), ATTRIBUTES)
    assert not span.get_span_context().is_valid


def _status_both_ways(limits: SpanLimits | None, *, end_first: bool = False) -> list[ReadableSpan]:
    """The status set by ``set_own_attribute`` on one span and by ``set_attribute`` on another."""
    provider, exporter = provider_with(limits=limits)
    tracer = provider.get_tracer("t")
    for setter in (set_own_attribute, lambda s, k, v: s.set_attribute(k, v)):
        span = tracer.start_span("kitaru.checkpoint fetch", attributes=ATTRIBUTES)
        span.set_attribute("kitaru.checkpoint.status", "running")  # replaced: moves to the end
        span.set_attribute("user.key", "v")
        if end_first:
            span.end()
        setter(span, "kitaru.checkpoint.status", "returned")
        if not end_first:
            span.end()
    return list(exporter.get_finished_spans())


@pytest.mark.parametrize(
    "limits",
    [
        None,
        SpanLimits(max_span_attributes=3),
        SpanLimits(max_span_attribute_length=4),
        SpanLimits(max_span_attributes=0),
    ],
    ids=["default", "attribute-count", "value-length", "no-attributes"],
)
def test_the_status_is_stored_as_set_attribute_stores_it(limits: SpanLimits | None) -> None:
    fast, public = _status_both_ways(limits)
    assert fast.dropped_attributes == public.dropped_attributes
    assert list(fast.attributes.items()) == list(public.attributes.items())
    if limits is None:
        assert list(fast.attributes.items())[-1] == ("kitaru.checkpoint.status", "returned")


def test_the_status_is_not_stored_on_an_ended_span() -> None:
    fast, public = _status_both_ways(None, end_first=True)
    assert fast.attributes.get("kitaru.checkpoint.status") == "running"
    assert dict(fast.attributes) == dict(public.attributes)


def test_the_status_on_spans_that_are_not_the_sdks() -> None:
    calls: list[tuple[str, Any]] = []

    class Recorded(trace.NonRecordingSpan):
        def set_attribute(self, key: str, value: Any) -> None:
            calls.append((key, value))

    set_own_attribute(Recorded(trace.INVALID_SPAN_CONTEXT), "kitaru.checkpoint.status", "failed")
    assert calls == [("kitaru.checkpoint.status", "failed")]
    set_own_attribute(trace.INVALID_SPAN, "kitaru.checkpoint.status", "failed")  # no error


def test_an_sdk_without_the_private_store_takes_the_public_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    original = SdkSpan.set_attribute

    def counted(span: SdkSpan, key: str, value: Any) -> None:
        calls.append(key)
        original(span, key, value)

    monkeypatch.setattr(_sdk_tracer, "_SETITEM_LOCKED", None)
    monkeypatch.setattr(SdkSpan, "set_attribute", counted)
    fast, public = _status_both_ways(None)
    assert calls.count("kitaru.checkpoint.status") == 4  # "running" and "returned", twice
    assert list(fast.attributes.items()) == list(public.attributes.items())
