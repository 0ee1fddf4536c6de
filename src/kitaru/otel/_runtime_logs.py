"""Captured runtime log lines as OpenTelemetry log records, under their checkpoint's span.

kitaru's log capture (``docs/runtime-logs-and-metadata.md``) keeps what a checkpoint's code
logs and prints with its execution. With log records on, the OpenTelemetry bridge also hands
each kept line to its log emitter, with the checkpoint span as context, so a log store that
joins logs to traces shows the lines under the span. See ``docs/opentelemetry.md``
("Runtime log lines").

The body is the line's text as the user's code wrote it: these are the user's own log lines,
which they chose to write. ``KITARU_OTEL_RUNTIME_LOGS=false`` keeps them out of OpenTelemetry
while live events still leave as log records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opentelemetry._logs import SeverityNumber

if TYPE_CHECKING:
    from opentelemetry.util.types import AttributeValue

    from kitaru.store._logs import LogLine

__all__ = [
    "LOG_LEVEL",
    "LOG_LINE",
    "LOG_LOGGER",
    "LOG_SOURCE",
    "LOG_STREAM",
    "line_fields",
    "skipped",
]

LOG_STREAM = "kitaru.log.stream"
"""Where the line came from: ``logging``, ``stdout``, ``stderr`` or ``kitaru`` (its marks)."""
LOG_LOGGER = "kitaru.log.logger"
"""The ``logging`` logger's name (``logging`` lines only)."""
LOG_LEVEL = "kitaru.log.level"
"""The line's level name as captured (``INFO``, ``WARNING``, ``STDOUT``, ``NOTICE``...)."""
LOG_SOURCE = "kitaru.log.source"
"""``path:lineno`` of the ``logging`` call (``logging`` lines only)."""
LOG_LINE = "kitaru.log.line"
"""Position of the line in its checkpoint execution, from 0 (the order the store keeps)."""

# The capture's stream names, as the attribute spells them.
_STREAMS = {"log": "logging", "stdout": "stdout", "stderr": "stderr", "kitaru": "kitaru"}

# logging's level names (and the capture's own) to OpenTelemetry severities. stdout is INFO;
# stderr is WARN (a program's diagnostics, not necessarily errors); kitaru's truncation mark
# is WARN. Unknown (custom) level names are INFO.
_SEVERITY = {
    "NOTSET": SeverityNumber.TRACE,
    "DEBUG": SeverityNumber.DEBUG,
    "INFO": SeverityNumber.INFO,
    "WARNING": SeverityNumber.WARN,
    "WARN": SeverityNumber.WARN,
    "ERROR": SeverityNumber.ERROR,
    "CRITICAL": SeverityNumber.FATAL,
    "FATAL": SeverityNumber.FATAL,
    "STDOUT": SeverityNumber.INFO,
    "STDERR": SeverityNumber.WARN,
    "NOTICE": SeverityNumber.WARN,
}


def skipped(line: LogLine) -> bool:
    """True for lines that must not be exported again: OpenTelemetry's own diagnostics.

    The SDK reports its problems through ``logging`` (loggers ``opentelemetry.*``); exporting
    those as records could feed on itself. The bridge emits from its own thread, outside any
    checkpoint, so its records are never captured in the first place; this is the second wall.
    """
    name = line.logger
    return name is not None and (name == "opentelemetry" or name.startswith("opentelemetry."))


def line_fields(line: LogLine) -> tuple[SeverityNumber, str, dict[str, AttributeValue], int]:
    """Severity, body, attributes and timestamp (ns) of the log record for one captured line."""
    attributes: dict[str, AttributeValue] = {
        LOG_STREAM: _STREAMS.get(line.stream, line.stream),
        LOG_LEVEL: line.level,
        LOG_LINE: line.line,
    }
    if line.logger is not None:
        attributes[LOG_LOGGER] = line.logger
    if line.source is not None:
        attributes[LOG_SOURCE] = line.source
    severity = _SEVERITY.get(line.level, SeverityNumber.INFO)
    return severity, line.message, attributes, int(line.ts * 1e9)
