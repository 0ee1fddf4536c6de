"""The embedded SQLite store (local database mode, and the server's default store).

WAL journal and a busy timeout make one file safe for many threads of one process and for
several processes at once; every write is its own short transaction.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kitaru._sqlite_errors import describe, rollback
from kitaru.exceptions import KitaruBackendError
from kitaru.store._logs import LogLine, log_line_from_row, log_line_row, logs_filter
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

__all__ = ["SqliteStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    exec_id TEXT PRIMARY KEY,
    flow_name TEXT NOT NULL,
    flow_ref TEXT,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    ended_at REAL,
    original_exec_id TEXT,
    error_type TEXT,
    inputs TEXT,
    output TEXT,
    heartbeat_at REAL
);
CREATE INDEX IF NOT EXISTS executions_created ON executions (created_at DESC);
CREATE TABLE IF NOT EXISTS checkpoints (
    checkpoint_id TEXT PRIMARY KEY,
    exec_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    cache_key TEXT,
    status TEXT NOT NULL,
    ended_at REAL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS checkpoints_exec ON checkpoints (exec_id, seq);
CREATE INDEX IF NOT EXISTS checkpoints_cache ON checkpoints (cache_key, status);
-- Captured runtime log lines (docs/runtime-logs-and-metadata.md); ``id`` is the follow cursor.
CREATE TABLE IF NOT EXISTS log_lines (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    exec_id TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    line INTEGER NOT NULL,
    checkpoint TEXT NOT NULL,
    step_name TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS log_lines_key ON log_lines (exec_id, correlation_id, line);
CREATE INDEX IF NOT EXISTS log_lines_exec ON log_lines (exec_id, id);
-- What kitaru.log() attached in a flow body, and flow-body usage.
CREATE TABLE IF NOT EXISTS execution_metadata (
    exec_id TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cancel_requests (
    exec_id TEXT PRIMARY KEY,
    requested_at REAL NOT NULL
);
"""


