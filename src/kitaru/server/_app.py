"""The app factory and its routes (FastAPI on Starlette; OpenAPI comes for free).

Request bodies are read raw and validated by hand (:mod:`kitaru.server._validate`); the
OpenAPI document still describes them through ``openapi_extra``.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from starlette.responses import Response

from kitaru import _config, _wire
from kitaru._version import __version__
from kitaru.backends import CursorInvalidError, EventLog
from kitaru.exceptions import KitaruUsageError
from kitaru.server import _schemas
from kitaru.server._backends import open_event_log, open_store
from kitaru.server._body import read_body as _read_body
from kitaru.server._errors import ApiError, JsonResponse, bad_request, install_error_handlers
from kitaru.server._logs import add_log_routes
from kitaru.server._metrics import CONTENT_TYPE
from kitaru.server._settings import ServerSettings
from kitaru.server._snapshot import add_snapshot_routes
from kitaru.server._state import ServerState, ServerStore
from kitaru.server._stream import EventStream, StreamFilter
from kitaru.server._tokens import StreamTokens
from kitaru.server._validate import (
    parse_checkpoint,
    parse_events,
    parse_execution,
    parse_finish,
    parse_json,
    same_execution,
)
from kitaru.server._web import WebConfig, add_stream_token_routes, add_ui_routes
from kitaru.store._base import ExecutionExistsError
from kitaru.store._records import EXECUTION_STATUSES

__all__ = ["create_app"]

_MAX_FILTER_VALUES = 256
_MAX_LIST_LIMIT = 1000
_MAX_LIST_OFFSET = 1_000_000


def create_app(
    settings: ServerSettings | None = None,
    *,
    store: ServerStore | None = None,
    event_log: EventLog | None = None,
    **options: Any,
) -> FastAPI:
    """Build the kitaru server app (for ``kitaru server start``, embedding, or tests).

    Args:
        settings: The server settings; or pass them as keyword ``options`` (the fields of
            :class:`ServerSettings`, e.g. ``db=``, ``token=``, ``streaming=``). Without
            either, ``token`` defaults to ``KITARU_API_TOKEN``.
        store: Where durable records live. Default: the store ``settings.db`` names (a
            :class:`~kitaru.store.SqliteStore`, or a PostgreSQL store for a
            ``postgresql://`` URL).
        event_log: Where live events live. Default: the log ``settings.event_log_url`` names, or
            a :class:`~kitaru.backends.SqliteEventLog` on the ``db`` file (none when
            streaming is off).
        **options: Settings fields, when ``settings`` is not given.

    Returns:
        The ASGI app. Its ``state.kitaru`` is the :class:`ServerState`; serve it with
        :func:`kitaru.server.serve` or :func:`kitaru.server.serve_in_thread` so open streams
        close promptly on shutdown.
    """
    if settings is None:
        if "token" not in options:
            options["token"] = _config.api_token()
        settings = ServerSettings.from_options(**options)
    elif options:
        raise KitaruUsageError(
            f"pass either settings or keyword options, not both (got {', '.join(options)})"
        )
    log: EventLog | None = None
    if settings.streaming:
        # The log first: a bad event-log setting is refused before the store opens anything.
        log = event_log or open_event_log(settings)
    if store is None:
        store = open_store(settings)
    state = ServerState(settings, store, log)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await state.start()
        try:
            yield
        finally:
            await state.stop()

    app = FastAPI(
        title="kitaru server",
        version=__version__,
        description="Durable execution records and live checkpoint events (SSE). "
        "See docs/protocol.md.",
        lifespan=lifespan,
    )
    app.state.kitaru = state
    install_error_handlers(app)

    @app.get(_wire.PATH_HEALTH, tags=["meta"])
    async def health() -> JsonResponse:
        """Liveness: always open, no token needed."""
        return JsonResponse({"status": "ok"})

    web = WebConfig.from_env()
    tokens = StreamTokens(settings.token)
    api = APIRouter(dependencies=[Depends(_auth(state, tokens, allow_query=False))])
    stream_api = APIRouter(dependencies=[Depends(_auth(state, tokens, allow_query=True))])
    _add_meta_routes(api, state, web)
    _add_record_routes(api, state)
    _add_event_routes(api, stream_api, state)
    add_snapshot_routes(api, state, web)
    add_log_routes(api, stream_api, state)
    add_stream_token_routes(api, tokens)
    app.include_router(api)
    app.include_router(stream_api)
    add_ui_routes(app)
    return app


_READ_METHODS = frozenset({"GET", "HEAD"})


def _auth(state: ServerState, tokens: StreamTokens, *, allow_query: bool) -> Any:
    token = state.settings.token
    expected = token.encode() if token else None

    async def require_token(request: Request) -> None:
        if expected is None:
            return
        supplied: str | None = None
        header = request.headers.get("authorization")
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() == "bearer":
                supplied = value.strip()
        if supplied is None and allow_query:
            supplied = request.query_params.get(_wire.QUERY_TOKEN)
        if supplied is None:
            raise ApiError(
                401,
                _wire.ERROR_UNAUTHORIZED,
                "this server requires an API token: send 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not secrets.compare_digest(supplied.encode(), expected):
            # Short-lived read-only tokens (POST /api/v1/stream-tokens, for the web view's
            # EventSource) open reading routes only.
            if tokens.looks_like(supplied):
                grant = tokens.grant(supplied)
                if grant is not None and request.method in _READ_METHODS:
                    if grant.allows(request.path_params.get("exec_id")):
                        return
                    raise ApiError(
                        403,
                        _wire.ERROR_UNAUTHORIZED,
                        f"this read-only token is scoped to execution {grant.exec_id!r}; it "
                        f"cannot read {request.url.path}",
                    )
                if grant is not None:
                    raise ApiError(
                        403,
                        _wire.ERROR_UNAUTHORIZED,
                        f"a read-only token cannot {request.method} {request.url.path}; "
                        "send the API token",
                    )
                raise ApiError(
                    401,
                    _wire.ERROR_UNAUTHORIZED,
                    "the read-only token is invalid or expired; get a new one with "
                    f"POST {_wire.PATH_STREAM_TOKENS}",
                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
            raise ApiError(
                401,
                _wire.ERROR_UNAUTHORIZED,
                "the API token is wrong",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )

    return require_token


def _streaming_off() -> ApiError:
    return ApiError(
        501,
        _wire.ERROR_STREAMING_DISABLED,
        "live events are disabled on this server (it was started with --no-streaming)",
    )


def _add_meta_routes(api: APIRouter, state: ServerState, web: WebConfig) -> None:
    @api.get(
        _wire.PATH_METRICS,
        tags=["meta"],
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}}},
    )
    async def metrics() -> Response:
        """The server's own metrics in Prometheus text format (see docs/opentelemetry.md)."""
        body = state.metrics.render(started_at=state.started_at)
        return Response(body, media_type=CONTENT_TYPE)

    @api.get(_wire.PATH_INFO, tags=["meta"])
    async def info() -> JsonResponse:
        """Server version and capabilities."""
        s = state.settings
        return JsonResponse(
            {
                "version": __version__,
                "api": "v1",
                "streaming": state.log is not None,
                "auth": s.token is not None,
                "lost_after": s.lost_after,
                "ping_interval": s.ping_interval,
                "retry_ms": s.retry_ms,
                "max_event_bytes": s.max_event_bytes,
                "max_batch_events": s.max_batch_events,
                "event_log": type(state.log).__name__ if state.log is not None else None,
                # Scale-out (docs/deployment.md): which replica answered, and its use of the
                # event log (a Redis log counts its Redis reads here).
                "store": type(state.store).__name__,
                "instance": state.instance,
                "event_log_stats": state.log.stats() if state.log is not None else {},
                "trace_url_template": web.trace_url_template,
            }
        )


def _add_record_routes(api: APIRouter, state: ServerState) -> None:
    store = state.store
    limit = state.settings.max_body_bytes

    @api.post(
        _wire.PATH_EXECUTIONS,
        tags=["records"],
        status_code=201,
        openapi_extra=_schemas.body(_schemas.EXECUTION),
    )
    async def create_execution(request: Request) -> JsonResponse:
        """Record a new execution (idempotent for an identical body; 409 otherwise)."""
        # Liveness is judged by the server's clock: the first heartbeat is the time the
        # server received the create, whatever the producer wrote.
        record = replace(
            parse_execution(parse_json(await _read_body(request, limit))),
            heartbeat_at=time.time(),
        )
        existing = await state.call(store.get_execution, record.exec_id)
        if existing is None:
            try:
                await state.call(store.create_execution, record)
            except (sqlite3.IntegrityError, ExecutionExistsError):
                existing = await state.call(store.get_execution, record.exec_id)
            else:
                state.remember(record.exec_id)
                state.seen(record.exec_id)
                if record.is_terminal:
                    await state.ended(record.exec_id, record.status)
                return JsonResponse(record.to_dict(), status_code=201)
        if existing is not None and same_execution(existing, record):
            return JsonResponse(existing.to_dict(), status_code=200)
        raise ApiError(
            409,
            _wire.ERROR_CONFLICT,
            f"an execution with ID {record.exec_id!r} already exists with different fields",
        )

    @api.get(_wire.PATH_EXECUTIONS, tags=["records"])
    async def list_executions(
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
            raise bad_request(
                f"status must be one of {', '.join(EXECUTION_STATUSES)}, got {status!r}"
            )
        records = await state.call(
            store.list_executions,
            flow_name=flow,
            status=status,
            limit=limit,
            id_prefix=id_prefix or None,
            offset=offset,
        )
        return JsonResponse([r.to_dict() for r in records])

    @api.get(_wire.path_execution("{exec_id}"), tags=["records"])
    async def get_execution(exec_id: str) -> JsonResponse:
        """One execution with its checkpoint records."""
        return JsonResponse((await state.execution(exec_id)).to_dict())

    @api.post(
        _wire.path_finish("{exec_id}"),
        tags=["records"],
        openapi_extra=_schemas.body(_schemas.FINISH),
    )
    async def finish_execution(exec_id: str, request: Request) -> JsonResponse:
        """Mark an execution terminal; answers the final record.

        A terminal execution never changes again: finishing one that already ended (for
        example marked lost) succeeds and answers its actual final status.
        """
        status, output, error_type = parse_finish(parse_json(await _read_body(request, limit)))
        record = await state.execution(exec_id)
        if not record.is_terminal:
            await state.call(
                store.finish_execution, exec_id, status, output=output, error_type=error_type
            )
            record = await state.execution(exec_id)
        await state.ended(exec_id, record.status)
        return JsonResponse(record.to_dict())

    @api.post(_wire.path_heartbeat("{exec_id}"), tags=["records"])
    async def heartbeat(exec_id: str) -> JsonResponse:
        """The producer is alive; answers the execution's status and whether to stop.

        ``cancel_requested: true`` tells the producer to stop at its next cancellation point
        and finish the execution ``cancelled`` (``docs/outcomes.md``).
        """
        await state.require_known(exec_id)
        cancel = bool(await state.call(store.heartbeat, exec_id))
        state.seen(exec_id)
        record = await state.execution(exec_id)
        return JsonResponse(
            {"exec_id": exec_id, "status": record.status, "cancel_requested": cancel}
        )

    @api.post(_wire.path_cancel("{exec_id}"), tags=["records"])
    async def cancel_execution(exec_id: str) -> JsonResponse:
        """Ask the execution's producer to stop; answers the record as it is now.

        Idempotent; a terminal execution is left as it is.
        """
        record = await state.execution(exec_id)
        if not record.is_terminal:
            await state.call(store.request_cancel, exec_id)
        return JsonResponse(record.to_dict())

    @api.put(
        _wire.path_checkpoint("{exec_id}", "{checkpoint_id}"),
        tags=["records"],
        openapi_extra=_schemas.body(_schemas.CHECKPOINT),
    )
    async def save_checkpoint(exec_id: str, checkpoint_id: str, request: Request) -> JsonResponse:
        """Create or replace a checkpoint record."""
        await state.require_known(exec_id)
        record = parse_checkpoint(
            parse_json(await _read_body(request, limit)), exec_id, checkpoint_id
        )
        await state.call(store.save_checkpoint, record)
        state.seen(exec_id)
        return JsonResponse(record.to_dict())

    @api.get(_wire.path_cached_checkpoint(), tags=["records"])
    async def cached_checkpoint(key: Annotated[str, Query(min_length=1)]) -> JsonResponse:
        """The newest completed checkpoint record with this cache key."""
        record = await state.call(store.find_cached, key)
        if record is None:
            raise ApiError(
                404, _wire.ERROR_NOT_FOUND, "no completed checkpoint with that cache key"
            )
        return JsonResponse(record.to_dict())


def _add_event_routes(api: APIRouter, stream_api: APIRouter, state: ServerState) -> None:
    settings = state.settings

    @api.post(
        _wire.path_events("{exec_id}"),
        tags=["events"],
        openapi_extra=_schemas.body(_schemas.EVENTS),
    )
    async def ingest(exec_id: str, request: Request) -> JsonResponse:
        """Store a batch of live events (idempotent per correlation ID and index)."""
        started = time.perf_counter()
        metrics = state.metrics
        log = state.log
        try:
            if log is None:
                raise _streaming_off()
            await state.require_known(exec_id)
            events = parse_events(
                await _read_body(request, settings.max_body_bytes),
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

    @stream_api.get(
        _wire.path_stream("{exec_id}"),
        tags=["events"],
        response_class=Response,
        responses={
            200: {
                "description": "Server-sent events (see docs/protocol.md)",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            }
        },
    )
    async def stream(
        exec_id: str,
        request: Request,
        kinds: Annotated[
            list[str] | None, Query(description="Only these kinds (repeatable)")
        ] = None,
        checkpoint: Annotated[
            list[str] | None,
            Query(description="Only these checkpoint names, step names or IDs (repeatable)"),
        ] = None,
        correlation_id: Annotated[
            list[str] | None, Query(description="Only these checkpoint executions (repeatable)")
        ] = None,
        since: Annotated[str | None, Query(description="Resume after this cursor")] = None,
        token: Annotated[
            str | None, Query(description="The API token, for clients that cannot send headers")
        ] = None,
        message_events: Annotated[
            bool,
            Query(description="Send data frames without an event: line (for EventSource)"),
        ] = False,
    ) -> Response:
        """Follow one execution's live events as server-sent events."""
        log = state.log
        if log is None:
            raise _streaming_off()
        params = request.query_params
        flt = StreamFilter(
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
        record = await state.execution(exec_id)
        if record.is_terminal:
            # Also covers executions that ended while streaming was off or before a crash.
            await log.mark_ended(exec_id, record.status)
        position = request.headers.get(_wire.HEADER_LAST_EVENT_ID) or since or None
        try:
            first = await log.read(exec_id, position, settings.read_batch)
        except CursorInvalidError as exc:
            source = "Last-Event-ID" if request.headers.get(_wire.HEADER_LAST_EVENT_ID) else "since"
            raise ApiError(400, _wire.ERROR_CURSOR_INVALID, f"{source}: {exc}") from None
        return EventStream(state, exec_id, position, flt, first, named_events=not message_events)


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
