"""The SQLite log writes appends that wait for the write lock together, in one transaction."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from kitaru.backends import EventLogError, NewEvent, SqliteEventLog
from kitaru.backends import _sqlite_write as write
from kitaru.backends._seq import format_cursor


def run(fn: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(fn(), timeout=20))


def ev(index: int, corr: str = "c1") -> NewEvent:
    body = orjson.dumps({"kind": "k", "correlation_id": corr, "index": index})
    return NewEvent("k", corr, index, "id", "cp", "cp", body)


def _recording(monkeypatch: pytest.MonkeyPatch, fail_for: str | None = None) -> list[list[str]]:
    """Record the executions of every transaction; fail any that holds ``fail_for``."""
    groups: list[list[str]] = []
    real = write.append_many

    def append_many(
        conn: sqlite3.Connection,
        sources: write.Sources,
        batches: Sequence[tuple[str, Sequence[NewEvent]]],
        max_events: int | None,
    ) -> list[write.Appended]:
        groups.append([exec_id for exec_id, _ in batches])
        if fail_for is not None and any(exec_id == fail_for for exec_id, _ in batches):
            raise sqlite3.OperationalError("disk I/O error")
        return real(conn, sources, batches, max_events)

    monkeypatch.setattr(write, "append_many", append_many)
    return groups


def test_appends_waiting_for_the_lock_commit_as_one_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    groups = _recording(monkeypatch)

    async def go() -> None:
        async with SqliteEventLog(tmp_path / "log.db") as log:
            await log.append("warm", [ev(0)])  # the schema and a worker thread exist
            groups.clear()
            with log._write_lock:  # a writer is busy: every append below has to wait
                pending = [
                    asyncio.ensure_future(log.append(f"e{i % 5}", [ev(i // 5), ev(i // 5)]))
                    for i in range(20)
                ]
                await asyncio.sleep(0.2)
                assert not any(p.done() for p in pending)
            results = await asyncio.gather(*pending)
            # The first waiter's group, then everything queued behind it in one more.
            assert len(groups) <= 2 and sum(len(g) for g in groups) == 20
            assert [(r.stored, r.duplicates) for r in results] == [(1, 1)] * 20
            for n in range(5):
                # Each execution's batches are numbered in the order they were appended.
                mine = [r.last_cursor for i, r in enumerate(results) if i % 5 == n]
                assert mine == [format_cursor(seq) for seq in (1, 2, 3, 4)]
                read = await log.read(f"e{n}", None, 100)
                assert [e.index for e in read.events] == [0, 1, 2, 3]

    run(go)


def test_a_failing_batch_fails_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    groups = _recording(monkeypatch, fail_for="bad")

    async def go() -> None:
        async with SqliteEventLog(tmp_path / "log.db") as log:
            await log.append("warm", [ev(0)])
            groups.clear()
            with log._write_lock:
                pending = [
                    asyncio.ensure_future(log.append(exec_id, [ev(0)]))
                    for exec_id in ("a", "bad", "b")
                ]
                await asyncio.sleep(0.2)
            outcomes = await asyncio.gather(*pending, return_exceptions=True)
            assert isinstance(outcomes[1], EventLogError)
            assert "disk I/O error" in str(outcomes[1])
            for exec_id in ("a", "b"):
                read = await log.read(exec_id, None, 10)
                assert [e.index for e in read.events] == [0]
            # Whatever group held the bad batch was retried one batch at a time.
            assert [g for g in groups if len(g) == 1 and g[0] == "bad"]

    run(go)


def test_watchers_are_woken_as_the_append_is_answered(tmp_path: Path) -> None:
    # The follower's wait ends in the loop turn that answers the commit, before the request
    # that appended resumes (one loop turn earlier than waking them from the request).
    async def main() -> list[str]:
        log = SqliteEventLog(tmp_path / "log.db")
        order: list[str] = []
        try:
            await log.append("e1", [ev(0)])

            async def follower() -> None:
                assert await log.wait("e1", format_cursor(1), 10)
                order.append("woken")

            task = asyncio.ensure_future(follower())
            await asyncio.sleep(0.05)  # asleep on the log's wake-up
            assert order == []
            await log.append("e1", [ev(1)])
            order.append("appended")
            await task
        finally:
            await log.close()
        return order

    assert run(main) == ["woken", "appended"]
