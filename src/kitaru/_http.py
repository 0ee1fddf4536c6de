"""Small HTTP helpers shared by the producer side (:mod:`kitaru.remote`) and the watcher."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from kitaru._version import __version__

__all__ = [
    "RETRYABLE_STATUSES",
    "auth_headers",
    "error_detail",
    "user_agent",
]

RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
"""Statuses that mean "try again later" (a restarting server, a proxy in front of it)."""

_MAX_DETAIL_CHARS = 300


def user_agent() -> str:
    """The ``User-Agent`` kitaru sends."""
    return f"kitaru/{__version__}"


def auth_headers(token: str | None) -> dict[str, str]:
    """Default headers of every request: the user agent and, when configured, the bearer token."""
    headers = {"User-Agent": user_agent()}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def error_detail(response: httpx.Response) -> tuple[str | None, str]:
    """The machine-readable kind and a short message of an error response.

    The server answers errors with a JSON ``{"detail": ...}``; ``detail`` is a string, or an
    object with ``kind`` and ``message``, or (for validation errors) a list. Anything else is
    summarized by its status line. The body must already be read.
    """
    try:
        body: Any = orjson.loads(response.content) if response.content else None
    except orjson.JSONDecodeError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    kind: str | None = None
    message: str
    if isinstance(detail, str):
        message = detail
    elif isinstance(detail, dict):
        raw_kind = detail.get("kind") or detail.get("error")
        kind = raw_kind if isinstance(raw_kind, str) else None
        raw_msg = detail.get("message") or detail.get("detail")
        message = raw_msg if isinstance(raw_msg, str) else (kind or "")
    elif detail is not None:
        message = orjson.dumps(detail).decode(errors="replace")
    else:
        message = response.reason_phrase or ""
    message = message.strip()[:_MAX_DETAIL_CHARS] or f"HTTP {response.status_code}"
    return kind, message
