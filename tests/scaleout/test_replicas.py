"""Three replicas sharing Redis and PostgreSQL; 300 watchers; one replica killed mid-stream.

The scale-out promises of docs/deployment.md: any replica serves any watcher and takes any
producer; the watchers of a killed replica resume on the others with their cursors; every
watcher gets every event exactly once, in order, and ends with ``end``; each replica reads
Redis once per execution it follows, not once per watcher.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from _replicas import Replica, Watcher, execution_body, wire_events

from kitaru import _wire

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(300)]

WATCHERS = 300
BATCHES = 40
PER_BATCH = 10
TOTAL = BATCHES * PER_BATCH
KILL_AFTER = BATCHES // 3


async def _watch_all(watchers: list[Watcher], deadline: float) -> list[asyncio.Task[None]]:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=50)
    client = httpx.AsyncClient(timeout=httpx.Timeout(20.0), limits=limits)
    runs = [asyncio.create_task(w.run(client, deadline)) for w in watchers]

    async def close_when_done() -> None:
        await asyncio.gather(*runs, return_exceptions=True)
        await client.aclose()

    tasks = [*runs, asyncio.create_task(close_when_done())]
    await asyncio.wait_for(asyncio.gather(*(w.connected.wait() for w in watchers)), 60)
    return tasks


def test_watchers_survive_a_killed_replica_exactly_once(
    replicas: Callable[..., list[Replica]],
) -> None:
    a, b, c = replicas(3, "--ping-interval", "1")
    exec_id = execution_body()["exec_id"]
    r = httpx.post(a.url + _wire.PATH_EXECUTIONS, json=execution_body(exec_id), timeout=10)
    assert r.status_code == 201, r.text
    urls = [a.url, b.url, c.url]
    watchers = [Watcher(exec_id, urls, start=i % 3) for i in range(WATCHERS)]

    async def scenario() -> None:
        deadline = time.monotonic() + 150
        tasks = await _watch_all(watchers, deadline)
        async with httpx.AsyncClient(base_url=a.url, timeout=20) as producer:
            for k in range(BATCHES):
                resp = await producer.post(
                    _wire.path_events(exec_id),
                    content=wire_events(exec_id, k * PER_BATCH, PER_BATCH),
                )
                assert resp.status_code == 200, resp.text
                if k == KILL_AFTER:
                    c.proc.kill()  # no goodbye: its watchers just lose the connection
                    c.proc.wait(10)
                await asyncio.sleep(0.05)
            resp = await producer.post(
                _wire.path_finish(exec_id),
                json={"status": "completed", "output": None, "error_type": None},
            )
            assert resp.status_code == 200, resp.text
        try:
            await asyncio.wait_for(asyncio.gather(*tasks), max(1.0, deadline - time.monotonic()))
        finally:
            ended = sum(1 for w in watchers if w.end)
            sizes = sorted({len(w.indexes) for w in watchers})
            print(f"watchers ended: {ended}/{WATCHERS}; event counts seen: {sizes[:10]}")

    asyncio.run(scenario())

    for i, w in enumerate(watchers):
        assert w.errors == [] and w.gaps == [], (i, w.errors, w.gaps)
        assert w.end == "completed", (i, w.connects)
        # Every event exactly once, in order; cursors strictly increasing.
        assert w.indexes == list(range(TOTAL)), (i, len(w.indexes))
        assert len(set(w.cursors)) == TOTAL and w.cursors == sorted(w.cursors)
    on_c = [w for w in watchers if w.connects[0][0] == c.url]
    assert len(on_c) == WATCHERS // 3
    for w in on_c:
        # It moved to another replica and resumed from a cursor it had seen (never from the
        # start once it had events; never from an index).
        assert len(w.connects) >= 2 and w.connects[1][0] != c.url
        resumed = w.connects[1][1]
        assert resumed is None or resumed in w.cursors
    assert sum(1 for w in on_c if w.connects[1][1] is not None) > 0

    # Redis reads per replica: one follower per execution, shared by its ~100-200 watchers.
    for rep in (a, b):
        info: dict[str, Any] = rep.info()
        assert info["event_log"] == "RedisEventLog" and info["store"] == "PostgresStore"
        stats = info["event_log_stats"]
        served = sum(1 for w in watchers for url, _ in w.connects if url == rep.url)
        resumed_here = sum(
            1 for w in watchers for url, cur in w.connects[1:] if url == rep.url and cur
        )
        reads = stats["redis_reads"] + stats["redis_follow_reads"]
        print(f"{rep.name}: {served} streams, redis reads {reads} {stats}")
        # Without sharing, each stream would read Redis once per batch or so: >= 100 x 40.
        assert reads <= 4 * BATCHES + resumed_here + 40, stats
        assert stats["tail_reads"] >= served, stats
        assert stats["follower_starts"] <= 3, stats


def test_sigterm_sends_watchers_elsewhere_and_exits_promptly(
    replicas: Callable[..., list[Replica]],
) -> None:
    a, b = replicas(2, "--ping-interval", "1")
    exec_id = execution_body()["exec_id"]
    r = httpx.post(a.url + _wire.PATH_EXECUTIONS, json=execution_body(exec_id), timeout=10)
    assert r.status_code == 201, r.text
    watchers = [Watcher(exec_id, [b.url, a.url]) for _ in range(30)]
    exit_seconds: list[float] = []

    async def scenario() -> None:
        deadline = time.monotonic() + 90
        tasks = await _watch_all(watchers, deadline)
        async with httpx.AsyncClient(base_url=a.url, timeout=20) as producer:
            for k in range(10):
                resp = await producer.post(
                    _wire.path_events(exec_id), content=wire_events(exec_id, k * 10, 10)
                )
                assert resp.status_code == 200, resp.text
                if k == 4:
                    t0 = time.monotonic()
                    b.proc.terminate()
                    await asyncio.to_thread(b.proc.wait, 30)
                    exit_seconds.append(time.monotonic() - t0)
                await asyncio.sleep(0.05)
            await producer.post(
                _wire.path_finish(exec_id),
                json={"status": "completed", "output": None, "error_type": None},
            )
        await asyncio.wait_for(asyncio.gather(*tasks), max(1.0, deadline - time.monotonic()))

    asyncio.run(scenario())
    print(f"replica exit after SIGTERM with {len(watchers)} open streams: {exit_seconds[0]:.2f} s")
    assert b.proc.returncode is not None
    for w in watchers:
        assert w.errors == [] and w.end == "completed"
        assert w.indexes == list(range(100))
        # The first stream began with the usual hint; the closing one added the short one.
        assert w.retry_hints[:2] == [2000, 250], w.retry_hints
        assert [url for url, _ in w.connects[:2]] == [b.url, a.url]


def test_lost_producer_is_judged_across_replicas_and_ends_once(
    replicas: Callable[..., list[Replica]],
) -> None:
    a, b, c = replicas(3, "--ping-interval", "1", "--lost-after", "3")
    exec_id = execution_body()["exec_id"]
    r = httpx.post(a.url + _wire.PATH_EXECUTIONS, json=execution_body(exec_id), timeout=10)
    assert r.status_code == 201, r.text
    watchers = [Watcher(exec_id, [rep.url], start=0) for rep in (a, b, c) for _ in range(5)]
    statuses: list[str] = []

    async def scenario() -> None:
        deadline = time.monotonic() + 90
        tasks = await _watch_all(watchers, deadline)
        async with httpx.AsyncClient(timeout=20) as http:
            # The producer talks to replica a only, for longer than lost_after: b and c must
            # not call it lost (a shares what it sees through the store's heartbeat).
            for k in range(25):
                resp = await http.post(
                    a.url + _wire.path_events(exec_id), content=wire_events(exec_id, k, 1)
                )
                assert resp.status_code == 200, resp.text
                await asyncio.sleep(0.25)
                for rep in (b, c):
                    got = await http.get(rep.url + _wire.path_execution(exec_id))
                    statuses.append(got.json()["status"])
            # Then it goes silent: some replica marks it lost, every stream ends once.
        await asyncio.wait_for(asyncio.gather(*tasks), max(1.0, deadline - time.monotonic()))

    asyncio.run(scenario())
    assert set(statuses) == {"running"}
    for w in watchers:
        assert w.errors == [] and w.end == "lost"
        assert w.indexes == list(range(25))
    final = httpx.get(c.url + _wire.path_execution(exec_id), timeout=10).json()
    assert final["status"] == "lost"
