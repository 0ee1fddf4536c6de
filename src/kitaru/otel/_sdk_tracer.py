"""Forcing the IDs of a flow span on an OpenTelemetry SDK tracer.

This, ``_sdk_span.py`` (checkpoint spans made and ended with the SDK's own steps) and the
modules that build providers (``_trace_setup.py`` and its siblings, see
``docs/opentelemetry.md``) are the only ones that touch the SDK. The SDK takes a root span's
trace ID and every span's ID from the tracer's ``IdGenerator``. kitaru's generator answers with
forced IDs while ``kitaru.otel._forced.forced_ids`` is active on the calling thread (a
``contextvars`` value set just around ``start_span`` of a flow span) and delegates to the
generator it wraps otherwise, so every other span keeps the provider's own IDs.

* kitaru's own provider is built with that generator.
* An application's SDK ``TracerProvider`` is used as it is and never changed: kitaru asks it for
  a tracer (``get_tracer``), takes a shallow copy of that tracer and gives only the copy the
  wrapping generator. The copy shares the provider's span processors, sampler, resource and
  limits, so kitaru's spans go wherever the application's spans go.
* Any other tracer (a non-SDK provider, a proxy before the application set its provider) is
  used as it is: spans then get that provider's IDs, live events carry those real IDs, and
  :func:`~kitaru.otel.trace_id_for_execution` no longer names the trace.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace import (
    SpanProcessor,
    SynchronousMultiSpanProcessor,
)
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    ParentBased,
    Sampler,
    StaticSampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import SpanKind, Tracer, TracerProvider

from kitaru.otel._forced import forced
from kitaru.otel._sdk_span import SDK_SPAN_CLASS, direct_start, end_own_span

if TYPE_CHECKING:
    from opentelemetry import context as otel_context
    from opentelemetry.trace import Span
    from opentelemetry.util.types import AttributeValue

__all__ = [
    "KitaruIdGenerator",
    "SpanStarter",
    "TraceIdRatioSampler",
    "derive_tracer",
    "end_own_span",
    "root_sampled",
    "set_own_attribute",
    "span_starter",
    "tracer_for",
]

logger = logging.getLogger("kitaru.otel")


class KitaruIdGenerator(IdGenerator):
    """An ``IdGenerator`` that yields forced IDs inside ``forced_ids()``, else delegates."""

    def __init__(self, fallback: IdGenerator | None = None) -> None:
        self.fallback = fallback if fallback is not None else RandomIdGenerator()

    def generate_span_id(self) -> int:
        ids = forced()
        return ids[1] if ids is not None else self.fallback.generate_span_id()

    def generate_trace_id(self) -> int:
        ids = forced()
        if ids is not None and ids[0] is not None:
            return ids[0]
        return self.fallback.generate_trace_id()

    def is_trace_id_random(self) -> bool:
        # Forced trace IDs come from UUID4 execution IDs (random low bits) or a SHA-256.
        return self.fallback.is_trace_id_random()


def tracer_for(provider: TracerProvider, name: str, version: str) -> tuple[Tracer, bool]:
    """A tracer of ``provider`` for kitaru's spans, and whether it honours forced IDs."""
    return derive_tracer(provider.get_tracer(name, version))


def derive_tracer(tracer: Tracer) -> tuple[Tracer, bool]:
    """``tracer``, or a copy of it that honours forced IDs, and whether it does."""
    if not isinstance(tracer, SdkTracer):
        return tracer, False
    generator = getattr(tracer, "id_generator", None)
    if not isinstance(generator, IdGenerator):
        return tracer, False
    if isinstance(generator, KitaruIdGenerator):
        return tracer, True
    derived = copy.copy(tracer)
    derived.id_generator = KitaruIdGenerator(generator)
    return derived, True


