"""The PostgreSQL store: durable records shared by several server replicas.

Selected with ``kitaru server start --db postgresql://...``. Same records and rules as
:class:`~kitaru.store.SqliteStore`; the schema is versioned (:mod:`kitaru.store._pg_schema`)
and migrated when the store opens. Calls are synchronous (the server runs them on worker
threads) and use a small connection pool; every write is one statement in autocommit, so a
replica that dies mid-request leaves nothing half-written.

A terminal execution never changes again: ``finish_execution`` updates only rows still
``running``, which makes "mark ended" atomic across replicas (the first finish or lost
verdict wins; the others see the stored outcome).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from kitaru.store._base import ExecutionExistsError, StoreUnavailableError
from kitaru.store._logs import LogLine, log_line_from_row, log_line_row, logs_filter
from kitaru.store._pg_schema import migrate
from kitaru.store._records import CheckpointRecord, ExecutionRecord
from kitaru.store._rows import (
    attach_metadata,
    checkpoint_from_body,
    checkpoint_row,
    execution_from_row,
    execution_row,
    list_filters,
    metadata_body,
    value_text,
)
from kitaru.store._values import StoredValue

__all__ = ["PostgresStore", "is_postgres_url"]

T = TypeVar("T")

_COLUMNS = (
    "exec_id, flow_name, flow_ref, status, created_at, ended_at, original_exec_id, "
    "error_type, inputs, {output}, heartbeat_at"
)


def is_postgres_url(value: object) -> bool:
    """True for a ``postgresql://`` or ``postgres://`` URL."""
    return isinstance(value, str) and value.startswith(("postgresql://", "postgres://"))


