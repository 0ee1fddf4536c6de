"""The Redis event log's stream layout: each event's JSON stored once, older entries still read."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
import redis as redis_sync
from redis.asyncio.connection import AbstractConnection as AsyncConnection

from kitaru.backends import LoggedEvent, NewEvent, _redis_append
from kitaru.backends._redis import RedisEventLog
from kitaru.backends._redis_tail import Tail
from kitaru.backends._seq import format_cursor
from kitaru.events._frames import new_event_frame

pytestmark = pytest.mark.redis


def run(fn: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(fn(), timeout=20))


def ev(index: int, corr: str = "c1", kind: str = "k.progress") -> NewEvent:
    body = orjson.dumps({"kind": kind, "index": index, "payload": {"text": f"é {index}"}})
    return NewEvent(kind, corr, index, "cid", "cp", None, body)


def test_an_entry_holds_the_json_once_and_sources_are_shared(redis_url: str) -> None:
    prefix = f"layout-{uuid.uuid4().hex[:12]}"
    events = [ev(i, corr=f"c{i % 2}") for i in range(6)]

    async def go() -> None:
        async with RedisEventLog(redis_url, prefix=prefix) as log:
            await log.append("e1", events)

    run(go)
    r = redis_sync.Redis.from_url(redis_url)
    entries = r.xrange(f"{prefix}:log:e1")
    assert [fields[b"d"] for _, fields in entries] == [e.body for e in events]
    assert {tuple(fields) for _, fields in entries} == {(b"k", b"s", b"d")}
    assert len({fields[b"s"] for _, fields in entries}) == 2  # one source per correlation
    assert r.hlen(f"{prefix}:keys:e1") == 6
    r.close()


def test_entries_of_the_older_layout_are_read_with_new_ones(redis_url: str) -> None:
    prefix = f"layout-{uuid.uuid4().hex[:12]}"
    r = redis_sync.Redis.from_url(redis_url)
    old = [ev(i) for i in range(3)]
    frames = []
    for seq, e in enumerate(old, 1):
        frame = new_event_frame(format_cursor(seq), e.kind, e.body)
        frames.append(frame)
        meta = orjson.dumps([e.kind, e.correlation_id, e.index, "cid", "cp", None])
        key = f"{e.index}:{e.correlation_id}"
        r.xadd(f"{prefix}:log:e1", {"k": key, "m": meta, "f": frame}, id=f"{seq}-0")
        r.hset(f"{prefix}:keys:e1", key, seq)
    r.hset(f"{prefix}:meta:e1", "last", 3)
    r.close()

    async def go() -> None:
        async with RedisEventLog(redis_url, prefix=prefix) as log:
            res = await log.append("e1", [ev(10), ev(11)])
            assert (res.stored, res.last_cursor) == (2, format_cursor(5))
            got = (await log.read("e1", None, 10)).events
            assert [e.frame for e in got[:3]] == frames
            assert [(e.cursor, e.index, e.checkpoint_id, e.step_name) for e in got] == [
                (format_cursor(s), i, "cid", None)
                for s, i in zip(range(1, 6), [0, 1, 2, 10, 11], strict=True)
            ]
            assert got[3].frame == new_event_frame(format_cursor(4), "k.progress", ev(10).body)
            fast = await log.read_frames("e1", None, 10)
            assert fast.frames == b"".join(e.frame for e in got)
            # The follower's tail decodes both layouts too.
            assert await log.wait("e1", format_cursor(4), 2.0)
            await log.mark_ended("e1", "completed")
            tailed = await log.read("e1", format_cursor(1), 10)
            assert [e.frame for e in tailed.events] == [e.frame for e in got[1:]]

    run(go)


@pytest.mark.parametrize("writer", ["this replica", "another replica"])
def test_the_tails_events_are_those_a_read_from_redis_returns(redis_url: str, writer: str) -> None:
    # Events appended by this replica go into its tail as appended; events of another replica
    # come through the follower, which decodes the raw XREAD reply itself (by field position,
    # frames built inline). Either way every field must be what the READ script's path
    # builds, and the end entry, stored between the two appends, must still reach the tail.
    prefix = f"layout-{uuid.uuid4().hex[:12]}"
    first = [ev(0, kind="k.start")]
    live = [
        ev(1),
        NewEvent("k.empty", "c2", 0, None, None, "step", b"{}"),
        ev(2, corr="c2", kind="k.ünicode"),
        ev(3),
    ]

    async def go() -> None:
        async with (
            RedisEventLog(redis_url, prefix=prefix) as log,
            RedisEventLog(redis_url, prefix=prefix) as other,
        ):
            await log.append("e1", first)
            assert await log.wait("e1", None, 2.0)  # the follower has loaded the tail
            await log.mark_ended("e1", "completed")
            await (log if writer == "this replica" else other).append("e1", live)
            for _ in range(200):
                tailed = await log.read("e1", format_cursor(1), 10)
                if tailed.ended is not None and len(tailed.events) == len(live):
                    break
                await asyncio.sleep(0.01)
            assert log.stats()["tail_reads"] > 0
            fresh = await other.read("e1", format_cursor(1), 10)  # no follower: Redis READ
            assert other.stats()["tail_reads"] == 0
            assert [_fields(e) for e in tailed.events] == [_fields(e) for e in fresh.events]
            assert [e.frame for e in tailed.events] == [
                new_event_frame(format_cursor(seq), e.kind, e.body) for seq, e in enumerate(live, 2)
            ]
            assert tailed.ended == "completed"
            fast = await log.read_frames("e1", format_cursor(1), 10)
            assert fast.frames == b"".join(e.frame for e in fresh.events)
            # Once the follower has read the appended entries back, nothing is held twice.
            more = [ev(4)]
            await other.append("e1", more)
            for _ in range(200):
                tailed = await log.read("e1", None, 10)
                if len(tailed.events) == 1 + len(live) + len(more):
                    break
                await asyncio.sleep(0.01)
            assert [e.cursor for e in tailed.events] == [format_cursor(s) for s in range(1, 7)]

    run(go)


def _fields(e: LoggedEvent) -> tuple[object, ...]:
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


def test_the_follower_does_not_read_back_this_replicas_own_appends(redis_url: str) -> None:
    # A replica's own appends go into its tail at once; the follower then reads on after them
    # (one entry per wake-up, not the whole batch again), and still gets another replica's
    # appends and the end entry in full, in order, equal to what Redis holds.
    prefix = f"layout-{uuid.uuid4().hex[:12]}"
    batches = [[ev(b * 50 + i) for i in range(50)] for b in range(8)]

    async def go() -> None:
        async with (
            RedisEventLog(redis_url, prefix=prefix) as log,
            RedisEventLog(redis_url, prefix=prefix) as other,
        ):
            await log.append("e1", [ev(1000)])
            assert await log.wait("e1", None, 2.0)  # the follower has loaded the tail
            for batch in batches:
                await log.append("e1", batch)
                await asyncio.sleep(0.02)  # the follower wakes between appends
            own = len(batches) * len(batches[0])
            # The first batch may come back in full (the follower did not expect an own
            # append yet); after it, about one entry per batch instead of all 400.
            assert log.stats()["redis_follow_entries"] <= len(batches[0]) + 2 * len(batches)
            await other.append("e1", [ev(i, corr="c9") for i in range(30)])
            await log.mark_ended("e1", "completed")
            for _ in range(200):
                tailed = await log.read("e1", None, 1000)
                if tailed.ended is not None and len(tailed.events) == 1 + own + 30:
                    break
                await asyncio.sleep(0.01)
            assert tailed.ended == "completed"
            assert [e.cursor for e in tailed.events] == [
                format_cursor(s) for s in range(1, 2 + own + 30)
            ]
            fresh = await other.read("e1", None, 1000)  # no follower: Redis READ
            assert [_fields(e) for e in tailed.events] == [_fields(e) for e in fresh.events]
            assert log.stats()["redis_follow_entries"] >= 30  # the other replica's, in full

    run(go)


def test_the_follower_waits_only_for_the_own_appends_in_flight_when_it_read() -> None:
    # A steady stream of own appends (each started before the previous one is answered) must
    # never hold the follower up: it waits for those in flight when its read came back.
    async def go() -> None:
        tail = Tail("e1", 10)
        first = tail.own_started()
        waiting = asyncio.ensure_future(tail.own_appends_done(5.0))
        await asyncio.sleep(0.01)
        later = tail.own_started()  # started after the follower began to wait
        tail.own_done(first)
        await asyncio.wait_for(waiting, 1.0)
        assert tail.appending  # ``later`` is still in flight
        tail.own_done(later)
        assert not tail.appending

    run(go)


def test_an_append_raced_between_its_reads_and_its_writes_starts_over(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another replica stores part of the batch after this append read which keys are stored
    # and before it writes: Redis refuses the write, the append reads again and stores only
    # the rest, numbered on after the other replica's events.
    prefix = f"layout-{uuid.uuid4().hex[:12]}"
    real = _redis_append._replies
    raced: list[int] = []

    async def go() -> None:
        async with (
            RedisEventLog(redis_url, prefix=prefix) as mine,
            RedisEventLog(redis_url, prefix=prefix) as other,
        ):
            await mine.append("e1", [ev(0)])

            async def replies(conn: Any, n: int) -> list[Any]:
                got = await real(conn, n)
                if n == 3 and not raced:  # the reads under WATCH are done
                    raced.append(1)
                    res = await other.append("e1", [ev(2), ev(3)])
                    assert res.stored == 2
                return got

            monkeypatch.setattr(_redis_append, "_replies", replies)
            res = await mine.append("e1", [ev(1), ev(2), ev(3), ev(4)])
            assert (res.stored, res.duplicates, res.last_cursor) == (2, 2, format_cursor(5))
            read = await mine.read("e1", None, 100)
            assert [e.index for e in read.events] == [0, 2, 3, 1, 4]
            assert [e.cursor for e in read.events] == [format_cursor(i) for i in range(1, 6)]

    run(go)
    assert raced == [1]


def test_a_batch_larger_than_one_piece_is_written_in_pieces(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An append's writes go out in pieces of _CHUNK events (Redis parses and queues one while
    # the server makes the next), also when part of the batch was stored before; every piece's
    # replies are read, so the connection stays in step for the next append.
    prefix = f"layout-{uuid.uuid4().hex[:12]}"
    n = 2 * _redis_append._CHUNK + 7
    pieces: list[int] = []
    real = AsyncConnection.send_packed_command

    async def send(self: Any, command: Any, check_health: bool = True) -> None:
        if isinstance(command, bytes) and b"XADD" in command:
            pieces.append(command.count(b"XADD"))
        await real(self, command, check_health)

    monkeypatch.setattr(AsyncConnection, "send_packed_command", send)

    async def go() -> None:
        async with RedisEventLog(redis_url, prefix=prefix) as log:
            first = [ev(i) for i in range(0, n, 3)]
            assert (await log.append("e1", first)).stored == len(first)
            assert pieces == [len(first)]  # less than one piece
            pieces.clear()
            res = await log.append("e1", [ev(i) for i in range(n)])
            assert (res.stored, res.duplicates) == (n - len(first), len(first))
            assert res.last_cursor == format_cursor(n)
            new = n - len(first)
            assert new > _redis_append._CHUNK
            assert pieces == [_redis_append._CHUNK, new - _redis_append._CHUNK]
            again = await log.append("e1", [ev(n)])
            assert (again.stored, again.last_cursor) == (1, format_cursor(n + 1))
            read = await log.read("e1", None, 2 * n)
            indexes = [e.index for e in read.events]
            later = [i for i in range(n) if i % 3]
            assert indexes == [e.index for e in first] + later + [n]
            assert [e.cursor for e in read.events] == [format_cursor(i) for i in range(1, n + 2)]

    run(go)
