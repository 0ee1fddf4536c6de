"""The in-memory event log: the reference backend, and the test double.

Everything is lost when the process exits, so its cursors do not survive a server restart.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from kitaru.backends._base import (
    AppendResult,
    EventLog,
    EventLogError,
    LoggedEvent,
    NewEvent,
    ReadResult,
    Retention,
)
from kitaru.backends._seq import Notifier, format_cursor, gap_for, logged_event, parse_cursor

__all__ = ["MemoryEventLog"]


@dataclass(slots=True)
class _Log:
    seqs: list[int] = field(default_factory=list)
    events: list[LoggedEvent] = field(default_factory=list)
    keys: dict[tuple[str, int], int] = field(default_factory=dict)
    last_seq: int = 0
    base_seq: int = 1
    ended: str | None = None
    ended_at: float | None = None

    def drop_through(self, seq: int) -> int:
        """Drop events with sequence numbers up to ``seq``; returns how many."""
        cut = bisect.bisect_right(self.seqs, seq)
        for ev in self.events[:cut]:
            self.keys.pop((ev.correlation_id, ev.index), None)
        del self.seqs[:cut]
        del self.events[:cut]
        self.base_seq = max(self.base_seq, seq + 1)
        return cut


class MemoryEventLog(EventLog):
    """An :class:`~kitaru.backends.EventLog` kept in process memory.

    Args:
        retention: How much of each execution's log to keep (default: everything).
    """

    durable = False
    """Whether cursors survive a restart of the process."""

    def __init__(self, retention: Retention | None = None) -> None:
        self.retention = retention or Retention()
        self._logs: dict[str, _Log] = {}
        self._notifier = Notifier()
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise EventLogError("the event log is closed")

    async def append(self, exec_id: str, events: Sequence[NewEvent]) -> AppendResult:
        """Append ``events``; already stored ``(correlation_id, index)`` keys are skipped."""
        self._check_open()
        log = self._logs.get(exec_id)
        if log is None:
            log = self._logs[exec_id] = _Log()
        stored = dups = 0
        for ev in events:
            key = (ev.correlation_id, ev.index)
            if key in log.keys:
                dups += 1
                continue
            seq = log.last_seq + 1
            log.events.append(logged_event(seq, ev))
            log.seqs.append(seq)
            log.keys[key] = seq
            log.last_seq = seq
            stored += 1
        limit = self.retention.max_events
        if limit is not None and len(log.events) > limit:
            log.drop_through(log.last_seq - limit)
        if stored:
            self._notifier.notify(exec_id)
        last = format_cursor(log.last_seq) if log.last_seq else None
        return AppendResult(stored=stored, duplicates=dups, last_cursor=last)

    async def read(self, exec_id: str, after: str | None, limit: int) -> ReadResult:
        """Up to ``limit`` events after ``after``, with a gap when some were dropped."""
        self._check_open()
        log = self._logs.get(exec_id)
        if log is None:
            parse_cursor(after, 0)
            return ReadResult(events=[], gap=None, ended=None, last_cursor=None)
        after_seq = parse_cursor(after, log.last_seq)
        gap = gap_for(after, after_seq, log.base_seq)
        if gap is not None:
            after_seq = log.base_seq - 1
        start = bisect.bisect_right(log.seqs, after_seq)
        events = log.events[start : start + max(1, limit)]
        last = format_cursor(log.last_seq) if log.last_seq else None
        return ReadResult(events=events, gap=gap, ended=log.ended, last_cursor=last)

    async def wait(self, exec_id: str, after: str | None, timeout: float) -> bool:
        """Sleep until there is something after ``after``, the log ends, or the timeout."""
        self._check_open()
        token = self._notifier.token(exec_id)
        log = self._logs.get(exec_id)
        if log is not None:
            after_seq = int(after) if after is not None and after.isdigit() else 0
            if log.ended is not None or log.last_seq > after_seq:
                return True
        return await Notifier.sleep_on(token, timeout)

    async def mark_ended(self, exec_id: str, status: str) -> None:
        """Mark the log ended (the first status wins) and wake its watchers."""
        self._check_open()
        log = self._logs.get(exec_id)
        if log is None:
            log = self._logs[exec_id] = _Log()
        if log.ended is None:
            log.ended = status
            log.ended_at = time.time()
        self._notifier.notify(exec_id)

    async def truncate(self, exec_id: str, through: str) -> int:
        """Drop events up to and including ``through``."""
        self._check_open()
        log = self._logs.get(exec_id)
        seq = parse_cursor(through, log.last_seq if log else 0)
        return log.drop_through(seq) if log is not None else 0

    async def enforce_retention(self, now: float | None = None) -> int:
        """Drop the events of executions that ended more than ``ended_ttl`` seconds ago."""
        self._check_open()
        ttl = self.retention.ended_ttl
        if ttl is None:
            return 0
        cutoff = (time.time() if now is None else now) - ttl
        dropped = 0
        for log in self._logs.values():
            if log.ended_at is not None and log.ended_at <= cutoff and log.events:
                dropped += log.drop_through(log.last_seq)
        return dropped

    async def close(self) -> None:
        """Forget everything and wake every waiter."""
        self._closed = True
        self._logs.clear()
        self._notifier.notify_all()
