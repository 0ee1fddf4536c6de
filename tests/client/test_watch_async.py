"""The async watcher (``aevents``): same protocol, async I/O."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx
import pytest
from _client_fake import (
    EXEC_ID,
    PING,
    URL,
    FakeServer,
    end_frame,
    event_frame,
    frame,
    split_every,
    sse_response,
)

from kitaru import KitaruClient, KitaruFeatureNotAvailableError, KitaruStateError, KitaruUsageError
from kitaru.client import AsyncEventWatcher, StreamDisconnectedError, StreamGapError

FAST = {"backoff_initial": 0.001, "backoff_max": 0.01}


def run(fn: Callable[[], Awaitable[Any]]) -> Any:
    async def guarded() -> Any:
        with anyio.fail_after(20):
            return await fn()

    return asyncio.run(guarded())


def aevents(server: FakeServer, **kwargs: Any) -> AsyncEventWatcher:
    client = KitaruClient(URL, api_token=server.token)
    watcher = client.executions.aevents(EXEC_ID, transport=server.transport, **FAST, **kwargs)
    assert isinstance(watcher, AsyncEventWatcher)
    return watcher


async def collect(watcher: AsyncEventWatcher) -> list[int]:
    return [e.index async for e in watcher]


def test_async_frames_and_end() -> None:
    body = b"".join(event_frame(i) for i in range(4)) + PING + end_frame("completed")
    server = FakeServer([sse_response(split_every(body, 5))])
    watcher = aevents(server)
    assert run(lambda: collect(watcher)) == [0, 1, 2, 3]
    assert watcher.final_status == "completed"
    assert server.stream_of(0).closed


def test_async_reconnects_with_last_cursor() -> None:
    server = FakeServer(
        [
            sse_response([event_frame(0), frame(event="cursor", id="c3")], httpx.ReadError("x")),
            sse_response([PING], httpx.ReadTimeout("stalled")),
            httpx.Response(503),
            sse_response([event_frame(4), end_frame()]),
        ]
    )
    assert run(lambda: collect(aevents(server))) == [0, 4]
    assert server.last_event_ids() == [None, "c3", "c3", "c3"]


def test_async_lookup_runs_on_first_iteration() -> None:
    server = FakeServer()
    client = KitaruClient(URL)
    watcher = client.executions.aevents("no-such-execution", transport=server.transport)
    assert server.requests == []  # nothing happens until iterated

    async def first() -> None:
        await watcher.__anext__()

    with pytest.raises(KitaruStateError):
        run(first)


def test_async_streaming_disabled() -> None:
    server = FakeServer(streaming=False)
    with pytest.raises(KitaruFeatureNotAvailableError):
        run(lambda: collect(aevents(server)))


def test_async_gap_raises() -> None:
    server = FakeServer([sse_response([frame(event="gap", data={"reason": "retention"})])])
    with pytest.raises(StreamGapError):
        run(lambda: collect(aevents(server)))


def test_async_gives_up_after_max_outage() -> None:
    server = FakeServer(lambda attempt, request: (_ for _ in ()).throw(httpx.ConnectError("x")))
    with pytest.raises(StreamDisconnectedError, match="could not be reached"):
        run(lambda: collect(aevents(server, max_outage=0.2)))


def test_async_validation_is_at_call_time() -> None:
    client = KitaruClient(URL)
    with pytest.raises(KitaruUsageError, match="kinds"):
        client.executions.aevents(EXEC_ID, kinds="kitaru.checkpoint.progress")  # type: ignore[arg-type]
    with pytest.raises(KitaruUsageError, match="async httpx transport"):
        client.executions.aevents(EXEC_ID, transport=httpx.HTTPTransport())


def test_async_aclose_closes_the_response() -> None:
    server = FakeServer([sse_response([event_frame(0), event_frame(1), end_frame()])])

    async def main() -> None:
        async with aevents(server) as watcher:
            async for event in watcher:
                assert event.index == 0
                break
        assert server.stream_of(0).closed
        with pytest.raises(StopAsyncIteration):
            await watcher.__anext__()
        await watcher.aclose()  # idempotent

    run(main)
