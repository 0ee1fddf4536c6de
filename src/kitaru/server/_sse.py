"""What the server's two SSE streams share: frames, writes cut at frame boundaries, and the race.

The live-event stream (``server/_stream.py``) and the runtime-log follow stream
(``server/_logs.py``) have the same shape (after sse-starlette's ``sse.py``): a writer task, a
disconnect listener and the server's shutdown signal race; the first to finish cancels the
others. :class:`SseResponse` runs that race once for both, with the same handling of a
stalled client (its connection is aborted) and of shutdown (a short ``retry:`` hint, no
``end``). See ``docs/server-architecture.md`` for the races and ``docs/protocol.md`` for the
frames.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

import orjson
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from kitaru import _wire
from kitaru.server._connections import abort_connection

if TYPE_CHECKING:
    from kitaru.server._state import ServerState

__all__ = [
    "MAX_WRITE",
    "PING",
    "RECONNECT",
    "Emit",
    "SseResponse",
    "control_frame",
    "end_frame",
    "pieces",
]

logger = logging.getLogger("kitaru.server")

PING = b": ping\n\n"

# Sent before a stream closes because this server is shutting down or its event log is out
# of reach: reconnect soon (to another replica behind the same address, docs/deployment.md) with the
# last cursor. The Python watcher and EventSource both take it as their next delay.
_RECONNECT_RETRY_MS = 250
RECONNECT = b": reconnect\nretry: %d\n\n" % _RECONNECT_RETRY_MS

MAX_WRITE = 64 * 1024
"""Largest ``send`` of a stream (unless one frame alone is larger)."""

_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),
]

Emit = Callable[[bytes], Awaitable[None]]


def control_frame(name: str, data: object, cursor: str | None = None) -> bytes:
    """A frame the server writes itself (``end``, ``gap``, ...), with an ``id`` if given."""
    head = b"id: %b\n" % cursor.encode() if cursor is not None else b""
    return head + b"event: %b\ndata: %b\n\n" % (name.encode(), orjson.dumps(data))


def end_frame(exec_id: str, status: str, cursor: str | None) -> bytes:
    """Terminal: the execution is over and every retained event was delivered."""
    return control_frame(
        _wire.CONTROL_END, {"exec_id": exec_id, "status": status, "cursor": cursor}
    )


def pieces(chunk: bytes, size: int = MAX_WRITE) -> Iterable[bytes]:
    """``chunk`` (whole frames) in pieces of at most ``size`` bytes, each ending a frame.

    Frames end with a blank line and never contain one (JSON data has no raw line breaks,
    kinds none at all), so a piece never ends inside a frame; a single frame larger than
    ``size`` is one piece.
    """
    n = len(chunk)
    if n <= size:
        yield chunk
        return
    start = 0
    while start < n:
        if n - start <= size:
            yield chunk[start:]
            return
        cut = chunk.rfind(b"\n\n", start, start + size)
        if cut < 0:
            cut = chunk.find(b"\n\n", start + size)
            if cut < 0:
                yield chunk[start:]
                return
        yield chunk[start : cut + 2]
        start = cut + 2


class _SendTimeoutError(TimeoutError):
    """The client did not take a write within ``send_timeout``."""


class SseResponse(Response):
    """A streaming SSE response: a writer, a disconnect listener and shutdown race.

    Subclasses write the body in :meth:`_write` through the ``emit`` that :meth:`_emitter`
    makes (pieces of at most :data:`MAX_WRITE` bytes, each under ``send_timeout``). A writer
    error other than a stalled client is passed to :meth:`_failed`, which returns the bytes to
    close the body with.

    Args:
        state: The server state.
        exec_id: The execution whose stream this is.
    """

    media_type = "text/event-stream"
    last_write_seconds = 0.25
    """How long the last write of a closing stream may take: a client that does not take it
    in this time has stopped reading, and its connection is aborted, so shutdown never waits
    for it."""

    def __init__(self, state: ServerState, exec_id: str) -> None:
        super().__init__(status_code=200)
        self.state = state
        self.exec_id = exec_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": list(_HEADERS)})
        writer = asyncio.ensure_future(self._write(send))
        listener = asyncio.ensure_future(_listen(receive))
        closing = asyncio.ensure_future(self.state.closing.wait())
        tasks = (writer, listener, closing)
        shutting_down = False
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            shutting_down = closing.done() and not writer.done()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if listener.done() and not listener.cancelled():
            return  # the client went away: nothing more can be sent
        error = None if writer.cancelled() else writer.exception()
        if isinstance(error, _SendTimeoutError):
            logger.info(
                "kitaru server: closed the stream of %s: the client took nothing for %.0f s",
                self.exec_id,
                self.state.settings.send_timeout,
            )
            await _abort(scope)
            return
        # Finished (after ``end``/``error``) or shutting down: close the body cleanly. A stream
        # closed without ``end`` tells the watcher to reconnect with its last cursor; on
        # shutdown a short ``retry:`` hint first sends it to another replica at once. The
        # writer only ever stops between whole frames, so the hint starts a new frame.
        tail = RECONNECT if shutting_down else b""
        if error is not None:
            tail = self._failed(error)
        try:
            async with asyncio.timeout(self.last_write_seconds):
                await send({"type": "http.response.body", "body": tail, "more_body": False})
        except TimeoutError:
            await _abort(scope)
        except Exception:
            logger.debug("kitaru server: the last write of a stream failed", exc_info=True)

    async def _write(self, send: Send) -> None:
        raise NotImplementedError

    def _failed(self, error: BaseException) -> bytes:
        """Log a writer that failed; the bytes that close the body."""
        logger.error("kitaru server: stream of %s failed", self.exec_id, exc_info=error)
        return b""

    def _emitter(self, send: Send) -> Emit:
        """The stream's write: pieces cut at frame boundaries, each under ``send_timeout``."""
        timeout = self.state.settings.send_timeout

        async def emit(chunk: bytes) -> None:
            for piece in pieces(chunk):
                try:
                    async with asyncio.timeout(timeout):
                        await send({"type": "http.response.body", "body": piece, "more_body": True})
                except TimeoutError:
                    raise _SendTimeoutError from None

        return emit


async def _listen(receive: Receive) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _abort(scope: Scope) -> None:
    """Abort the stream's connection, then let the server see it closed.

    The two yields let the transport's ``connection_lost`` run before the handler returns,
    so uvicorn knows the client is gone and does not report an unfinished response.
    """
    if abort_connection(scope):
        await asyncio.sleep(0)
        await asyncio.sleep(0)
