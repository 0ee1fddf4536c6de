"""The forced-ID switch read by kitaru's ``IdGenerator`` (API-only, no SDK import)."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator

__all__ = ["forced", "forced_ids"]

_forced: contextvars.ContextVar[tuple[int | None, int] | None] = contextvars.ContextVar(
    "kitaru_otel_forced_ids", default=None
)


# The IDs forced on this thread right now: ``(trace_id or None, span_id)``, or ``None``. The
# variable's own ``get``, read at every span's ID (no Python call of kitaru's around it).
forced: Callable[[], tuple[int | None, int] | None] = _forced.get


@contextlib.contextmanager
def forced_ids(trace_id: int | None, span_id: int) -> Iterator[None]:
    """Force the IDs of the next span started on this thread.

    It gets ``span_id`` (and, when it is a root span, ``trace_id``), if its tracer uses
    kitaru's ``IdGenerator``.
    """
    token = _forced.set((trace_id, span_id))
    try:
        yield
    finally:
        _forced.reset(token)
