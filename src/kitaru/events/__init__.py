"""Live events: publish from a running checkpoint, flush the process-local publisher.

``kitaru.events.progress`` is the same object as ``kitaru.progress``.
"""

from kitaru._public import publish_names
from kitaru.events._api import flush, progress, publish
from kitaru.events._context import process_publisher
from kitaru.events._kinds import (
    CHECKPOINT_FAILED_KIND,
    CHECKPOINT_PROGRESS_KIND,
    CHECKPOINT_RETURNED_KIND,
    CHECKPOINT_STARTED_KIND,
    RESERVED_KINDS,
)
from kitaru.events._models import ExecutionEvent
from kitaru.events._publisher import MAX_EVENT_BYTES, PublisherStats
from kitaru.events._transport import (
    InMemoryTransport,
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
    "ExecutionEvent",
    "InMemoryTransport",
    "PublisherStats",
    "TransportDisabledError",
    "TransportRejectedError",
    "flush",
    "progress",
    "publish",
    "stats",
]

publish_names(__name__, globals(), __all__)

_NO_STATS = PublisherStats(0, 0, 0, 0, 0, 0, 0)


def stats() -> PublisherStats:
    """Counters of this process's live-event publisher (sent, queued, dropped by reason)."""
    publisher = process_publisher()
    return publisher.stats() if publisher is not None else _NO_STATS
