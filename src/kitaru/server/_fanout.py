"""Fan-out: one follower per execution writes each new batch to every watcher at the tail.

Without it every live watcher of an execution woke on each append, read the log (or its
in-memory tail) and wrote the same bytes through uvicorn's ``send``: per watcher and batch a
task wake-up, a read, a timeout, and several layers of ASGI wrappers. Here a watcher of an
unfiltered stream that has caught up *parks* at its position instead of sleeping in
:meth:`EventLog.wait`. Per execution with parked watchers, one follower task sleeps in
``wait``, reads the new frames once per position, frames them once as a chunk of the HTTP body
(:func:`~kitaru.server._connections.chunk`), and writes that one ``bytes`` object to every
watcher parked at that position (:class:`~kitaru.server._connections.DirectWriter`), moving
each one's position on. The watcher's own task stays asleep.

The follower hands a watcher back to its own task (wakes it) whenever the plain path must
decide: the watcher's socket buffer is full or its connection closing (its task then writes
with ``send`` under ``send_timeout``, so a stalled client is cut as before), the read has a gap
or an end status, the batch is larger than one write (:data:`MAX_WRITE`), or the log failed.
So ``end``, ``gap``, errors and the slow-watcher policy stay where they were
(``server/_stream.py``), and bytes of one stream are only ever written by one of the two at a
time (everything runs on the one event loop; a parked task writes nothing).

See ``docs/server-architecture.md`` ("Fan-out").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from kitaru.backends import EventLog, EventLogError
from kitaru.server._connections import DirectWriter, chunk
from kitaru.server._metrics import StreamTrack
from kitaru.server._sse import pieces

__all__ = ["YIELD_AT", "FanOut"]

YIELD_AT = 8
"""Parked watchers at one position from which a follower lets the loop's ready work go first.

