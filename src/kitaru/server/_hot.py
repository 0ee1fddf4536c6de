"""The hot routes, dispatched without FastAPI's router: event ingest and heartbeats.

A producer sends these two far more often than anything else (an ingest per batch of each
execution, a heartbeat per execution every couple of seconds), and under a load of many small
batches FastAPI's route matching, dependency resolution and response wrappers cost more
server CPU than the handlers themselves. :class:`HotRoutes` is a pure ASGI middleware, the
innermost one of the app (``create_app`` adds it first, so middleware an embedder adds still
runs before it), that recognises ``POST .../events``, ``POST .../heartbeat`` and the
several-executions ``POST /api/v1/events`` by their path
and calls the very same handler functions the routers declare, with what FastAPI would have
resolved for them: the token check of their router, the server state, the request. Errors go
through the app's own exception handlers, so every answer is the same as through FastAPI's
routing; anything it does not recognise (or an app whose ``server_state`` dependency is
overridden, as tests do) goes on to FastAPI unchanged. The routes stay declared on their
routers, so the OpenAPI document and a router mounted alone are unchanged.

See ``docs/server-architecture.md``, "Routes".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from kitaru import _wire
from kitaru.server._deps import require_token, server_state
from kitaru.server._routes_events import ingest
from kitaru.server._routes_ingest import ingest_many
from kitaru.server._routes_records import heartbeat
from kitaru.server._state import ServerState

__all__ = ["HotRoutes"]

_PREFIX = _wire.PATH_EXECUTIONS + "/"
_Handler = Callable[[str, Request, ServerState], Awaitable[Response]]


async def _ingest(exec_id: str, request: Request, state: ServerState) -> Response:
    return await ingest(exec_id, request, state)


async def _ingest_many(exec_id: str, request: Request, state: ServerState) -> Response:
    return await ingest_many(request, state)


async def _heartbeat(exec_id: str, request: Request, state: ServerState) -> Response:
    return await heartbeat(exec_id, state)


# The last path segment after ``/api/v1/executions/<exec_id>`` -> its POST handler.
_HANDLERS: dict[str, _Handler] = {"events": _ingest, "heartbeat": _heartbeat}


def _match(scope: Scope) -> tuple[str, _Handler] | None:
    """The execution ID and handler of a hot route, or ``None`` for anything else."""
    if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
        return None
    path: str = scope["path"]
    if path == _wire.PATH_EVENTS:
        return "", _ingest_many  # several executions' events: no execution in the path
    if not path.startswith(_PREFIX):
        return None
    exec_id, sep, action = path[len(_PREFIX) :].partition("/")
    # FastAPI's ``{exec_id}`` matches one non-empty segment; the action is the last one.
    if not sep or not exec_id:
        return None
    handler = _HANDLERS.get(action)
    return None if handler is None else (exec_id, handler)


class HotRoutes:
    """Pure ASGI middleware serving the hot routes; everything else goes to ``app``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hit = _match(scope)
        fastapi_app: Any = scope.get("app")
        if hit is None or fastapi_app is None or fastapi_app.dependency_overrides:
            await self.app(scope, receive, send)
            return
        exec_id, handler = hit
        scope["path_params"] = {"exec_id": exec_id} if exec_id else {}
        request = Request(scope, receive)
        try:
            await require_token(request)
            response = await handler(exec_id, request, await server_state(request))
        except Exception as exc:
            on_error = _handler_for(fastapi_app.exception_handlers, exc)
            if on_error is None:
                raise  # the app's catch-all answers it, as it would through the router
            response = await on_error(request, exc)
        await response(scope, receive, send)


def _handler_for(handlers: dict[Any, Any], exc: Exception) -> Any:
    """The app's exception handler for ``exc`` (by class, most specific first).

    The catch-all ``Exception`` handler is left out: Starlette runs that one in its outermost
    middleware, which also re-raises for the server to log; re-raising here reaches it.
    """
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        found = handlers.get(cls)
        if found is not None:
            return found
    return None
