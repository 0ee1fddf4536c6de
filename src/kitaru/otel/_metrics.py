"""kitaru's own metrics from the SDK's meter: checkpoint durations, events and drops.

Instruments (instrumentation scope ``kitaru``; Prometheus names as the Collector's
``prometheus`` exporter writes them):

* ``kitaru.checkpoint.duration`` (histogram, seconds; ``kitaru_checkpoint_duration_seconds``)
  per ``kitaru.flow.name``, ``kitaru.checkpoint.name`` and ``kitaru.checkpoint.status``;
* ``kitaru.events`` (counter; ``kitaru_events_total``) per ``kitaru.event.category``
  (``lifecycle``, ``progress`` or ``custom``);
* ``kitaru.events.dropped`` (counter; ``kitaru_events_dropped_total``) per
  ``kitaru.drop.reason``: ``span_event_cap`` (past the per-span cap), ``log_queue`` (log
  records past the emitter's queue), and the live-event publisher's ``overflow``,
  ``lifecycle_overflow``, ``oversize`` and ``disabled``;
* the token and cost counters of :mod:`kitaru.otel._usage_metrics`, per checkpoint name and
  model, from what ``kitaru.record_usage`` recorded on each checkpoint execution.

Counting an event on the publishing thread is one ``next()`` on an ``itertools.count``
(atomic under the GIL, tens of nanoseconds); the counters are observable, read when the
reader collects.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

from kitaru.events._kinds import CHECKPOINT_PROGRESS_KIND
from kitaru.otel import _attributes as attr
from kitaru.otel._usage_metrics import UsageMetrics

if TYPE_CHECKING:
    from kitaru.events._models import EventRecord
    from kitaru.runtime._scope import CheckpointScope

__all__ = ["DURATION_BUCKETS", "BridgeMetrics"]

DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
)  # fmt: skip
"""Bucket bounds (seconds) of the duration histogram: the span-metrics connector's, in s."""

EVENT_CATEGORY = "kitaru.event.category"
DROP_REASON = "kitaru.drop.reason"


def _read(counter: itertools.count[int]) -> int:
    # itertools.count has no getter; its pickle state is its next value.
    return int(counter.__reduce__()[1][0])


class BridgeMetrics:
    """The instruments of one bridge, on ``provider`` (used as it is)."""

    def __init__(self, provider: MeterProvider, bridge: Any, *, version: str = "") -> None:
        meter = provider.get_meter(attr.TRACER_NAME, version)
        self._bridge = weakref.ref(bridge)
        self._runtime: weakref.ref[Any] | None = None
        self._events = {
            "lifecycle": itertools.count(),
            "progress": itertools.count(),
            "custom": itertools.count(),
        }
        self._span_events_dropped = itertools.count()
        self.duration = meter.create_histogram(
            "kitaru.checkpoint.duration",
            unit="s",
            description="Duration of checkpoint executions",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )
        self.usage = UsageMetrics(meter)
        meter.create_observable_counter(
            "kitaru.events",
            callbacks=[self._observe_events],
            unit="{event}",
            description="Live events published by checkpoints",
        )
        meter.create_observable_counter(
            "kitaru.events.dropped",
            callbacks=[self._observe_drops],
            unit="{event}",
            description="Live events, span events and log records dropped by a bound",
        )

    # -- recording (the flow's threads) ---------------------------------------------------

    def remember(self, scope: CheckpointScope) -> None:
        """Note the runtime whose publisher's drops are reported."""
        runtime = scope.run.runtime
        current = self._runtime
        if current is None or current() is not runtime:
            self._runtime = weakref.ref(runtime)

    def count_event(self, record: EventRecord) -> None:
        """Count one live event (called on the publishing thread: cheap)."""
        if record.lifecycle:
            next(self._events["lifecycle"])
        elif record.kind == CHECKPOINT_PROGRESS_KIND:
            next(self._events["progress"])
        else:
            next(self._events["custom"])

    def checkpoint_ended(self, scope: CheckpointScope, status: str, seconds: float) -> None:
        """Record one checkpoint execution's duration, and the tokens and cost it recorded."""
        self.usage.checkpoint_ended(scope)
        self.duration.record(
            seconds,
            {
                attr.FLOW_NAME: scope.flow_name,
                attr.CHECKPOINT_NAME: scope.name,
                attr.CHECKPOINT_STATUS: status,
            },
        )

    def span_events_dropped(self, count: int) -> None:
        """Count events a span's cap left out."""
        for _ in range(count):
            next(self._span_events_dropped)

    # -- reading (the metric reader's thread) ---------------------------------------------

    def _observe_events(self, options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(_read(counter), {EVENT_CATEGORY: category})
            for category, counter in self._events.items()
        ]

    def _observe_drops(self, options: CallbackOptions) -> Iterable[Observation]:
        drops = {"span_event_cap": _read(self._span_events_dropped)}
        bridge = self._bridge()
        emitter = getattr(bridge, "_emitter", None) if bridge is not None else None
        drops["log_queue"] = int(getattr(emitter, "dropped", 0))
        runtime = self._runtime() if self._runtime is not None else None
        publisher = getattr(runtime, "publisher", None)
        if publisher is not None:
            stats = publisher.stats()
            drops["overflow"] = stats.dropped_overflow
            drops["lifecycle_overflow"] = stats.dropped_lifecycle
            drops["oversize"] = stats.dropped_oversize
            drops["disabled"] = stats.dropped_disabled
        return [Observation(value, {DROP_REASON: reason}) for reason, value in drops.items()]
