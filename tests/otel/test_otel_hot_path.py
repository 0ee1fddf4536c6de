"""The checkpoint span's shortcuts that skip calls which do nothing, and where they must not.

A checkpoint span's start looks its parent up once per parent context, skips the span metrics'
and the processors' calls that do nothing, and switches the current context on the API's own
``ContextVar`` (docs/opentelemetry.md, "Cost on the checkpoint path"). Each test here shows a
case where a shortcut would give a different result if it were taken, and that it is not.
"""

from __future__ import annotations

import contextvars
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from test_otel_span_starter import ATTRIBUTES, provider_with

from kitaru import checkpoint, flow
from kitaru.otel import _context, _sdk_span
from kitaru.otel._sdk_tracer import span_starter
from kitaru.runtime import current_checkpoint

DIRECT = _sdk_span.sdk_version in _sdk_span._DIRECT_START_SDK
NAME = "kitaru.checkpoint fetch"


def under(span: Any) -> otel_context.Context:
    return trace.set_span_in_context(span, otel_context.Context())


def test_each_span_gets_the_parent_of_its_own_context() -> None:
    provider, exporter = provider_with()
    tracer = provider.get_tracer("t")
    first, second = tracer.start_span("a"), tracer.start_span("b")
    start = span_starter(tracer)
    contexts = [under(first), under(second), under(first)]
    for context in contexts:
        start(NAME, context, dict(ATTRIBUTES)).end()
    parents = [s.parent for s in exporter.get_finished_spans()]
    expected = [first, second, first]
    assert [p.span_id for p in parents] == [e.get_span_context().span_id for e in expected]  # type: ignore[union-attr]
    traces = [s.context.trace_id for s in exporter.get_finished_spans()]  # type: ignore[union-attr]
    assert traces == [e.get_span_context().trace_id for e in expected]


class Shifting(NonRecordingSpan):
    """A span of the application's whose span context changes between reads."""

    def __init__(self) -> None:
        super().__init__(trace.INVALID_SPAN_CONTEXT)
        self.reads = 0

    def get_span_context(self) -> SpanContext:
        self.reads += 1
        flags = TraceFlags(TraceFlags.SAMPLED)
        return SpanContext(0xABC, self.reads, is_remote=False, trace_flags=flags)


def test_a_parent_that_is_not_the_sdks_own_span_is_read_at_every_start() -> None:
    provider, exporter = provider_with()
    start = span_starter(provider.get_tracer("t"))
    parent = Shifting()
    context = under(parent)
    for _ in range(3):
        start(NAME, context, dict(ATTRIBUTES)).end()
    spans = exporter.get_finished_spans()
    assert [s.parent.span_id for s in spans] == [1, 2, 3]  # type: ignore[union-attr]


class Recording(SpanProcessor):
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        self.calls.append(("on_start", parent_context))

    def _on_ending(self, span: Any) -> None:
        self.calls.append(("_on_ending", span.end_time))

    def on_end(self, span: ReadableSpan) -> None:
        self.calls.append(("on_end", type(span)))


def test_processors_added_later_see_every_step_of_later_spans() -> None:
    provider, exporter = provider_with()
    tracer = provider.get_tracer("t")
    context = under(tracer.start_span("parent"))
    start = span_starter(tracer)
    _sdk_span.end_own_span(start(NAME, context, dict(ATTRIBUTES)))  # the quiet processors only
    recording = Recording()
    provider.add_span_processor(recording)
    _sdk_span.end_own_span(start(NAME, context, dict(ATTRIBUTES)))
    assert [c[0] for c in recording.calls] == ["on_start", "_on_ending", "on_end"]
    assert recording.calls[0][1] is context
    assert recording.calls[1][1] is not None  # _on_ending sees the span with its end time
    assert recording.calls[2][1] is ReadableSpan
    assert len(exporter.get_finished_spans()) == 2


