"""Error responses: every 4xx/5xx body is ``{"detail": {"kind": ..., "message": ...}}``.

``kind`` is one of the machine-readable error kinds in :mod:`kitaru._wire`; ``message`` is a
sentence for humans that names the offending parameter or value.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from kitaru import _wire
from kitaru._sqlite_errors import describe
from kitaru.backends import EventLogError
from kitaru.exceptions import KitaruError
from kitaru.store._base import StoreUnavailableError

__all__ = ["ApiError", "JsonResponse", "bad_request", "install_error_handlers", "streaming_off"]

logger = logging.getLogger("kitaru.server")


class JsonResponse(Response):
    """A JSON response encoded with orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class ApiError(KitaruError):
    """An error answer: HTTP status, error kind, message."""

    def __init__(
        self,
        status: int,
        kind: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message
        self.headers = dict(headers or {})
        self.extra = extra

    def response(self) -> JsonResponse:
        detail = {"kind": self.kind, "message": self.message, **self.extra}
        return JsonResponse({"detail": detail}, status_code=self.status, headers=self.headers)


def bad_request(message: str, **extra: Any) -> ApiError:
    """A 400 ``invalid_request`` error."""
    return ApiError(400, _wire.ERROR_INVALID_REQUEST, message, **extra)


def streaming_off() -> ApiError:
    """The 501 error of the live-event routes on a server started with ``--no-streaming``."""
    return ApiError(
        501,
        _wire.ERROR_STREAMING_DISABLED,
        "live events are disabled on this server (it was started with --no-streaming)",
    )


def _http_kind(status: int) -> str:
    return {
        401: _wire.ERROR_UNAUTHORIZED,
        404: _wire.ERROR_NOT_FOUND,
        409: _wire.ERROR_CONFLICT,
        413: _wire.ERROR_TOO_LARGE,
    }.get(status, _wire.ERROR_INVALID_REQUEST if status < 500 else _wire.ERROR_INTERNAL)


def _location(loc: Any) -> str:
    parts = [str(p) for p in loc if p not in ("query", "header", "path", "body")]
    return ".".join(parts) or "request"


def install_error_handlers(app: FastAPI) -> None:
    """Make every error answer a JSON ``detail`` object."""

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return exc.response()

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = [
            f"{_location(err.get('loc', ()))}: {err.get('msg', 'invalid')}" for err in exc.errors()
        ]
        return bad_request("invalid request parameters: " + "; ".join(problems)).response()

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        err = ApiError(exc.status_code, _http_kind(exc.status_code), message)
        if exc.headers:
            err.headers.update(exc.headers)
        return err.response()

    async def on_storage(request: Request, exc: Exception) -> Response:
        # Storage trouble (a locked or full disk, a closed log) is temporary from a client's
        # point of view: 503 is retried by kitaru's clients, and nothing was half-written
        # (every write is one transaction).
        cause: object = exc
        state = getattr(request.app.state, "kitaru", None)
        if (
            isinstance(exc, sqlite3.Error)
            and state is not None
            and isinstance(state.settings.db, Path)
        ):
            cause = describe(exc, state.settings.db)  # names a full disk, a read-only one
        logger.error(
            "kitaru server: storage failed on %s %s: %s", request.method, request.url.path, cause
        )
        metrics = getattr(getattr(request.app.state, "kitaru", None), "metrics", None)
        if metrics is not None:
            metrics.backend_error("api")
            metrics.backend_retry("503")
        return ApiError(
            503,
            _wire.ERROR_BACKEND,
            "the server's storage is unavailable; retry shortly",
            headers={"Retry-After": "1"},
        ).response()

    async def on_disconnect(request: Request, exc: Exception) -> Response:
        # An ordinary event (a producer killed mid-request, a dropped network): one line, no
        # traceback. The answer goes nowhere; uvicorn drops writes to a closed connection.
        client = request.client
        logger.info(
            "kitaru server: client %s went away before sending all of %s %s",
            f"{client.host}:{client.port}" if client else "(unknown)",
            request.method,
            request.url.path,
        )
        return Response(status_code=400)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        # Never leak internals (paths, values) in the answer; the log has the traceback.
        logger.exception(
            "kitaru server: unexpected error on %s %s", request.method, request.url.path
        )
        return ApiError(500, _wire.ERROR_INTERNAL, "internal server error").response()

    app.add_exception_handler(ClientDisconnect, on_disconnect)
    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(EventLogError, on_storage)
    app.add_exception_handler(sqlite3.Error, on_storage)
    app.add_exception_handler(StoreUnavailableError, on_storage)  # e.g. PostgreSQL down
    app.add_exception_handler(Exception, on_unexpected)
