"""Ingest of several executions' live events in one request (``POST /api/v1/events``).

A producer process runs many executions at once; posting each execution's events in its own
request makes request handling, not storage, the server's main cost under steady traffic. This
route takes one JSON array of wire events of any executions (each event names its own
``exec_id``), groups them by execution in the order they came, and stores each group exactly
as ``POST /api/v1/executions/{exec_id}/events`` would: same checks, same idempotency key
``(exec_id, correlation_id, index)``, same refusals. A refusal is per execution, so one
execution's bad or unknown events never drop another's (``docs/protocol.md``, "Ingest of
several executions").
"""

from __future__ import annotations

import asyncio
import time
from operator import methodcaller
from typing import Any

from fastapi import APIRouter, Depends, Request

from kitaru import _wire
from kitaru._checks import execution_id_problem
from kitaru.backends import AppendResult, EventLog, NewEvent
from kitaru.server import _schemas
from kitaru.server._body import read_body
from kitaru.server._deps import StateDep, require_token
from kitaru.server._errors import ApiError, JsonResponse, bad_request, streaming_off
from kitaru.server._state import ServerState
from kitaru.server._validate import (
    check_events,
    json_type,
    parse_event_array,
    paused_collector,
)

__all__ = ["group_by_execution", "router"]

router = APIRouter(dependencies=[Depends(require_token)])
"""Multi-execution ingest, behind the API token."""

_DICT_ONLY = frozenset((dict,))
_EXEC_ID = methodcaller("get", "exec_id")


def group_by_execution(items: list[Any]) -> dict[str, list[Any]]:
    """The decoded events by execution, in first-seen order, each group in request order.

    Raises:
        ApiError: 400 for an item that names no valid execution: it cannot be attributed to
            one, so the request as a whole is malformed.
    """
    # The common body (one producer's batch of one execution), judged by C-level loops: the
    # same one group the loop below would make.
    if items and set(map(type, items)) == _DICT_ONLY:
        exec_ids = list(map(_EXEC_ID, items))
        first = exec_ids[0]
        if (
            type(first) is str
            and exec_ids.count(first) == len(exec_ids)
            and execution_id_problem(first) is None
        ):
            return {first: items}
    groups: dict[str, list[Any]] = {}
    for pos, item in enumerate(items):
        exec_id = item.get("exec_id") if type(item) is dict else None
        group = groups.get(exec_id) if type(exec_id) is str else None
        if group is None:
            if type(item) is not dict:
                raise bad_request(f"event [{pos}] must be a JSON object, got {json_type(item)}")
            problem = execution_id_problem(exec_id)
            if problem is not None:
                raise bad_request(f"event [{pos}]: {problem}")
            assert isinstance(exec_id, str)
            group = groups[exec_id] = []
        group.append(item)
    return groups


@router.post(
    _wire.PATH_EVENTS,
    tags=["events"],
    openapi_extra=_schemas.body(_schemas.EVENTS),
)
async def ingest_many(request: Request, state: StateDep) -> JsonResponse:
    """Store live events of several executions; the answer is per execution.

    ``{"executions": {exec_id: {"stored", "duplicates", "last_cursor"}}}``, or for an
    execution whose events were refused, ``{exec_id: {"error": {"status", "kind",
    "message"}}}`` (nothing of that execution was stored; the others were).
    """
    started = time.perf_counter()
    metrics = state.metrics
    settings = state.settings
    log = state.log
    try:
        if log is None:
            raise streaming_off()
        body = await read_body(request, settings.max_body_bytes)
    except ApiError as exc:
        metrics.rejected(exc.kind)
        raise
    answers: dict[str, dict[str, Any]] = {}
    # The decoded events die inside the block (see paused_collector); the one wait in it is
    # the lookup of an execution seen for the first time.
    with paused_collector():
        groups, checked = await _check_groups(body, state, answers)
    stored_all = dups_all = 0
    for exec_id, result in zip(
        [exec_id for exec_id, _ in checked], await append_all(log, checked), strict=True
    ):
        metrics.head(exec_id, result.last_cursor)
        state.seen(exec_id)
        stored_all += result.stored
        dups_all += result.duplicates
        answers[exec_id] = {
            "stored": result.stored,
            "duplicates": result.duplicates,
            "last_cursor": result.last_cursor,
        }
    metrics.ingested(stored_all, dups_all, time.perf_counter() - started)
    # Answered in the order the executions first came in the request.
    return JsonResponse({"executions": {exec_id: answers[exec_id] for exec_id in groups}})


async def _check_groups(
    body: bytes, state: ServerState, answers: dict[str, dict[str, Any]]
) -> tuple[list[str], list[tuple[str, list[NewEvent]]]]:
    """The executions of an ingest body in first-seen order, and their events checked.

    An execution whose events are refused gets its error in ``answers`` and is left out of
    the checked ones.

    Raises:
        ApiError: 400 or 413 for a body that is not an array of events naming executions.
    """
    settings, metrics = state.settings, state.metrics
    try:
        groups = group_by_execution(parse_event_array(body, max_events=settings.max_batch_events))
    except ApiError as exc:
        metrics.rejected(exc.kind)
        raise
    checked: list[tuple[str, list[NewEvent]]] = []
    for exec_id, group in groups.items():
        try:
            await state.require_known(exec_id)
            checked.append(
                (exec_id, check_events(group, exec_id, max_event_bytes=settings.max_event_bytes))
            )
        except ApiError as exc:
            metrics.rejected(exc.kind)
            answers[exec_id] = {
                "error": {"status": exc.status, "kind": exc.kind, "message": exc.message}
            }
    return list(groups), checked


async def append_all(
    log: EventLog, batches: list[tuple[str, list[NewEvent]]]
) -> list[AppendResult]:
    """Append each execution's events, all at once rather than one after another.

    Started together, the appends of one request reach the log together, and a log that
    groups concurrent appends (SQLite writes them in one transaction) answers the request
    after one write instead of one per execution. Every append is waited for; a storage
    failure then raises out of the handler (503): the producer retries the whole request,
    and what was stored already comes back as duplicates.
    """
    if len(batches) == 1:
        exec_id, events = batches[0]
        return [await log.append(exec_id, events)]
    tasks = [asyncio.ensure_future(log.append(exec_id, events)) for exec_id, events in batches]
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    results: list[AppendResult] = []
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
        results.append(outcome)
    return results
