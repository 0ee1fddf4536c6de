"""Checkpoint spans under a sampled parent span of this process, built without the sampler's calls.

``span_starter`` builds such a span with the calls ``Tracer.start_span`` makes after an
always-on sampler's decision (docs/opentelemetry.md, "Cost on the checkpoint path"). These tests
compare that span with the public path's, field by field, and show every case that must take
the public path instead.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    StaticSampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, TraceState
from test_otel_span_starter import ATTRIBUTES, provider_with

from kitaru.otel import _sdk_span, _sdk_tracer
from kitaru.otel._sdk_tracer import span_starter

DIRECT = _sdk_span.sdk_version in _sdk_span._DIRECT_START_SDK

# Fields of a span that differ between any two spans, whichever path started them.
_OWN = {"_context", "_lock", "_start_time", "_end_time", "_record_end_metrics"}


def fields(span: Any) -> dict[str, Any]:
    """Everything the span holds, in comparable form (containers by content and limits)."""
    out: dict[str, Any] = {"class": type(span), "order": list(vars(span))}
    for key, value in vars(span).items():
        if key in _OWN:
            continue
        if key == "_attributes":
            value = (
                type(value),
                list(value.items()),
                value.maxlen,
                value.max_value_len,
                value.dropped,
                value._immutable,
            )
        elif key in ("_events", "_links"):
            items = [(type(e), getattr(e, "name", None), dict(e.attributes or {})) for e in value]
            value = (type(value), items, value._dq.maxlen, value.dropped)
        elif key == "_status":
            value = (value.status_code, value.description)
        out[key] = value
    context = span.get_span_context()
    out["context"] = (
        type(context),
        context.is_remote,
        type(context.trace_flags),
        int(context.trace_flags),
        context.trace_state,
        len(vars(span)),
    )
    return out


class Sampling:
    """Counts the sampler calls of the spans started under kitaru's checkpoint name."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original = StaticSampler.should_sample

        def counted(sampler: StaticSampler, *args: Any, **kwargs: Any) -> Any:
            name = args[2] if len(args) > 2 else kwargs.get("name")
            if name == "kitaru.checkpoint fetch":
                self.calls += 1
            return original(sampler, *args, **kwargs)

        # The direct start checked StaticSampler.should_sample when it was made: patch first.
        monkeypatch.setattr(StaticSampler, "should_sample", counted)
        monkeypatch.setattr(_sdk_span, "_SDK_SHOULD_SAMPLE", (ParentBased.should_sample, counted))
        monkeypatch.setattr(
            _sdk_tracer, "_PASS_THROUGH", (counted, TraceIdRatioBased.should_sample)
        )


def pair(
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    parent: otel_context.Context | None = None,
) -> tuple[list[ReadableSpan], list[SdkSpan]]:
    """A span from the starter and one from ``start_span`` under the same parent, both ended."""
    tracer = provider.get_tracer("t", "1.0")
    parent_span = tracer.start_span("parent")
    if parent is None:
        parent = trace.set_span_in_context(parent_span, otel_context.Context())
    fast = span_starter(tracer)("kitaru.checkpoint fetch", parent, dict(ATTRIBUTES))
    public = tracer.start_span("kitaru.checkpoint fetch", parent, SpanKind.INTERNAL, ATTRIBUTES)
    live = [fast, public]  # type: ignore[list-item]
    for span in live:
        span.end()
    parent_span.end()
    return [s for s in exporter.get_finished_spans() if s.name != "parent"], live  # type: ignore[return-value]


def exported_same(spans: list[ReadableSpan]) -> None:
    fast, public = spans
    assert fields(fast) == fields(public)
    assert fast.parent == public.parent
    assert fast.context.trace_id == public.context.trace_id
    assert fast.context.span_id != public.context.span_id
    assert fast.start_time is not None and public.start_time is not None
    assert fast.end_time is not None and fast.start_time <= fast.end_time <= public.end_time  # type: ignore[operator]


