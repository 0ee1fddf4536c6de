"""Captured runtime log lines and execution-level metadata: records and the store interface.

A :class:`LogLine` is one line a checkpoint execution logged (Python ``logging``) or printed
(stdout/stderr). Lines are private records like outputs: they live in the store next to the
execution and never travel as live events. Each line is keyed by ``(exec_id,
correlation_id, line)``, so a retried append stores nothing twice; the store gives each stored
line a ``cursor`` (increasing per store), the position ``--follow`` resumes after.
See ``docs/runtime-logs-and-metadata.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

import orjson

__all__ = [
    "LOG_STREAMS",
    "LogLine",
    "LogStore",
    "log_line_from_row",
    "log_line_row",
]

LOG_STREAMS = ("log", "stdout", "stderr", "kitaru")
"""Where a line came from: Python ``logging``, ``print``/stdout, stderr, or kitaru itself (the
truncation mark)."""


@dataclass(slots=True)
class LogLine:
    """One captured line of one checkpoint execution.

    Attributes:
        exec_id: The execution.
        checkpoint_id: The checkpoint call.
        correlation_id: The checkpoint execution (one attempt of the call).
        checkpoint: The checkpoint's name.
        step_name: The call's unique step name in its execution.
        attempt: The attempt number, from 1.
        line: Position of the line in its checkpoint execution, from 0.
        ts: Wall-clock time it was written (seconds since the epoch).
        stream: One of :data:`LOG_STREAMS`.
        level: The ``logging`` level name (``INFO``...); ``STDOUT``/``STDERR`` for printed
            lines; ``NOTICE`` for kitaru's own marks.
        message: The text (a ``logging`` record's formatted message, with its traceback).
        logger: The ``logging`` logger's name (``None`` for printed lines).
        source: ``path:lineno`` of the ``logging`` call (``None`` for printed lines).
        cursor: The store's position of the line (set by the store; ``None`` before).
    """

    exec_id: str
    checkpoint_id: str
    correlation_id: str
    checkpoint: str
    step_name: str
    attempt: int
    line: int
    ts: float
    stream: str
    level: str
    message: str
    logger: str | None = None
    source: str | None = None
    cursor: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogLine:
        """Rebuild a line from :meth:`to_dict` output."""
        return cls(**dict(data))


def log_line_row(line: LogLine) -> tuple[Any, ...]:
    """Column values ``exec_id, correlation_id, line, checkpoint, step_name, body`` of a line."""
    body = line.to_dict()
    body.pop("cursor", None)
    return (
        line.exec_id,
        line.correlation_id,
        line.line,
        line.checkpoint,
        line.step_name,
        orjson.dumps(body).decode(),
    )


def log_line_from_row(cursor: int, body: str) -> LogLine:
    """A line from its stored ``id`` and ``body`` columns."""
    line = LogLine.from_dict(orjson.loads(body))
    line.cursor = int(cursor)
    return line


@runtime_checkable
class LogStore(Protocol):
    """What a store keeps besides records: log lines and execution-level metadata."""

    def append_logs(self, lines: Sequence[LogLine]) -> None:
        """Store lines (a line already stored under the same key is skipped)."""
        ...

    def read_logs(
        self,
        exec_id: str,
        *,
        after: int | None = None,
        checkpoint: str | None = None,
        correlation_id: str | None = None,
        limit: int = 1000,
    ) -> list[LogLine]:
        """Lines of one execution after cursor ``after``, in store order."""
        ...

    def save_execution_metadata(
        self, exec_id: str, metadata: Mapping[str, Any], usage: Sequence[Mapping[str, Any]] = ()
    ) -> None:
        """Store the execution's flow-body metadata and usage records (replacing earlier ones).

        The producer sends the whole state once, when the flow ends.
        """
        ...
