"""The SQLite log's in-memory tail: reads served from memory must equal reads from the file."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

from kitaru.backends import NewEvent, Retention, SqliteEventLog, _sqlite, _sqlite_tail
from kitaru.server._stream import _pieces


def run(fn: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(fn(), timeout=20))


def ev(index: int, *, corr: str = "c1", size: int = 0) -> NewEvent:
    body = orjson.dumps({"kind": "k", "correlation_id": corr, "index": index, "pad": "x" * size})
    return NewEvent("k", corr, index, "id", "cp", "cp", body)


async def _fresh(path: Path, after: str | None) -> tuple[bytes, int]:
    async with SqliteEventLog(path) as other:
        fb = await other.read_frames("e1", after, 10_000)
        return fb.frames, fb.count


def test_tail_reads_equal_file_reads_and_skip_sqlite(tmp_path: Path) -> None:
    async def go() -> None:
        async with SqliteEventLog(tmp_path / "log.db") as log:
            await log.append("e1", [ev(i) for i in range(3)])
            first = await log.read_frames("e1", None, 500)  # from the file; starts the tail
            assert first.count == 3
            await log.append("e1", [ev(i) for i in range(3, 10)])
            calls = 0
            real_run = log._run

            async def counting_run(fn: Callable[[], Any]) -> Any:
                nonlocal calls
                calls += 1
                return await real_run(fn)

            log._run = counting_run  # type: ignore[method-assign]
            hit = await log.read_frames("e1", first.cursor, 500)
            events = await log.read("e1", first.cursor, 4)
            assert calls == 0
            assert hit.count == 7 and hit.gap is None and hit.ended is None
            assert hit.frames == (await _fresh(tmp_path / "log.db", first.cursor))[0]
            assert [e.index for e in events.events] == [3, 4, 5, 6]
            assert events.events[0].cursor == _sqlite.format_cursor(4)
            # Caught up: the tail cannot tell, so the file answers (and reports the end);
            # mark_ended is the other SQLite call.
            await log.mark_ended("e1", "completed")
            last = await log.read_frames("e1", hit.cursor, 500)
            assert calls == 2 and last.count == 0 and last.ended == "completed"

    run(go)


def test_appends_by_another_process_never_leave_a_hole(tmp_path: Path) -> None:
    async def go() -> None:
        path = tmp_path / "log.db"
        async with SqliteEventLog(path) as log, SqliteEventLog(path) as other:
            await log.append("e1", [ev(0)])
            start = await log.read_frames("e1", None, 500)
            await other.append("e1", [ev(i) for i in range(1, 4)])  # this tail misses these
            await log.append("e1", [ev(i) for i in range(4, 6)])
            got = []
            pos = start.cursor
            while True:
                fb = await log.read_frames("e1", pos, 2)
                if not fb.count:
                    break
                got.append(fb.frames)
                pos = fb.cursor
            assert b"".join(got) == (await _fresh(path, start.cursor))[0]
            assert pos is not None and int(pos) == 6

    run(go)


def test_retention_below_the_tail_still_reports_a_gap(tmp_path: Path) -> None:
    async def go() -> None:
        async with SqliteEventLog(tmp_path / "log.db", retention=Retention(max_events=5)) as log:
            await log.append("e1", [ev(0)])
            start = await log.read("e1", None, 500)
            await log.append("e1", [ev(i) for i in range(1, 10)])
            res = await log.read("e1", start.events[0].cursor, 500)
            assert res.gap is not None and res.gap.lost == 4
            assert [e.index for e in res.events] == [5, 6, 7, 8, 9]
            dropped = await log.truncate("e1", res.events[1].cursor)
            assert dropped == 2
            again = await log.read_frames("e1", res.events[0].cursor, 500)
            assert again.gap is not None and again.count == 3

    run(go)


def test_tail_stays_bounded(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(_sqlite_tail, "_TAIL_EVENTS", 50)
    monkeypatch.setattr(_sqlite_tail, "_TAIL_BYTES", 20_000)

    async def go() -> None:
        async with SqliteEventLog(tmp_path / "log.db") as log:
            await log.append("e1", [ev(0)])
            await log.read("e1", None, 10)
            for start in range(1, 400, 40):
                await log.append("e1", [ev(i, size=700) for i in range(start, start + 40)])
            tail = log._tails["e1"]
            assert len(tail.rows) <= 50 and tail.nbytes <= 20_000
            assert tail.nbytes == sum(len(r[2]) for r in tail.rows)
            assert tail.last == 401
            fb = await log.read_frames("e1", _sqlite.format_cursor(tail.first - 1), 500)
            assert (
                fb.frames
                == (
                    await _fresh(
                        tmp_path / "log.db", fb.cursor and _sqlite.format_cursor(tail.first - 1)
                    )
                )[0]
            )

    run(go)


def test_pieces_end_at_frame_boundaries() -> None:
    frames = [
        b'id: %d\nevent: k\ndata: {"x":"%b"}\n\n' % (i, b"y" * (i * 37 % 900)) for i in range(300)
    ]
    chunk = b"".join(frames)
    pieces = list(_pieces(chunk, 4096))
    assert b"".join(pieces) == chunk
    assert all(p.endswith(b"\n\n") and len(p) <= 4096 for p in pieces)
    big = b"id: 1\ndata: " + b"z" * 10_000 + b"\n\n"
    assert list(_pieces(big + frames[1], 4096)) == [big, frames[1]]
    assert list(_pieces(frames[2], 4096)) == [frames[2]]


def test_catch_up_reads_are_aligned_shared_and_never_end_early(tmp_path: Path) -> None:
    async def go() -> None:
        async with SqliteEventLog(tmp_path / "log.db") as log:
            await log.append("e1", [ev(i) for i in range(25)])
            await log.mark_ended("e1", "completed")
            calls = 0
            real_run = log._run

            async def counting_run(fn: Callable[[], Any]) -> Any:
                nonlocal calls
                calls += 1
                return await real_run(fn)

            log._run = counting_run  # type: ignore[method-assign]
            three = _sqlite.format_cursor(3)
            # Unaligned: cut at the next multiple of the limit; a full cut is not the end.
            a, b = await asyncio.gather(
                log.read_frames("e1", three, 10), log.read_frames("e1", three, 10)
            )
            assert calls == 1 and a is b and a.count == 7 and a.ended is None
            assert a.cursor == _sqlite.format_cursor(10)
            full = await log.read_frames("e1", a.cursor, 10)
            again = await log.read_frames("e1", a.cursor, 10)
            assert calls == 2 and again is full and full.count == 10 and full.ended == "completed"
            last = await log.read_frames("e1", full.cursor, 10)
            assert last.count == 5 and last.ended == "completed"
            frames, count = await _fresh(tmp_path / "log.db", three)
            assert a.frames + full.frames + last.frames == frames and count == 22
            # Retention below a kept block: the reader gets its gap, not the kept copy.
            await log.truncate("e1", _sqlite.format_cursor(12))
            gapped = await log.read_frames("e1", a.cursor, 10)
            assert gapped.gap is not None and gapped.gap.lost == 2

    run(go)


def test_a_cut_read_after_a_gap_does_not_end_the_stream_early(tmp_path: Path) -> None:
    async def go() -> None:
        async with SqliteEventLog(tmp_path / "log.db") as log:
            await log.append("e1", [ev(i) for i in range(30)])
            await log.mark_ended("e1", "completed")
            await log.truncate("e1", _sqlite.format_cursor(5))
            res = await log.read_frames("e1", _sqlite.format_cursor(3), 10)
            assert res.gap is not None and res.count == 7 and res.ended is None

    run(go)


def test_a_short_read_after_the_end_reports_it(tmp_path: Path) -> None:
    async def go() -> None:
        async with SqliteEventLog(tmp_path / "log.db") as log:
            await log.append("e1", [ev(0)])
            start = await log.read("e1", None, 10)  # starts the tail
            await log.append("e1", [ev(i) for i in range(1, 5)])
            assert (await log.read("e1", start.last_cursor, 10)).ended is None  # from the tail
            await log.mark_ended("e1", "failed")
            res = await log.read("e1", start.last_cursor, 10)
            fb = await log.read_frames("e1", start.last_cursor, 10)
            assert len(res.events) == fb.count == 4
            assert res.ended == fb.ended == "failed"

    run(go)
