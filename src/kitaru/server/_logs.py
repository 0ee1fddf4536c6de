"""Runtime log lines on the server: their validation and the logs' SSE follow stream.

Log lines are records (stored by the store, ``kitaru.store.LogStore``), not live events: they
never enter the event log. Following them uses the same SSE framing as live events (``id:``
cursor lines, ``retry:``, pings, a terminal ``end`` frame, ``Last-Event-ID`` resume), served
by polling the store after the client's cursor. See ``docs/runtime-logs-and-metadata.md`` and
``docs/protocol.md``. The routes are in :mod:`kitaru.server._routes_logs`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from starlette.types import Send

from kitaru import _wire
from kitaru.server._errors import bad_request
from kitaru.server._sse import PING, RECONNECT, SseResponse, end_frame
from kitaru.server._state import ServerState
from kitaru.server._validate import json_type
from kitaru.server._validate_records import Fields
from kitaru.store._logs import LOG_STREAMS, LogLine

__all__ = ["LogStream", "log_frame", "parse_log_lines"]

logger = logging.getLogger("kitaru.server")

POLL_INTERVAL = 0.1
"""Seconds between store reads of a follow stream that has caught up."""

_MAX_LINES_PER_REQUEST = 5000
_MAX_MESSAGE_CHARS = 16 * 1024


def parse_log_lines(obj: Any, exec_id: str) -> list[LogLine]:
    """Log lines from a JSON array of :meth:`LogLine.to_dict`; each must belong to ``exec_id``."""
    if not isinstance(obj, list):
        raise bad_request(f"log lines must be a JSON array, got {json_type(obj)}")
    if len(obj) > _MAX_LINES_PER_REQUEST:
        raise bad_request(f"at most {_MAX_LINES_PER_REQUEST} log lines per request, got {len(obj)}")
    lines: list[LogLine] = []
    for i, item in enumerate(obj):
        where = f"log line [{i}]"
        f = Fields(item, where)
        if item.get("exec_id") != exec_id:
            raise bad_request(f"{where}: exec_id does not match the path ({exec_id!r})")
        message = f.text("message", nonblank=False)
        if len(message) > _MAX_MESSAGE_CHARS:
            raise bad_request(f"{where}: message is over {_MAX_MESSAGE_CHARS} characters")
        lines.append(
            LogLine(
                exec_id=exec_id,
                checkpoint_id=f.text("checkpoint_id"),
                correlation_id=f.text("correlation_id"),
                checkpoint=f.text("checkpoint"),
                step_name=f.text("step_name"),
                attempt=f.integer("attempt"),
                line=f.integer("line"),
                ts=f.timestamp("ts"),
                stream=f.choice("stream", LOG_STREAMS),
                level=f.text("level"),
                message=message,
                logger=f.text("logger", optional=True, nonblank=False),
                source=f.text("source", optional=True, nonblank=False),
            )
        )
    return lines


def log_frame(line: LogLine) -> bytes:
    """The SSE frame of one log line: ``id`` is its cursor, ``event: log``."""
    data = line.to_dict()
    return b"id: %d\nevent: %b\ndata: %b\n\n" % (
        line.cursor or 0,
        _wire.LOG_EVENT.encode(),
        orjson.dumps(data),
    )


class LogStream(SseResponse):
    """The follow stream of one execution's log lines (polls the store after its cursor).

    The race of writer, disconnect and shutdown is :class:`SseResponse`'s (shared with the
    live-event stream, ``server/_sse.py``).
    """

    last_write_seconds = 1.0

    def __init__(
        self,
        state: ServerState,
        store: Any,
        exec_id: str,
        position: int | None,
        checkpoint: str | None,
        correlation_id: str | None,
    ) -> None:
        super().__init__(state, exec_id)
        self.store, self.position = store, position
        self.checkpoint, self.correlation_id = checkpoint, correlation_id

    def _failed(self, error: BaseException) -> bytes:
        # Closed without ``end``: the client reconnects with its last cursor.
        logger.warning("kitaru server: log stream of %s stopped: %r", self.exec_id, error)
        return RECONNECT

    async def _write(self, send: Send) -> None:
        settings = self.state.settings
        emit = self._emitter(send)
        await emit(b"retry: %d\n\n" % settings.retry_ms)
        pos = self.position
        last_ping = time.monotonic()
        while True:
            # The status is read before the lines: lines stored before the execution ended
            # are all visible to the read that follows a terminal status.
            record = await self.state.call(self.store_get, self.exec_id)
            ended = record.status if record is not None and record.is_terminal else None
            while True:
                lines: list[LogLine] = await self.state.call(
                    self.store.read_logs,
                    self.exec_id,
                    after=pos,
                    checkpoint=self.checkpoint,
                    correlation_id=self.correlation_id,
                    limit=1000,
                )
                if lines:
                    await emit(b"".join(log_frame(line) for line in lines))
                    pos = lines[-1].cursor
                    last_ping = time.monotonic()
                if len(lines) < 1000:
                    break
            if ended is not None:
                await emit(end_frame(self.exec_id, ended, None if pos is None else str(pos)))
                return
            if time.monotonic() - last_ping >= settings.ping_interval:
                await emit(PING)
                last_ping = time.monotonic()
            await asyncio.sleep(POLL_INTERVAL)

    def store_get(self, exec_id: str) -> Any:
        """The execution record (a worker-thread call)."""
        return self.state.store.get_execution(exec_id)
