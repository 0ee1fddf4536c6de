"""The live-event routes: ingest, the snapshot for late joiners, and the SSE stream.

``router`` takes the API token in the ``Authorization`` header; ``stream_router`` also takes
``?token=`` (a browser's ``EventSource`` cannot send headers). The stream itself is
:class:`kitaru.server._stream.EventStream` (see ``docs/server-architecture.md``); the snapshot's
fold cache is :class:`kitaru.server._snapshot.SnapshotCache`. Handlers get the server through
:mod:`kitaru.server._deps`.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.datastructures import QueryParams
from starlette.responses import Response

from kitaru import _wire
from kitaru._ids import trace_id_for
from kitaru._snapshot import ExecutionSnapshot
from kitaru.backends import CursorInvalidError, EventLog, ReadResult
from kitaru.server import _schemas
from kitaru.server._body import read_body
from kitaru.server._deps import (
    PartsDep,
    StateDep,
    TokenQuery,
    require_token,
    require_token_or_query,
)
from kitaru.server._errors import ApiError, JsonResponse, bad_request, streaming_off
from kitaru.server._stream import EventStream, StreamFilter
from kitaru.server._validate import parse_events
from kitaru.server._web import WebConfig, is_trace_id
from kitaru.store._records import ExecutionRecord

__all__ = ["router", "stream_router"]

_MAX_FILTER_VALUES = 256

router = APIRouter(dependencies=[Depends(require_token)])
"""Ingest and snapshot, behind the API token."""

stream_router = APIRouter(dependencies=[Depends(require_token_or_query)])
"""The SSE stream: the API token (or a read-only one) in the header or ``?token=``."""


@router.post(
    _wire.path_events("{exec_id}"),
    tags=["events"],
    openapi_extra=_schemas.body(_schemas.EVENTS),
)
async def ingest(exec_id: str, request: Request, state: StateDep) -> JsonResponse:
    """Store a batch of live events (idempotent per correlation ID and index)."""
    started = time.perf_counter()
    metrics = state.metrics
    settings = state.settings
    log = state.log
    try:
        if log is None:
            raise streaming_off()
        await state.require_known(exec_id)
        events = parse_events(
            await read_body(request, settings.max_body_bytes),
            exec_id,
            max_events=settings.max_batch_events,
            max_event_bytes=settings.max_event_bytes,
        )
    except ApiError as exc:
        metrics.rejected(exc.kind)
        raise
    stored = dups = 0
    last: str | None = None
    if events:
        result = await log.append(exec_id, events)
        stored, dups, last = result.stored, result.duplicates, result.last_cursor
        metrics.head(exec_id, last)
    state.seen(exec_id)
    metrics.ingested(stored, dups, time.perf_counter() - started)
    return JsonResponse({"stored": stored, "duplicates": dups, "last_cursor": last})


@router.get(_wire.path_snapshot("{exec_id}"), tags=["events"])
async def snapshot(exec_id: str, state: StateDep, parts: PartsDep) -> JsonResponse:
    """The folded live state of one execution and the cursor to follow its stream from.

    Lanes (one per checkpoint execution: name, status, latest message and percent, event
    count, trace and span IDs), the newest custom events, and ``cursor``: render this,
    then open the stream with ``since=<cursor>``.
    """
    cache = parts.snapshots
    if cache is None:
        raise streaming_off()
    record = await state.execution(exec_id)
    if record.is_terminal and state.log is not None:
        # As the stream does: also covers executions that ended while the server was down.
        await state.log.mark_ended(exec_id, record.status)
    snap = await cache.snapshot(exec_id)
    return JsonResponse(_with_record(snap, exec_id, record, parts.web).to_dict())


def _with_record(
    snap: ExecutionSnapshot, exec_id: str, record: ExecutionRecord, web: WebConfig
) -> ExecutionSnapshot:
    """The fold completed with what the record knows: status, times, verdict, trace link."""
    # A lane's trace ID comes from a producer: used only when it is a real trace ID.
    lane_trace = next((lane.trace_id for lane in snap.lanes if is_trace_id(lane.trace_id)), None)
    trace_id = lane_trace or trace_id_for(exec_id)
    lanes = snap.lanes
    if record.is_terminal:
        # Lanes that never ended take the execution's verdict (docs/outcomes.md).
        lanes = tuple(lane.settle(record.status, record.ended_at) for lane in lanes)
    return dataclasses.replace(
        snap,
        lanes=lanes,
        status=record.status,
        flow_name=record.flow_name,
        created_at=record.created_at,
        ended_at=record.ended_at,
        trace_id=trace_id,
        trace_url=web.trace_url(trace_id),
    )


@stream_router.get(
    _wire.path_stream("{exec_id}"),
    **_schemas.sse_route("events", "Server-sent events (see docs/protocol.md)"),
)
async def stream(
    exec_id: str,
    request: Request,
    state: StateDep,
    kinds: Annotated[list[str] | None, Query(description="Only these kinds (repeatable)")] = None,
    checkpoint: Annotated[
        list[str] | None,
        Query(description="Only these checkpoint names, step names or IDs (repeatable)"),
    ] = None,
    correlation_id: Annotated[
        list[str] | None, Query(description="Only these checkpoint executions (repeatable)")
    ] = None,
    since: Annotated[str | None, Query(description="Resume after this cursor")] = None,
    token: TokenQuery = None,
    message_events: Annotated[
        bool,
        Query(description="Send data frames without an event: line (for EventSource)"),
    ] = False,
) -> Response:
    """Follow one execution's live events as server-sent events."""
    log = state.log
    if log is None:
        raise streaming_off()
    flt = _stream_filter(request.query_params, kinds, checkpoint, correlation_id)
    record = await state.execution(exec_id)
    if record.is_terminal:
        # Also covers executions that ended while streaming was off or before a crash.
        await log.mark_ended(exec_id, record.status)
    position = request.headers.get(_wire.HEADER_LAST_EVENT_ID) or since or None
    first = await _first_read(request, log, exec_id, position, state.settings.read_batch)
    return EventStream(state, exec_id, position, flt, first, named_events=not message_events)


