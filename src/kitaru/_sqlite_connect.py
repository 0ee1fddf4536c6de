"""One way to open a SQLite connection for the store and the event log.

Both are shared by the server's threads and by other processes on the same file, so both use
WAL (readers never wait for the writer), ``synchronous=NORMAL`` (durable at each checkpoint of
the WAL, which is what WAL mode is designed for) and a 30 s busy timeout, with autocommit so each
caller opens its own transactions (docs/server-architecture.md, "Disk trouble").
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

__all__ = ["connect"]

_PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=30000")


def connect(path: str | Path, *extra_pragmas: str) -> sqlite3.Connection:
    """A connection to ``path`` with the shared settings, then ``extra_pragmas`` in order."""
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    for pragma in (*_PRAGMAS, *extra_pragmas):
        conn.execute(f"PRAGMA {pragma}")
    return conn
