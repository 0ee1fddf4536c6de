"""Transports: where the publisher's sender thread hands encoded events.

A transport is called only from the publisher's one sender thread, so it needs no locking of
its own. ``send`` may block (the sender thread absorbs it) and may raise: the publisher keeps the
batch queued and retries with backoff. Raising :class:`TransportDisabledError` turns publishing
off for the process instead (for example a server that says streaming is disabled), and
:class:`TransportRejectedError` reports events the backend refused for good (counted as
rejected, never as sent).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from kitaru.events._codec import EncodedEvent
from kitaru.events._models import ExecutionEvent
from kitaru.exceptions import KitaruBackendError

__all__ = [
    "EncodedEvent",
    "InMemoryTransport",
    "NoopTransport",
    "Transport",
    "TransportDisabledError",
    "TransportRejectedError",
]


class TransportDisabledError(KitaruBackendError):
    """Raised by a transport whose backend refuses live events for good (streaming disabled).

    Only the publisher's sender thread sees it: it turns publishing off for the process.
    """


class TransportRejectedError(KitaruBackendError):
    """Raised by a transport after the backend refused some events of a batch for good.

    The rest of the batch was delivered; the refused events are not retried (retrying a
    permanent refusal would hold every later event behind it). The publisher counts them as
    rejected, not sent.

    Args:
        rejected: How many events of the batch were refused.
        reason: What the backend said, for the log.
    """

    def __init__(self, rejected: int, reason: str) -> None:
        super().__init__(reason)
        self.rejected = rejected


@runtime_checkable
class Transport(Protocol):
    """Where batches of encoded events go. Called from one sender thread only."""

    def send(self, batch: Sequence[EncodedEvent]) -> None:
        """Deliver ``batch``; raise to have it retried.

        Raise :class:`TransportDisabledError` to turn publishing off, or (after delivering the
        rest) :class:`TransportRejectedError` when the backend refused some events for good.
        """
        ...

    def shutdown(self) -> None:
        """Release resources; called once when the publisher shuts down."""
        ...


class NoopTransport:
    """Drops every event: local database mode, where live events are skipped safely."""

    def send(self, batch: Sequence[EncodedEvent]) -> None:
        """Discard ``batch``."""

    def shutdown(self) -> None:
        """Nothing to release."""


class InMemoryTransport:
    """Keeps every delivered event in memory, in delivery order (tests and ``kitaru.testing``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[dict[str, Any]] = []

    def send(self, batch: Sequence[EncodedEvent]) -> None:
        """Append ``batch`` to the kept events."""
        with self._lock:
            self._events.extend(e.data for e in batch)

    def shutdown(self) -> None:
        """Nothing to release."""

    @property
    def raw(self) -> list[dict[str, Any]]:
        """A copy of the delivered wire dictionaries."""
        with self._lock:
            return list(self._events)

    def events(self) -> list[ExecutionEvent]:
        """The delivered events as :class:`~kitaru.ExecutionEvent` objects (no cursors)."""
        return [ExecutionEvent.from_wire(d) for d in self.raw]

    def clear(self) -> None:
        """Forget every delivered event."""
        with self._lock:
            self._events.clear()
