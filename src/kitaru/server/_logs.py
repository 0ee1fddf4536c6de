"""Routes of runtime log lines and flow-body metadata, and the logs' SSE follow stream.

Log lines are records (stored by the store, ``kitaru.store.LogStore``), not live events: they
never enter the event log. Following them uses the same SSE framing as live events (``id:``
cursor lines, ``retry:``, pings, a terminal ``end`` frame, ``Last-Event-ID`` resume), served
by polling the store after the client's cursor. See ``docs/runtime-logs-and-metadata.md`` and
``docs/protocol.md``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response
from starlette.types import Send

from kitaru import _wire
from kitaru.server._body import read_body
from kitaru.server._errors import ApiError, JsonResponse, bad_request
from kitaru.server._sse import PING, RECONNECT, SseResponse, end_frame
from kitaru.server._state import ServerState
from kitaru.server._validate import _Fields, json_type, parse_json, parse_metadata, parse_usage
from kitaru.store._logs import LOG_STREAMS, LogLine
from kitaru.store._usage import usage_by_checkpoint_name

__all__ = ["add_log_routes", "parse_log_lines"]

logger = logging.getLogger("kitaru.server")

POLL_INTERVAL = 0.1
"""Seconds between store reads of a follow stream that has caught up."""

_MAX_LINES_PER_REQUEST = 5000
_MAX_MESSAGE_CHARS = 16 * 1024
_MAX_READ = 5000
_MAX_USAGE_EXECUTIONS = 500


def parse_log_lines(obj: Any, exec_id: str) -> list[LogLine]:
    """Log lines from a JSON array of :meth:`LogLine.to_dict`; each must belong to ``exec_id``."""
    if not isinstance(obj, list):
        raise bad_request(f"log lines must be a JSON array, got {json_type(obj)}")
    if len(obj) > _MAX_LINES_PER_REQUEST:
        raise bad_request(f"at most {_MAX_LINES_PER_REQUEST} log lines per request, got {len(obj)}")
    lines: list[LogLine] = []
    for i, item in enumerate(obj):
        where = f"log line [{i}]"
        f = _Fields(item, where)
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


def _log_store(state: ServerState) -> Any:
    store = state.store
    if not hasattr(store, "read_logs"):
        raise ApiError(501, _wire.ERROR_NOT_FOUND, "this server's store keeps no runtime logs")
    return store


def _cursor(value: str | None, source: str) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise ApiError(
            400, _wire.ERROR_CURSOR_INVALID, f"{source}: a log cursor is a number, got {value!r}"
        )
    return int(value)


def add_log_routes(api: APIRouter, stream_api: APIRouter, state: ServerState) -> None:
    """Add the log and metadata routes (``stream_api`` also takes ``?token=``)."""
    limit = state.settings.max_body_bytes

    @api.post(_wire.path_logs("{exec_id}"), tags=["logs"])
    async def append_logs(exec_id: str, request: Request) -> JsonResponse:
        """Store captured runtime log lines (idempotent per checkpoint execution and line)."""
        store = _log_store(state)
        await state.require_known(exec_id)
        lines = parse_log_lines(parse_json(await read_body(request, limit)), exec_id)
        await state.call(store.append_logs, lines)
        state.seen(exec_id)
        return JsonResponse({"stored": len(lines)})

    @api.get(_wire.path_logs("{exec_id}"), tags=["logs"])
    async def read_logs(
        exec_id: str,
        after: str | None = None,
        checkpoint: str | None = None,
        correlation_id: str | None = None,
        limit: Annotated[int, Query(ge=1, le=_MAX_READ)] = 1000,
    ) -> JsonResponse:
        """Runtime log lines of one execution after a cursor, in store order."""
        store = _log_store(state)
        record = await state.execution(exec_id)
        lines = await state.call(
            store.read_logs,
            exec_id,
            after=_cursor(after, "after"),
            checkpoint=checkpoint,
            correlation_id=correlation_id,
            limit=limit,
        )
        return JsonResponse(
            {
                "lines": [line.to_dict() for line in lines],
                "cursor": str(lines[-1].cursor) if lines else after,
                "status": record.status,
            }
        )

    @api.put(_wire.path_execution_metadata("{exec_id}"), tags=["records"])
    async def save_metadata(exec_id: str, request: Request) -> JsonResponse:
        """Store the metadata and usage a flow body recorded (replacing earlier ones)."""
        store = _log_store(state)
        await state.require_known(exec_id)
        obj = parse_json(await read_body(request, limit))
        if type(obj) is not dict:
            raise bad_request(f"metadata body must be a JSON object, got {json_type(obj)}")
        metadata = parse_metadata(obj.get("metadata"), "metadata")
        usage = parse_usage(obj.get("usage"), "usage")
        await state.call(
            store.save_execution_metadata, exec_id, metadata, [u.to_dict() for u in usage]
        )
        state.seen(exec_id)
        return JsonResponse({"exec_id": exec_id})

    @api.get(_wire.PATH_USAGE, tags=["records"])
    async def usage_dashboard(
        flow: str | None = None,
        limit: Annotated[int, Query(ge=1, le=_MAX_USAGE_EXECUTIONS)] = 100,
    ) -> JsonResponse:
        """Tokens and cost per checkpoint name over the newest ``limit`` executions."""
        listed = await state.call(state.store.list_executions, flow_name=flow, limit=limit)

        def load() -> list[Any]:
            out = []
            for rec in listed:
                full = state.store.get_execution(rec.exec_id)
                if full is not None:
                    out.append(full.checkpoints)
            return out

        per_name = usage_by_checkpoint_name(await state.call(load))
        return JsonResponse({"executions": len(listed), "checkpoints": per_name})

    @stream_api.get(
        _wire.path_logs_stream("{exec_id}"),
        tags=["logs"],
        response_class=Response,
        responses={
            200: {
                "description": "Server-sent events, one `log` frame per line",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            }
        },
    )
    async def stream_logs(
        exec_id: str,
        request: Request,
        checkpoint: str | None = None,
        correlation_id: str | None = None,
        since: str | None = None,
        token: Annotated[
            str | None, Query(description="The API token, for clients that cannot send headers")
        ] = None,
    ) -> Response:
        """Follow one execution's runtime log lines; ends after the execution ended."""
        store = _log_store(state)
        await state.execution(exec_id)
        header = request.headers.get(_wire.HEADER_LAST_EVENT_ID)
        position = _cursor(header, "Last-Event-ID") if header else _cursor(since, "since")
        if checkpoint is not None and not checkpoint.strip():
            raise bad_request("checkpoint must not be blank")
        return LogStream(state, store, exec_id, position, checkpoint, correlation_id)


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
