"""Errors of the live-event watcher.

Both are :class:`~kitaru.KitaruBackendError` subclasses, so ``except KitaruBackendError`` keeps
working. :class:`StreamDisconnectedError` is also an :class:`httpx.TransportError`, so code that
already handles httpx's transport errors handles a watcher that gave up reconnecting too (the
pattern of httpx-sse's ``SSEError``)::

    KitaruBackendError
    ├── StreamGapError             the server no longer has events the watcher asked for
    └── StreamDisconnectedError    (also httpx.TransportError) the stream could not be kept up
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from kitaru.exceptions import KitaruBackendError

__all__ = ["LOCAL_MODE_WATCH_MESSAGE", "StreamDisconnectedError", "StreamGapError"]

LOCAL_MODE_WATCH_MESSAGE = (
    "live events need a server-backed connection: kitaru is in local database mode "
    "(KITARU_SERVER_URL is not set). Start a server with `kitaru server start` and set "
    "KITARU_SERVER_URL to its address, or pass server_url= to KitaruClient."
)
"""Why watching needs a server: the message of the error raised in local database mode."""


class StreamGapError(KitaruBackendError):
    """The server announced a ``gap``: events before the requested position are gone.

    Raised unless the watcher was started with ``on_gap="continue"``.

    Attributes:
        exec_id: The watched execution.
        reason: The server's reason (for example ``retention``), when given.
        details: The gap frame's data as sent by the server (reason and missing range).
    """

    def __init__(self, message: str, *, exec_id: str, details: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.exec_id = exec_id
        self.details = dict(details)
        reason = details.get("reason")
        self.reason = reason if isinstance(reason, str) else None


class StreamDisconnectedError(KitaruBackendError, httpx.TransportError):
    """The watcher lost its stream and could not (or was told not to) reconnect.

    Attributes:
        exec_id: The watched execution.
        cursor: The last cursor the watcher saw; pass it as ``since=`` to resume later.
    """

    def __init__(self, message: str, *, exec_id: str, cursor: str | None) -> None:
        super().__init__(message)
        self.exec_id = exec_id
        self.cursor = cursor
