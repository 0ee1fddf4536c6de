"""The record routes: executions and their checkpoint records (``tags=["records"]``).

Request bodies are read raw and validated by hand (:mod:`kitaru.server._validate`); the
OpenAPI document still describes them through ``openapi_extra``. Handlers get the server
through :mod:`kitaru.server._deps`.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from kitaru import _wire
from kitaru.server import _schemas
from kitaru.server._body import read_body
from kitaru.server._deps import StateDep, require_token
from kitaru.server._errors import ApiError, JsonResponse, bad_request
from kitaru.server._state import ServerState, unknown_execution
from kitaru.server._validate import parse_json
from kitaru.server._validate_records import (
    parse_checkpoint,
    parse_execution,
    parse_finish,
    same_execution,
)
from kitaru.store._base import ExecutionExistsError, Store
from kitaru.store._records import EXECUTION_STATUSES, ExecutionRecord

__all__ = ["router"]

_MAX_LIST_LIMIT = 1000
_MAX_LIST_OFFSET = 1_000_000

router = APIRouter(dependencies=[Depends(require_token)])
"""The record routes, behind the API token."""


@router.post(
    _wire.PATH_EXECUTIONS,
    tags=["records"],
    status_code=201,
    openapi_extra=_schemas.body(_schemas.EXECUTION),
)
async def create_execution(request: Request, state: StateDep) -> JsonResponse:
    """Record a new execution (idempotent for an identical body; 409 otherwise)."""
    # Liveness is judged by the server's clock: the first heartbeat is the time the
    # server received the create, whatever the producer wrote.
    record = replace(
        parse_execution(parse_json(await read_body(request, state.settings.max_body_bytes))),
        heartbeat_at=time.time(),
    )
    existing = await state.call(state.store.get_execution, record.exec_id)
    if existing is None:
        created = await _create(state, record)
        if created:
            return JsonResponse(record.to_dict(), status_code=201)
        existing = await state.call(state.store.get_execution, record.exec_id)
    if existing is not None and same_execution(existing, record):
        return JsonResponse(existing.to_dict(), status_code=200)
    raise ApiError(
        409,
        _wire.ERROR_CONFLICT,
        f"an execution with ID {record.exec_id!r} already exists with different fields",
    )


async def _create(state: ServerState, record: ExecutionRecord) -> bool:
    """Store a new execution; False when a concurrent create of the same ID won the race."""
    try:
        await state.call(state.store.create_execution, record)
    except (sqlite3.IntegrityError, ExecutionExistsError):
        return False
    state.remember(record.exec_id)
    state.seen(record.exec_id)
    if record.is_terminal:
        await state.ended(record.exec_id, record.status)
    return True


@router.get(_wire.PATH_EXECUTIONS, tags=["records"])
async def list_executions(
    state: StateDep,
    flow: str | None = None,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=_MAX_LIST_LIMIT)] = 50,
    id_prefix: Annotated[str | None, Query(max_length=64)] = None,
    offset: Annotated[int, Query(ge=0, le=_MAX_LIST_OFFSET)] = 0,
) -> JsonResponse:
    """Executions, newest first, without checkpoint records.

    ``flow`` and ``status`` filter exactly, ``id_prefix`` keeps IDs that start with it,
    ``limit`` and ``offset`` page through the newest-first order.
    """
    if status is not None and status not in EXECUTION_STATUSES:
        raise bad_request(f"status must be one of {', '.join(EXECUTION_STATUSES)}, got {status!r}")
    records = await state.call(
        state.store.list_executions,
        flow_name=flow,
        status=status,
        limit=limit,
        id_prefix=id_prefix or None,
        offset=offset,
    )
    return JsonResponse([r.to_dict() for r in records])


@router.get(_wire.path_execution("{exec_id}"), tags=["records"])
async def get_execution(exec_id: str, state: StateDep) -> JsonResponse:
    """One execution with its checkpoint records."""
    return JsonResponse((await state.execution(exec_id)).to_dict())


@router.post(
    _wire.path_finish("{exec_id}"),
    tags=["records"],
    openapi_extra=_schemas.body(_schemas.FINISH),
)
async def finish_execution(exec_id: str, request: Request, state: StateDep) -> JsonResponse:
    """Mark an execution terminal; answers the final record.

    A terminal execution never changes again: finishing one that already ended (for
    example marked lost) succeeds and answers its actual final status.
    """
    body = await read_body(request, state.settings.max_body_bytes)
    status, output, error_type = parse_finish(parse_json(body))
    record = await state.execution(exec_id)
    if not record.is_terminal:
        await state.call(
            state.store.finish_execution, exec_id, status, output=output, error_type=error_type
        )
        record = await state.execution(exec_id)
    await state.ended(exec_id, record.status)
    return JsonResponse(record.to_dict())


@router.post(_wire.path_heartbeat("{exec_id}"), tags=["records"])
async def heartbeat(exec_id: str, state: StateDep) -> JsonResponse:
    """The producer is alive; answers the execution's status and whether to stop.

    ``cancel_requested: true`` tells the producer to stop at its next cancellation point
    and finish the execution ``cancelled`` (``docs/outcomes.md``).
    """
    # One worker-thread call: the stored heartbeat, then the record (an unknown ID updates
    # nothing and is answered 404 below).
    cancel, record = await state.call(_beat, state.store, exec_id)
    if record is None:
        raise unknown_execution(exec_id)
    state.remember(exec_id)
    state.seen(exec_id)
    return JsonResponse({"exec_id": exec_id, "status": record.status, "cancel_requested": cancel})


def _beat(store: Store, exec_id: str) -> tuple[bool, ExecutionRecord | None]:
    """Store a heartbeat and read the record back (on a worker thread)."""
    cancel = bool(store.heartbeat(exec_id))
    return cancel, store.get_execution(exec_id)


@router.post(_wire.path_cancel("{exec_id}"), tags=["records"])
async def cancel_execution(exec_id: str, state: StateDep) -> JsonResponse:
    """Ask the execution's producer to stop; answers the record as it is now.

    Idempotent; a terminal execution is left as it is.
    """
    record = await state.execution(exec_id)
    if not record.is_terminal:
        await state.call(state.store.request_cancel, exec_id)
    return JsonResponse(record.to_dict())


@router.put(
    _wire.path_checkpoint("{exec_id}", "{checkpoint_id}"),
    tags=["records"],
    openapi_extra=_schemas.body(_schemas.CHECKPOINT),
)
async def save_checkpoint(
    exec_id: str, checkpoint_id: str, request: Request, state: StateDep
) -> JsonResponse:
    """Create or replace a checkpoint record."""
    await state.require_known(exec_id)
    body = await read_body(request, state.settings.max_body_bytes)
    record = parse_checkpoint(parse_json(body), exec_id, checkpoint_id)
    await state.call(state.store.save_checkpoint, record)
    state.seen(exec_id)
    return JsonResponse(record.to_dict())


@router.get(_wire.path_cached_checkpoint(), tags=["records"])
async def cached_checkpoint(
    key: Annotated[str, Query(min_length=1)], state: StateDep
) -> JsonResponse:
    """The newest completed checkpoint record with this cache key."""
    record = await state.call(state.store.find_cached, key)
    if record is None:
        raise ApiError(404, _wire.ERROR_NOT_FOUND, "no completed checkpoint with that cache key")
    return JsonResponse(record.to_dict())
