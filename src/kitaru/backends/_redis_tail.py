"""The in-memory tail of one execution's Redis stream, shared by a replica's watchers.

A replica keeps one :class:`Tail` per execution that someone on it is waiting for. One
follower task (in :mod:`kitaru.backends._redis`) reads the stream with a blocking ``XREAD``
and appends what arrives here, decoded (:mod:`kitaru.backends._redis_entries`); every
watcher of that execution on this replica is then served from this memory. So the Redis
reads of a replica grow with the number of executions it follows, not with the number of
watchers (``docs/deployment.md``). A watcher whose position is below the tail (a catch-up
from far back) reads Redis itself.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from kitaru.backends._base import FrameBatch, LoggedEvent, ReadResult
from kitaru.backends._redis_entries import Item
from kitaru.backends._seq import format_cursor

__all__ = ["Tail"]


class Tail:
    """The newest events of one execution, contiguous, as followed from Redis.

    ``events`` holds the event numbers ``lo .. hi`` in order (``lo == hi + 1`` when it holds
    none); ``hi`` is the newest number the follower has read. Only the follower changes it,
    on the event loop, so readers see a consistent state without locks.

    Args:
        exec_id: The execution.
        size: Keep at least this many newest events (at most twice as many).
    """

    def __init__(self, exec_id: str, size: int) -> None:
        self.exec_id = exec_id
        self.size = max(1, size)
        self.events: list[LoggedEvent] = []
        self.lo = 1
        self.hi = 0
        self.ended: str | None = None
        self.stream_id = b"0-0"  # the follower's XREAD position (the newest entry read)
        # Every stream entry up to "<settled>-0" is an event this tail holds (this replica's
        # own appends, with no end entry among them): the follower need not read them back.
        self.settled = 0
        self._own: set[asyncio.Future[None]] = set()  # own appends awaiting Redis
        self.synced = False  # the follower has loaded the tail and is reading live
        self.down = False  # the follower lost Redis and has not caught up again yet
        self.outages = 0  # how often it lost Redis (wakes the waiters once per outage)
        self.waiters = 0
        self.last_used = time.monotonic()

    def reset(self, last: int, ended: str | None, items: list[Item]) -> None:
        """Load the tail from the newest stream entries (``items`` newest first)."""
        events: list[LoggedEvent] = []
        newest_id = b"%d-0" % last
        for i, (entry_id, item) in enumerate(items):
            if i == 0:
                newest_id = max(entry_id, newest_id, key=_id_key)
            if isinstance(item, str):
                continue  # the end entry
            if events and int(item.cursor) != int(events[-1].cursor) - 1:
                break  # only the contiguous newest run matters
            events.append(item)
        events.reverse()
        self.events = events[-self.size :]
        self.hi = last
        self.lo = int(self.events[0].cursor) if self.events else last + 1
        if self.events and int(self.events[-1].cursor) != last:
            self.events, self.lo = [], last + 1  # the stream is behind its meta: serve nothing
        self.ended = ended
        self.stream_id = newest_id
        self.settled = 0
        self.synced = True
        self.down = False

    def absorb(self, items: list[Item]) -> None:
        """Add entries the follower read after :attr:`stream_id`, in stream order."""
        events = self.events
        for entry_id, item in items:
            self.stream_id = entry_id
            if isinstance(item, str):
                if self.ended is None:
                    self.ended = item
                continue
            seq = int(item.cursor)
            if seq <= self.hi:
                continue
            if seq != self.hi + 1:
                # Retention removed events the follower had not read yet: start over at the
                # first retained one; readers below it go to Redis and get their gap there.
                events.clear()
                self.lo = seq
            events.append(item)
            self.hi = seq
        self._bound()

    def continues(self, first_seq: int) -> bool:
        """True when events numbered from ``first_seq`` would extend the tail without a hole."""
        return self.synced and not self.down and first_seq == self.hi + 1

    def add_own(self, events: list[LoggedEvent], *, settled: bool = False) -> None:
        """Add events this replica has just appended, numbered on from :attr:`hi`.

        Checked first with :meth:`continues`; its watchers need not wait for the follower to
        read them back. ``settled``: the log had no end entry when they were appended (the
        append says so), so every entry up to the newest of them is an event held
        here and the follower's next read starts after them (:meth:`next_id`); otherwise the
        follower still reads these entries, and any end entry among them, and skips what is
        held (:meth:`unheld`).
        """
        self.events.extend(events)
        self.hi += len(events)
        if settled:
            self.settled = self.hi
        self._bound()

    @property
    def appending(self) -> bool:
        """Whether an append of this replica to the execution is awaiting Redis."""
        return bool(self._own)

    def own_started(self) -> asyncio.Future[None]:
        """An append of this replica to the execution is on its way to Redis; its token."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._own.add(fut)
        return fut

    def own_done(self, fut: asyncio.Future[None]) -> None:
        """That append has its answer (and its events are in the tail if they continue it)."""
        self._own.discard(fut)
        if not fut.done():
            fut.set_result(None)

    async def own_appends_done(self, timeout: float) -> None:
        """Wait for the appends of this replica awaiting Redis now (at most ``timeout``).

        Redis writes a blocked reader's answer before the answer to the command that woke
        it, so the follower often reads an own append back before :meth:`add_own` ran.
        Appends started later are not waited for (a steady stream of them never holds the
        follower up).
        """
        if self._own:
            await asyncio.wait(list(self._own), timeout=timeout)

    def next_id(self) -> bytes:
        """Where the follower's next ``XREAD`` starts: after what it read or holds settled."""
        if self.settled and _id_key(self.stream_id) < (self.settled, 0):
            return b"%d-0" % self.settled
        return self.stream_id

    def unheld(self, entries: list[Any]) -> list[Any]:
        """The raw ``XREAD`` entries not held yet: events above :attr:`hi`, and end entries."""
        hi = self.hi
        return [e for e in entries if not (e[0].endswith(b"-0") and int(e[0][:-2]) <= hi)]

    def _bound(self) -> None:
        events = self.events
        if len(events) > 2 * self.size:
            cut = len(events) - self.size
            del events[:cut]
            self.lo += cut

    def covers(self, after_seq: int) -> bool:
        """True when a reader at ``after_seq`` can be served from memory."""
        return self.synced and not self.down and self.lo - 1 <= after_seq <= self.hi

    def read(self, after_seq: int, limit: int) -> ReadResult:
        """Up to ``limit`` events after ``after_seq`` (which :meth:`covers` accepted)."""
        start = after_seq - self.lo + 1
        events = self.events[start : start + max(1, limit)]
        return ReadResult(
            events=events,
            gap=None,
            ended=self.ended,
            last_cursor=format_cursor(self.hi) if self.hi else None,
        )

    def read_frames(self, after_seq: int, limit: int) -> FrameBatch:
        """Like :meth:`read`, as concatenated frames."""
        start = after_seq - self.lo + 1
        events = self.events[start : start + max(1, limit)]
        return FrameBatch(
            frames=b"".join([e.frame for e in events]),
            count=len(events),
            cursor=events[-1].cursor if events else None,
            gap=None,
            ended=self.ended,
        )


def _id_key(entry_id: bytes) -> tuple[int, int]:
    seq, _, sub = entry_id.partition(b"-")
    return int(seq), int(sub or b"0")
