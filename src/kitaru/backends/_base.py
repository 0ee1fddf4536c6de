"""The event log interface: the durable, per-execution log behind the SSE stream.

The server never keeps events in memory per watcher: every watcher reads the log after its own
cursor, a batch at a time, and sleeps in :meth:`EventLog.wait` until something new arrives. So
a slow watcher loses nothing that is still retained, and loss past retention is reported as a
:class:`Gap` (``docs/protocol.md``), never skipped silently.

The interface is asynchronous because its one caller is the asyncio server, and the backends
that should follow (Redis Streams, PostgreSQL) have natural async clients. An instance is bound
to the event loop that first uses it.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

from kitaru._checks import positive_int, positive_number
from kitaru.events._frames import encode_frame, frame_data, new_event_frame
from kitaru.exceptions import KitaruBackendError, KitaruUsageError

__all__ = [
    "AppendResult",
    "CursorInvalidError",
    "EventLog",
    "EventLogError",
    "EventLogUnavailableError",
    "FrameBatch",
    "Gap",
    "LoggedEvent",
    "NewEvent",
    "ReadResult",
    "Retention",
    "encode_frame",
    "new_event_frame",
]


class CursorInvalidError(KitaruUsageError):
    """A cursor is malformed, or points past the end of its execution's log."""


class EventLogError(KitaruBackendError):
    """The event log's storage failed."""


class EventLogUnavailableError(EventLogError):
    """The event log's storage cannot be reached right now (e.g. Redis is restarting).

    Temporary by nature: a stream that hits it closes as a disconnect (after a ``retry:``
    hint) instead of ending with an ``error`` frame, so watchers reconnect with their cursor
    and are answered 503 until the storage is back.
    """


# NewEvent and LoggedEvent are made once per event on the hot path; frozen dataclasses cost
# several times more to build, so these are plain slotted ones: treat them as read-only.
@dataclass(slots=True)
class NewEvent:
    """A validated event ready to append (read-only by convention).

    Attributes:
        kind: The event kind.
        correlation_id: The checkpoint execution it belongs to.
        index: Its index in that checkpoint execution; ``(correlation_id, index)`` identifies
            the event inside its execution, so appending it again stores nothing.
        checkpoint_id: The checkpoint call's record ID, if known.
        checkpoint_name: The checkpoint's name, if known.
        step_name: The checkpoint call's step name, if known.
        body: The event's JSON object without its cursor (compact, ends with ``}``).
    """

    kind: str
    correlation_id: str
    index: int
    checkpoint_id: str | None
    checkpoint_name: str | None
    step_name: str | None
    body: bytes


@dataclass(slots=True)
class LoggedEvent:
    """An event as stored: its cursor, the fields filters look at, and its wire frame.

    ``frame`` is the event's SSE data frame (see :func:`encode_frame`), built by the log from
    what it stores, so a stream without filters is a concatenation of frames.
    """

    cursor: str
    kind: str
    correlation_id: str
    index: int
    checkpoint_id: str | None
    checkpoint_name: str | None
    step_name: str | None
    frame: bytes

    @property
    def data(self) -> bytes:
        """The event's JSON object including ``"cursor"``, as on the wire."""
        return frame_data(self.frame)


@dataclass(frozen=True, slots=True)
class Gap:
    """Events between a requested position and the retained window are gone.

    Attributes:
        reason: Why (``"retention"``).
        after: The requested position (``None``: the start of the log).
        until: The cursor of the last lost event; reading continues after it.
        lost: How many events were lost.
    """

    reason: str
    after: str | None
    until: str
    lost: int


@dataclass(frozen=True, slots=True)
class ReadResult:
    """One batch read from the log.

    Attributes:
        events: Up to ``limit`` events after the requested position (after the gap, if any).
        gap: Set when events after the requested position were removed by retention.
        ended: The execution's final status once the log is marked ended, else ``None``.
        last_cursor: The log's newest cursor at read time (``None`` for an empty log).
    """

    events: list[LoggedEvent]
    gap: Gap | None
    ended: str | None
    last_cursor: str | None


