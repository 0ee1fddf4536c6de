"""What route handlers receive: FastAPI dependencies that read one app's state.

The routers (``server/_routes_*.py``) are module-level and shared by every app; a handler never
closes over a server. It declares what it needs (``state: StateDep``, ``parts: PartsDep``) and
FastAPI resolves it per request from ``request.app.state``, which :func:`attach` fills:
``create_app`` calls it once per app, and a test calls it on a bare ``FastAPI()`` to mount one
router alone (or replaces a dependency through ``app.dependency_overrides``). See
``docs/server-architecture.md``, "Routes".

Every dependency here is ``async``: FastAPI runs a plain function on a worker thread, which
would cost the ingest path a thread hop per request.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Query, Request

from kitaru import _wire
from kitaru.server._errors import ApiError
from kitaru.server._snapshot import SnapshotCache
from kitaru.server._state import ServerState
from kitaru.server._tokens import StreamTokens
from kitaru.server._web import WebAssets, WebConfig

__all__ = [
    "PartsDep",
    "ServerParts",
    "StateDep",
    "TokenQuery",
    "attach",
    "require_token",
    "require_token_or_query",
]

_READ_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class ServerParts:
    """What the routes use besides the :class:`ServerState`, built once per app by :func:`attach`.

    Attributes:
        tokens: The issuer and checker of read-only stream tokens.
        web: What the web view shows beyond the API (trace links).
        assets: The web view's files.
        snapshots: The cache of snapshot folds (``None`` when streaming is off).
    """

    tokens: StreamTokens
    web: WebConfig
    assets: WebAssets
    snapshots: SnapshotCache | None


def attach(
    app: FastAPI,
    state: ServerState,
    web: WebConfig | None = None,
    assets: WebAssets | None = None,
) -> None:
    """Give ``app`` what its routes depend on: ``state`` and the parts derived from it.

    Args:
        app: The app the routers are (or will be) included in.
        state: The server's state; ``app.state.kitaru`` from now on.
        web: What the web view shows beyond the API (default: no trace links).
        assets: The web view's files (default: read from the package now).
    """
    log = state.log
    app.state.kitaru = state
    app.state.kitaru_parts = ServerParts(
        tokens=StreamTokens(state.settings.token),
        web=web or WebConfig(),
        assets=assets or WebAssets.load(),
        snapshots=SnapshotCache(log, state.settings.read_batch) if log is not None else None,
    )


async def server_state(request: Request) -> ServerState:
    """The :class:`ServerState` of the app serving ``request``."""
    state: ServerState = request.app.state.kitaru
    return state


StateDep = Annotated[ServerState, Depends(server_state)]


async def server_parts(request: Request) -> ServerParts:
    """The :class:`ServerParts` of the app serving ``request``."""
    parts: ServerParts = request.app.state.kitaru_parts
    return parts


PartsDep = Annotated[ServerParts, Depends(server_parts)]


async def require_token(request: Request) -> None:
    """The token check of the API routes: ``Authorization: Bearer`` only."""
    _check_token(request, allow_query=False)


async def require_token_or_query(request: Request) -> None:
    """The token check of the stream routes: the header, or ``?token=`` for ``EventSource``."""
    _check_token(request, allow_query=True)


TokenQuery = Annotated[
    str | None, Query(description="The API token, for clients that cannot send headers")
]
"""The documented ``?token=`` of a stream route; :func:`require_token_or_query` checks it."""


def _supplied_token(request: Request, allow_query: bool) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            return value.strip()
    if allow_query:
        return request.query_params.get(_wire.QUERY_TOKEN)
    return None


def _check_token(request: Request, *, allow_query: bool) -> None:
    # Reads app.state itself rather than through sub-dependencies: every API request passes
    # here, and each resolved dependency costs a little on the ingest path.
    app_state = request.app.state
    token: str | None = app_state.kitaru.settings.token
    if not token:
        return
    tokens: StreamTokens = app_state.kitaru_parts.tokens
    supplied = _supplied_token(request, allow_query)
    if supplied is None:
        raise ApiError(
            401,
            _wire.ERROR_UNAUTHORIZED,
            "this server requires an API token: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if secrets.compare_digest(supplied.encode(), token.encode()):
        return
    if not tokens.looks_like(supplied):
        raise ApiError(
            401,
            _wire.ERROR_UNAUTHORIZED,
            "the API token is wrong",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    _check_read_token(request, tokens, supplied)


def _check_read_token(request: Request, tokens: StreamTokens, supplied: str) -> None:
    # Short-lived read-only tokens (POST /api/v1/stream-tokens, for the web view's
    # EventSource) open reading routes only.
    grant = tokens.grant(supplied)
    if grant is None:
        raise ApiError(
            401,
            _wire.ERROR_UNAUTHORIZED,
            "the read-only token is invalid or expired; get a new one with "
            f"POST {_wire.PATH_STREAM_TOKENS}",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    if request.method not in _READ_METHODS:
        raise ApiError(
            403,
            _wire.ERROR_UNAUTHORIZED,
            f"a read-only token cannot {request.method} {request.url.path}; send the API token",
        )
    if not grant.allows(request.path_params.get("exec_id")):
        raise ApiError(
            403,
            _wire.ERROR_UNAUTHORIZED,
            f"this read-only token is scoped to execution {grant.exec_id!r}; it "
            f"cannot read {request.url.path}",
        )
