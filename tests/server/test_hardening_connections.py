"""Connections that misbehave: stalled readers, slow headers, clients that vanish mid-body.

Each test talks to a real server (uvicorn in a thread) over real sockets.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from _serverkit import finish, new_execution, wire_event

from kitaru import _wire

pytestmark = pytest.mark.server

EVENTS = 50_000
BATCH = 1_000
SEND_TIMEOUT = 2.0


def _tcp_inode(local_port: int, remote_port: int) -> int | None:
    """The inode of the IPv4 TCP socket local_port -> remote_port on 127.0.0.1, if open."""
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], int(fields[9])
            if (
                int(local.split(":")[1], 16) == local_port
                and int(remote.split(":")[1], 16) == remote_port
            ):
                return inode or None
    return None


def _fd_holds(inode: int) -> bool:
    """True while a file descriptor of this process refers to socket ``inode``."""
    target = f"socket:[{inode}]"
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == target:
                return True
        except OSError:
            continue
    return False


def _socket_fds() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            continue
    return count


class _Reader(threading.Thread):
    """A watcher that reads everything (raw SSE over httpx) until ``end``."""

    def __init__(self, url: str, exec_id: str) -> None:
        super().__init__(daemon=True)
        self.url, self.exec_id = url, exec_id
        self.indexes: list[int] = []
        self.ended = False
        self.error: BaseException | None = None
        self.connected = threading.Event()

    def run(self) -> None:
        try:
            with (
                httpx.Client(base_url=self.url, timeout=60) as c,
                c.stream("GET", _wire.path_stream(self.exec_id)) as resp,
            ):
                self.connected.set()
                event = None
                for line in resp.iter_lines():
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: ") and event == "end":
                        self.ended = True
                        return
                    elif line.startswith("data: "):
                        self.indexes.append(orjson.loads(line[6:])["index"])
        except BaseException as exc:
            self.error = exc
            self.connected.set()


def test_a_stalled_reader_is_disconnected_and_a_reading_one_gets_everything(
    make_server: Callable[..., Any],
) -> None:
    srv = make_server(send_timeout=SEND_TIMEOUT)
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        exec_id = new_execution(c)
    sockets_before = _socket_fds()

    # A client with a tiny receive buffer that asks for the stream and never reads.
    stalled = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", srv.port))
    stalled.sendall(f"GET {_wire.path_stream(exec_id)} HTTP/1.1\r\nHost: x\r\n\r\n".encode("ascii"))
    client_port = stalled.getsockname()[1]
    reader = _Reader(srv.url, exec_id)
    reader.start()
    assert reader.connected.wait(10) and reader.error is None

    deadline = time.monotonic() + 10
    server_inode = None
    while server_inode is None and time.monotonic() < deadline:
        server_inode = _tcp_inode(srv.port, client_port)
        time.sleep(0.05)
    assert server_inode is not None and _fd_holds(server_inode)

    pad = "x" * 300
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        for start in range(0, EVENTS, BATCH):
            events = [
                wire_event(exec_id, i, message=f"event {i} {pad}")
                for i in range(start, start + BATCH)
            ]
            r = c.post(_wire.path_events(exec_id), content=orjson.dumps(events))
            assert r.status_code == 200, r.text
        ingested = time.monotonic()
        finish(c, exec_id)

    # The server closes the stalled connection within send timeout + 5 s: its end of the
    # socket is gone (no file descriptor of the server's holds it any more).
    while _fd_holds(server_inode) and time.monotonic() < ingested + SEND_TIMEOUT + 5:
        time.sleep(0.1)
    closed_after = time.monotonic() - ingested
    assert not _fd_holds(server_inode), f"still open {closed_after:.1f} s after the last event"

    # The client sees the end: EOF or a reset, after at most what was already buffered.
    stalled.settimeout(5)
    received = 0
    try:
        while True:
            chunk = stalled.recv(65536)
            if not chunk:
                break
            received += len(chunk)
            assert received < 64 * 1024 * 1024
    except ConnectionResetError:
        pass
    finally:
        stalled.close()

    reader.join(60)
    assert reader.error is None and reader.ended
    assert reader.indexes == list(range(EVENTS))
    # Every socket the stream used is released: the count is back where it was.
    deadline = time.monotonic() + 5
    while _socket_fds() > sockets_before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _socket_fds() <= sockets_before


def _closed_by_peer(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_partial_request_headers_are_cut_off(make_server: Callable[..., Any]) -> None:
    srv = make_server(header_timeout=1.0)
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", srv.port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        for _ in range(3):  # a byte now and then does not keep it open
            time.sleep(0.3)
            sock.sendall(b"a")
        assert _closed_by_peer(sock, 5.0)
    assert time.monotonic() - started < 5.0
    # Also on a kept-alive connection, after a complete request.
    with socket.create_connection(("127.0.0.1", srv.port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"200 OK" in sock.recv(4096)
        sock.sendall(b"GET /health HTTP/1.1\r\nHo")
        assert _closed_by_peer(sock, 5.0)
    # A connection that sends nothing at all.
    with socket.create_connection(("127.0.0.1", srv.port)) as sock:
        assert _closed_by_peer(sock, 5.0)
    # Ordinary requests are untouched.
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        for _ in range(3):
            assert c.get(_wire.PATH_HEALTH).status_code == 200
            time.sleep(0.5)


def test_a_client_gone_mid_body_is_one_log_line_without_traceback(
    make_server: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    srv = make_server()
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        exec_id = new_execution(c)
    caplog.set_level(logging.INFO)
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", srv.port)) as sock:
            sock.sendall(
                f"POST {_wire.path_events(exec_id)} HTTP/1.1\r\nHost: x\r\n"
                "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n[{".encode()
            )
            time.sleep(0.2)
    time.sleep(0.5)
    records = [r for r in caplog.records if r.name.startswith(("kitaru", "uvicorn"))]
    gone = [r for r in records if "went away" in r.getMessage()]
    assert len(gone) == 3, [r.getMessage() for r in records]
    assert all(r.exc_info is None for r in records), [r.getMessage() for r in records]
    assert not [r for r in records if "Exception in ASGI application" in r.getMessage()]


def test_access_log_is_off_by_default_and_switchable(
    make_server: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.delenv("KITARU_ACCESS_LOG", raising=False)

    def access_lines(**options: Any) -> int:
        srv = make_server(log_level="info", **options)
        caplog.clear()
        with httpx.Client(base_url=srv.url, timeout=10) as c:
            for _ in range(3):
                assert c.get(_wire.PATH_HEALTH).status_code == 200
        time.sleep(0.2)
        return len([r for r in caplog.records if r.name == "uvicorn.access"])

    assert access_lines() == 0
    assert access_lines(access_log=True) == 3
    monkeypatch.setenv("KITARU_ACCESS_LOG", "1")
    assert access_lines() == 3
    assert access_lines(access_log=False) == 0  # the argument wins over the variable
