"""Names shared by the server and the client: endpoint paths, control frames, error kinds.

The full wire protocol is described in ``docs/protocol.md``.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = [
    "API_PREFIX",
    "CONTROL_CURSOR",
    "CONTROL_END",
    "CONTROL_ERROR",
    "CONTROL_GAP",
    "ERROR_BACKEND",
    "ERROR_CONFLICT",
    "ERROR_CURSOR_INVALID",
    "ERROR_EXECUTION_UNKNOWN",
    "ERROR_INTERNAL",
    "ERROR_INVALID_REQUEST",
    "ERROR_NOT_FOUND",
    "ERROR_STREAMING_DISABLED",
    "ERROR_TOO_LARGE",
    "ERROR_UNAUTHORIZED",
    "HEADER_LAST_EVENT_ID",
    "LOG_EVENT",
    "PATH_EVENTS",
    "PATH_EXECUTIONS",
    "PATH_HEALTH",
    "PATH_INFO",
    "PATH_METRICS",
    "PATH_STREAM_TOKENS",
    "PATH_UI",
    "PATH_USAGE",
    "QUERY_CHECKPOINT",
    "QUERY_CORRELATION_ID",
    "QUERY_KINDS",
    "QUERY_MESSAGE_EVENTS",
    "QUERY_SINCE",
    "QUERY_TOKEN",
    "path_cached_checkpoint",
    "path_cancel",
    "path_checkpoint",
    "path_events",
    "path_execution",
    "path_execution_metadata",
    "path_finish",
    "path_heartbeat",
    "path_logs",
    "path_logs_stream",
    "path_snapshot",
    "path_stream",
]

API_PREFIX = "/api/v1"

HEADER_LAST_EVENT_ID = "Last-Event-ID"

# SSE control frames (``event:`` names). They are also reserved as user event kinds.
CONTROL_CURSOR = "cursor"
CONTROL_GAP = "gap"
CONTROL_END = "end"
CONTROL_ERROR = "error"
# The ``event:`` name of a runtime log line on the logs stream.
LOG_EVENT = "log"

# Machine-readable error kinds in JSON ``detail`` objects and ``error`` frames.
ERROR_STREAMING_DISABLED = "streaming_disabled"
ERROR_EXECUTION_UNKNOWN = "execution_unknown"
ERROR_CURSOR_INVALID = "cursor_invalid"
ERROR_INVALID_REQUEST = "invalid_request"
ERROR_UNAUTHORIZED = "unauthorized"
ERROR_NOT_FOUND = "not_found"
ERROR_CONFLICT = "conflict"
ERROR_TOO_LARGE = "too_large"
ERROR_BACKEND = "backend_error"
ERROR_INTERNAL = "internal"

# Query parameters of the SSE stream (``kinds``, ``checkpoint`` and ``correlation_id`` repeat).
QUERY_KINDS = "kinds"
QUERY_CHECKPOINT = "checkpoint"
QUERY_CORRELATION_ID = "correlation_id"
QUERY_SINCE = "since"
QUERY_TOKEN = "token"  # only on the stream endpoint: EventSource cannot send headers
# ``message_events=true``: data frames carry no ``event:`` line, so a browser's EventSource
# delivers every kind to ``onmessage`` (it has no catch-all listener for named events).
QUERY_MESSAGE_EVENTS = "message_events"

# Endpoint paths.
PATH_HEALTH = "/health"
PATH_METRICS = "/metrics"  # the server's own metrics, Prometheus text (token rules of the API)
PATH_INFO = f"{API_PREFIX}/info"
PATH_EXECUTIONS = f"{API_PREFIX}/executions"
# POST: a JSON array of wire events of any executions, answered per execution (docs/protocol.md)
PATH_EVENTS = f"{API_PREFIX}/events"
PATH_USAGE = f"{API_PREFIX}/usage"  # GET: tokens and cost per checkpoint name (dashboard)
PATH_STREAM_TOKENS = f"{API_PREFIX}/stream-tokens"  # POST: a short-lived read-only token
PATH_UI = "/ui/"  # the web view


def _execution_path(suffix: str, doc: str) -> Callable[[str], str]:
    """The path function ``exec_id -> {PATH_EXECUTIONS}/<exec_id><suffix>``."""

    def path(exec_id: str) -> str:
        return f"{PATH_EXECUTIONS}/{exec_id}{suffix}"

    path.__doc__ = doc
    return path


# Paths of one execution; each takes the (URL-quoted) execution ID.
path_execution = _execution_path("", "``GET`` one execution (with checkpoints).")
path_finish = _execution_path(
    "/finish", """``POST`` ``{"status", "output", "error_type"}``: mark an execution terminal."""
)
path_heartbeat = _execution_path("/heartbeat", "``POST``: the producing process is alive.")
path_cancel = _execution_path(
    "/cancel",
    "``POST``: ask the execution's producer to stop; answers the execution's record.\n\n"
    "The producer learns of it from its next heartbeat's answer (``cancel_requested``).",
)
path_events = _execution_path(
    "/events",
    "``POST`` a JSON array of wire events of one execution (idempotent per correlation/index).",
)
path_snapshot = _execution_path(
    "/snapshot",
    "``GET`` the folded live state of one execution and the cursor to follow it from.",
)
path_stream = _execution_path(
    "/events/stream", "``GET`` the SSE stream of one execution's live events."
)
path_logs = _execution_path(
    "/logs",
    "``POST`` a JSON array of captured log lines; ``GET`` them (``?after=&checkpoint=``).",
)
path_logs_stream = _execution_path(
    "/logs/stream", "``GET`` the SSE stream of one execution's runtime log lines (follow)."
)
path_execution_metadata = _execution_path(
    "/metadata", """``PUT`` ``{"metadata", "usage"}`` recorded in a flow body."""
)


def path_checkpoint(exec_id: str, checkpoint_id: str) -> str:
    """``PUT`` a checkpoint record (create or replace)."""
    return f"{PATH_EXECUTIONS}/{exec_id}/checkpoints/{checkpoint_id}"


def path_cached_checkpoint() -> str:
    """``GET ?key=<cache key>``: the newest completed checkpoint record with that key.

    404 when there is none.
    """
    return f"{API_PREFIX}/checkpoints/cached"