class SqliteStore:
    """A :class:`~kitaru.store.Store` in one SQLite file.

    Args:
        path: The database file; its folder is created if needed.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._pid = os.getpid()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn().executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise KitaruBackendError(f"cannot open the store: {describe(exc, self.path)}") from exc

    def _conn(self) -> sqlite3.Connection:
        if self._pid != os.getpid():
            # A connection must never be used across fork(); the child opens its own.
            self._pid = os.getpid()
            self._local = threading.local()
            self._conns = []
            self._conns_lock = threading.Lock()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    def _tx(self) -> _Tx:
        return _Tx(self._conn())

    def create_execution(self, record: ExecutionRecord) -> None:
        """Record a new execution."""
        with self._tx() as c:
            c.execute(
                "INSERT INTO executions (exec_id, flow_name, flow_ref, status, created_at, "
                "ended_at, original_exec_id, error_type, inputs, output, heartbeat_at) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                execution_row(record),
            )

    def finish_execution(
        self,
        exec_id: str,
        status: str,
        *,
        output: StoredValue | None = None,
        error_type: str | None = None,
    ) -> None:
        """Mark an execution terminal (a terminal execution is never changed again)."""
        with self._tx() as c:
            c.execute(
                "UPDATE executions SET status=?, ended_at=?, output=?, error_type=? "
                "WHERE exec_id=? AND status='running'",
                (status, time.time(), value_text(output), error_type, exec_id),
            )

    def heartbeat(self, exec_id: str) -> bool:
        """Note that the execution's producer is alive; True when a cancel was requested."""
        with self._tx() as c:
            c.execute(
                "UPDATE executions SET heartbeat_at=? WHERE exec_id=?", (time.time(), exec_id)
            )
            row = c.execute("SELECT 1 FROM cancel_requests WHERE exec_id=?", (exec_id,)).fetchone()
        return row is not None

    def request_cancel(self, exec_id: str) -> None:
        """Ask the execution's producer to stop (idempotent)."""
        with self._tx() as c:
            c.execute(
                "INSERT INTO cancel_requests (exec_id, requested_at) VALUES (?, ?) "
                "ON CONFLICT(exec_id) DO NOTHING",
                (exec_id, time.time()),
            )

    def get_execution(self, exec_id: str) -> ExecutionRecord | None:
        """The execution with its checkpoint records, or ``None``."""
        conn = self._conn()
        row = conn.execute(
            "SELECT exec_id, flow_name, flow_ref, status, created_at, ended_at, "
            "original_exec_id, error_type, inputs, output, heartbeat_at "
            "FROM executions WHERE exec_id=?",
            (exec_id,),
        ).fetchone()
        if row is None:
            return None
        record = execution_from_row(row)
        rows = conn.execute(
            "SELECT body FROM checkpoints WHERE exec_id=? ORDER BY seq", (exec_id,)
        ).fetchall()
        record.checkpoints = [checkpoint_from_body(r[0]) for r in rows]
        meta = conn.execute(
            "SELECT body FROM execution_metadata WHERE exec_id=?", (exec_id,)
        ).fetchone()
        if meta is not None:
            attach_metadata(record, meta[0])
        return record

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
        sql = (
            "SELECT exec_id, flow_name, flow_ref, status, created_at, ended_at, "
            "original_exec_id, error_type, inputs, NULL, heartbeat_at FROM executions"
        )
        tail, args = list_filters(
            "?", flow_name=flow_name, status=status, limit=limit, id_prefix=id_prefix, offset=offset
        )
        rows = self._conn().execute(sql + tail, args).fetchall()
        return [execution_from_row(r) for r in rows]

    def running_executions(self) -> list[ExecutionRecord]:
        """Every execution still marked running (for lost-producer detection)."""
        rows = (
            self._conn()
            .execute(
                "SELECT exec_id, flow_name, flow_ref, status, created_at, ended_at, "
                "original_exec_id, error_type, NULL, NULL, heartbeat_at FROM executions "
                "WHERE status='running'"
            )
            .fetchall()
        )
        return [execution_from_row(r) for r in rows]

    def save_checkpoint(self, record: CheckpointRecord) -> None:
        """Create or replace a checkpoint record."""
        row = checkpoint_row(record)
        with self._tx() as c:
            c.execute(
                "INSERT INTO checkpoints (checkpoint_id, exec_id, seq, cache_key, status, "
                "ended_at, body) VALUES (?,?,?,?,?,?,?) ON CONFLICT(checkpoint_id) DO UPDATE "
                "SET status=excluded.status, ended_at=excluded.ended_at, "
                "cache_key=excluded.cache_key, body=excluded.body",
                row,
            )

    def find_cached(self, cache_key: str) -> CheckpointRecord | None:
        """The newest completed record with this cache key."""
        row = (
            self._conn()
            .execute(
                "SELECT body FROM checkpoints WHERE cache_key=? AND status='completed' "
                "ORDER BY ended_at DESC LIMIT 1",
                (cache_key,),
            )
            .fetchone()
        )
        return checkpoint_from_body(row[0]) if row else None

    def append_logs(self, lines: Sequence[LogLine]) -> None:
        """Store captured log lines (lines already stored under their key are skipped)."""
        if not lines:
            return
        rows = [log_line_row(line) for line in lines]
        with self._tx() as c:
            c.executemany(
                "INSERT OR IGNORE INTO log_lines (exec_id, correlation_id, line, checkpoint, "
                "step_name, body) VALUES (?,?,?,?,?,?)",
                rows,
            )

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
            "?",
            exec_id=exec_id,
            after=after,
            checkpoint=checkpoint,
            correlation_id=correlation_id,
            limit=limit,
        )
        rows = self._conn().execute("SELECT id, body FROM log_lines" + tail, args).fetchall()
        return [log_line_from_row(r[0], r[1]) for r in rows]

    def save_execution_metadata(
        self, exec_id: str, metadata: Mapping[str, Any], usage: Sequence[Mapping[str, Any]] = ()
    ) -> None:
        """Store the flow-body metadata and usage of an execution (replacing earlier ones)."""
        body = metadata_body(metadata, usage)
        with self._tx() as c:
            c.execute(
                "INSERT INTO execution_metadata (exec_id, body) VALUES (?,?) "
                "ON CONFLICT(exec_id) DO UPDATE SET body=excluded.body",
                (exec_id, body),
            )

    def close(self) -> None:
        """Close every connection this store opened."""
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()


class _Tx:
    """A write transaction that takes the write lock up front.

    ``BEGIN IMMEDIATE`` makes two processes wait on the busy timeout instead of failing on a
    lock upgrade.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            rollback(self.conn)  # keeps the error that got here (a full disk, say)
