"""Disk trouble is reported by its cause: a full disk, a read-only file system."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from kitaru._sqlite_errors import describe
from kitaru.store import SqliteStore
from kitaru.store._records import ExecutionRecord
from kitaru.store._values import StoredValue


def test_a_full_database_reports_full_not_a_failed_rollback(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    conn = store._conn()
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count={pages + 2}")  # the disk is "full" two pages on
    big = StoredValue("json", '"' + "x" * 200_000 + '"')
    with pytest.raises(sqlite3.OperationalError) as info:
        store.create_execution(
            ExecutionRecord("e1", "flow", None, "running", time.time(), inputs=big)
        )
    assert "full" in str(info.value)
    assert "rollback" not in str(info.value)
    assert "is full" in describe(info.value, store.path)
    # The connection is usable afterwards (no transaction left open).
    assert not conn.in_transaction
    store.create_execution(ExecutionRecord("e2", "flow", None, "running", time.time()))
    assert store.get_execution("e2") is not None
    store.close()


def test_a_read_only_file_system_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    real = os.statvfs

    class _Ro:
        def __init__(self, st: Any) -> None:
            self._st = st
            self.f_flag = st.f_flag | os.ST_RDONLY

    monkeypatch.setattr(os, "statvfs", lambda p: _Ro(real(p)))
    exc = sqlite3.OperationalError("unable to open database file")
    assert "read-only file system" in describe(exc, folder / "server.db")