Below it the follower writes at once (a few writes cost less than the request's answer it
would wait for); see ``docs/server-architecture.md`` ("Fan-out").
"""

logger = logging.getLogger("kitaru.server")


def _last_id(frames: bytes) -> str | None:
    """The ``id`` of the last frame in ``frames`` (whole stored frames), if it has one.

    Stored frames start with their ``id:`` line and never contain a blank line (see
    ``pieces``), so the last frame starts after the last blank line but the final one.
    """
    cut = frames.rfind(b"\n\n", 0, len(frames) - 2)
    start = 0 if cut < 0 else cut + 2
    if not frames.startswith(b"id: ", start):
        return None
    end = frames.find(b"\n", start)
    return frames[start + 4 : end].decode() if end > 0 else None


class _Parked:
    """One watcher parked at ``position``; ``woken`` hands it back to its own task."""

    __slots__ = ("position", "track", "woken", "writer")

    def __init__(
        self,
        position: str | None,
        writer: DirectWriter,
        track: StreamTrack,
        woken: asyncio.Future[None],
    ) -> None:
        self.position = position
        self.writer = writer
        self.track = track
        self.woken = woken

    def wake(self) -> None:
        if not self.woken.done():
            self.woken.set_result(None)


class _Follower:
    """The parked watchers of one execution, grouped by position, and the task serving them."""

    __slots__ = ("exec_id", "groups", "task")

    def __init__(self, exec_id: str) -> None:
        self.exec_id = exec_id
        self.groups: dict[str | None, dict[_Parked, None]] = {}
        self.task: asyncio.Task[None] | None = None

    def add(self, w: _Parked) -> None:
        self.groups.setdefault(w.position, {})[w] = None

    def remove(self, w: _Parked) -> None:
        group = self.groups.get(w.position)
        if group is not None:
            group.pop(w, None)
            if not group:
                del self.groups[w.position]

    def wake_all(self) -> None:
        # Emptied in place: the serving loop holds this very dict, and a watcher handed back
        # must never stay where the follower would still write to it.
        groups = list(self.groups.values())
        self.groups.clear()
        for group in groups:
            for w in group:
                w.wake()


class FanOut:
    """The followers of one server's event log (one per execution with parked watchers).

    Args:
        log: The event log.
        limit: The most events one read returns (``read_batch``).
        idle: How long a follower sleeps in ``wait`` before it looks again.
    """

    def __init__(self, log: EventLog, limit: int, idle: float) -> None:
        self.log = log
        self.limit = limit
        self.idle = idle
        self._followers: dict[str, _Follower] = {}
        self.written = 0
        """Batches the followers wrote to a parked watcher (one per watcher and batch)."""

    async def park(
        self,
        exec_id: str,
        position: str | None,
        writer: DirectWriter,
        track: StreamTrack,
        timeout: float,
    ) -> tuple[str | None, bool]:
        """Let the follower write new frames for this watcher until it must act itself.

        Returns the watcher's position afterwards and whether anything happened (frames were
        written for it, or it was woken); False means ``timeout`` passed in silence (the
        caller pings).
        """
        follower = self._followers.get(exec_id)
        if follower is None:
            follower = self._followers[exec_id] = _Follower(exec_id)
        w = _Parked(position, writer, track, asyncio.get_running_loop().create_future())
        follower.add(w)
        if follower.task is None:
            follower.task = asyncio.ensure_future(self._follow(follower))
        woke = True
        try:
            async with asyncio.timeout(timeout):
                await w.woken
        except TimeoutError:
            woke = w.position != position
        finally:
            follower.remove(w)
        return w.position, woke

    async def close(self) -> None:
        """Stop every follower and wake every parked watcher."""
        followers = list(self._followers.values())
        self._followers.clear()
        for follower in followers:
            follower.wake_all()
            if follower.task is not None:
                follower.task.cancel()
                with contextlib.suppress(BaseException):
                    await follower.task

    async def _follow(self, follower: _Follower) -> None:
        try:
            await self._serve(follower)
        except asyncio.CancelledError:
            raise
        except EventLogError:
            pass  # each watcher's own read reports it
        except Exception:
            logger.exception("kitaru server: the fan-out of %s failed", follower.exec_id)
        finally:
            follower.wake_all()
            follower.task = None
            if self._followers.get(follower.exec_id) is follower:
                del self._followers[follower.exec_id]

    async def _serve(self, follower: _Follower) -> None:
        log = self.log
        exec_id = follower.exec_id
        groups = follower.groups
        while groups:
            if len(groups) == 1:
                # One position: sleep until the log has something after it. (Several: some
                # group is behind another, so there is something to read at once.)
                (position,) = groups
                if not await log.wait(exec_id, position, self.idle):
                    continue
                if len(groups.get(position, ())) >= YIELD_AT:
                    # The append that woke us answers its request in this same loop turn,
                    # after us (the log wakes watchers first, for their latency): with many
                    # watchers our writes would hold that answer back, and with it the
                    # producer's next request. One turn's yield lets the answer go first.
                    await asyncio.sleep(0)
            progressed = False
            for position in list(groups):
                if position not in groups:
                    continue
                fb = await log.read_frames(exec_id, position, self.limit)
                group = groups.pop(position, None)
                if group is None:
                    continue  # everyone left while the log was read
                if fb.gap is None and fb.ended is None and fb.count == 0:
                    groups[position] = group  # nothing new for them yet
                    continue
                progressed = True
                # Cut like the stream's own writes (pieces of at most MAX_WRITE, each ending a
                # frame), each framed once as a body chunk for everyone.
                parts = list(pieces(fb.frames))
                cuts = [_last_id(part) for part in parts[:-1]]
                if fb.gap is not None or fb.ended is not None or None in cuts:
                    for w in group:
                        w.wake()  # the stream's own loop handles gaps and ends
                    continue
                chunks = [chunk(part) for part in parts]
                cursor = fb.cursor
                moved = groups.setdefault(cursor, {})
                for w in group:
                    writer = w.writer
                    for i, framed in enumerate(chunks):
                        if not writer.write(framed):
                            # Its buffer filled (or it is closing): its own task goes on from
                            # the last frame written, with ``send`` under ``send_timeout``.
                            if i:
                                w.position = w.track.position = cuts[i - 1]
                            w.wake()
                            break
                    else:
                        w.position = w.track.position = cursor
                        moved[w] = None
                self.written += len(moved)
                if not moved:
                    del groups[cursor]
            if not progressed and len(groups) > 1:
                # Positions the log had nothing after, yet not one position: not expected;
                # hand them back rather than read again at once.
                follower.wake_all()
