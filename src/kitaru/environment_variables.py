"""Environment variables kitaru reads.

Configuration is resolved in one order everywhere: an explicit argument, then the environment
variable named here, then the documented default.
"""

from __future__ import annotations

__all__ = [
    "KITARU_API_TOKEN",
    "KITARU_FLUSH_TIMEOUT",
    "KITARU_HEARTBEAT_INTERVAL",
    "KITARU_HOME",
    "KITARU_MAX_WORKERS",
    "KITARU_PUBLISHER_QUEUE_SIZE",
    "KITARU_RECORD_RETRY_SECONDS",
    "KITARU_SERVER_URL",
    "KITARU_TRACE_URL_TEMPLATE",
]

KITARU_HOME = "KITARU_HOME"
"""Folder of the embedded SQLite store (``kitaru.db``). Default: ``~/.kitaru``."""

KITARU_SERVER_URL = "KITARU_SERVER_URL"
"""Base URL of a kitaru server (for example ``http://127.0.0.1:8765``).

When set, execution records live on that server and live events are published to it.
When unset, kitaru runs in local database mode.
"""

KITARU_API_TOKEN = "KITARU_API_TOKEN"
"""Bearer token sent to the server (and, for ``kitaru server start``, the token it requires)."""

KITARU_PUBLISHER_QUEUE_SIZE = "KITARU_PUBLISHER_QUEUE_SIZE"
"""Maximum number of live events queued in one process before the oldest are dropped.

Default: ``10000``.
"""

KITARU_FLUSH_TIMEOUT = "KITARU_FLUSH_TIMEOUT"
"""Seconds a checkpoint waits, after its terminal lifecycle event, for the publisher to drain.

Default: ``0.5``. Also the bound on the flush at interpreter exit (times four).
"""

KITARU_MAX_WORKERS = "KITARU_MAX_WORKERS"
"""Concurrency bound of ``.map()``, ``.product()`` and ``.submit()``. Default: ``8``."""

KITARU_HEARTBEAT_INTERVAL = "KITARU_HEARTBEAT_INTERVAL"
"""Seconds between heartbeats a running execution sends to the server. Default: ``2``."""

KITARU_RECORD_RETRY_SECONDS = "KITARU_RECORD_RETRY_SECONDS"
"""How long writes of durable records to the server are retried before failing. Default: ``30``."""

KITARU_TRACE_URL_TEMPLATE = "KITARU_TRACE_URL_TEMPLATE"
"""URL template of a trace viewer, with ``{trace_id}`` (for example a Jaeger address)."""