def root_sampled(tracer: Tracer, trace_id: int, name: str) -> bool | None:
    """The sampler's decision for a root span in trace ``trace_id`` (``None``: unknown).

    The standard samplers decide a root span from its trace ID alone, so a process that only
    knows the execution ID reaches the decision the flow's process reached.
    """
    sampler = getattr(tracer, "sampler", None)
    if sampler is None:
        return None
    try:
        result = sampler.should_sample(None, trace_id, name, SpanKind.INTERNAL, None, None)
        return bool(result.decision.is_sampled())
    except Exception:
        logger.debug("kitaru: could not ask the sampler for a decision", exc_info=True)
        return None


class TraceIdRatioSampler(TraceIdRatioBased):
    """Samples a share ``rate`` of traces, deciding on the trace ID's 56 random low bits.

    The SDK's ``TraceIdRatioBased`` compares the low 64 bits of the trace ID. In a trace ID
    taken from a UUID execution ID the top two of those bits are the UUID's fixed variant bits,
    which would keep no trace at all for rates up to 0.5 and too few above. The low 56 bits
    are random (as W3C Trace Context level 2 expects), so this sampler keeps the share you ask
    for. Like the SDK's, it decides from the trace ID alone, so every process of a run agrees.

    Use it in your own provider as ``ParentBased(TraceIdRatioSampler(0.1))``; kitaru's own
    provider uses it for ``OTEL_TRACES_SAMPLER=traceidratio`` and ``parentbased_traceidratio``.

    Args:
        rate: Share of traces to keep, from 0 to 1.
    """

    TRACE_ID_LIMIT = (1 << 56) - 1

    def get_description(self) -> str:
        return f"KitaruTraceIdRatio{{{self.rate}}}"


# -- starting spans whose attributes kitaru built itself ----------------------------------------
#
# The SDK checks every attribute a span starts with (``BoundedAttributes`` cleaning each value):
# for a checkpoint span's eight attributes, about a sixth of a checkpoint with a span
# (benchmarks/README.md, "Where the time goes"). Those values are kitaru's own strings and ints,
# which that check hands back unchanged, so they can be stored as they are. That takes the
# SDK's private attribute container; it is done only where the result is the same span as the
# public path gives, and anything unexpected falls back to the public path:
#
# * the sampler is one of the SDK's that pass attributes through without reading them (always
#   on/off, trace-ID ratio, parent-based over those), so starting the span without them decides
#   the same and the span gets the same attributes;
# * every span processor is one whose ``on_start`` does nothing (the SDK's batch and simple
#   processors), so no processor can see the span before its attributes are in; processors
#   added to the provider later are checked again before the next span;
# * the span is the SDK's own span class with an empty, unbounded-length attribute container
#   that holds them all (else ``set_attributes``, the public path, stores them).

_QUIET_ON_START = (
    SpanProcessor.on_start,
    BatchSpanProcessor.on_start,
    SimpleSpanProcessor.on_start,
)
_PASS_THROUGH = (StaticSampler.should_sample, TraceIdRatioBased.should_sample)
_PARENT_BASED_DELEGATES = (
    "_root",
    "_remote_parent_sampled",
    "_remote_parent_not_sampled",
    "_local_parent_sampled",
    "_local_parent_not_sampled",
)

SpanStarter = Callable[[str, "otel_context.Context", "Mapping[str, AttributeValue]"], "Span"]
"""Starts an ``INTERNAL`` span with a name, a parent context and attributes kitaru built.

A ``dict`` of attributes may become the span's own attribute store: pass a fresh one and do not
change it afterwards."""


def _passes_attributes_through(sampler: Sampler | None, depth: int = 0) -> bool:
    should_sample = getattr(type(sampler), "should_sample", None)
    if should_sample in _PASS_THROUGH:
        return True
    if should_sample is not ParentBased.should_sample or depth > 0:
        return False
    return all(
        _passes_attributes_through(getattr(sampler, name, None), depth + 1)
        for name in _PARENT_BASED_DELEGATES
    )


