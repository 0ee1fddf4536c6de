"""The meta routes: liveness, metrics, server info, and the read-only token exchange.

``open_router`` needs no token (``/health``); ``router`` takes the API token like every other
API route. Handlers get the server through :mod:`kitaru.server._deps`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from kitaru import _wire
from kitaru._version import __version__
from kitaru.server._deps import PartsDep, StateDep, require_token
from kitaru.server._errors import ApiError, JsonResponse, bad_request
from kitaru.server._metrics import CONTENT_TYPE
from kitaru.server._tokens import DEFAULT_TTL, MAX_TTL
from kitaru.server._validate import check_exec_id, parse_json

__all__ = ["open_router", "router"]

_MAX_TOKEN_BODY = 4096

open_router = APIRouter()
"""Routes open without a token."""

router = APIRouter(dependencies=[Depends(require_token)])
"""Routes behind the API token (``Authorization: Bearer``)."""


@open_router.get(_wire.PATH_HEALTH, tags=["meta"])
async def health() -> JsonResponse:
    """Liveness: always open, no token needed."""
    return JsonResponse({"status": "ok"})


@router.get(
    _wire.PATH_METRICS,
    tags=["meta"],
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}}},
)
async def metrics(state: StateDep) -> Response:
    """The server's own metrics in Prometheus text format (see docs/opentelemetry.md)."""
    body = state.metrics.render(started_at=state.started_at)
    return Response(body, media_type=CONTENT_TYPE)


@router.get(_wire.PATH_INFO, tags=["meta"])
async def info(state: StateDep, parts: PartsDep) -> JsonResponse:
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
            "trace_url_template": parts.web.trace_url_template,
        }
    )


_STREAM_TOKEN_BODY = {
    "requestBody": {
        "required": False,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "ttl": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_TTL},
                        "exec_id": {
                            "type": "string",
                            "description": "scope the token to this one execution",
                        },
                    },
                }
            }
        },
    }
}


@router.post(_wire.PATH_STREAM_TOKENS, tags=["meta"], openapi_extra=_STREAM_TOKEN_BODY)
async def stream_token(request: Request, parts: PartsDep) -> JsonResponse:
    """Trade the API token for a short-lived token that opens read (``GET``) routes only.

    For browsers: ``EventSource`` cannot send headers, so the stream takes ``?token=``,
    and a token in a URL should be one that expires soon and cannot write. Body (optional):
    ``{"ttl": seconds, "exec_id": id}``; with ``exec_id`` the token opens that one
    execution's routes only. Without server auth the answer's ``token`` is ``null``.
    """
    ttl, exec_id = await _token_request(request)
    tokens = parts.tokens
    if not tokens.enabled:
        return JsonResponse(
            {"token": None, "scope": "read", "exec_id": exec_id, "expires_at": None, "ttl": None}
        )
    token, expires = tokens.issue(ttl, exec_id)
    return JsonResponse(
        {"token": token, "scope": "read", "exec_id": exec_id, "expires_at": expires, "ttl": ttl},
        status_code=201,
        headers={"Cache-Control": "no-store"},
    )


async def _token_request(request: Request) -> tuple[float, str | None]:
    """The ``ttl`` and ``exec_id`` a token request asks for (its body is optional)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_TOKEN_BODY:
            raise ApiError(413, _wire.ERROR_TOO_LARGE, "request body is too large")
    data: Any = parse_json(body) if body.strip() else {}
    if not isinstance(data, dict):
        raise bad_request(f"request body must be a JSON object, got {type(data).__name__}")
    ttl = _ttl(data.get("ttl"))
    exec_id = data.get("exec_id")
    if exec_id is not None:
        check_exec_id(exec_id)
    return ttl, exec_id


def _ttl(raw: Any) -> float:
    if raw is None:
        return DEFAULT_TTL
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 < raw <= MAX_TTL:
        raise bad_request(f"ttl must be a number of seconds in (0, {MAX_TTL:g}], got {raw!r}")
    return float(raw)
