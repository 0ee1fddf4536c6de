"""The embedded SQLite store (local database mode, and the server's default store).

WAL journal and a busy timeout make one file safe for many threads of one process and for
several processes at once; every write is its own short transaction.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from kitaru._sqlite_connect import connect
from kitaru._sqlite_errors import describe, rollback
from kitaru.exceptions import KitaruBackendError
from kitaru.store._sql import SqlConnection, SqlDialect, SqlStore

__all__ = ["SqliteStore"]

T = TypeVar("T")

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


class SqliteStore(SqlStore):
    """A :class:`~kitaru.store.Store` in one SQLite file.

    Args:
        path: The database file; its folder is created if needed.
    """

    sql = SqlDialect(
        placeholder="?",
        table_prefix="",
        execution_conflict="",  # a duplicate ID raises sqlite3.IntegrityError
        heartbeat_value="{p}",
        cached_order="ended_at DESC",  # SQLite sorts NULL first, so last when descending
        log_insert=("INSERT OR IGNORE INTO", ""),
    )

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
            conn = connect(self.path)
            self._local.conn = conn
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    def _read(self, fn: Callable[[SqlConnection], T]) -> T:
        return fn(self._conn())

    def _write(self, fn: Callable[[SqlConnection], T]) -> T:
        with _Tx(self._conn()) as conn:
            return fn(conn)

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
