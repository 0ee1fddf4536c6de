"""Correlation ID → span: a bounded in-process registry, and the same from a live event.

In the process that ran a checkpoint execution, :func:`span_context_for_correlation_id` answers
from memory (the newest ``MAX_ENTRIES`` checkpoint executions). Anywhere else, a live event of
that correlation ID carries the answer: ``payload["kitaru"]["trace_id"]`` and ``["span_id"]``,
turned into a span context by :func:`span_context_for_event`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from itertools import islice
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import SpanContext, TraceFlags

if TYPE_CHECKING:
    from kitaru.events._models import ExecutionEvent

__all__ = [
    "MAX_ENTRIES",
    "forget_all",
    "register",
    "span_context_for_correlation_id",
    "span_context_for_event",
]

MAX_ENTRIES = 10_000

# Checked every checkpoint start, so the common case takes no lock: a single dict store is
# atomic in CPython and dicts keep insertion order. Past the bound, the oldest entries are
# trimmed under the lock, in batches, so the registry holds the newest MAX_ENTRIES to
# MAX_ENTRIES + _SLACK entries.
_SLACK = 256

_lock = threading.Lock()
_entries: dict[str, SpanContext] = {}


def register(correlation_id: str, span_context: SpanContext) -> None:
    """Remember the span of a checkpoint execution (the oldest entries are forgotten first)."""
    entries = _entries
    if correlation_id in entries:  # (rare) move it to the newest end
        entries.pop(correlation_id, None)
    entries[correlation_id] = span_context
    if len(entries) > MAX_ENTRIES + _SLACK:
        _trim()


def _trim() -> None:
    with _lock:
        excess = len(_entries) - MAX_ENTRIES
        if excess <= 0:
            return
        try:
            oldest = list(islice(_entries, excess))
        except RuntimeError:  # another thread added an entry meanwhile: one at a time
            oldest = []
            for _ in range(excess):
                try:
                    _entries.pop(next(iter(_entries)), None)
                except (RuntimeError, StopIteration):
                    break
        for key in oldest:
            _entries.pop(key, None)


def forget_all() -> None:
    """Empty the registry."""
    with _lock:
        _entries.clear()


def span_context_for_correlation_id(correlation_id: str) -> SpanContext | None:
    """The span context of the checkpoint execution with this correlation ID.

    Answers for checkpoint executions that ran in this process while the bridge was active
    (the newest 10,000). For others, use :func:`span_context_for_event` on any live event of
    that correlation ID.

    Args:
        correlation_id: A checkpoint execution's correlation ID.

    Returns:
        The span context, or ``None`` when this process does not know it.
    """
    return _entries.get(correlation_id)


def span_context_for_event(event: ExecutionEvent | Mapping[str, Any]) -> SpanContext | None:
    """The span context of the checkpoint execution that published a live event.

    Built from ``payload["kitaru"]["trace_id"]`` and ``["span_id"]``, as a remote span context
    you can use as a link or parent (for example to connect a watcher's work to the run).

    Args:
        event: An :class:`~kitaru.ExecutionEvent`, or an event payload mapping.

    Returns:
        The span context, or ``None`` when the event carries no (valid) IDs.
    """
    payload = event if isinstance(event, Mapping) else event.payload
    meta = payload.get("kitaru")
    if not isinstance(meta, Mapping):
        return None
    trace_id, span_id = meta.get("trace_id"), meta.get("span_id")
    if not isinstance(trace_id, str) or not isinstance(span_id, str):
        return None
    try:
        context = SpanContext(
            trace_id=int(trace_id, 16),
            span_id=int(span_id, 16),
            is_remote=True,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
    except ValueError:
        return None
    return context if context.is_valid else None
