"""The one conformance suite every EventLog backend must pass."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from kitaru.backends import (
    CursorInvalidError,
    EventLog,
    EventLogError,
    MemoryEventLog,
    NewEvent,
    Retention,
    SqliteEventLog,
)

Factory = Callable[[Retention | None], EventLog]


@pytest.fixture(params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def make_log(request: pytest.FixtureRequest, tmp_path: Path) -> Factory:
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    prefix = f"conf-{uuid.uuid4().hex[:12]}"  # one namespace per test in the shared Redis

    def factory(retention: Retention | None = None) -> EventLog:
        if request.param == "memory":
            return MemoryEventLog(retention)
        if request.param == "redis":
            from kitaru.backends._redis import RedisEventLog

            return RedisEventLog(redis_url, retention=retention, prefix=prefix)
        return SqliteEventLog(tmp_path / "log.db", retention=retention)

    factory.kind = request.param  # type: ignore[attr-defined]
    return factory


def run(fn: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(fn(), timeout=20))


def ev(index: int, *, corr: str = "c1", kind: str = "k.progress", name: str = "cp") -> NewEvent:
    body = orjson.dumps({"kind": kind, "correlation_id": corr, "index": index, "payload": {}})
    return NewEvent(
        kind=kind,
        correlation_id=corr,
        index=index,
        checkpoint_id="id-" + name,
        checkpoint_name=name,
        step_name=name,
        body=body,
    )


def test_append_then_read_in_order_with_increasing_cursors(make_log: Factory) -> None:
    async def go() -> None:
        async with make_log(None) as log:
            res = await log.append("e1", [ev(i) for i in range(5)])
            assert (res.stored, res.duplicates) == (5, 0)
            got = await log.read("e1", None, 100)
            assert [e.index for e in got.events] == [0, 1, 2, 3, 4]
            cursors = [e.cursor for e in got.events]
            assert cursors == sorted(set(cursors))
            assert got.last_cursor == cursors[-1] == res.last_cursor
            assert got.gap is None and got.ended is None
            data = orjson.loads(got.events[2].data)
            assert data["cursor"] == cursors[2] and data["index"] == 2
            assert got.events[2].checkpoint_name == "cp" and got.events[2].kind == "k.progress"

    run(go)


def test_read_after_cursor_and_limit(make_log: Factory) -> None:
    async def go() -> None:
        async with make_log(None) as log:
            await log.append("e1", [ev(i) for i in range(10)])
            first = await log.read("e1", None, 3)
            assert [e.index for e in first.events] == [0, 1, 2]
            rest = await log.read("e1", first.events[-1].cursor, 100)
            assert [e.index for e in rest.events] == list(range(3, 10))
            tail = await log.read("e1", rest.events[-1].cursor, 100)
            assert tail.events == [] and tail.gap is None

    run(go)


def test_append_is_idempotent_per_correlation_and_index(make_log: Factory) -> None:
    async def go() -> None:
        async with make_log(None) as log:
            batch = [ev(0), ev(1), ev(0, corr="c2")]
            await log.append("e1", batch)
            again = await log.append("e1", [*batch, ev(2), ev(2)])
            assert (again.stored, again.duplicates) == (1, 4)
            got = await log.read("e1", None, 100)
            assert [(e.correlation_id, e.index) for e in got.events] == [
                ("c1", 0),
                ("c1", 1),
                ("c2", 0),
                ("c1", 2),
            ]
            # Cursors stay contiguous even though duplicates were skipped.
            assert [int(e.cursor) for e in got.events] == [1, 2, 3, 4]

    run(go)


def test_executions_are_independent(make_log: Factory) -> None:
    async def go() -> None:
        async with make_log(None) as log:
            await log.append("a", [ev(0), ev(1)])
            await log.append("b", [ev(0)])
            a = await log.read("a", None, 10)
            b = await log.read("b", None, 10)
            assert len(a.events) == 2 and len(b.events) == 1
            await log.mark_ended("a", "completed")
            assert (await log.read("b", None, 10)).ended is None

    run(go)


def test_unknown_execution_reads_empty(make_log: Factory) -> None:
    async def go() -> None:
        async with make_log(None) as log:
            got = await log.read("nope", None, 10)
            assert got.events == [] and got.ended is None and got.last_cursor is None

    run(go)


@pytest.mark.parametrize("bad", ["", "abc", "-1", "1.5", "9" * 30, " 1"])
def test_malformed_cursor_is_refused(make_log: Factory, bad: str) -> None:
    async def go() -> None:
        async with make_log(None) as log:
            await log.append("e1", [ev(0)])
            with pytest.raises(CursorInvalidError):
                await log.read("e1", bad, 10)

    run(go)


def test_cursor_beyond_end_is_refused(make_log: Factory) -> None:
    async def go() -> None:
        async with make_log(None) as log:
            res = await log.append("e1", [ev(0), ev(1)])
            assert res.last_cursor is not None
            beyond = str(int(res.last_cursor) + 1)
            with pytest.raises(CursorInvalidError, match="beyond"):
                await log.read("e1", beyond, 10)
            with pytest.raises(CursorInvalidError):
                await log.read("never-written", "5", 10)
            # The newest cursor itself is fine: nothing after it.
            assert (await log.read("e1", res.last_cursor, 10)).events == []

    run(go)


def test_mark_ended_first_status_wins_and_is_reported(make_log: Factory) -> None:
    async def go() -> None:
        async with make_log(None) as log:
            await log.mark_ended("quiet", "completed")
            await log.mark_ended("quiet", "lost")
            got = await log.read("quiet", None, 10)
            assert got.ended == "completed" and got.events == []
            await log.append("e1", [ev(0)])
            await log.mark_ended("e1", "failed")
            got = await log.read("e1", None, 10)
            assert got.ended == "failed" and len(got.events) == 1

    run(go)


def test_wait_times_out_without_news(make_log: Factory) -> None:
    async def go() -> None:
        async with make_log(None) as log:
            res = await log.append("e1", [ev(0)])
            assert await log.wait("e1", res.last_cursor, 0.05) is False

    run(go)


def test_wait_returns_at_once_when_events_are_already_there(make_log: Factory) -> None:
    async def go() -> None:
        async with make_log(None) as log:
            await log.append("e1", [ev(0)])
            await log.read("e1", None, 10)
            assert await log.wait("e1", None, 5.0) is True

    run(go)


def test_wait_is_woken_by_append(make_log: Factory) -> None:
    async def go() -> None:
        async with make_log(None) as log:
            res = await log.append("e1", [ev(0)])
            waiter = asyncio.create_task(log.wait("e1", res.last_cursor, 10.0))
            await asyncio.sleep(0.05)
            assert not waiter.done()
            await log.append("e1", [ev(1)])
            assert await asyncio.wait_for(waiter, 5) is True
            got = await log.read("e1", res.last_cursor, 10)
            assert [e.index for e in got.events] == [1]

    run(go)


def test_wait_is_woken_by_mark_ended(make_log: Factory) -> None:
    async def go() -> None:
        async with make_log(None) as log:
            waiter = asyncio.create_task(log.wait("e1", None, 10.0))
            await asyncio.sleep(0.05)
            assert not waiter.done()
            await log.mark_ended("e1", "lost")
            assert await asyncio.wait_for(waiter, 5) is True
            assert (await log.read("e1", None, 10)).ended == "lost"

    run(go)


def test_duplicate_only_append_does_not_wake(make_log: Factory) -> None:
    async def go() -> None:
        async with make_log(None) as log:
            res = await log.append("e1", [ev(0)])
            waiter = asyncio.create_task(log.wait("e1", res.last_cursor, 0.2))
            await asyncio.sleep(0.02)
            await log.append("e1", [ev(0)])
            assert await waiter is False

    run(go)


def test_max_events_retention_reports_a_gap(make_log: Factory) -> None:
    async def go() -> None:
        async with make_log(Retention(max_events=3)) as log:
            res = await log.append("e1", [ev(i) for i in range(5)])
            got = await log.read("e1", None, 10)
            assert [e.index for e in got.events] == [2, 3, 4]
            assert got.gap is not None
            assert got.gap.after is None and got.gap.lost == 2
            assert got.gap.reason == "retention"
            # The gap's end is a valid cursor to continue from: no second gap.
            cont = await log.read("e1", got.gap.until, 10)
            assert cont.gap is None and [e.index for e in cont.events] == [2, 3, 4]
            # A reader still inside the retained window sees no gap.
            inside = await log.read("e1", got.events[0].cursor, 10)
            assert inside.gap is None and [e.index for e in inside.events] == [3, 4]
            assert res.last_cursor == got.last_cursor

    run(go)


def test_gap_for_a_reader_below_the_window(make_log: Factory) -> None:
    async def go() -> None:
        async with make_log(Retention(max_events=2)) as log:
            first = await log.append("e1", [ev(0)])
            await log.append("e1", [ev(i) for i in range(1, 6)])
            got = await log.read("e1", first.last_cursor, 10)
            assert got.gap is not None and got.gap.after == first.last_cursor
            assert got.gap.lost == 3
            assert [e.index for e in got.events] == [4, 5]

    run(go)


def test_explicit_truncate(make_log: Factory) -> None:
    async def go() -> None:
        async with make_log(None) as log:
            await log.append("e1", [ev(i) for i in range(4)])
            all_events = (await log.read("e1", None, 10)).events
            dropped = await log.truncate("e1", all_events[1].cursor)
            assert dropped == 2
            got = await log.read("e1", None, 10)
            assert got.gap is not None and got.gap.lost == 2
            assert [e.index for e in got.events] == [2, 3]
            with pytest.raises(CursorInvalidError):
                await log.truncate("e1", "bogus")

    run(go)


def test_ended_ttl_drops_everything_and_reports_it(make_log: Factory) -> None:
    async def go() -> None:
        async with make_log(Retention(ended_ttl=60)) as log:
            await log.append("e1", [ev(i) for i in range(3)])
            await log.append("e2", [ev(0)])
            await log.mark_ended("e1", "completed")
            assert await log.enforce_retention() == 0  # not old enough yet
            assert await log.enforce_retention(time.time() + 61) == 3
            got = await log.read("e1", None, 10)
            assert got.events == [] and got.ended == "completed"
            assert got.gap is not None and got.gap.lost == 3
            # The running execution is untouched.
            assert len((await log.read("e2", None, 10)).events) == 1
            # The old last cursor is still valid and nothing is after it.
            after = await log.read("e1", got.gap.until, 10)
            assert after.gap is None and after.events == []

    run(go)


def test_closed_log_refuses_calls(make_log: Factory) -> None:
    async def go() -> None:
        log = make_log(None)
        await log.close()
        with pytest.raises(EventLogError):
            await log.read("e1", None, 10)

    run(go)


def test_durable_backends_keep_cursors_across_reopen(make_log: Factory) -> None:
    if make_log.kind == "memory":  # type: ignore[attr-defined]
        pytest.skip("this backend keeps nothing across restarts by design")

    async def write() -> list[str]:
        async with make_log(None) as log:
            await log.append("e1", [ev(i) for i in range(3)])
            await log.mark_ended("e1", "completed")
            return [e.cursor for e in (await log.read("e1", None, 10)).events]

    async def reread(cursors: list[str]) -> None:
        async with make_log(None) as log:
            got = await log.read("e1", cursors[0], 10)
            assert [e.cursor for e in got.events] == cursors[1:]
            assert got.ended == "completed"
            again = await log.append("e1", [ev(2), ev(3)])
            assert (again.stored, again.duplicates) == (1, 1)
            assert again.last_cursor is not None and again.last_cursor > cursors[-1]

    cursors = run(write)
    run(lambda: reread(cursors))


def test_frames_are_ready_sse_frames(make_log: Factory) -> None:
    async def go() -> None:
        async with make_log(None) as log:
            await log.append("e1", [ev(0, kind="k.a"), ev(1, kind="k.b")])
            got = (await log.read("e1", None, 10)).events
            first = got[0]
            assert first.frame == (
                b"id: " + first.cursor.encode() + b"\nevent: k.a\ndata: " + first.data + b"\n\n"
            )
            assert orjson.loads(first.data)["cursor"] == first.cursor

    run(go)


def test_read_frames_matches_read(make_log: Factory) -> None:
    async def go() -> None:
        async with make_log(Retention(max_events=6)) as log:
            await log.append("e1", [ev(i) for i in range(9)])
            await log.mark_ended("e1", "completed")
            full = await log.read("e1", None, 4)
            fast = await log.read_frames("e1", None, 4)
            assert fast.frames == b"".join(e.frame for e in full.events)
            assert fast.count == 4 and fast.cursor == full.events[-1].cursor
            assert fast.gap == full.gap and fast.gap is not None and fast.ended == "completed"
            rest = await log.read_frames("e1", fast.cursor, 100)
            assert rest.count == 2 and rest.gap is None
            assert rest.cursor == (await log.read("e1", None, 100)).last_cursor
            empty = await log.read_frames("e1", rest.cursor, 100)
            assert (empty.frames, empty.count, empty.cursor) == (b"", 0, None)
            with pytest.raises(CursorInvalidError):
                await log.read_frames("e1", "junk", 10)
            none = await log.read_frames("unknown", None, 10)
            assert none.count == 0 and none.ended is None

    run(go)


def test_an_empty_body_still_gets_its_cursor(make_log: Factory) -> None:
    async def go() -> None:
        async with make_log(None) as log:
            await log.append("e1", [NewEvent("k", "c", 0, None, None, None, b"{}")])
            got = (await log.read("e1", None, 10)).events[0]
            assert orjson.loads(got.data) == {"cursor": got.cursor}

    run(go)