def _stream_filter(
    params: QueryParams,
    kinds: list[str] | None,
    checkpoint: list[str] | None,
    correlation_id: list[str] | None,
) -> StreamFilter:
    """The stream's filter; each value list also takes its plural spelling (``kind``...)."""
    return StreamFilter(
        kinds=_filter_values("kinds", [*(kinds or ()), *params.getlist("kind")], True),
        checkpoints=_filter_values(
            "checkpoint", [*(checkpoint or ()), *params.getlist("checkpoints")], False
        ),
        correlation_ids=_filter_values(
            "correlation_id",
            [*(correlation_id or ()), *params.getlist("correlation_ids")],
            False,
        ),
    )


async def _first_read(
    request: Request, log: EventLog, exec_id: str, position: str | None, batch: int
) -> ReadResult:
    """The stream's first batch after ``position``; a 400 naming the cursor's source if bad."""
    try:
        return await log.read(exec_id, position, batch)
    except CursorInvalidError as exc:
        source = "Last-Event-ID" if request.headers.get(_wire.HEADER_LAST_EVENT_ID) else "since"
        raise ApiError(400, _wire.ERROR_CURSOR_INVALID, f"{source}: {exc}") from None


def _filter_values(name: str, values: list[str], is_kind: bool) -> frozenset[str] | None:
    if not values:
        return None
    if len(values) > _MAX_FILTER_VALUES:
        raise bad_request(f"{name}: at most {_MAX_FILTER_VALUES} values, got {len(values)}")
    for value in values:
        if not value.strip():
            raise bad_request(f"{name}: values must not be blank")
        if is_kind and ("\n" in value or "\r" in value):
            raise bad_request(f"{name}: values must not contain line breaks, got {value!r}")
    return frozenset(values)
