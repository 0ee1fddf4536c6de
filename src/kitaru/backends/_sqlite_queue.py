"""The SQLite log's append queue: appends that arrive together are written as one group.

Why it exists: SQLite takes one writer at a time, and every write is a hop to a worker thread
(the event loop never blocks on disk) plus a ``BEGIN IMMEDIATE`` ... ``COMMIT``. Under many
small batches (one event per request from each of many executions) a hop and a commit per
append would make the hops and commits, not the rows, the cost. So an append that arrives
while another is being written waits here, and the worker that finishes the current write
takes everything queued and writes it in one transaction, in the order it came; a lone append
is written at once. A group whose transaction fails is written again one batch at a time, so
one batch never fails another's request (``docs/server-architecture.md``, "Appends are
grouped").

The queue knows nothing of SQLite: the log gives it the function that writes a group (on a
worker thread, under the log's write lock) and the one that turns an exception into what a
caller is told.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

from kitaru.backends._base import AppendResult, EventLogError, NewEvent
from kitaru.backends._seq import Notifier

__all__ = ["AppendQueue", "Queued"]

Outcome = AppendResult | BaseException


@dataclass(slots=True)
class Queued:
    """An append waiting for its group's transaction, and where to answer it."""

    exec_id: str
    events: Sequence[NewEvent]
    done: asyncio.Future[AppendResult]
    loop: asyncio.AbstractEventLoop


class AppendQueue:
    """Appends waiting for the worker that writes them as one group.

    Args:
        pool: Where the worker runs (the log's thread pool).
        write: Writes a group in one transaction, one result per append, in order (on the
            worker thread); raises when the transaction fails.
        failed: What a caller is told of an exception ``write`` raised.
        notifier: Wakes the watchers of an execution whose append stored events.
    """

    def __init__(
        self,
        pool: Executor,
        write: Callable[[list[Queued]], list[Outcome]],
        failed: Callable[[Exception], BaseException],
        notifier: Notifier,
    ) -> None:
        self._pool = pool
        self._write = write
        self._failed = failed
        self._notifier = notifier
        self._queue: list[Queued] = []
        self._lock = threading.Lock()
        self._draining = False

    async def append(self, exec_id: str, events: Sequence[NewEvent]) -> AppendResult:
        """Queue an append, start a worker if none is draining, and wait for its result.

        Raises:
            EventLogError: the pool was shut down (the log is closed), or storage failed.
        """
        loop = asyncio.get_running_loop()
        done: asyncio.Future[AppendResult] = loop.create_future()
        with self._lock:
            self._queue.append(Queued(exec_id, events, done, loop))
            start, self._draining = not self._draining, True
        if start:
            try:
                self._pool.submit(self._drain)
            except RuntimeError as exc:  # the pool was shut down by close()
                with self._lock:
                    self._queue.clear()
                    self._draining = False
                raise EventLogError(f"the event log is closed ({exc})") from exc
        return await done  # its watchers were woken as it was settled (see _settle)

    def _drain(self) -> None:
        """Write queued appends, a group at a time, until the queue is empty (worker thread)."""
        while True:
            with self._lock:
                group, self._queue = self._queue, []
                if not group:
                    self._draining = False
                    return
            outcomes = self._append_group(group)
            by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Queued, Outcome]]] = {}
            for item, outcome in zip(group, outcomes, strict=True):
                by_loop.setdefault(item.loop, []).append((item, outcome))
            for loop, settled in by_loop.items():
                with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                    loop.call_soon_threadsafe(_settle, settled, self._notifier)

    def _append_group(self, group: list[Queued]) -> list[Outcome]:
        try:
            return self._write(group)
        except Exception as exc:
            if len(group) == 1:
                return [self._failed(exc)]
        outcomes: list[Outcome] = []
        for item in group:
            try:
                outcomes.extend(self._write([item]))
            except Exception as exc:
                outcomes.append(self._failed(exc))
        return outcomes


def _settle(settled: list[tuple[Queued, Outcome]], notifier: Notifier) -> None:
    """Answer the appends of one group and wake their executions' watchers (on their loop).

    The watchers are woken here, in the same loop turn as the commit is answered and before
    the appending requests resume: a follower then writes the new frames in the next turn,
    instead of one turn later, after the request's handler got to run (the live latency,
    ``benchmarks/README.md``, "Where the time goes").
    """
    for item, outcome in settled:
        if not isinstance(outcome, BaseException) and outcome.stored:
            notifier.notify(item.exec_id)  # committed, even if its caller was cancelled
        if item.done.done():
            continue  # its caller was cancelled; the append is committed all the same
        if isinstance(outcome, BaseException):
            item.done.set_exception(outcome)
        else:
            item.done.set_result(outcome)
