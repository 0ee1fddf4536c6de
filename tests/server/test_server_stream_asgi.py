"""The SSE response against raw ASGI send/receive doubles: timeout, disconnect, shutdown, end."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from _support import require_server_deps
from kitaru.backends import MemoryEventLog, NewEvent


def event(i: int) -> NewEvent:
    body = orjson.dumps({"exec_id": "e1", "kind": "k", "correlation_id": "c", "index": i})
    return NewEvent("k", "c", i, None, "cp", "cp", body)


class Wire:
    """Records what the app sends; ``block_after`` makes sends hang (a stalled client)."""

    def __init__(self, block_after: int | None = None) -> None:
        self.messages: list[dict[str, Any]] = []
        self.block_after = block_after
        self.disconnect = asyncio.Event()

    async def send(self, message: dict[str, Any]) -> None:
        if self.block_after is not None and len(self.messages) >= self.block_after:
            await asyncio.Event().wait()  # never taken
        self.messages.append(message)

    async def receive(self) -> dict[str, Any]:
        await self.disconnect.wait()
        return {"type": "http.disconnect"}

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages[1:])

    @property
    def completed(self) -> bool:
        return any(m.get("more_body") is False for m in self.messages)


async def make_stream(tmp_path: Path, *, ended: bool = False, **settings: Any) -> Any:
    require_server_deps()
    from kitaru.server import ServerSettings, ServerState
    from kitaru.server._stream import EventStream, StreamFilter
    from kitaru.store import SqliteStore

    log = MemoryEventLog()
    await log.append("e1", [event(i) for i in range(3)])
    if ended:
        await log.mark_ended("e1", "completed")
    options = {"db": tmp_path / "s.db", "ping_interval": 0.05, **settings}
    state = ServerState(ServerSettings(**options), SqliteStore(tmp_path / "s.db"), log)
    first = await log.read("e1", None, 500)
    return state, log, EventStream(state, "e1", None, StreamFilter(), first)


async def until(predicate: Any) -> None:
    """Poll until ``predicate()`` holds (the test's overall timeout bounds it)."""
    while not predicate():
        await asyncio.sleep(0.01)


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout=10))


def test_an_ended_execution_streams_its_events_then_end(tmp_path: Path) -> None:
    async def go() -> None:
        _, _, stream = await make_stream(tmp_path, ended=True)
        wire = Wire()
        await stream({"type": "http"}, wire.receive, wire.send)
        assert wire.messages[0]["type"] == "http.response.start"
        headers = dict(wire.messages[0]["headers"])
        assert headers[b"cache-control"] == b"no-store"
        assert wire.body.count(b"\nevent: k\n") == 3 and b"event: end\n" in wire.body
        assert wire.completed
        # Everything ready went out in one write (retry hint, 3 events, end).
        assert len([m for m in wire.messages if m.get("body")]) == 1

    run(go())


def test_a_stalled_client_is_dropped_after_the_send_timeout(tmp_path: Path) -> None:
    async def go() -> None:
        _, _, stream = await make_stream(tmp_path, send_timeout=0.2)
        wire = Wire(block_after=1)  # takes the response start, then never reads
        await stream({"type": "http"}, wire.receive, wire.send)
        assert not wire.completed

    run(go())


def test_a_disconnect_stops_a_sleeping_stream(tmp_path: Path) -> None:
    async def go() -> None:
        _, log, stream = await make_stream(tmp_path, ping_interval=30)
        wire = Wire()
        task = asyncio.create_task(stream({"type": "http"}, wire.receive, wire.send))
        await until(lambda: b"id: " in wire.body)
        await asyncio.sleep(0.05)
        assert not task.done()  # caught up, now waiting
        wire.disconnect.set()
        await task
        assert b"event: end" not in wire.body
        assert len(log._notifier._tokens) == 0  # the sleeping watcher left nothing behind

    run(go())


def test_shutdown_closes_streams_without_end(tmp_path: Path) -> None:
    async def go() -> None:
        state, _, stream = await make_stream(tmp_path, ping_interval=30)
        wire = Wire()
        task = asyncio.create_task(stream({"type": "http"}, wire.receive, wire.send))
        await until(lambda: b"id: " in wire.body)
        state.begin_shutdown()
        await task
        assert wire.completed and b"event: end" not in wire.body

    run(go())


def test_idle_streams_get_pings_and_live_events(tmp_path: Path) -> None:
    async def go() -> None:
        _, log, stream = await make_stream(tmp_path, ping_interval=0.05)
        wire = Wire()
        task = asyncio.create_task(stream({"type": "http"}, wire.receive, wire.send))
        await until(lambda: wire.body.count(b": ping\n\n") >= 2)
        await log.append("e1", [event(3)])
        await log.mark_ended("e1", "failed")
        await task
        body = wire.body
        assert body.index(b'"index":3') < body.index(b"event: end")
        assert b'"status":"failed"' in body

    run(go())


@pytest.mark.parametrize("named", [True, False])
def test_message_events_drop_the_event_line(tmp_path: Path, named: bool) -> None:
    async def go() -> None:
        require_server_deps()
        from kitaru.server._stream import EventStream, StreamFilter

        state, log, _ = await make_stream(tmp_path, ended=True)
        first = await log.read("e1", None, 500)
        stream = EventStream(state, "e1", None, StreamFilter(), first, named_events=named)
        wire = Wire()
        await stream({"type": "http"}, wire.receive, wire.send)
        assert (b"\nevent: k\n" in wire.body) is named
        assert wire.body.count(b"\ndata: {") == 4  # 3 events and end

    run(go())