def _quiet_processors(processors: Any) -> bool:
    return isinstance(processors, tuple) and all(
        getattr(type(p), "on_start", None) in _QUIET_ON_START for p in processors
    )


def span_starter(tracer: Tracer) -> SpanStarter:
    """How to start ``tracer``'s spans with attributes kitaru built itself.

    Every attribute value must be a ``str``, ``bool``, ``int`` or ``float`` (values the SDK's
    check hands back unchanged). The span is the one ``tracer.start_span(name, context,
    INTERNAL, attributes)`` would give; on an SDK tracer where that is known to hold (see the
    conditions above), without the SDK checking the attributes again, and under a sampled
    parent span of this process without the sampler's call chain
    (:func:`~kitaru.otel._sdk_span.direct_start`).
    """
    start = tracer.start_span

    def public(
        name: str, context: otel_context.Context, attributes: Mapping[str, AttributeValue]
    ) -> Span:
        return start(name, context, SpanKind.INTERNAL, attributes)

    multi = getattr(tracer, "span_processor", None)
    if (
        not isinstance(tracer, SdkTracer)
        or type(multi) is not SynchronousMultiSpanProcessor
        or not _passes_attributes_through(getattr(tracer, "sampler", None))
    ):
        return public
    checked: list[Any] = [None, False]  # the processors tuple last checked, and the answer
    direct = direct_start(tracer)

    def prevalidated(
        name: str, context: otel_context.Context, attributes: Mapping[str, AttributeValue]
    ) -> Span:
        processors = getattr(multi, "_span_processors", None)
        if processors is not checked[0]:
            checked[0], checked[1] = processors, _quiet_processors(processors)
        if not checked[1]:
            return start(name, context, SpanKind.INTERNAL, attributes)
        if direct is not None:
            started = direct(name, context, attributes)
            if started is not None:
                return started
        span = start(name, context, SpanKind.INTERNAL, None)
        bounded = getattr(span, "_attributes", None)
        if (
            type(bounded) is BoundedAttributes
            and bounded.max_value_len is None
            and (bounded.maxlen is None or bounded.maxlen >= len(attributes))
            and type(getattr(bounded, "_dict", None)) is dict
            and not bounded._dict
        ):
            bounded._dict.update(attributes)
        elif span.is_recording():
            span.set_attributes(attributes)
        return span

    return prevalidated


# How BoundedAttributes stores one checked item under its lock (private to the SDK: an SDK
# version without it takes the public path).
_SETITEM_LOCKED: Callable[[BoundedAttributes, str, str], None] | None = getattr(
    BoundedAttributes, "_setitem_locked", None
)


def set_own_attribute(span: Span, key: str, value: str) -> None:
    """``span.set_attribute(key, value)`` for a key and ``str`` value kitaru built itself.

    The checkpoint status at every checkpoint's end: on an SDK span whose attribute container
    has no value-length limit (the SDK's check hands such a value back unchanged) it is stored
    under the span's and the container's locks exactly as ``set_attribute`` stores it (same
    order, same count limit and drop count); an ended span, a subclass that changes
    ``set_attribute``, a value-length or zero attribute limit take the public path.
    """
    bounded = getattr(span, "_attributes", None)
    cls = type(span)
    if (
        (cls is SDK_SPAN_CLASS or isinstance(span, SdkSpan))  # the ABC check only for others
        and cls.set_attribute is SdkSpan.set_attribute
        and type(bounded) is BoundedAttributes
        and bounded.max_value_len is None
        and bounded.maxlen != 0
        and _SETITEM_LOCKED is not None
    ):
        sdk_span: SdkSpan = span  # type: ignore[assignment]
        with sdk_span._lock:
            stored = sdk_span._end_time is None and getattr(bounded, "_immutable", True) is False
            if stored:
                with bounded._lock:
                    _SETITEM_LOCKED(bounded, key, value)
        if stored:
            return
    span.set_attribute(key, value)
