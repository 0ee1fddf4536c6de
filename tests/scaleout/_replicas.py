"""Server replicas (separate processes) and light async SSE watchers for scale-out tests.

Replicas are ``kitaru server start`` processes on 127.0.0.1 sharing one PostgreSQL schema
and one Redis key prefix. Watchers are asyncio tasks (httpx + httpx-sse) that, like clients
behind a load balancer, move to the next replica when their connection breaks and resume
with ``Last-Event-ID``.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from httpx_sse import aconnect_sse

from _support import clean_env, free_port, server_start_argv, stop_process, wait_healthy
from kitaru import _wire

__all__ = ["Replica", "Watcher", "execution_body", "free_port", "start_replicas", "wire_events"]


@dataclass
class Replica:
    """One server process."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def info(self) -> dict[str, Any]:
        r = httpx.get(self.url + _wire.PATH_INFO, timeout=10)
        r.raise_for_status()
        return dict(r.json())

    def stop(self) -> None:
        stop_process(self.proc)


def start_replicas(
    n: int, db: str, event_log: str, folder: Path, *, extra: list[str] | None = None
) -> list[Replica]:
    """Start ``n`` replicas and wait until each answers ``/health``."""
    env = clean_env(KITARU_HOME=str(folder / "home"))
    replicas: list[Replica] = []
    for i in range(n):
        port = free_port()
        log_path = folder / f"replica-{i}.log"
        cmd = server_start_argv(port, db, "--event-log", event_log, *(extra or []))
        with log_path.open("wb") as out:
            proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        replicas.append(Replica(f"r{i}", port, proc, log_path))
    deadline = time.monotonic() + 60
    for rep in replicas:
        wait_healthy(rep.url, rep.proc, rep.log_path, deadline=deadline, name=rep.name)
    return replicas


def execution_body(exec_id: str | None = None) -> dict[str, Any]:
    return {
        "exec_id": exec_id or str(uuid.uuid4()),
        "flow_name": "scaleout",
        "flow_ref": None,
        "status": "running",
        "created_at": time.time(),
    }


def wire_events(exec_id: str, first: int, count: int, corr: str = "kitaru.checkpoint:s:0") -> bytes:
    return orjson.dumps(
        [
            {
                "exec_id": exec_id,
                "kind": "test.tick",
                "correlation_id": corr,
                "index": i,
                "checkpoint_id": "cp",
                "checkpoint_name": "s",
                "step_name": "s",
                "ts": time.time(),
                "payload": {"kitaru": {"source": "kitaru"}, "message": f"tick {i}"},
            }
            for i in range(first, first + count)
        ]
    )


@dataclass
class Watcher:
    """One SSE watcher that moves to the next replica when its connection breaks.

    Attributes:
        indexes: ``index`` of every data frame received, in order.
        cursors: Their cursors.
        end: The ``end`` frame's status, once received.
        connects: Replica URLs it connected to, in order (with the Last-Event-ID it sent).
        retry_hints: Every ``retry:`` value received.
        gaps: Every ``gap`` frame's data.
    """

    exec_id: str
    urls: list[str]
    start: int = 0
    indexes: list[int] = field(default_factory=list)
    cursors: list[str] = field(default_factory=list)
    end: str | None = None
    connects: list[tuple[str, str | None]] = field(default_factory=list)
    retry_hints: list[int] = field(default_factory=list)
    gaps: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    cursor: str | None = None

    async def run(self, client: httpx.AsyncClient, deadline: float) -> None:
        """Follow until ``end``, at most until ``deadline`` (monotonic), at most 200 tries."""
        turn = self.start
        for _ in range(200):
            if time.monotonic() > deadline:
                self.errors.append("deadline")
                return
            url = self.urls[turn % len(self.urls)]
            headers = {_wire.HEADER_LAST_EVENT_ID: self.cursor} if self.cursor else {}
            try:
                async with aconnect_sse(
                    client, "GET", url + _wire.path_stream(self.exec_id), headers=headers
                ) as source:
                    if source.response.status_code != 200:
                        await source.response.aread()
                        self.errors.append(f"HTTP {source.response.status_code}")
                        raise httpx.TransportError("not 200")
                    self.connects.append((url, self.cursor))
                    self.connected.set()
                    async for sse in source.aiter_sse():
                        if sse.retry is not None:
                            self.retry_hints.append(sse.retry)
                        if sse.event == _wire.CONTROL_END:
                            self.end = orjson.loads(sse.data)["status"]
                            return
                        if sse.event == _wire.CONTROL_GAP:
                            self.gaps.append(orjson.loads(sse.data))
                            self.cursor = sse.id
                            continue
                        if sse.event == _wire.CONTROL_ERROR:
                            self.errors.append(sse.data)
                            return
                        if sse.event == _wire.CONTROL_CURSOR:
                            self.cursor = sse.id
                            continue
                        if not sse.data:
                            continue
                        data = orjson.loads(sse.data)
                        self.indexes.append(data["index"])
                        self.cursors.append(data["cursor"])
                        self.cursor = sse.id
            except (httpx.HTTPError, OSError):
                pass
            # Disconnected without end: the next replica, after a short pause.
            turn += 1
            await asyncio.sleep(0.05 + 0.05 * (id(self) % 3))
        self.errors.append("too many reconnects")
