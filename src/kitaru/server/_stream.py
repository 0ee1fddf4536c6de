"""The SSE stream of one execution: replay from the log, then follow it live.

Shape (after sse-starlette's ``sse.py``): a writer task, a disconnect listener and the server's
shutdown signal race; the first to finish cancels the others. Deliberate divergences:

* Frames are pre-encoded bytes and everything ready is written in one chunk (up to
  ``read_batch`` frames), instead of one ``send`` per event: catch-up is bound by the log
  read, not by per-frame overhead.
* The writer holds no queue. It reads the durable log after its own position, a batch at a
  time, and sleeps in :meth:`EventLog.wait` when it has caught up; so memory per watcher is one
  batch, and a slow watcher only falls behind in the log, it never loses events.
* Pings are written only when the wait times out, and they double as a poll of the log, so
  watchers also see events written by another process on the same database.
* A send that a stalled client does not take within ``send_timeout`` closes the stream and
  aborts its TCP connection (``server/_connections.py``): returning from the handler alone
  would leave the socket open with its send buffer full.
* Each ``send`` carries at most about :data:`MAX_WRITE` bytes, cut at frame boundaries: a slow
  client holds at most one such piece in the server's socket buffer (uvicorn waits for it to
  drain before the next), and the writer never stops in the middle of a frame.
* Live watchers at the tail are served from the log's in-memory tail where it has one (the
  SQLite log, see ``backends/_sqlite.py``): the same joined frames serve every watcher at the
  same position, without a database read each.
* A caught-up watcher of an unfiltered stream parks with the execution's follower
  (``server/_fanout.py``), which writes each new batch, framed once, straight to every watcher
  parked at that position; the writer task wakes only for what it decides itself (a full
  socket buffer, a gap, the end, a ping).

The race of the three tasks, the pieces of a write and the frames both SSE streams use are in
``server/_sse.py``.

See ``docs/protocol.md`` for the frames and ``docs/server-architecture.md`` for the races.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from starlette.types import Receive, Scope, Send

from kitaru import _wire
from kitaru.backends import (
    EventLogError,
    EventLogUnavailableError,
    FrameBatch,
    Gap,
    LoggedEvent,
    ReadResult,
)
from kitaru.events._frames import unnamed_frame
from kitaru.server._connections import direct_writer
from kitaru.server._metrics import StreamTrack
from kitaru.server._sse import (
    MAX_WRITE,
    PING,
    RECONNECT,
    Emit,
    SseResponse,
    control_frame,
    end_frame,
    pieces,
)
from kitaru.server._state import ServerState

__all__ = [
    "MAX_WRITE",
    "PING",
    "RECONNECT",
    "EventStream",
    "StreamFilter",
    "data_frame",
    "end_frame",
]

logger = logging.getLogger("kitaru.server")

_pieces = pieces  # the name the tests know


@dataclass(frozen=True, slots=True)
class StreamFilter:
    """Which events a stream delivers; ``None`` means no restriction on that field.

    ``checkpoints`` matches an event's checkpoint name, step name or checkpoint ID.
    """

    kinds: frozenset[str] | None = None
    checkpoints: frozenset[str] | None = None
    correlation_ids: frozenset[str] | None = None

    def match(self, ev: LoggedEvent) -> bool:
        """True when ``ev`` passes every set restriction."""
        if self.kinds is not None and ev.kind not in self.kinds:
            return False
        cps = self.checkpoints
        if cps is not None and not (
            ev.checkpoint_name in cps or ev.step_name in cps or ev.checkpoint_id in cps
        ):
            return False
        return self.correlation_ids is None or ev.correlation_id in self.correlation_ids

    @property
    def active(self) -> bool:
        """True when anything is filtered."""
        return not (
            self.kinds is None and self.checkpoints is None and self.correlation_ids is None
        )


def data_frame(ev: LoggedEvent, named: bool = True) -> bytes:
    """The SSE frame of one event (``named=False``: no ``event:`` line, see ``message_events``)."""
    if not named:
        return unnamed_frame(ev.cursor, ev.data)
    return ev.frame


def cursor_frame(cursor: str) -> bytes:
    """Moves the client's position past events a filter removed."""
    return control_frame(_wire.CONTROL_CURSOR, {"cursor": cursor}, cursor)


def gap_frame(gap: Gap) -> bytes:
    """Announces events lost to retention; its ``id`` is the last lost position."""
    data = {
        "reason": gap.reason,
        "after": gap.after,
        "until": gap.until,
        "lost": gap.lost,
        "message": (
            f"{gap.lost} event(s) after "
            f"{'the start' if gap.after is None else 'cursor ' + gap.after} are no longer "
            f"retained ({gap.reason})"
        ),
    }
    return control_frame(_wire.CONTROL_GAP, data, gap.until)


def error_frame(kind: str, message: str) -> bytes:
    """Terminal: the stream cannot continue."""
    return control_frame(_wire.CONTROL_ERROR, {"kind": kind, "message": message})