@pytest.mark.parametrize(
    "sampler",
    [None, ALWAYS_ON, ParentBased(ALWAYS_ON)],
    ids=["default", "always-on", "parent-based-always-on"],
)
def test_under_a_sampled_local_parent_the_span_is_the_public_paths(
    monkeypatch: pytest.MonkeyPatch, sampler: Sampler | None
) -> None:
    sampling = Sampling(monkeypatch)
    provider, exporter = provider_with(sampler=sampler)
    spans, live = pair(provider, exporter)
    exported_same(spans)
    assert fields(live[0]) == fields(live[1])
    # where the direct start applies, only the public path's span asked the sampler
    assert sampling.calls == (1 if DIRECT else 2)


def test_a_random_trace_id_flag_and_trace_state_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    sampling = Sampling(monkeypatch)
    provider, exporter = provider_with()
    tracer = provider.get_tracer("t")
    parent_span = tracer.start_span("parent")
    context = parent_span.get_span_context()
    local = SpanContext(
        context.trace_id,
        context.span_id,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID),
        trace_state=TraceState([("k", "v")]),
    )
    parent = trace.set_span_in_context(NonRecordingSpan(local), otel_context.Context())
    spans, _ = pair(provider, exporter, parent)
    exported_same(spans)
    assert int(spans[0].context.trace_flags) == TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID
    assert spans[0].context.trace_state == TraceState([("k", "v")])
    assert sampling.calls == (1 if DIRECT else 2)


def remote_parent() -> otel_context.Context:
    remote = SpanContext(1, 2, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    return trace.set_span_in_context(NonRecordingSpan(remote), otel_context.Context())


def unsampled_parent() -> otel_context.Context:
    local = SpanContext(1, 2, is_remote=False, trace_flags=TraceFlags(TraceFlags.DEFAULT))
    return trace.set_span_in_context(NonRecordingSpan(local), otel_context.Context())


@pytest.mark.parametrize(
    "parent",
    [remote_parent, unsampled_parent, otel_context.Context],
    ids=["remote-parent", "unsampled-parent", "no-parent"],
)
def test_other_parents_ask_the_sampler(monkeypatch: pytest.MonkeyPatch, parent: Any) -> None:
    sampling = Sampling(monkeypatch)
    provider, exporter = provider_with()
    tracer = provider.get_tracer("t")
    start = span_starter(tracer)
    for span in (
        start("kitaru.checkpoint fetch", parent(), dict(ATTRIBUTES)),
        tracer.start_span("kitaru.checkpoint fetch", parent(), SpanKind.INTERNAL, ATTRIBUTES),
    ):
        span.end()
    assert sampling.calls == 2
    spans = list(exporter.get_finished_spans())
    assert [fields(s) for s in spans[:1]] == [fields(s) for s in spans[1:]]


@pytest.mark.parametrize(
    ("sampler", "limits"),
    [
        (ParentBased(TraceIdRatioBased(1.0), local_parent_sampled=TraceIdRatioBased(1.0)), None),
        (None, SpanLimits(max_span_attribute_length=4)),
        (None, SpanLimits(max_span_attributes=3)),
    ],
    ids=["ratio-for-local-parents", "value-length", "attribute-count"],
)
def test_other_samplers_and_cutting_limits_take_the_public_path(
    sampler: Sampler | None, limits: SpanLimits | None
) -> None:
    provider, exporter = provider_with(sampler=sampler, limits=limits)
    tracer = provider.get_tracer("t")
    if sampler is not None:
        assert _sdk_span.direct_start(tracer) is None  # type: ignore[arg-type]
    spans, _ = pair(provider, exporter)
    exported_same(spans)
    if limits is not None:
        assert dict(spans[0].attributes) != ATTRIBUTES  # the limit did cut something


def test_a_disabled_tracer_or_a_replaced_sampler_takes_the_public_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sampling = Sampling(monkeypatch)
    provider, _ = provider_with()
    tracer = provider.get_tracer("t")
    parent_span = tracer.start_span("parent")
    parent = trace.set_span_in_context(parent_span, otel_context.Context())
    start = span_starter(tracer)
    tracer.sampler = ParentBased(ALWAYS_ON)  # type: ignore[attr-defined]
    start("kitaru.checkpoint fetch", parent, dict(ATTRIBUTES)).end()
    assert sampling.calls == 1
    start = span_starter(tracer)
    tracer.sampler._local_parent_sampled = ALWAYS_OFF  # type: ignore[attr-defined]
    span = start("kitaru.checkpoint fetch", parent, dict(ATTRIBUTES))
    assert not span.is_recording()  # the replaced delegate decided
    assert sampling.calls == 2
    tracer._tracer_config.is_enabled = False  # type: ignore[attr-defined]
    span = start("kitaru.checkpoint fetch", parent, dict(ATTRIBUTES))
    assert not span.is_recording()
    assert sampling.calls == 2


def test_other_sdk_versions_take_the_public_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_sdk_span, "_DIRECT_START_SDK", frozenset())
    sampling = Sampling(monkeypatch)
    provider, exporter = provider_with()
    assert _sdk_span.direct_start(provider.get_tracer("t")) is None  # type: ignore[arg-type]
    spans, _ = pair(provider, exporter)
    exported_same(spans)
    assert sampling.calls == 2


