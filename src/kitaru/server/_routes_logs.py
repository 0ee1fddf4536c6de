"""The routes of runtime log lines and flow-body metadata, and the logs' follow stream.

Log lines are records (stored by the store, ``kitaru.store.LogStore``), not live events; see
``docs/runtime-logs-and-metadata.md``. ``router`` takes the API token in the header;
``stream_router`` (the follow stream, :class:`kitaru.server._logs.LogStream`) also takes
``?token=``. Handlers get the server through :mod:`kitaru.server._deps`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from kitaru import _wire
from kitaru.server import _schemas
from kitaru.server._body import read_body
from kitaru.server._deps import StateDep, TokenQuery, require_token, require_token_or_query
from kitaru.server._errors import ApiError, JsonResponse, bad_request
from kitaru.server._logs import LogStream, parse_log_lines
from kitaru.server._state import ServerState
from kitaru.server._validate import json_type, parse_json
from kitaru.server._validate_records import parse_metadata, parse_usage
from kitaru.store._records import ExecutionRecord
from kitaru.store._usage import usage_by_checkpoint_name

__all__ = ["router", "stream_router"]

_MAX_READ = 5000
_MAX_USAGE_EXECUTIONS = 500

router = APIRouter(dependencies=[Depends(require_token)])
"""Log lines, metadata and usage, behind the API token."""

stream_router = APIRouter(dependencies=[Depends(require_token_or_query)])
"""The logs' follow stream: the token in the header or ``?token=``."""


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


@router.post(_wire.path_logs("{exec_id}"), tags=["logs"])
async def append_logs(exec_id: str, request: Request, state: StateDep) -> JsonResponse:
    """Store captured runtime log lines (idempotent per checkpoint execution and line)."""
    store = _log_store(state)
    await state.require_known(exec_id)
    body = await read_body(request, state.settings.max_body_bytes)
    lines = parse_log_lines(parse_json(body), exec_id)
    await state.call(store.append_logs, lines)
    state.seen(exec_id)
    return JsonResponse({"stored": len(lines)})


@router.get(_wire.path_logs("{exec_id}"), tags=["logs"])
async def read_logs(
    exec_id: str,
    state: StateDep,
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


@router.put(_wire.path_execution_metadata("{exec_id}"), tags=["records"])
async def save_metadata(exec_id: str, request: Request, state: StateDep) -> JsonResponse:
    """Store the metadata and usage a flow body recorded (replacing earlier ones)."""
    store = _log_store(state)
    await state.require_known(exec_id)
    obj = parse_json(await read_body(request, state.settings.max_body_bytes))
    if type(obj) is not dict:
        raise bad_request(f"metadata body must be a JSON object, got {json_type(obj)}")
    metadata = parse_metadata(obj.get("metadata"), "metadata")
    usage = parse_usage(obj.get("usage"), "usage")
    await state.call(store.save_execution_metadata, exec_id, metadata, [u.to_dict() for u in usage])
    state.seen(exec_id)
    return JsonResponse({"exec_id": exec_id})


@router.get(_wire.PATH_USAGE, tags=["records"])
async def usage_dashboard(
    state: StateDep,
    flow: str | None = None,
    limit: Annotated[int, Query(ge=1, le=_MAX_USAGE_EXECUTIONS)] = 100,
) -> JsonResponse:
    """Tokens and cost per checkpoint name over the newest ``limit`` executions."""
    listed = await state.call(state.store.list_executions, flow_name=flow, limit=limit)
    per_name = usage_by_checkpoint_name(await state.call(_checkpoints_of, state, listed))
    return JsonResponse({"executions": len(listed), "checkpoints": per_name})


def _checkpoints_of(state: ServerState, listed: list[ExecutionRecord]) -> list[Any]:
    """The checkpoint records of each listed execution (a worker-thread call)."""
    out = []
    for rec in listed:
        full = state.store.get_execution(rec.exec_id)
        if full is not None:
            out.append(full.checkpoints)
    return out


@stream_router.get(
    _wire.path_logs_stream("{exec_id}"),
    **_schemas.sse_route("logs", "Server-sent events, one `log` frame per line"),
)
async def stream_logs(
    exec_id: str,
    request: Request,
    state: StateDep,
    checkpoint: str | None = None,
    correlation_id: str | None = None,
    since: str | None = None,
    token: TokenQuery = None,
) -> Response:
    """Follow one execution's runtime log lines; ends after the execution ended."""
    store = _log_store(state)
    await state.execution(exec_id)
    header = request.headers.get(_wire.HEADER_LAST_EVENT_ID)
    position = _cursor(header, "Last-Event-ID") if header else _cursor(since, "since")
    if checkpoint is not None and not checkpoint.strip():
        raise bad_request("checkpoint must not be blank")
    return LogStream(state, store, exec_id, position, checkpoint, correlation_id)
