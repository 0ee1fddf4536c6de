"""What the SQLite and PostgreSQL stores share: every record and log-line operation, once.

Both stores keep the same tables and columns (:mod:`kitaru.store._rows`); their SQL differs
only in a few places, which :class:`SqlDialect` names: the parameter marker, the table-name
prefix, and four statements where the databases need different words for the same rule. A
store says how it runs a read and a write (:meth:`SqlStore._read`, :meth:`SqlStore._write`);
everything else lives in :class:`SqlStore`.
"""

from __future__ import annotations

import contextlib
import time
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from kitaru.store._base import ExecutionExistsError
from kitaru.store._logs import LogLine, log_line_from_row, log_line_row
from kitaru.store._queries import ExecutionQuery, LogQuery, QueryingStore
from kitaru.store._records import CheckpointRecord, ExecutionRecord
from kitaru.store._rows import (
    attach_metadata,
    checkpoint_from_body,
    checkpoint_row,
    execution_from_row,
    execution_row,
    metadata_body,
    value_text,
)
from kitaru.store._values import StoredValue

__all__ = ["SqlConnection", "SqlDialect", "SqlStore"]

T = TypeVar("T")

_EXECUTION_COLUMNS = (
    "exec_id, flow_name, flow_ref, status, created_at, ended_at, original_exec_id, "
    "error_type, {inputs}, {output}, heartbeat_at"
)
_CHECKPOINT_COLUMNS = "checkpoint_id, exec_id, seq, cache_key, status, ended_at, body"
_LOG_LINE_COLUMNS = "exec_id, correlation_id, line, checkpoint, step_name, body"


class SqlCursor(Protocol):
    """The part of a DB-API cursor the stores use (``sqlite3`` and ``psycopg`` both fit)."""

    @property
    def rowcount(self) -> int:
        """Rows the last statement changed."""
        ...

    def fetchone(self) -> Any:
        """The next row, or ``None``."""
        ...

    def fetchall(self) -> Any:
        """Every remaining row."""
        ...

    def executemany(self, sql: str, rows: Any, /) -> Any:
        """Run one statement once per row of arguments."""
        ...

    def close(self) -> Any:
        """Release the cursor."""
        ...


class SqlConnection(Protocol):
    """The part of a DB-API connection the stores use."""

    def execute(self, sql: str, args: Any = ..., /) -> SqlCursor:
        """Run one statement."""
        ...

    def cursor(self) -> SqlCursor:
        """A new cursor."""
        ...