@dataclass(frozen=True, slots=True)
class FrameBatch:
    """One batch read from the log as concatenated SSE frames (the unfiltered fast path).

    Attributes:
        frames: The concatenated data frames of up to ``limit`` events.
        count: How many events ``frames`` holds.
        cursor: The cursor of the last event in ``frames`` (``None`` when empty).
        gap: As in :class:`ReadResult`.
        ended: As in :class:`ReadResult`.
    """

    frames: bytes
    count: int
    cursor: str | None
    gap: Gap | None
    ended: str | None


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What an append stored.

    Attributes:
        stored: Events newly stored.
        duplicates: Events skipped because their ``(correlation_id, index)`` was already there.
        last_cursor: The log's newest cursor after the append.
    """

    stored: int
    duplicates: int
    last_cursor: str | None


@dataclass(frozen=True, slots=True)
class Retention:
    """How much of each execution's log is kept.

    Attributes:
        max_events: Keep at most this many newest events per execution (``None``: all).
        ended_ttl: Drop an ended execution's events this many seconds after it ended
            (``None``: keep them).
    """

    max_events: int | None = None
    ended_ttl: float | None = None

    def __post_init__(self) -> None:
        if self.max_events is not None:
            positive_int("max_events", self.max_events)
        if self.ended_ttl is not None:
            positive_number("ended_ttl", self.ended_ttl, allow_zero=True)

    def ended_cutoff(self, now: float | None = None) -> float | None:
        """The end time at or before which an execution's events are dropped (``None``: never).

        Args:
            now: The current time (default: the clock's).
        """
        if self.ended_ttl is None:
            return None
        return (time.time() if now is None else now) - self.ended_ttl


class EventLog(abc.ABC):
    """A per-execution, append-only, retained log of live events.

    Cursors are opaque strings chosen by the backend, strictly increasing within one
    execution and stable for as long as the backend keeps its data. Every method may raise
    :class:`EventLogError` when storage fails.
    """

    @abc.abstractmethod
    async def append(self, exec_id: str, events: Sequence[NewEvent]) -> AppendResult:
        """Append ``events`` in order; events already stored (same key) are skipped.

        A batch is stored whole or not at all.
        """

    @abc.abstractmethod
    async def read(self, exec_id: str, after: str | None, limit: int) -> ReadResult:
        """Up to ``limit`` events after the cursor ``after`` (``None``: from the start).

        Raises:
            CursorInvalidError: ``after`` is malformed or beyond the end of the log.
        """

    async def read_frames(self, exec_id: str, after: str | None, limit: int) -> FrameBatch:
        """Like :meth:`read`, as concatenated frames; backends override it to skip decoding.

        Raises:
            CursorInvalidError: ``after`` is malformed or beyond the end of the log.
        """
        res = await self.read(exec_id, after, limit)
        events = res.events
        return FrameBatch(
            frames=b"".join([e.frame for e in events]),
            count=len(events),
            cursor=events[-1].cursor if events else None,
            gap=res.gap,
            ended=res.ended,
        )

    @abc.abstractmethod
    async def wait(self, exec_id: str, after: str | None, timeout: float) -> bool:
        """Sleep until the log has events after ``after``, is ended, or ``timeout`` passes.

        Returns:
            False when the timeout passed with nothing new, else True (a wake-up may be
            spurious; the caller reads again either way).
        """

    @abc.abstractmethod
    async def mark_ended(self, exec_id: str, status: str) -> None:
        """Mark the execution's log ended with its final status (the first status wins)."""

    @abc.abstractmethod
    async def truncate(self, exec_id: str, through: str) -> int:
        """Drop the events up to and including the cursor ``through``; returns how many.

        Readers below the new start get a :class:`Gap`.
        """

    @abc.abstractmethod
    async def enforce_retention(self, now: float | None = None) -> int:
        """Apply the time-based retention rules; returns how many events were dropped."""

    def stats(self) -> dict[str, int]:
        """Counters of this process's use of the log (shown by ``GET /api/v1/info``)."""
        return {}

    @abc.abstractmethod
    async def close(self) -> None:
        """Release resources; the log is unusable afterwards."""

    async def __aenter__(self) -> EventLog:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