def test_spans_started_on_many_threads_keep_their_own_ids() -> None:
    provider, exporter = provider_with()
    tracer = provider.get_tracer("t")
    parent_span = tracer.start_span("parent")
    parent = trace.set_span_in_context(parent_span, otel_context.Context())
    start = span_starter(tracer)

    def work() -> None:
        for _ in range(200):
            start("kitaru.checkpoint fetch", parent, dict(ATTRIBUTES)).end()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    spans = exporter.get_finished_spans()
    assert len(spans) == 800
    assert len({s.context.span_id for s in spans}) == 800
    assert all(s.parent == parent_span.get_span_context() for s in spans)
    assert all(dict(s.attributes) == ATTRIBUTES for s in spans)


def test_the_span_builder_is_checked_against_the_sdks_constructor() -> None:
    provider, _ = provider_with()
    tracer = provider.get_tracer("t")
    span_class = sdk_trace._Span
    # on the SDK it was compared with, a checkpoint span is built field by field
    assert (_sdk_span._span_builder(span_class, tracer) is not None) is DIRECT

    class MoreFields(span_class):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.extra = 1

    class OtherDefaults(span_class):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._record_exception = False

    assert _sdk_span._span_builder(MoreFields, tracer) is None
    assert _sdk_span._span_builder(OtherDefaults, tracer) is None


def test_a_span_ended_by_end_own_span_is_exported_as_span_end_exports_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider, exporter = provider_with()
    tracer = provider.get_tracer("t", "1.0")
    parent = trace.set_span_in_context(tracer.start_span("parent"), otel_context.Context())
    start = span_starter(tracer)
    ours = start("kitaru.checkpoint fetch", parent, dict(ATTRIBUTES))
    theirs = start("kitaru.checkpoint fetch", parent, dict(ATTRIBUTES))
    for span in (ours, theirs):
        span.add_event("e", {"k": 1})
        span.set_attribute("kitaru.checkpoint.status", "returned")
    _sdk_span.end_own_span(ours)
    theirs.end()
    fast, public = exporter.get_finished_spans()
    assert type(fast) is type(public) is ReadableSpan
    assert fields(fast) == fields(public)
    assert fast.parent == public.parent
    assert fast.end_time is not None and fast.start_time <= fast.end_time <= public.end_time  # type: ignore[operator]
    assert [(e.name, dict(e.attributes or {})) for e in fast.events] == [("e", {"k": 1})]
    assert (_sdk_span._COPY_READABLE is not None) is DIRECT
    # ended twice: the SDK's own warning, nothing exported again
    _sdk_span.end_own_span(ours)
    assert "ended span" in caplog.text
    assert len(exporter.get_finished_spans()) == 2


def test_end_own_span_on_spans_that_are_not_the_sdks() -> None:
    ended: list[str] = []

    class Recorded(trace.NonRecordingSpan):
        def end(self, end_time: int | None = None) -> None:
            ended.append("end")

    _sdk_span.end_own_span(Recorded(trace.INVALID_SPAN_CONTEXT))
    assert ended == ["end"]
    _sdk_span.end_own_span(trace.INVALID_SPAN)  # no error