class SqlDialect:
    """The statements of one database, built once from the few words that differ.

    Args:
        placeholder: The driver's parameter marker (``?`` for sqlite3, ``%s`` for psycopg).
        table_prefix: Put before every table name.
        execution_conflict: Appended to the execution ``INSERT``; when it skips a duplicate
            ID (no row changed), the store raises :class:`ExecutionExistsError`. Empty: the
            driver's own integrity error reaches the caller.
        heartbeat_value: The new ``heartbeat_at`` (``{p}`` is the time's marker).
        cached_order: How ``find_cached`` orders the completed records.
        log_insert: The ``INSERT`` of log lines up to the column list, and the words after
            its ``VALUES (...)``: both together skip a line already stored under its key.
    """

    def __init__(
        self,
        *,
        placeholder: str,
        table_prefix: str,
        execution_conflict: str,
        heartbeat_value: str,
        cached_order: str,
        log_insert: tuple[str, str],
    ) -> None:
        p = placeholder
        t = table_prefix
        self.placeholder = p

        def marks(n: int) -> str:
            return ",".join([p] * n)

        every = _EXECUTION_COLUMNS.format(inputs="inputs", output="output")
        self.insert_execution = (
            f"INSERT INTO {t}executions ({every}) VALUES ({marks(11)}){execution_conflict}"
        )
        self.finish_execution = (
            f"UPDATE {t}executions SET status={p}, ended_at={p}, output={p}, error_type={p} "
            f"WHERE exec_id={p} AND status='running'"
        )
        self.heartbeat = (
            f"UPDATE {t}executions SET heartbeat_at={heartbeat_value.format(p=p)} WHERE exec_id={p}"
        )
        self.cancel_requested = f"SELECT 1 FROM {t}cancel_requests WHERE exec_id={p}"
        self.request_cancel = (
            f"INSERT INTO {t}cancel_requests (exec_id, requested_at) VALUES ({p}, {p}) "
            "ON CONFLICT (exec_id) DO NOTHING"
        )
        self.get_execution = f"SELECT {every} FROM {t}executions WHERE exec_id={p}"
        self.checkpoint_bodies = f"SELECT body FROM {t}checkpoints WHERE exec_id={p} ORDER BY seq"
        self.metadata_body = f"SELECT body FROM {t}execution_metadata WHERE exec_id={p}"
        self.list_executions = (
            f"SELECT {_EXECUTION_COLUMNS.format(inputs='inputs', output='NULL')} FROM {t}executions"
        )
        self.running_executions = (
            f"SELECT {_EXECUTION_COLUMNS.format(inputs='NULL', output='NULL')} "
            f"FROM {t}executions WHERE status='running'"
        )
        self.save_checkpoint = (
            f"INSERT INTO {t}checkpoints ({_CHECKPOINT_COLUMNS}) VALUES ({marks(7)}) "
            "ON CONFLICT (checkpoint_id) DO UPDATE SET status=excluded.status, "
            "ended_at=excluded.ended_at, cache_key=excluded.cache_key, body=excluded.body"
        )
        self.find_cached = (
            f"SELECT body FROM {t}checkpoints WHERE cache_key={p} AND status='completed' "
            f"ORDER BY {cached_order} LIMIT 1"
        )
        self.append_logs = (
            f"{log_insert[0]} {t}log_lines ({_LOG_LINE_COLUMNS}) VALUES ({marks(6)}){log_insert[1]}"
        )
        self.read_logs = f"SELECT id, body FROM {t}log_lines"
        self.save_execution_metadata = (
            f"INSERT INTO {t}execution_metadata (exec_id, body) VALUES ({p},{p}) "
            "ON CONFLICT (exec_id) DO UPDATE SET body=excluded.body"
        )


