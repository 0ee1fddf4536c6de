"""SIGTERM with stalled readers: the server exits promptly, live watchers go elsewhere.

Two ``kitaru server start`` processes share one SQLite database (a replica pair): watchers
start on ``b``; ``b`` gets SIGTERM while three clients that never read hold full send buffers,
and thirty live watchers move to ``a`` with their cursors and get every event once.
"""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import httpx
import orjson
import pytest
from _serverkit import execution_body, wire_event

from _support import ServerProcess, free_port
from kitaru import _wire

pytestmark = [pytest.mark.server, pytest.mark.slow]

LIVE = 30
STALLED = 3
EVENTS = 60


class _Watcher:
    def __init__(self, exec_id: str, urls: list[str]) -> None:
        self.exec_id, self.urls = exec_id, urls
        self.indexes: list[int] = []
        self.cursor: str | None = None
        self.end: str | None = None
        self.connects: list[str] = []
        self.connected = asyncio.Event()

    async def run(self, client: httpx.AsyncClient, deadline: float) -> None:
        attempt = 0
        while self.end is None and time.monotonic() < deadline:
            url = self.urls[min(attempt, len(self.urls) - 1)]
            attempt += 1
            headers = {_wire.HEADER_LAST_EVENT_ID: self.cursor} if self.cursor else {}
            try:
                async with client.stream(
                    "GET", url + _wire.path_stream(self.exec_id), headers=headers
                ) as resp:
                    if resp.status_code != 200:
                        await asyncio.sleep(0.1)
                        continue
                    self.connects.append(url)
                    self.connected.set()
                    event = None
                    async for line in resp.aiter_lines():
                        if line.startswith("id: "):
                            cursor = line[4:]
                        elif line.startswith("event: "):
                            event = line[7:]
                        elif line.startswith("data: "):
                            data = orjson.loads(line[6:])
                            if event == "end":
                                self.end = data["status"]
                                return
                            if event not in ("cursor", "gap", "error"):
                                self.indexes.append(data["index"])
                            self.cursor = cursor
                        elif not line:
                            event = None
            except httpx.TransportError:
                await asyncio.sleep(0.1)


def _stalled_reader(port: int, exec_id: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {_wire.path_stream(exec_id)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return sock


def test_sigterm_with_stalled_readers_exits_within_two_seconds(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    a = ServerProcess(db, free_port(), tmp_path / "a.log", ping_interval=0.5)
    b = ServerProcess(db, free_port(), tmp_path / "b.log", ping_interval=0.5)
    stalled: list[socket.socket] = []
    try:
        with httpx.Client(base_url=a.url, timeout=30) as c:
            live_exec = execution_body()["exec_id"]
            big_exec = execution_body()["exec_id"]
            for exec_id in (live_exec, big_exec):
                r = c.post(_wire.PATH_EXECUTIONS, json=execution_body(exec_id))
                assert r.status_code == 201, r.text
            # Far more than the socket buffers of the stalled readers can hold.
            pad = "y" * 30_000
            for start in range(0, 400, 50):
                events = [wire_event(big_exec, i, message=pad) for i in range(start, start + 50)]
                r = c.post(_wire.path_events(big_exec), content=orjson.dumps(events))
                assert r.status_code == 200, r.text
        b_port = int(b.url.rsplit(":", 1)[1])
        stalled = [_stalled_reader(b_port, big_exec) for _ in range(STALLED)]
        exit_seconds = asyncio.run(_scenario(a.url, b, live_exec))
    finally:
        for sock in stalled:
            sock.close()
        b.stop()
        a.stop()
    print(
        f"exit after SIGTERM with {STALLED} stalled and {LIVE} live readers: {exit_seconds:.2f} s"
    )
    assert b.proc.returncode is not None
    # The server cut the stalled connections itself; uvicorn's graceful-shutdown backstop
    # (which would cancel what is still running) was never needed.
    log = (tmp_path / "b.log").read_text()
    assert "graceful shutdown exceeded" not in log, log[-3000:]
    assert exit_seconds < 2.0, (
        f"{exit_seconds:.2f} s; log: {(tmp_path / 'b.log').read_text()[-3000:]}"
    )


async def _scenario(a_url: str, b: ServerProcess, exec_id: str) -> float:
    watchers = [_Watcher(exec_id, [b.url, a_url]) for _ in range(LIVE)]
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=10)
    deadline = time.monotonic() + 90
    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0), limits=limits) as client:
        tasks = [asyncio.create_task(w.run(client, deadline)) for w in watchers]
        await asyncio.wait_for(asyncio.gather(*(w.connected.wait() for w in watchers)), 30)
        async with httpx.AsyncClient(base_url=a_url, timeout=30) as producer:
            for k in range(EVENTS):
                r = await producer.post(
                    _wire.path_events(exec_id), content=orjson.dumps([wire_event(exec_id, k)])
                )
                assert r.status_code == 200, r.text
                if k == EVENTS // 2:
                    await asyncio.sleep(1.0)  # the stalled readers' buffers are full by now
                    started = time.monotonic()
                    b.proc.terminate()
                    await asyncio.to_thread(b.proc.wait, 30)
                    exit_seconds = time.monotonic() - started
                await asyncio.sleep(0.01)
            r = await producer.post(
                _wire.path_finish(exec_id),
                json={"status": "completed", "output": None, "error_type": None},
            )
            assert r.status_code == 200, r.text
        await asyncio.wait_for(asyncio.gather(*tasks), max(1.0, deadline - time.monotonic()))
    for w in watchers:
        assert w.end == "completed"
        assert w.indexes == list(range(EVENTS)), w.indexes
        assert w.connects[:2] == [b.url, a_url], w.connects
    return exit_seconds