class EventStream(SseResponse):
    """The streaming response; built after the first log read succeeded.

    Args:
        state: The server state.
        exec_id: The execution.
        position: The cursor to continue after (``None``: from the start).
        flt: What to deliver.
        first: The first batch, already read (so a bad cursor was a 400, not a broken stream).
        named_events: Give data frames an ``event: <kind>`` line; False for browsers'
            ``EventSource``, which has no catch-all listener for named events.
    """

    def __init__(
        self,
        state: ServerState,
        exec_id: str,
        position: str | None,
        flt: StreamFilter,
        first: ReadResult,
        *,
        named_events: bool = True,
    ) -> None:
        super().__init__(state, exec_id)
        self.position = position
        self.flt, self.first, self.named_events = flt, first, named_events
        self.track = StreamTrack(exec_id, position)  # what /metrics knows of this stream
        self._scope: Scope | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        metrics = self.state.metrics
        metrics.stream_opened(self.track)
        self._scope = scope
        try:
            await super().__call__(scope, receive, send)
        finally:
            metrics.stream_closed(self.track)

    async def _write(self, send: Send) -> None:
        emit = self._emitter(send)
        try:
            await self._follow(emit)
        except EventLogUnavailableError as exc:
            # Temporary (Redis restarting, a failover): not terminal. Close as a disconnect;
            # the watcher reconnects with its cursor and gets 503 until the log is back.
            logger.warning("kitaru server: event log unavailable for %s: %s", self.exec_id, exc)
            self.state.metrics.backend_error("stream")
            self.state.metrics.backend_retry("reconnect")
            await emit(RECONNECT)
        except EventLogError as exc:
            logger.error("kitaru server: event log failed for %s: %s", self.exec_id, exc)
            self.state.metrics.backend_error("stream")
            await emit(error_frame(_wire.ERROR_BACKEND, "the server's event log failed"))

    async def _follow(self, emit: Emit) -> None:
        state = self.state
        log = state.log
        assert log is not None
        settings = state.settings
        limit = settings.read_batch
        flt = self.flt
        filtering = flt.active
        named = self.named_events
        # Without filters the log's stored frames go out as they are: no decoding per event.
        read: Callable[[str, str | None, int], Awaitable[ReadResult | FrameBatch]] = (
            log.read_frames if not filtering and named else log.read
        )
        pos = self.position
        delivered = pos  # the newest position the client has been told about
        res: ReadResult | FrameBatch = self.first
        track = self.track
        metrics = state.metrics
        # Only streams that send the stored frames as they are can share the follower's bytes.
        fanout = state.fanout if read == log.read_frames else None
        direct = direct_writer(self._scope) if fanout is not None and self._scope else None
        # Frames ready to go; written together at the next point where the stream would
        # otherwise pause (a wait, the end, or a full batch), so a short stream is one write.
        pending: list[bytes] = [b"retry: %d\n\n" % settings.retry_ms]
        while True:
            if isinstance(res, ReadResult):
                metrics.head(self.exec_id, res.last_cursor)
            if res.gap is not None:
                pending.append(gap_frame(res.gap))
                pos = delivered = res.gap.until
            if isinstance(res, FrameBatch):
                count = res.count
                if count:
                    pending.append(res.frames)
                    pos = delivered = res.cursor
            else:
                events = res.events
                count = len(events)
                if count:
                    if filtering:
                        pending.extend(_filtered_frames(events, flt, named))
                    elif named:
                        pending.extend([ev.frame for ev in events])
                    else:
                        pending.extend([data_frame(ev, named) for ev in events])
                    pos = delivered = events[-1].cursor
            if count >= limit:
                # Catching up: read the next batch while this one is being written.
                reading = asyncio.ensure_future(read(self.exec_id, pos, limit))
                try:
                    if pending:
                        await emit(b"".join(pending))
                        pending = []
                        track.position = pos
                    res = await reading
                finally:
                    reading.cancel()
                continue
            if res.ended is not None:
                pending.append(end_frame(self.exec_id, res.ended, delivered))
                await emit(b"".join(pending))
                return
            if pending:
                await emit(b"".join(pending))
                pending = []
            track.position = pos
            if fanout is not None and direct is not None:
                # Caught up: the execution's follower writes new frames for us
                # (server/_fanout.py) until this stream must act itself.
                pos, woke = await fanout.park(
                    self.exec_id, pos, direct, track, settings.ping_interval
                )
                delivered = pos
            else:
                woke = await log.wait(self.exec_id, pos, settings.ping_interval)
            if not woke:
                await emit(PING)
            res = await read(self.exec_id, pos, limit)


def _filtered_frames(
    events: Iterable[LoggedEvent], flt: StreamFilter, named: bool = True
) -> list[bytes]:
    """Frames for matching events, plus one ``cursor`` frame if the batch ends filtered.

    A run of filtered events followed by a delivered event needs no frame of its own (the
    delivered event's ``id`` moves the position past them); a trailing run gets one cursor frame,
    written before the stream waits, so a resume never scans those events again.
    """
    out: list[bytes] = []
    tail: str | None = None
    for ev in events:
        if flt.match(ev):
            out.append(data_frame(ev, named))
            tail = None
        else:
            tail = ev.cursor
    if tail is not None:
        out.append(cursor_frame(tail))
    return out
