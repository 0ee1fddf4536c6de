"""Environment variables kitaru reads.

Configuration is resolved in one order everywhere: an explicit argument, then the environment
variable named here, then the documented default.
"""

from __future__ import annotations

__all__ = [
    "KITARU_ACCESS_LOG",
    "KITARU_ADAPTER_DELTA_INTERVAL",
    "KITARU_API_TOKEN",
    "KITARU_CAPTURE_LOGS",
    "KITARU_ERROR_DETAIL",
    "KITARU_FLUSH_TIMEOUT",
    "KITARU_HEARTBEAT_INTERVAL",
    "KITARU_HOME",
    "KITARU_LOG_MAX_BYTES",
    "KITARU_LOG_MAX_LINES",
    "KITARU_MAX_WORKERS",
    "KITARU_OTEL_CALLER_SPAN",
    "KITARU_OTEL_EVENT_ATTRIBUTES",
    "KITARU_OTEL_LOG_RECORDS",
    "KITARU_OTEL_MAX_SPAN_EVENTS",
    "KITARU_OTEL_RECORD_EXCEPTIONS",
    "KITARU_OTEL_RUNTIME_LOGS",
    "KITARU_OTEL_SHUTDOWN_TIMEOUT",
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

KITARU_ACCESS_LOG = "KITARU_ACCESS_LOG"
"""``1``/``true``/``yes``/``on`` makes ``kitaru server start`` log one line per HTTP request
(``0``/``false``/``no``/``off``: do not). Default: off; ``--access-log`` overrides it."""

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
"""Seconds between heartbeats of a running execution (to the server, or the local database);
a cancel request reaches the producer with the next one. Default: ``2``."""

KITARU_RECORD_RETRY_SECONDS = "KITARU_RECORD_RETRY_SECONDS"
"""How long writes of durable records to the server are retried before failing. Default: ``30``."""

KITARU_TRACE_URL_TEMPLATE = "KITARU_TRACE_URL_TEMPLATE"
"""URL template of a trace viewer, with ``{trace_id}`` (for example a Jaeger address)."""

KITARU_OTEL_RECORD_EXCEPTIONS = "KITARU_OTEL_RECORD_EXCEPTIONS"
"""``true``: failed checkpoint spans also carry the exception message and stack trace.

Default: ``false`` (spans carry the exception's type only). Same as
``kitaru.otel.configure(record_exception_messages=True)``.
"""

KITARU_OTEL_EVENT_ATTRIBUTES = "KITARU_OTEL_EVENT_ATTRIBUTES"
"""``false``: span events of progress and custom events carry only their kind and index.

Default: ``true`` (the event's message and primitive data fields become span event attributes).
"""

KITARU_ADAPTER_DELTA_INTERVAL = "KITARU_ADAPTER_DELTA_INTERVAL"
"""Seconds between two coalesced delta events of one agent message. Default: ``0.25``.

``0`` publishes every token delta; each adapter policy's ``delta_interval`` overrides it.
"""

KITARU_OTEL_LOG_RECORDS = "KITARU_OTEL_LOG_RECORDS"
"""``false``: live events do not become OpenTelemetry log records.

Default: ``true`` (whenever there is a logger provider: the application's, or the one kitaru
builds from the ``OTEL_*`` variables). ``OTEL_LOGS_EXPORTER=none`` turns them off too.
"""

KITARU_OTEL_RUNTIME_LOGS = "KITARU_OTEL_RUNTIME_LOGS"
"""``false``: captured runtime log lines do not become OpenTelemetry log records.

Default: ``true`` whenever kitaru's log records are on (see ``KITARU_OTEL_LOG_RECORDS``): what
a checkpoint's code logs and prints is then exported as it was written, the user's own text.
"""

KITARU_OTEL_MAX_SPAN_EVENTS = "KITARU_OTEL_MAX_SPAN_EVENTS"
"""Most live events recorded as span events on one checkpoint span. Default: ``64``.

Beyond it the first ones and the latest are kept and ``kitaru.events.dropped`` counts the rest.
"""

KITARU_OTEL_CALLER_SPAN = "KITARU_OTEL_CALLER_SPAN"
"""How a flow span relates to a span active where the flow is called: ``link`` or ``parent``.

Default: ``link`` (the flow is its own trace, whose ID is computed from the execution ID).
"""

KITARU_OTEL_SHUTDOWN_TIMEOUT = "KITARU_OTEL_SHUTDOWN_TIMEOUT"
"""Seconds the exporter kitaru set up may take to send its last spans at exit. Default: ``1``."""

KITARU_CAPTURE_LOGS = "KITARU_CAPTURE_LOGS"
"""Capture what checkpoints log and print as runtime log lines (``true``/``false``).
Default: ``true``. See ``docs/runtime-logs-and-metadata.md``."""

KITARU_LOG_MAX_LINES = "KITARU_LOG_MAX_LINES"
"""Most captured log lines kept per checkpoint execution. Default: 1000."""

KITARU_LOG_MAX_BYTES = "KITARU_LOG_MAX_BYTES"
"""Most bytes of captured log text kept per checkpoint execution. Default: 262144 (256 KiB)."""
KITARU_ERROR_DETAIL = "KITARU_ERROR_DETAIL"
"""What the durable record keeps of a failure: ``full`` (default: type, message and a bounded
traceback) or ``type`` (the exception's class name only). See ``docs/outcomes.md``."""