class PostgresStore:
    """A :class:`~kitaru.store.Store` in a PostgreSQL database.

    Args:
        url: A libpq URL, ``postgresql://user:password@host:port/database``. Query
            parameters are passed on (e.g. ``?sslmode=require``, or
            ``?options=-csearch_path%3Dmyschema`` for a schema of its own).
        min_connections: Connections the pool keeps open.
        max_connections: Most connections the pool opens (per process).
        connect_timeout: Seconds to wait for a connection before answering "unavailable".

    Raises:
        StoreUnavailableError: The database cannot be reached or migrated.
    """

    def __init__(
        self,
        url: str,
        *,
        min_connections: int = 1,
        max_connections: int = 8,
        connect_timeout: float = 5.0,
    ) -> None:
        self.url = url
        self._pool = ConnectionPool(
            url,
            min_size=min_connections,
            max_size=max(min_connections, max_connections),
            timeout=connect_timeout,
            kwargs={"autocommit": True, "connect_timeout": max(1, int(connect_timeout))},
            open=False,
            name="kitaru-store",
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
            with self._pool.connection() as conn:
                migrate(conn)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            self._pool.close()
            raise StoreUnavailableError(
                f"cannot open the PostgreSQL store: {_describe(exc)}"
            ) from None
        except BaseException:
            self._pool.close()
            raise

    def _run(self, fn: Callable[[psycopg.Connection[Any]], T]) -> T:
        # One retry on a fresh connection: after a database restart, pooled connections are
        # broken until used once. Every statement here is safe to repeat.
        for attempt in (1, 2):
            try:
                with self._pool.connection() as conn:
                    return fn(conn)
            except (psycopg.OperationalError, PoolTimeout) as exc:
                if attempt == 2:
                    raise StoreUnavailableError(
                        f"the PostgreSQL store is unavailable: {_describe(exc)}"
                    ) from None
        raise AssertionError("unreachable")

    def create_execution(self, record: ExecutionRecord) -> None:
        """Record a new execution.

        Raises:
            ExecutionExistsError: An execution with this ID is already stored.
        """
        args = execution_row(record)

        def run(conn: psycopg.Connection[Any]) -> int:
            cur = conn.execute(
                "INSERT INTO kitaru_executions (exec_id, flow_name, flow_ref, status, "
                "created_at, ended_at, original_exec_id, error_type, inputs, output, "
                "heartbeat_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) "
                "ON CONFLICT (exec_id) DO NOTHING",
                args,
            )
            return cur.rowcount

        if self._run(run) == 0:
            raise ExecutionExistsError(f"an execution with ID {record.exec_id!r} already exists")

    def finish_execution(
        self,
        exec_id: str,
        status: str,
        *,
        output: StoredValue | None = None,
        error_type: str | None = None,
    ) -> None:
        """Mark an execution terminal (only if still running: the first verdict wins)."""
        args = (status, time.time(), value_text(output), error_type, exec_id)
        self._run(
            lambda conn: conn.execute(
                "UPDATE kitaru_executions SET status=%s, ended_at=%s, output=%s, error_type=%s "
                "WHERE exec_id=%s AND status='running'",
                args,
            )
        )

    def heartbeat(self, exec_id: str) -> bool:
        """Note that the execution's producer is alive; True when a cancel was requested."""
        args = (time.time(), exec_id)

        def run(conn: psycopg.Connection[Any]) -> bool:
            conn.execute(
                "UPDATE kitaru_executions SET heartbeat_at=GREATEST(COALESCE(heartbeat_at, 0), "
                "%s) WHERE exec_id=%s",
                args,
            )
            row = conn.execute(
                "SELECT 1 FROM kitaru_cancel_requests WHERE exec_id=%s", (exec_id,)
            ).fetchone()
            return row is not None

        return self._run(run)

    def request_cancel(self, exec_id: str) -> None:
        """Ask the execution's producer to stop (idempotent)."""
        args = (exec_id, time.time())
        self._run(
            lambda conn: conn.execute(
                "INSERT INTO kitaru_cancel_requests (exec_id, requested_at) VALUES (%s, %s) "
                "ON CONFLICT (exec_id) DO NOTHING",
                args,
            )
        )

    def get_execution(self, exec_id: str) -> ExecutionRecord | None:
        """The execution with its checkpoint records, or ``None``."""

        def run(conn: psycopg.Connection[Any]) -> ExecutionRecord | None:
            row = conn.execute(
                f"SELECT {_COLUMNS.format(output='output')} FROM kitaru_executions "
                "WHERE exec_id=%s",
                (exec_id,),
            ).fetchone()
            if row is None:
                return None
            record = execution_from_row(row)
            rows = conn.execute(
                "SELECT body FROM kitaru_checkpoints WHERE exec_id=%s ORDER BY seq", (exec_id,)
            ).fetchall()
            record.checkpoints = [checkpoint_from_body(r[0]) for r in rows]
            meta = conn.execute(
                "SELECT body FROM kitaru_execution_metadata WHERE exec_id=%s", (exec_id,)
            ).fetchone()
            if meta is not None:
                attach_metadata(record, meta[0])
            return record

        return self._run(run)

    def list_executions(
        self,
        *,
        flow_name: str | None = None,
        status: str | None = None,
        limit: int = 50,
        id_prefix: str | None = None,
        offset: int = 0,
    ) -> list[ExecutionRecord]:
        """Executions, newest first, without checkpoint records."""
        sql = f"SELECT {_COLUMNS.format(output='NULL')} FROM kitaru_executions"
        tail, args = list_filters(
            "%s",
            flow_name=flow_name,
            status=status,
            limit=limit,
            id_prefix=id_prefix,
            offset=offset,
        )
        sql += tail
        return self._run(
            lambda conn: [execution_from_row(r) for r in conn.execute(sql, args).fetchall()]
        )

    def running_executions(self) -> list[ExecutionRecord]:
        """Every execution still marked running (for lost-producer detection)."""
        sql = (
            "SELECT exec_id, flow_name, flow_ref, status, created_at, ended_at, "
            "original_exec_id, error_type, NULL, NULL, heartbeat_at FROM kitaru_executions "
            "WHERE status='running'"
        )
        return self._run(lambda conn: [execution_from_row(r) for r in conn.execute(sql).fetchall()])

    def save_checkpoint(self, record: CheckpointRecord) -> None:
        """Create or replace a checkpoint record."""
        args = checkpoint_row(record)
        self._run(
            lambda conn: conn.execute(
                "INSERT INTO kitaru_checkpoints (checkpoint_id, exec_id, seq, cache_key, status, "
                "ended_at, body) VALUES (%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (checkpoint_id) DO "
                "UPDATE SET status=excluded.status, ended_at=excluded.ended_at, "
                "cache_key=excluded.cache_key, body=excluded.body",
                args,
            )
        )

    def find_cached(self, cache_key: str) -> CheckpointRecord | None:
        """The newest completed record with this cache key."""
        row = self._run(
            lambda conn: conn.execute(
                "SELECT body FROM kitaru_checkpoints WHERE cache_key=%s AND status='completed' "
                "ORDER BY ended_at DESC NULLS LAST LIMIT 1",
                (cache_key,),
            ).fetchone()
        )
        return checkpoint_from_body(row[0]) if row else None

    def append_logs(self, lines: Sequence[LogLine]) -> None:
        """Store captured log lines (lines already stored under their key are skipped)."""
        if not lines:
            return
        rows = [log_line_row(line) for line in lines]

        def run(conn: psycopg.Connection[Any]) -> None:
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO kitaru_log_lines (exec_id, correlation_id, line, checkpoint, "
                    "step_name, body) VALUES (%s,%s,%s,%s,%s,%s) ON CONFLICT DO NOTHING",
                    rows,
                )

        self._run(run)

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
        tail, args = logs_filter(
            "%s",
            exec_id=exec_id,
            after=after,
            checkpoint=checkpoint,
            correlation_id=correlation_id,
            limit=limit,
        )
        sql = "SELECT id, body FROM kitaru_log_lines" + tail
        rows = self._run(lambda conn: conn.execute(sql, args).fetchall())
        return [log_line_from_row(r[0], r[1]) for r in rows]

    def save_execution_metadata(
        self, exec_id: str, metadata: Mapping[str, Any], usage: Sequence[Mapping[str, Any]] = ()
    ) -> None:
        """Store the flow-body metadata and usage of an execution (replacing earlier ones)."""
        args = (exec_id, metadata_body(metadata, usage))
        self._run(
            lambda conn: conn.execute(
                "INSERT INTO kitaru_execution_metadata (exec_id, body) VALUES (%s,%s) "
                "ON CONFLICT (exec_id) DO UPDATE SET body=excluded.body",
                args,
            )
        )

    def close(self) -> None:
        """Close the pool (idempotent)."""
        self._pool.close(timeout=2.0)


def _describe(exc: BaseException) -> str:
    # libpq messages may quote the connection string; keep the first line, never the URL.
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]
