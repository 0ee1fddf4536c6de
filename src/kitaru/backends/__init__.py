"""Event-log backends: the durable, per-execution log behind the server's live-event stream.

:class:`EventLog` is the interface; :class:`MemoryEventLog` is the reference implementation
(and test double) and :class:`SqliteEventLog` the durable default of ``kitaru server``.
Every backend passes the same conformance suite (``tests/backends/test_conformance.py``).
"""

from kitaru._public import publish_names
from kitaru.backends._base import (
    AppendResult,
    CursorInvalidError,
    EventLog,
    EventLogError,
    EventLogUnavailableError,
    FrameBatch,
    Gap,
    LoggedEvent,
    NewEvent,
    ReadResult,
    Retention,
    encode_frame,
)
from kitaru.backends._memory import MemoryEventLog
from kitaru.backends._sqlite import SqliteEventLog

__all__ = [
    "AppendResult",
    "CursorInvalidError",
    "EventLog",
    "EventLogError",
    "EventLogUnavailableError",
    "FrameBatch",
    "Gap",
    "LoggedEvent",
    "MemoryEventLog",
    "NewEvent",
    "ReadResult",
    "Retention",
    "SqliteEventLog",
    "encode_frame",
]

publish_names(__name__, globals(), __all__)