def test_an_sdk_processor_with_its_own_hooks_is_called() -> None:
    calls: list[str] = []
    provider, exporter = provider_with()
    tracer = provider.get_tracer("t")
    context = under(tracer.start_span("parent"))
    start = span_starter(tracer)
    _sdk_span.end_own_span(start(NAME, context, dict(ATTRIBUTES)))

    class Starting(SimpleSpanProcessor):
        def on_start(self, span: Any, parent_context: Any = None) -> None:
            calls.append("subclass on_start")

    provider.add_span_processor(Starting(InMemorySpanExporter()))
    _sdk_span.end_own_span(start(NAME, context, dict(ATTRIBUTES)))
    plain = SimpleSpanProcessor(InMemorySpanExporter())
    plain._on_ending = lambda span: calls.append("instance _on_ending")  # type: ignore[method-assign]
    provider.add_span_processor(plain)
    _sdk_span.end_own_span(start(NAME, context, dict(ATTRIBUTES)))
    assert calls == ["subclass on_start", "subclass on_start", "instance _on_ending"]
    assert len(exporter.get_finished_spans()) == 3


def test_a_span_started_without_span_start_counts_as_started(
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider, _ = provider_with()
    tracer = provider.get_tracer("t")
    span = span_starter(tracer)(NAME, under(tracer.start_span("parent")), dict(ATTRIBUTES))
    assert isinstance(span, SdkSpan) and span.start_time is not None
    span.start()
    assert "Calling start() on a started span" in caplog.text


def test_span_metrics_that_are_on_are_called_at_start_and_end() -> None:
    provider, _ = provider_with()
    tracer = provider.get_tracer("t")
    calls: list[Any] = []

    class Metrics:
        def start_span(self, parent: Any, decision: Decision) -> Any:
            calls.append(("start", parent, decision))
            return lambda: calls.append("end")

    parent_span = tracer.start_span("parent")
    tracer._tracer_metrics = Metrics()  # type: ignore[attr-defined]
    span = span_starter(tracer)(NAME, under(parent_span), dict(ATTRIBUTES))
    _sdk_span.end_own_span(span)
    assert calls == [
        ("start", parent_span.get_span_context(), Decision.RECORD_AND_SAMPLE),
        "end",
    ]


def test_span_metrics_that_are_off_leave_the_sdks_own_no_op() -> None:
    provider, _ = provider_with()
    tracer = provider.get_tracer("t")
    context = under(tracer.start_span("parent"))
    ours = span_starter(tracer)(NAME, context, dict(ATTRIBUTES))
    theirs = tracer.start_span(NAME, context, SpanKind.INTERNAL, ATTRIBUTES)
    assert ours._record_end_metrics is theirs._record_end_metrics  # type: ignore[attr-defined]
    if DIRECT:
        assert ours._record_end_metrics is _sdk_span._SDK_NOOP  # type: ignore[attr-defined]


# -- the current context ------------------------------------------------------------------------


def test_the_runtime_var_is_the_one_the_api_reads_and_writes() -> None:
    var = _context.runtime_var()
    assert var is not None
    context = under(NonRecordingSpan(trace.INVALID_SPAN_CONTEXT))
    token = otel_context.attach(context)
    try:
        assert var.get() is context
    finally:
        otel_context.detach(token)
    token = var.set(context)
    try:
        assert otel_context.get_current() is context
    finally:
        var.reset(token)
    assert otel_context.get_current() is not context


def test_another_runtime_context_or_a_patched_api_gets_no_var(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Other(ContextVarsRuntimeContext):
        pass

    monkeypatch.setattr(otel_context, "_RUNTIME_CONTEXT", Other())
    assert _context.runtime_var() is None
    monkeypatch.undo()
    monkeypatch.setattr(otel_context, "attach", lambda context: None)
    assert _context.runtime_var() is None
    monkeypatch.undo()
    assert _context.runtime_var() is not None


def test_the_span_key_gives_the_context_set_span_in_context_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = _context.span_key()
    assert key is not None
    span = NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)
    parent = otel_context.set_value("other", 1, otel_context.Context())
    ours = otel_context.Context({**parent, key: span})
    theirs = trace.set_span_in_context(span, parent)
    assert type(ours) is type(theirs) and list(ours.items()) == list(theirs.items())
    assert trace.get_current_span(ours) is span
    monkeypatch.setattr(trace, "set_span_in_context", lambda span, context=None: context)
    assert _context.span_key() is None


@checkpoint
def inner() -> int:
    with trace.get_tracer("user").start_as_current_span("user work"):
        return 1


@flow
def nested() -> int:
    return inner()


@pytest.mark.parametrize("patched", [False, True], ids=["own-var", "api"])
def test_spans_nest_the_same_with_or_without_the_runtime_var(
    monkeypatch: pytest.MonkeyPatch, make_traced: Any, patched: bool
) -> None:
    if patched:  # another runtime context: the bridge calls the API
        monkeypatch.setattr(otel_context, "_RUNTIME_CONTEXT", ContextVarsRuntimeContext())
        assert _context.runtime_var() is not None  # same class, its own var: still the fast way
        monkeypatch.setattr(_context, "_RUNTIME", ())
        assert _context.runtime_var() is None
    t = make_traced()
    trace.set_tracer_provider(t.provider)
    before = otel_context.get_current()
    assert nested() == 1
    assert otel_context.get_current() is before
    spans = {s.name: s for s in t.exporter.get_finished_spans()}
    flow_span, ckpt, user = (
        spans["kitaru.flow nested"],
        spans["kitaru.checkpoint inner"],
        spans["user work"],
    )
    assert ckpt.parent.span_id == flow_span.context.span_id  # type: ignore[union-attr]
    assert user.parent.span_id == ckpt.context.span_id  # type: ignore[union-attr]


def test_the_span_builder_checks_its_containers_limits() -> None:
    provider, _ = provider_with()
    tracer: Any = provider.get_tracer("t")
    args = (
        "kitaru.checkpoint",
        trace.INVALID_SPAN_CONTEXT,
        trace.INVALID_SPAN_CONTEXT,
        tracer.sampler,
        tracer.resource,
        tracer.span_processor,
        tracer.instrumentation_info,
        tracer._instrumentation_scope,
        tracer._span_limits,
    )
    span_class = _sdk_span.SDK_SPAN_CLASS
    build = _sdk_span._span_builder(span_class, tracer)
    assert (build is not None) is DIRECT
    if build is None:
        return
    made = _sdk_span._construct(span_class, *args)
    assert _sdk_span._same_fields(build(*args), made)
    for field in ("_events", "_links"):
        other = build(*args)
        setattr(other, field, BoundedList(3))
        assert not _sdk_span._same_fields(other, made)
    other = build(*args)
    other._attributes.maxlen = 3
    assert not _sdk_span._same_fields(other, made)


def test_a_context_reset_that_fails_is_logged_as_the_apis_detach_logs_it(
    make_traced: Any, caplog: pytest.LogCaptureFixture
) -> None:
    t = make_traced()
    failures_before = dict(t.capture.runtime.observer_failures())

    @checkpoint
    def restarted() -> int:
        # The bridge's state for this checkpoint replaced by one whose context was set in
        # another contextvars context: resetting its token here fails.
        scope = current_checkpoint()
        contextvars.copy_context().run(t.bridge.on_checkpoint_start, scope)
        return 1

    @flow
    def run() -> int:
        return restarted()

    before = otel_context.get_current()
    assert run() == 1
    assert "Failed to detach context" in caplog.text
    assert t.capture.runtime.observer_failures() == failures_before  # not the bridge's failure
    assert otel_context.get_current() is before
    names = [s.name for s in t.exporter.get_finished_spans()]
    assert names.count("kitaru.checkpoint restarted") == 1  # the replacing span, ended
