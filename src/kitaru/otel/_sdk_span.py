"""Checkpoint spans made and ended on an OpenTelemetry SDK tracer with the SDK's own steps.

Part of the SDK-facing code next to :mod:`kitaru.otel._sdk_tracer` (which decides when a
checkpoint span may be started with attributes kitaru built itself): under a sampled parent
span of this process with an always-on decision for such parents, a checkpoint span is made
with the calls ``Tracer.start_span`` makes after that decision, its fields filled the way the
SDK's span constructor fills them; at its end, the ``ReadableSpan`` handed to the processors is
copied field by field. Both are used only on the SDK version they were compared with and are
checked against the SDK's own constructor and copy; anything else takes the SDK's public path
(docs/opentelemetry.md, "Cost on the checkpoint path").
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import trace as trace_api
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, SynchronousMultiSpanProcessor
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, StaticSampler
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.version import __version__ as sdk_version

try:  # private to the SDK; a version without it never takes the direct start
    from opentelemetry.sdk.trace import _tracer_metrics
except ImportError:  # pragma: no cover
    _tracer_metrics = None  # type: ignore[assignment]
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

if TYPE_CHECKING:
    from opentelemetry import context as otel_context
    from opentelemetry.trace import Span
    from opentelemetry.util.types import AttributeValue

__all__ = ["SDK_SPAN_CLASS", "direct_start", "end_own_span"]

logger = logging.getLogger("kitaru.otel")

# The class of the SDK's spans (Tracer.start_span makes this private subclass of Span).
SDK_SPAN_CLASS: type = getattr(sdk_trace, "_Span", SdkSpan)
_SDK_START = SdkSpan.start
# The SDK's span metrics when they are off: a start that hands back a function doing nothing.
_NOOP_METRICS: Any = getattr(_tracer_metrics, "NoOpTracerMetrics", None)
_SDK_NOOP_START: Any = getattr(_NOOP_METRICS, "start_span", None)
_SDK_NOOP: Any = getattr(_tracer_metrics, "noop", None)


# -- a checkpoint span under a sampled parent span of this process, built directly -------------
#
# Under a sampled, valid parent span of this process, the SDK's ``ALWAYS_ON`` sampler (alone, or
# as ``ParentBased``'s ``local_parent_sampled``: the SDK's default sampler) always decides
# "record and sample", adds no attributes and keeps the parent's trace state. For that case,
# ``direct_start`` makes exactly the calls ``Tracer.start_span`` makes after the sampler, in the
# same order and with the same arguments (the span ID from the tracer's generator, the tracer's
# own span metrics, ``_Span`` with the tracer's resource, processor, limits and scope, then
# ``start``), with the attributes in the span's container before ``start`` as ``start_span``
# puts them there. The sampler's call chain, its result object and the parent lookups it
# repeats are what it saves (about a quarter of the SDK's start; benchmarks/README.md, "Where
# the time goes"). It is only used on an SDK whose ``start_span`` it was compared with
# (``_DIRECT_START_SDK``: the tests compare the two spans field by field), on the SDK's own
# tracer class and span class, and only while the tracer's sampler is the one checked here;
# anything else (another parent, sampler, limits that cut, a disabled tracer) answers ``None``
# and the caller (``kitaru.otel._sdk_tracer.span_starter``) takes its other paths.

_DIRECT_START_SDK = frozenset({"1.45.2"})
# The SDK's own methods, as imported (with a patched sampler method there is no direct start).
_SDK_SHOULD_SAMPLE = (ParentBased.should_sample, StaticSampler.should_sample)


def _always_on(sampler: object) -> bool:
    return (
        type(sampler) is StaticSampler
        and StaticSampler.should_sample is _SDK_SHOULD_SAMPLE[1]
        and getattr(sampler, "_decision", None) is Decision.RECORD_AND_SAMPLE
    )


def _local_sampled_delegate(sampler: object) -> object:
    """The sampler that decides a span under a sampled local parent, as ``sampler`` would."""
    if type(sampler) is ParentBased:
        if ParentBased.should_sample is not _SDK_SHOULD_SAMPLE[0]:
            return None
        return getattr(sampler, "_local_parent_sampled", None)
    return sampler


def direct_start(
    tracer: SdkTracer,
) -> Callable[[str, otel_context.Context, Mapping[str, AttributeValue]], Span | None] | None:
    """Build spans under a sampled local parent as ``tracer.start_span`` does, or ``None``."""
    span_class = getattr(sdk_trace, "_Span", None)
    sampler = getattr(tracer, "sampler", None)
    delegate = _local_sampled_delegate(sampler)
    if (
        sdk_version not in _DIRECT_START_SDK
        or type(tracer).start_span is not SdkTracer.start_span
        or span_class is None
        or not issubclass(span_class, SdkSpan)
        or not _always_on(delegate)
        or not all(
            hasattr(tracer, name)
            for name in ("_is_enabled", "_tracer_metrics", "_span_limits", "id_generator")
        )
    ):
        return None
    # TraceFlags is an immutable int: one instance of each value serves every span.
    sampled = TraceFlags(TraceFlags.SAMPLED)
    sampled_random = TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)
    record_and_sample = Decision.RECORD_AND_SAMPLE
    get_current_span = trace_api.get_current_span
    build = _span_builder(span_class, tracer)
    starts_quietly = build is not None and span_class.start is _SDK_START
    # The parent context last started under (a flow's checkpoints all start under the flow's
    # context) and what ``start_span`` reads from it: a ``Context`` cannot change, nor can the
    # span context of the SDK's own span in it, so the lookup is done once per parent context.
    # ``None``: that context takes the public path. One tuple, replaced whole (threads).
    seen: list[tuple[Any, Any]] = [(None, None)]
    # The multi-processor's tuple last checked and whether its processors are all quiet.
    quiet: list[tuple[Any, bool]] = [(None, False)]

    def parent_of(context: otel_context.Context) -> tuple[Any, ...] | None:
        parent_span = get_current_span(context)
        parent = parent_span.get_span_context()
        if (
            type(parent) is not SpanContext
            or not parent.is_valid
            or parent.is_remote
            or not parent.trace_flags.sampled
        ):
            return None
        found = (
            parent,
            parent.trace_id,
            sampled_random if parent.trace_flags.random_trace_id else sampled,
            parent.trace_state,
        )
        if type(parent_span) is span_class:  # its span context is fixed: remember it
            seen[0] = (context, found)
        return found

    def direct(
        name: str, context: otel_context.Context, attributes: Mapping[str, AttributeValue]
    ) -> Span | None:
        if (
            tracer.sampler is not sampler
            or getattr(sampler, "_local_parent_sampled", delegate) is not delegate
            or not tracer._is_enabled()
        ):
            return None
        last_context, found = seen[0]
        if context is not last_context:
            found = parent_of(context)
        if found is None:
            return None
        parent, trace_id, trace_flags, trace_state = found
        limits = tracer._span_limits
        if (
            type(limits) is not SpanLimits
            or limits.max_span_attribute_length is not None
            or (
                limits.max_span_attributes is not None
                and limits.max_span_attributes < len(attributes)
            )
        ):
            return None
        span_context = SpanContext(
            trace_id,
            tracer.id_generator.generate_span_id(),
            is_remote=False,
            trace_flags=trace_flags,
            trace_state=trace_state,
        )
        metrics = tracer._tracer_metrics
        record_end_metrics = (
            _SDK_NOOP
            if type(metrics) is _NOOP_METRICS and _NOOP_METRICS.start_span is _SDK_NOOP_START
            else metrics.start_span(parent, record_and_sample)
        )
        resource, processor = tracer.resource, tracer.span_processor
        info, scope = tracer.instrumentation_info, tracer._instrumentation_scope
        span: SdkSpan
        if build is not None and type(attributes) is dict:
            span = build(
                name, span_context, parent, sampler, resource, processor, info, scope, limits
            )
            span._record_end_metrics = record_end_metrics
            # Checked above: no value-length limit, room for every attribute (the SDK's check
            # would store each of kitaru's values as it is, in this order). The caller's fresh
            # dict (SpanStarter) becomes the container's store as it is.
            span._attributes._dict = attributes  # type: ignore[union-attr]
            processors = getattr(processor, "_span_processors", None)
            checked, quiet_start = quiet[0]
            if processors is not checked:
                quiet_start = _quiet_processors_of(processor) is not None
                quiet[0] = (processors, quiet_start)
            if starts_quietly and quiet_start:
                # What Span.start does for a span no other thread has seen yet: its start
                # time, then the processors' on_start, which do nothing here.
                span._start_time = _TIME_NS()
            else:
                span.start(start_time=None, parent_context=context)
            return span
        span = _construct(
            span_class,
            name,
            span_context,
            parent,
            sampler,
            resource,
            processor,
            info,
            scope,
            limits,
        )
        span._record_end_metrics = record_end_metrics
        bounded = span._attributes
        if type(bounded) is BoundedAttributes:
            bounded._dict.update(attributes)
        else:  # never on the SDK versions above
            span.set_attributes(attributes)
        span.start(start_time=None, parent_context=context)
        return span

    return direct


# The SDK's processors whose on_start and _on_ending do nothing (their own methods, as
# imported), and the multi-processor's own loops over them.
_QUIET_PROCESSORS = (BatchSpanProcessor, SimpleSpanProcessor)
_QUIET_HOOKS = {cls: (cls.on_start, cls._on_ending, cls.on_end) for cls in _QUIET_PROCESSORS}
_MULTI_HOOKS = (
    SynchronousMultiSpanProcessor.on_start,
    SynchronousMultiSpanProcessor._on_ending,
    SynchronousMultiSpanProcessor.on_end,
)


def _quiet_processors_of(processor: object) -> tuple[Any, ...] | None:
    """The processors behind the SDK's multi-processor when theirs are the SDK's quiet ones.

    That is: ``processor`` is the SDK's ``SynchronousMultiSpanProcessor`` with its own loops,
    and each processor in it is the SDK's batch or simple processor with that class's own
    ``on_start``, ``_on_ending`` and ``on_end`` (the first two do nothing). ``None`` otherwise.
    """
    cls = type(processor)
    if (
        cls is not SynchronousMultiSpanProcessor
        or (cls.on_start, cls._on_ending, cls.on_end) != _MULTI_HOOKS
    ):
        return None
    processors = getattr(processor, "_span_processors", None)
    if type(processors) is not tuple:
        return None
    for p in processors:
        own = _QUIET_HOOKS.get(type(p))
        if own is None or (type(p).on_start, type(p)._on_ending, type(p).on_end) != own:
            return None
        if vars(p).keys() & {"on_start", "_on_ending", "on_end"}:
            return None
    return processors


_SpanBuilder = Callable[..., SdkSpan]


def _construct(
    span_class: type[SdkSpan],
    name: str,
    context: SpanContext,
    parent: SpanContext,
    sampler: Sampler,
    resource: Any,
    processor: Any,
    info: Any,
    scope: Any,
    limits: SpanLimits,
) -> SdkSpan:
    """The span ``Tracer.start_span`` constructs (its span metrics set by the caller)."""
    return span_class(
        name=name,
        context=context,
        parent=parent,
        sampler=sampler,
        resource=resource,
        attributes=None,
        span_processor=processor,
        kind=SpanKind.INTERNAL,
        links=(),
        instrumentation_info=info,
        record_exception=True,
        set_status_on_exception=True,
        limits=limits,
        instrumentation_scope=scope,
        record_end_metrics=None,
    )


def _span_builder(span_class: type[SdkSpan], tracer: SdkTracer) -> _SpanBuilder | None:
    """What ``span_class(...)`` does for a checkpoint span, field by field, or ``None``.

    ``Span.__init__`` (with ``ReadableSpan.__init__`` through ``super()``) stores its arguments,
    a lock, an empty attribute container and two empty bounded lists, in that order; the
    builder stores the same fields in the same order with the same values, without the keyword
    calls. Checked once here against a span the constructor makes from the tracer's own values:
    if any field's name, order, type or plain value differs, the constructor is used.
    """
    try:
        unset = inspect.signature(ReadableSpan.__init__).parameters["status"].default
    except (TypeError, ValueError, KeyError):
        return None
    new, lock = object.__new__, threading.Lock

    def build(
        name: str,
        context: SpanContext,
        parent: SpanContext,
        sampler: Sampler,
        resource: Any,
        processor: Any,
        info: Any,
        scope: Any,
        limits: SpanLimits,
    ) -> SdkSpan:
        span = new(span_class)
        span._name = name
        span._context = context
        span._kind = SpanKind.INTERNAL
        span._instrumentation_info = info
        span._instrumentation_scope = scope
        span._parent = parent
        span._start_time = None
        span._end_time = None
        span._attributes = None
        span._events = ()
        span._links = ()
        span._resource = resource
        span._status = unset
        span._sampler = sampler
        span._trace_config = None
        span._record_exception = True
        span._set_status_on_exception = True
        span._span_processor = processor
        span._limits = limits
        span._lock = lock()
        # The containers' own constructors, field by field (checked below with the rest):
        # BoundedAttributes(max_span_attributes, None, immutable=False, max_value_len=...)
        # and BoundedList(max_events), BoundedList(max_links).
        attributes = new(BoundedAttributes)
        attributes._dict = {}
        attributes.maxlen = limits.max_span_attributes
        attributes.dropped = 0
        attributes.max_value_len = limits.max_span_attribute_length
        attributes._lock = lock()
        attributes._immutable = False
        span._attributes = attributes
        events: Any = new(BoundedList)
        events.dropped = 0
        events._dq = deque(maxlen=limits.max_events)
        events._lock = lock()
        span._events = events
        links: Any = new(BoundedList)
        links.dropped = 0
        links._dq = deque(maxlen=limits.max_links)
        links._lock = lock()
        span._links = links
        span._record_end_metrics = None
        return span

    try:
        args = (
            "kitaru.checkpoint",
            trace_api.INVALID_SPAN_CONTEXT,
            trace_api.INVALID_SPAN_CONTEXT,
            tracer.sampler,
            tracer.resource,
            tracer.span_processor,
            tracer.instrumentation_info,
            tracer._instrumentation_scope,
            tracer._span_limits,
        )
        built = build(*args)
        made = _construct(span_class, *args)
    except Exception:
        logger.debug("kitaru: checkpoint spans use the SDK's constructor", exc_info=True)
        return None
    return build if _same_fields(built, made) else None


_CONTAINERS = (BoundedAttributes, BoundedList)


def _same_fields(built: object, made: object) -> bool:
    """Same field names in the same order, same types, same plain values, same container limits."""
    ours, theirs = vars(built), vars(made)
    if list(ours) != list(theirs):
        return False
    for key, value in ours.items():
        other = theirs[key]
        if type(value) is not type(other):
            return False
        if isinstance(value, _CONTAINERS):
            if vars(value).keys() != vars(other).keys() or list(value) != list(other):
                return False
            for field, item in vars(value).items():
                if isinstance(item, deque):
                    if item.maxlen != vars(other)[field].maxlen:
                        return False
                elif (
                    not isinstance(item, (dict, type(threading.Lock())))
                    and item != vars(other)[field]
                ):
                    return False
        elif key != "_lock" and value is not other and value != other:
            return False
    return True


# -- ending a checkpoint span ------------------------------------------------------------------
#
# ``Span.end`` hands the processors a ``ReadableSpan`` copy of the span made with thirteen
# keyword arguments; ``end_own_span`` makes the same copy field by field (checked once at
# import against ``_readable_span`` of a probe span) and otherwise does exactly what ``end``
# does, on the SDK versions of the direct start, for the SDK's own span class.

_SDK_END = SdkSpan.end
_SDK_READABLE = SdkSpan._readable_span
_TIME_NS: Callable[[], int] = getattr(sdk_trace, "time_ns", time.time_ns)


def _readable_copier() -> Callable[[SdkSpan], ReadableSpan] | None:
    new = object.__new__

    def copy_span(span: SdkSpan) -> ReadableSpan:
        readable: ReadableSpan = new(ReadableSpan)
        readable._name = span._name
        readable._context = span._context
        readable._kind = span._kind
        readable._instrumentation_info = span._instrumentation_info
        readable._instrumentation_scope = span._instrumentation_scope
        readable._parent = span._parent
        readable._start_time = span._start_time
        readable._end_time = span._end_time
        readable._attributes = span._attributes
        readable._events = span._events
        readable._links = span._links
        readable._resource = span._resource
        readable._status = span._status
        return readable

    if sdk_version not in _DIRECT_START_SDK or not issubclass(SDK_SPAN_CLASS, SdkSpan):
        return None
    try:
        probe = SDK_SPAN_CLASS(
            "kitaru.probe", trace_api.INVALID_SPAN_CONTEXT, resource=Resource.get_empty()
        )
        probe._start_time = probe._end_time = 1
        if not _same_fields(copy_span(probe), probe._readable_span()):
            return None
    except Exception:
        logger.debug("kitaru: checkpoint spans end through Span.end", exc_info=True)
        return None
    return copy_span


_COPY_READABLE = _readable_copier()


def end_own_span(span: Span) -> None:
    """``span.end()`` for a checkpoint span; the SDK's own span made by the SDK's own classes.

    The same steps as the SDK's ``Span.end`` (under the span's lock the end time and the frozen
    attributes, then the tracer's span metrics, the processors' ``_on_ending`` and ``on_end``
    with a ``ReadableSpan`` copy), the copy made without keyword arguments. Any other span,
    an ended or unstarted one, an SDK whose ``end`` or copy differs, takes ``span.end()``.
    """
    copy_span = _COPY_READABLE
    cls = type(span)
    if (
        copy_span is None
        or cls is not SDK_SPAN_CLASS
        or cls.end is not _SDK_END
        or getattr(cls, "_readable_span", None) is not _SDK_READABLE
    ):
        span.end()
        return
    sdk_span: SdkSpan = span  # type: ignore[assignment]
    with sdk_span._lock:
        ending = sdk_span._start_time is not None and sdk_span._end_time is None
        if ending:
            sdk_span._end_time = _TIME_NS()
            sdk_span._attributes._immutable = True  # type: ignore[union-attr]
    if not ending:
        span.end()  # the SDK's own warning or error
        return
    record_end_metrics = sdk_span._record_end_metrics
    if record_end_metrics and record_end_metrics is not _SDK_NOOP:
        record_end_metrics()
    processor = sdk_span._span_processor
    processors = getattr(processor, "_span_processors", None)
    checked, quiet = _END_QUIET[0]
    if processors is not checked:
        quiet = _quiet_processors_of(processor) is not None
        _END_QUIET[0] = (processors, quiet)
    if not quiet:
        processor._on_ending(sdk_span)
        processor.on_end(copy_span(sdk_span))
        return
    # The multi-processor's two loops: every _on_ending does nothing here, then each on_end.
    readable = copy_span(sdk_span)
    for each in processors:  # type: ignore[union-attr]
        each.on_end(readable)


# The processors tuple last checked at a span's end, and whether they are all quiet.
_END_QUIET: list[tuple[Any, bool]] = [(None, False)]
