"""The rows one SQLite append builds: frames, sources and in-batch duplicates, read back exactly."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import orjson

from kitaru.backends import NewEvent, SqliteEventLog
from kitaru.backends._seq import logged_event


def _ev(index: int, kind: str, corr: str, step: str | None, body: bytes | None = None) -> NewEvent:
    if body is None:
        body = orjson.dumps({"kind": kind, "correlation_id": corr, "index": index, "n": "é{}"})
    return NewEvent(kind, corr, index, None, "cp", step, body)


def test_a_mixed_batch_reads_back_as_logged_events(tmp_path: Path) -> None:
    # Several kinds and sources in one batch, an empty body, and a repeated key inside the
    # batch (its first occurrence is the one stored, the other counts as a duplicate).
    batch = [
        _ev(0, "kitaru.checkpoint.progress", "c1", "s1"),
        _ev(1, "kitaru.custom", "c2", None),
        _ev(1, "kitaru.custom", "c2", None, body=b'{"dup":true}'),
        _ev(1, "kitaru.checkpoint.progress", "c1", "s1", body=b"{}"),
        _ev(2, "kitaru.custom", "c1", "s2"),
        _ev(3, "kitaru.checkpoint.progress", "c1", "s1"),
    ]
    stored = [batch[0], batch[1], batch[3], batch[4], batch[5]]

    async def go() -> None:
        log = SqliteEventLog(tmp_path / "log.db")
        try:
            first = await log.append("e1", batch[:1])
            await log.read_frames("e1", first.last_cursor, 10)  # keep a tail from here on
            result = await log.append("e1", batch[1:])
            assert (result.stored, result.duplicates) == (4, 1)
            want = [logged_event(seq, ev) for seq, ev in enumerate(stored, 1)]
            from_tail = await log.read("e1", first.last_cursor, 10)
            assert from_tail.events == want[1:]
            assert (await log.read_frames("e1", None, 10)).frames == b"".join(e.frame for e in want)
        finally:
            await log.close()
        # A fresh log (no tail) reads the same rows from SQLite.
        again = SqliteEventLog(tmp_path / "log.db")
        try:
            assert (await again.read("e1", None, 10)).events == want
        finally:
            await again.close()

    asyncio.run(go())
    with sqlite3.connect(tmp_path / "log.db") as conn:
        sources = conn.execute(
            "SELECT correlation_id, kind, step_name FROM event_sources ORDER BY src"
        ).fetchall()
    # Sources are numbered in the order the batch first uses them.
    assert sources == [
        ("c1", "kitaru.checkpoint.progress", "s1"),
        ("c2", "kitaru.custom", None),
        ("c1", "kitaru.custom", "s2"),
    ]
