"""Live events: publish from a running checkpoint, flush the process-local publisher.

``kitaru.events.progress`` is the same object as ``kitaru.progress``.
"""

from kitaru.events._api import flush, progress, publish
from kitaru.events._kinds import (
    CHECKPOINT_FAILED_KIND,
    CHECKPOINT_PROGRESS_KIND,
    CHECKPOINT_RETURNED_KIND,
    CHECKPOINT_STARTED_KIND,
    RESERVED_KINDS,
)
from kitaru.events._models import ExecutionEvent
from kitaru.events._publisher import MAX_EVENT_BYTES, Publisher, PublisherStats
from kitaru.events._transport import (
    EncodedEvent,
    InMemoryTransport,
    NoopTransport,
    Transport,
    TransportDisabledError,
    TransportRejectedError,
)

__all__ = [
    "CHECKPOINT_FAILED_KIND",
    "CHECKPOINT_PROGRESS_KIND",
    "CHECKPOINT_RETURNED_KIND",
    "CHECKPOINT_STARTED_KIND",
    "MAX_EVENT_BYTES",
    "RESERVED_KINDS",
    "EncodedEvent",
    "ExecutionEvent",
    "InMemoryTransport",
    "NoopTransport",
    "Publisher",
    "PublisherStats",
    "Transport",
    "TransportDisabledError",
    "TransportRejectedError",
    "flush",
    "progress",
    "publish",
    "stats",
]


def stats() -> PublisherStats:
    """Counters of this process's live-event publisher (sent, queued, dropped by reason)."""
    from kitaru.runtime._runtime import get_runtime

    return get_runtime().publisher.stats()
