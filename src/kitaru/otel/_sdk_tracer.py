"""Forcing the IDs of a flow span on an OpenTelemetry SDK tracer.

This and the modules that build providers (``_trace_setup.py`` and its siblings, see
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

from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased
from opentelemetry.trace import SpanKind, Tracer, TracerProvider

from kitaru.otel._forced import forced

__all__ = [
    "KitaruIdGenerator",
    "TraceIdRatioSampler",
    "derive_tracer",
    "root_sampled",
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
