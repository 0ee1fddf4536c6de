"""The SQLite event log converts a file of the first layout and reads every event back intact."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from kitaru.backends import EventLogError, LoggedEvent, NewEvent, SqliteEventLog
from kitaru.backends._seq import format_cursor
from kitaru.backends._sqlite_schema import MIGRATIONS
from kitaru.events._frames import new_event_frame

# The layout of version 1, as kitaru created it before the compact layout.
V1_DDL = """
CREATE TABLE IF NOT EXISTS event_logs (
    exec_id TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL DEFAULT 0,
    base_seq INTEGER NOT NULL DEFAULT 1,
    ended_status TEXT,
    ended_at REAL
);
CREATE INDEX IF NOT EXISTS event_logs_ended ON event_logs (ended_at);
CREATE TABLE IF NOT EXISTS events (
    exec_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    correlation_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    kind TEXT NOT NULL,
    checkpoint_id TEXT,
    checkpoint_name TEXT,
    step_name TEXT,
    frame BLOB NOT NULL,
    PRIMARY KEY (exec_id, seq)
);
CREATE UNIQUE INDEX IF NOT EXISTS events_key ON events (exec_id, correlation_id, idx);
"""

Logged = tuple[str, str, str, int, str | None, str | None, str | None, bytes]


def run(fn: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(fn(), timeout=30))


def _events(exec_id: str) -> list[NewEvent]:
    out = []
    for i in range(7):
        corr = f"corr-{i % 2}"
        kind = "k.start" if i < 2 else "k.progress"
        cid, cname, sname = (None, None, None) if i == 3 else ("cid-" + corr, "cp", "step")
        body = orjson.dumps(
            {"exec_id": exec_id, "kind": kind, "index": i, "payload": {"text": f"é {i} \u2603"}}
        )
        out.append(NewEvent(kind, corr, i, cid, cname, sname, b"{}" if i == 4 else body))
    return out


def _write_v1(path: Path) -> dict[str, list[Logged]]:
    """A version-1 file: three executions (one trimmed by retention, one ended)."""
    expected: dict[str, list[Logged]] = {}
    with sqlite3.connect(path) as conn:
        conn.executescript(V1_DDL)
        for exec_id, base, ended in (("a", 1, None), ("b", 3, "completed"), ("c", 1, "failed")):
            events = _events(exec_id)
            rows = []
            for seq, ev in enumerate(events, 1):
                cursor = format_cursor(seq)
                frame = new_event_frame(cursor, ev.kind, ev.body)
                rows.append(
                    (
                        exec_id,
                        seq,
                        ev.correlation_id,
                        ev.index,
                        ev.kind,
                        ev.checkpoint_id,
                        ev.checkpoint_name,
                        ev.step_name,
                        frame,
                    )
                )
            conn.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?)", rows)
            conn.execute("DELETE FROM events WHERE exec_id=? AND seq<?", (exec_id, base))
            conn.execute(
                "INSERT INTO event_logs VALUES (?,?,?,?,?)",
                (exec_id, len(events), base, ended, 1.0 if ended else None),
            )
            expected[exec_id] = [
                (format_cursor(r[1]), r[4], r[2], r[3], r[5], r[6], r[7], r[8])
                for r in rows
                if r[1] >= base
            ]
    return expected


def _logged(e: LoggedEvent) -> Logged:
    return (
        e.cursor,
        e.kind,
        e.correlation_id,
        e.index,
        e.checkpoint_id,
        e.checkpoint_name,
        e.step_name,
        e.frame,
    )


def test_a_version_1_file_reads_back_identically_after_migration(tmp_path: Path) -> None:
    path = tmp_path / "server.db"
    expected = _write_v1(path)

    async def go() -> None:
        async with SqliteEventLog(path) as log:
            for exec_id, want in expected.items():
                got = await log.read(exec_id, None, 100)
                assert [_logged(e) for e in got.events] == want
                assert got.last_cursor == format_cursor(7)
                assert (got.gap is not None) == (exec_id == "b")
                fast = await log.read_frames(exec_id, None, 100)
                assert fast.frames == b"".join(w[-1] for w in want)
                assert fast.count == len(want)
            assert (await log.read("b", None, 1)).ended == "completed"
            assert (await log.read("a", None, 1)).ended is None
            # The idempotency keys came along: a stored key is a duplicate, a new one is next.
            again = await log.append(
                "a", [_events("a")[5], NewEvent("k", "new", 0, None, None, None, b"{}")]
            )
            assert (again.stored, again.duplicates) == (1, 1)
            assert again.last_cursor == format_cursor(8)

    run(go)
    with sqlite3.connect(path) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM event_log_migrations")]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert versions == [2, 3]
    assert "events_v1" not in tables and "event_logs_v1" not in tables

    async def reopen() -> None:  # a migrated file opens as it is
        async with SqliteEventLog(path) as log:
            got = await log.read("a", None, 100)
            assert [_logged(e) for e in got.events][:7] == expected["a"]

    run(reopen)


def _migrate_to_v2(path: Path) -> None:
    """Bring a version-1 file to version 2 only, as the kitaru that introduced it did."""
    version, name, step = MIGRATIONS[0]
    assert version == 2
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "CREATE TABLE event_log_migrations ("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
        )
        step(conn)
        conn.execute("INSERT INTO event_log_migrations VALUES (?, ?, 0)", (version, name))
        conn.execute("COMMIT")
    finally:
        conn.close()


def test_a_version_2_file_reads_back_identically_after_migration(tmp_path: Path) -> None:
    path = tmp_path / "server.db"
    expected = _write_v1(path)
    _migrate_to_v2(path)
    with sqlite3.connect(path) as conn:  # version 2 stores heads, not frames
        heads = [r[0] for r in conn.execute("SELECT head FROM events ORDER BY log_id, seq")]
    assert len(heads) == sum(len(want) for want in expected.values())
    assert not any(h.startswith(b"id: ") for h in heads)

    async def go() -> None:
        async with SqliteEventLog(path) as log:
            for exec_id, want in expected.items():
                got = await log.read(exec_id, None, 100)
                assert [_logged(e) for e in got.events] == want
                fast = await log.read_frames(exec_id, None, 100)
                assert fast.frames == b"".join(w[-1] for w in want)
                assert fast.count == len(want)
            assert (await log.read("b", None, 1)).ended == "completed"
            again = await log.append(
                "c", [_events("c")[6], NewEvent("k", "new", 0, None, None, None, b"{}")]
            )
            assert (again.stored, again.duplicates) == (1, 1)
            tail = await log.read_frames("c", format_cursor(7), 100)
            assert tail.frames == new_event_frame(format_cursor(8), "k", b"{}")

    run(go)
    with sqlite3.connect(path) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM event_log_migrations")]
        frames = [r[0] for r in conn.execute("SELECT frame FROM events ORDER BY log_id, seq")]
    assert versions == [2, 3]
    # Every stored frame is the one version 1 stored for the same event, byte for byte.
    assert frames[: len(heads)] == [w[-1] for want in expected.values() for w in want]


def test_a_new_file_starts_at_the_latest_version(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"

    async def go() -> None:
        async with SqliteEventLog(path) as log:
            await log.append("e", _events("e"))
            assert (await log.read("e", None, 100)).last_cursor == format_cursor(7)

    run(go)
    with sqlite3.connect(path) as conn:
        assert [r[0] for r in conn.execute("SELECT version FROM event_log_migrations")] == [2, 3]


def test_a_file_from_a_newer_kitaru_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "newer.db"

    async def make() -> None:
        async with SqliteEventLog(path):
            pass

    run(make)
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO event_log_migrations VALUES (99, 'future', 0)")
    with pytest.raises(EventLogError, match="99"):
        SqliteEventLog(path)