class SqlStore(QueryingStore):
    """A :class:`~kitaru.store.Store` and :class:`~kitaru.store._logs.LogStore` over SQL tables.

    Subclasses set :attr:`sql` and say how one read and one write run.
    """

    sql: SqlDialect

    @abstractmethod
    def _read(self, fn: Callable[[SqlConnection], T]) -> T:
        """Run ``fn`` on a connection (reads only)."""

    @abstractmethod
    def _write(self, fn: Callable[[SqlConnection], T]) -> T:
        """Run ``fn`` on a connection as one write (all of it or nothing)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    def create_execution(self, record: ExecutionRecord) -> None:
        """Record a new execution.

        Raises:
            ExecutionExistsError: An execution with this ID is already stored (SQLite raises
                its own ``IntegrityError`` instead).
        """
        args = execution_row(record)
        if self._write(lambda c: c.execute(self.sql.insert_execution, args).rowcount) == 0:
            raise ExecutionExistsError(f"an execution with ID {record.exec_id!r} already exists")

    def _finish_execution(
        self, exec_id: str, status: str, output: StoredValue | None, error_type: str | None
    ) -> None:
        args = (status, time.time(), value_text(output), error_type, exec_id)
        self._write(lambda c: c.execute(self.sql.finish_execution, args))

    def heartbeat(self, exec_id: str) -> bool:
        """Note that the execution's producer is alive; True when a cancel was requested."""
        args = (time.time(), exec_id)

        def run(c: SqlConnection) -> bool:
            c.execute(self.sql.heartbeat, args)
            return c.execute(self.sql.cancel_requested, (exec_id,)).fetchone() is not None

        return self._write(run)

    def request_cancel(self, exec_id: str) -> None:
        """Ask the execution's producer to stop (idempotent)."""
        args = (exec_id, time.time())
        self._write(lambda c: c.execute(self.sql.request_cancel, args))

    def get_execution(self, exec_id: str) -> ExecutionRecord | None:
        """The execution with its checkpoint records, or ``None``."""

        def run(c: SqlConnection) -> ExecutionRecord | None:
            row = c.execute(self.sql.get_execution, (exec_id,)).fetchone()
            if row is None:
                return None
            record = execution_from_row(row)
            rows = c.execute(self.sql.checkpoint_bodies, (exec_id,)).fetchall()
            record.checkpoints = [checkpoint_from_body(r[0]) for r in rows]
            meta = c.execute(self.sql.metadata_body, (exec_id,)).fetchone()
            if meta is not None:
                attach_metadata(record, meta[0])
            return record

        return self._read(run)

    def _list_executions(self, query: ExecutionQuery) -> list[ExecutionRecord]:
        tail, args = _list_tail(self.sql.placeholder, query)
        return self._rows(self.sql.list_executions + tail, args, execution_from_row)

    def running_executions(self) -> list[ExecutionRecord]:
        """Every execution still marked running (for lost-producer detection)."""
        return self._rows(self.sql.running_executions, (), execution_from_row)

    def save_checkpoint(self, record: CheckpointRecord) -> None:
        """Create or replace a checkpoint record."""
        args = checkpoint_row(record)
        self._write(lambda c: c.execute(self.sql.save_checkpoint, args))

    def find_cached(self, cache_key: str) -> CheckpointRecord | None:
        """The newest completed record with this cache key."""
        row = self._read(lambda c: c.execute(self.sql.find_cached, (cache_key,)).fetchone())
        return checkpoint_from_body(row[0]) if row else None

    def append_logs(self, lines: Sequence[LogLine]) -> None:
        """Store captured log lines (lines already stored under their key are skipped)."""
        if not lines:
            return
        rows = [log_line_row(line) for line in lines]

        def run(c: SqlConnection) -> None:
            with contextlib.closing(c.cursor()) as cur:
                cur.executemany(self.sql.append_logs, rows)

        self._write(run)

    def _read_logs(self, query: LogQuery) -> list[LogLine]:
        tail, args = _logs_tail(self.sql.placeholder, query)
        return self._rows(self.sql.read_logs + tail, args, lambda r: log_line_from_row(*r))

    def save_execution_metadata(
        self, exec_id: str, metadata: Mapping[str, Any], usage: Sequence[Mapping[str, Any]] = ()
    ) -> None:
        """Store the flow-body metadata and usage of an execution (replacing earlier ones)."""
        args = (exec_id, metadata_body(metadata, usage))
        self._write(lambda c: c.execute(self.sql.save_execution_metadata, args))

    def _rows(self, sql: str, args: Sequence[Any], convert: Callable[[Any], T]) -> list[T]:
        return self._read(lambda c: [convert(r) for r in c.execute(sql, args).fetchall()])


def _list_tail(p: str, query: ExecutionQuery) -> tuple[str, list[Any]]:
    """The ``WHERE ... ORDER BY ... LIMIT ... OFFSET`` tail of a listing and its arguments.

    ``p`` is the driver's parameter marker. ``id_prefix`` is compared as text (``%`` and
    ``_`` are no wildcards); the order is newest first, then by ID, so paging is stable.
    """
    where: list[str] = []
    args: list[Any] = []
    if query.flow_name is not None:
        where.append(f"flow_name={p}")
        args.append(query.flow_name)
    if query.status is not None:
        where.append(f"status={p}")
        args.append(query.status)
    if query.id_prefix:
        where.append(f"substr(exec_id, 1, {len(query.id_prefix)})={p}")
        args.append(query.id_prefix)
    sql = " WHERE " + " AND ".join(where) if where else ""
    sql += f" ORDER BY created_at DESC, exec_id DESC LIMIT {p} OFFSET {p}"
    args.append(max(0, int(query.limit)))
    args.append(max(0, int(query.offset)))
    return sql, args


def _logs_tail(p: str, query: LogQuery) -> tuple[str, list[Any]]:
    """The ``WHERE ... ORDER BY ... LIMIT`` tail of a log read and its arguments.

    ``checkpoint`` matches a line's checkpoint name or step name.
    """
    sql = f" WHERE exec_id={p}"
    args: list[Any] = [query.exec_id]
    if query.after is not None:
        sql += f" AND id>{p}"
        args.append(int(query.after))
    if query.checkpoint is not None:
        sql += f" AND (checkpoint={p} OR step_name={p})"
        args += [query.checkpoint, query.checkpoint]
    if query.correlation_id is not None:
        sql += f" AND correlation_id={p}"
        args.append(query.correlation_id)
    sql += f" ORDER BY id LIMIT {p}"
    args.append(max(0, int(query.limit)))
    return sql, args
