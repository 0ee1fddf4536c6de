"""The filters of an execution listing and of a log read, and the store base that takes them.

:class:`~kitaru.store.Store` and :class:`~kitaru.store._logs.LogStore` give
``list_executions``, ``read_logs`` and ``finish_execution`` keyword arguments with defaults.
:class:`QueryingStore` implements those three once for every store class (the SQL stores and
the server-mode HTTP store): it hands the arguments on as one value, so a store class says only
how it answers, and the defaults live in one place.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from kitaru.store._logs import LogLine
from kitaru.store._records import ExecutionRecord
from kitaru.store._values import StoredValue

__all__ = ["ExecutionQuery", "LogQuery", "QueryingStore"]


@dataclass(frozen=True, slots=True)
class ExecutionQuery:
    """Which executions ``list_executions`` returns, newest first.

    ``id_prefix`` keeps executions whose ID starts with it; ``offset`` skips that many rows
    (paging); a negative ``limit`` or ``offset`` counts as 0.
    """

    flow_name: str | None
    status: str | None
    limit: int
    id_prefix: str | None
    offset: int


@dataclass(frozen=True, slots=True)
class LogQuery:
    """Which log lines ``read_logs`` returns: one execution's, after cursor ``after``.

    ``checkpoint`` matches a line's checkpoint name or step name.
    """

    exec_id: str
    after: int | None
    checkpoint: str | None
    correlation_id: str | None
    limit: int


class QueryingStore(ABC):
    """The keyword-argument operations of a store, each passed on to one abstract method."""

    def finish_execution(
        self,
        exec_id: str,
        status: str,
        *,
        output: StoredValue | None = None,
        error_type: str | None = None,
    ) -> None:
        """Mark an execution terminal (only if still running: the first verdict wins)."""
        self._finish_execution(exec_id, status, output, error_type)

    def list_executions(
        self,
        *,
        flow_name: str | None = None,
        status: str | None = None,
        limit: int = 50,
        id_prefix: str | None = None,
        offset: int = 0,
    ) -> list[ExecutionRecord]:
        """Executions, newest first, without checkpoint records (see :class:`ExecutionQuery`)."""
        return self._list_executions(ExecutionQuery(flow_name, status, limit, id_prefix, offset))

    def read_logs(
        self,
        exec_id: str,
        *,
        after: int | None = None,
        checkpoint: str | None = None,
        correlation_id: str | None = None,
        limit: int = 1000,
    ) -> list[LogLine]:
        """Log lines of one execution after cursor ``after``, in the order they were stored."""
        return self._read_logs(LogQuery(exec_id, after, checkpoint, correlation_id, limit))

    @abstractmethod
    def _finish_execution(
        self, exec_id: str, status: str, output: StoredValue | None, error_type: str | None
    ) -> None: ...

    @abstractmethod
    def _list_executions(self, query: ExecutionQuery) -> list[ExecutionRecord]: ...

    @abstractmethod
    def _read_logs(self, query: LogQuery) -> list[LogLine]: ...
