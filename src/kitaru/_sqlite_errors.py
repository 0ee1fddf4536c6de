"""SQLite failures that say what went wrong with the disk, and rollbacks that never hide them.

SQLite reports a full disk as ``database or disk is full`` and then has already rolled the
transaction back itself, so an unconditional ``ROLLBACK`` afterwards fails with ``cannot rollback
- no transaction is active`` and that second error replaces the one that mattered. And a
database on a read-only file system fails to open with ``unable to open database file``, which
does not name the cause. The helpers here keep the first error and name its cause.

See ``docs/server-architecture.md`` ("Disk trouble").
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from pathlib import Path

__all__ = ["describe", "rollback"]


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if SQLite has not already done so.

    Never raises: it runs while another error is on its way up, and that error is the one to
    report.
    """
    if not conn.in_transaction:
        return
    with contextlib.suppress(sqlite3.Error):
        conn.execute("ROLLBACK")


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def describe(exc: BaseException, path: Path) -> str:
    """A sentence naming the cause of ``exc``, raised while using the database at ``path``."""
    text = str(exc)
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    folder = path.parent
    if primary == sqlite3.SQLITE_FULL or "disk is full" in text:
        return f"the disk holding {path} is full ({text})"
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"the disk holding {path} is full ({exc.strerror})"
    if _read_only(folder) or (isinstance(exc, OSError) and exc.errno == errno.EROFS):
        return f"{path} is on a read-only file system ({text})"
    if primary == sqlite3.SQLITE_READONLY:
        return f"{path} is read-only ({text})"
    if primary == sqlite3.SQLITE_CANTOPEN or "unable to open" in text:
        if not folder.is_dir():
            return f"cannot open {path}: the folder {folder} does not exist ({text})"
        if not os.access(folder, os.W_OK):
            return f"cannot open {path}: no permission to write in {folder} ({text})"
        return f"cannot open {path} ({text})"
    if primary == sqlite3.SQLITE_IOERR:
        return f"a disk I/O error on {path} ({text})"
    return f"{path}: {text}"
