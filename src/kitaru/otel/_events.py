"""Live events as span events: bounded attributes and a per-span cap with coalescing.

Only primitives become attributes (``str``, ``bool``, ``int``, ``float``); strings are clipped,
at most ``max_event_fields`` data fields are kept, and nested or odd values are left out and
counted, never ``repr()``-ed. Lifecycle events are not span events at all: they are the span's
start, end and status, so the cap can never drop them.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from kitaru.otel import _attributes as attr

if TYPE_CHECKING:
    from opentelemetry.trace import Span
    from opentelemetry.util.types import AttributeValue

    from kitaru.events._models import EventRecord
    from kitaru.otel._settings import BridgeSettings

__all__ = ["SpanEventBuffer", "event_attributes"]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_MAX_KEY_LENGTH = 64


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def _primitive(value: object, limit: int) -> AttributeValue | None:
    # Exact built-in types first: they are nearly every value, and this runs on the calling
    # thread for every data field of every progress() call (benchmarks/bench_publish.py). Same
    # results as below.
    if type(value) is str:
        return _clip(value, limit)
    if type(value) is float or type(value) is bool:
        return value
    if type(value) is int:
        return value if _INT64_MIN <= value <= _INT64_MAX else None
    if isinstance(value, enum.Enum) and not isinstance(value, (int, str)):
        value = value.value  # the JSON form live events use too
    # bool before int: bool is an int subclass, and we want it kept as a bool.
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value) if _INT64_MIN <= value <= _INT64_MAX else None
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return _clip(str.__str__(value), limit)
    return None


def event_attributes(
    record: EventRecord, scope_correlation_id: str, settings: BridgeSettings
) -> dict[str, AttributeValue]:
    """The span event attributes of one progress or custom live event."""
    attrs: dict[str, AttributeValue] = {attr.EVENT_INDEX: record.index}
    if record.correlation_id != scope_correlation_id:
        attrs[attr.CORRELATION_ID] = record.correlation_id
    if not settings.event_attributes:
        return attrs
    limit = settings.max_value_length
    message = record.body.get("message")
    if isinstance(message, str):
        attrs[attr.EVENT_MESSAGE] = _clip(message, limit)
    data = record.body.get("data")
    if type(data) is dict or isinstance(data, Mapping):
        kept = dropped = 0
        for key, value in data.items():
            converted = _primitive(value, limit) if isinstance(key, str) else None
            if converted is None or kept >= settings.max_event_fields:
                dropped += 1
                continue
            attrs[attr.EVENT_DATA_PREFIX + _clip(key, _MAX_KEY_LENGTH)] = converted
            kept += 1
        if dropped:
            attrs[attr.EVENT_DATA_DROPPED] = dropped
    return attrs


def _is_delta(record: EventRecord) -> bool:
    """A coalesced token/raw delta event of an agent adapter (``delta_count``, not lifecycle)."""
    data = record.body.get("data") if isinstance(record.body, Mapping) else None
    return (
        isinstance(data, Mapping) and "delta_count" in data and data.get("category") != "lifecycle"
    )


class SpanEventBuffer:
    """The live events of one checkpoint span, at most ``cap``: the first ``cap - 1``, the latest.

    :meth:`add` runs on the publishing thread for every ``progress()`` call, so it only keeps
    a reference to the event record (kind, index, timestamp, and its body: the message and the
    data dict kitaru copied from the caller's arguments, never changed afterwards): a few
    hundred nanoseconds. Attributes are built and the span events added by :meth:`close`, just
    before the span ends, with each event's original timestamp; exporters only ever see ended
    spans, so they see the same span either way.

    Past the cap, an event that is not an adapter's coalesced delta replaces the newest kept
    delta, if any; other events are held back one at a time (each newer one replaces the held
    one and counts as dropped); :meth:`close` adds the held one last and records the drop count as
    ``kitaru.events.dropped``. Safe to use from several threads; events added after
    :meth:`close` (from threads still running when the checkpoint ended) are ignored.
    """

    __slots__ = ("_cap", "_closed", "_dropped", "_held", "_kept", "_lock")

    def __init__(self, cap: int) -> None:
        self._cap = cap - 1  # events kept in order; one more slot for the latest
        self._kept: list[EventRecord] = []
        self._held: EventRecord | None = None
        self._dropped = 0
        self._closed = False
        self._lock = threading.Lock()

    def add(self, record: EventRecord) -> None:
        """Keep ``record`` for the span (called on the publishing thread: cheap)."""
        with self._lock:
            if self._closed:
                return
            kept = self._kept
            if len(kept) < self._cap:
                kept.append(record)
                return
            if not _is_delta(record):
                # Lifecycle, tool and node events outrank coalesced deltas (docs/adapters.md):
                # the newest kept delta makes room.
                for i in range(len(kept) - 1, -1, -1):
                    if _is_delta(kept[i]):
                        del kept[i]
                        kept.append(record)
                        self._dropped += 1
                        return
            if self._held is not None:
                self._dropped += 1
            self._held = record

    def close(self, span: Span, scope_correlation_id: str, settings: BridgeSettings) -> int:
        """Add the kept events to ``span`` (before it ends) and stop taking new ones.

        Returns:
            How many events the cap dropped.
        """
        with self._lock:
            if self._closed:
                return 0
            self._closed = True
            records, self._kept = self._kept, []
            held, self._held = self._held, None
            dropped = self._dropped
        if held is not None:
            records.append(held)
        add_event = span.add_event
        for record in records:
            add_event(
                record.kind,
                event_attributes(record, scope_correlation_id, settings),
                int(record.ts * 1e9),
            )
        if dropped:
            span.set_attribute(attr.EVENTS_DROPPED, dropped)
        return dropped
