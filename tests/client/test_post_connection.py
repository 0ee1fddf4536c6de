"""``PostConnection``: the live-event POSTs over one kept-alive connection, against a scripted
socket server that answers the ways an HTTP/1.1 server or proxy may."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from _support import require
from kitaru.exceptions import KitaruBackendError
from kitaru.remote import _post as post_module
from kitaru.remote._post import PostConnection
from kitaru.remote._transport import _direct

Answer = tuple[bytes, bool]  # what to write, and whether to close the connection after it


class Scripted:
    """A one-thread socket server: each request gets the next answer of ``answers``."""

    def __init__(self, answers: list[Answer], tls: ssl.SSLContext | None = None) -> None:
        self.answers = answers
        self.tls = tls
        self.requests: list[bytes] = []
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/prefix"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.answers:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            if self.tls is not None:
                try:
                    conn = self.tls.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError):  # a client that refused our certificate
                    conn.close()
                    continue
            with conn:
                while self.answers:
                    try:
                        request = _read_request(conn)
                    except OSError:  # the client reset the connection
                        request = None
                    if request is None:
                        break
                    self.requests.append(request)
                    raw, close = self.answers.pop(0)
                    try:
                        conn.sendall(raw)
                    except OSError:
                        # The client gave up reading an answer it refuses (too large) and
                        # closed: serve the next connection.
                        break
                    if close:
                        break

    def close(self) -> None:
        self.listener.close()


def _read_request(conn: socket.socket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += conn.recv(65536)
    return data


@pytest.fixture
def make() -> Iterator[Callable[[list[Answer]], tuple[Scripted, PostConnection]]]:
    made: list[tuple[Scripted, PostConnection]] = []

    def build(answers: list[Answer]) -> tuple[Scripted, PostConnection]:
        server = Scripted(answers)
        conn = PostConnection(
            server.url,
            {"User-Agent": "kitaru/test", "Content-Type": "application/json"},
            timeout=5.0,
            connect_timeout=2.0,
        )
        made.append((server, conn))
        return server, conn

    yield build
    for server, conn in made:
        conn.close()
        server.close()


OK = b'HTTP/1.1 200 OK\r\ncontent-length: 11\r\ncontent-type: application/json\r\n\r\n{"ok":true}'


def test_a_request_goes_out_whole_with_its_headers_and_the_url_prefix(make) -> None:
    server, conn = make([(OK, False)])
    assert conn.post("/api/v1/events", b"[1,2]") == (200, b'{"ok":true}')
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /prefix/api/v1/events HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.port}".encode() in lines
    assert b"User-Agent: kitaru/test" in lines
    assert b"Content-Type: application/json" in lines
    assert b"Content-Length: 5" in lines
    assert body == b"[1,2]"


def test_the_connection_is_kept_between_requests(make) -> None:
    server, conn = make([(OK, False)] * 3)
    for _ in range(3):
        assert conn.post("/x", b"[]")[0] == 200
    assert server.connections == 1


def test_chunked_answers_and_interim_answers_are_read(make) -> None:
    chunked = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 207 Multi\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4;ext=1\r\nabcd\r\n3\r\nefg\r\n0\r\nTrailer: x\r\n\r\n"
    )
    server, conn = make([(chunked, False), (OK, False)])
    assert conn.post("/x", b"[]") == (207, b"abcdefg")
    assert conn.post("/x", b"[]") == (200, b'{"ok":true}')
    assert server.connections == 1


def test_connection_close_and_answers_ending_at_eof_are_not_reused(make) -> None:
    close = b"HTTP/1.1 404 Not Found\r\nConnection: close\r\ncontent-length: 2\r\n\r\nno"
    until_eof = b"HTTP/1.0 503 Busy\r\n\r\nlater"
    # The server leaves the first connection open after "Connection: close": the client must
    # not send on it again.
    server, conn = make([(close, False), (until_eof, True), (OK, False)])
    assert conn.post("/x", b"[]") == (404, b"no")
    assert conn.post("/x", b"[]") == (503, b"later")
    assert conn.post("/x", b"[]") == (200, b'{"ok":true}')
    assert server.connections == 3


def test_a_connection_the_server_closed_while_idle_is_replaced(make) -> None:
    # The server answers and then closes the connection, as an idle timeout does; whether the
    # client sees the close before sending or only when reading, the request is delivered once
    # on a new connection.
    server, conn = make([(OK, True), (OK, False)])
    assert conn.post("/x", b"[0]") == (200, b'{"ok":true}')
    assert conn.post("/x", b"[1]") == (200, b'{"ok":true}')
    assert server.connections == 2
    assert [r.rpartition(b"\r\n\r\n")[2] for r in server.requests] == [b"[0]", b"[1]"]


def test_a_malformed_answer_raises_and_the_next_request_reconnects(make) -> None:
    server, conn = make([(b"garbage\r\n\r\n", False), (OK, False)])
    with pytest.raises(KitaruBackendError, match="malformed"):
        conn.post("/x", b"[]")
    assert conn.post("/x", b"[]")[0] == 200
    assert server.connections == 2


def test_a_refused_connection_raises_oserror() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    conn = PostConnection(f"http://127.0.0.1:{port}", {}, timeout=1.0, connect_timeout=1.0)
    with pytest.raises(OSError):
        conn.post("/x", b"[]")


@pytest.mark.parametrize(
    ("url", "env", "direct"),
    [
        ("http://127.0.0.1:8000", {}, True),
        ("https://kitaru.example/base", {}, True),
        ("http://user:pw@127.0.0.1:8000", {}, False),
        ("http://127.0.0.1:8000?x=1", {}, False),
        ("ftp://127.0.0.1:8000", {}, False),
        ("http://127.0.0.1:8000", {"HTTP_PROXY": "http://proxy:3128"}, False),
        ("https://kitaru.example", {"HTTPS_PROXY": "http://proxy:3128"}, False),
        ("https://kitaru.example", {"ALL_PROXY": "http://proxy:3128"}, False),
        ("https://kitaru.example", {"HTTP_PROXY": "http://proxy:3128"}, True),
    ],
)
def test_the_direct_connection_is_used_only_where_httpx_would_connect_directly(
    monkeypatch: pytest.MonkeyPatch, url: str, env: dict[str, str], direct: bool
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert _direct(url) is direct


def test_a_request_on_a_connection_closed_after_the_check_is_sent_again(
    make, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server's close arrives after the idle check (patched to see nothing): the request
    # fails on the old connection before any answer and goes once more on a new one.
    server, conn = make([(OK, True), (OK, False)])
    assert conn.post("/x", b"[0]") == (200, b'{"ok":true}')
    deadline = time.monotonic() + 5
    while not post_module._readable(conn._sock) and time.monotonic() < deadline:
        time.sleep(0.01)  # until the server's close has arrived
    monkeypatch.setattr(post_module, "_readable", lambda sock: False)
    assert conn.post("/x", b"[1]") == (200, b'{"ok":true}')
    assert server.connections == 2
    assert [r.rpartition(b"\r\n\r\n")[2] for r in server.requests] == [b"[0]", b"[1]"]


def test_a_request_that_fails_on_a_new_connection_is_not_sent_again(make) -> None:
    # Closed without an answer on a fresh connection: the error goes to the publisher, which
    # retries with backoff; nothing is resent here.
    server, conn = make([(b"", True), (OK, False)])
    with pytest.raises(ConnectionError):
        conn.post("/x", b"[0]")
    assert len(server.requests) == 1


def test_https_goes_through_the_given_tls_context(tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    require("openssl", openssl is not None, "install the openssl command line tool")
    assert openssl is not None
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    server = Scripted([(OK, False), (OK, False), (OK, False)], tls=server_tls)
    url = f"https://127.0.0.1:{server.port}"
    try:
        trusting = PostConnection(
            url, {}, timeout=5.0, connect_timeout=2.0, tls=ssl.create_default_context(cafile=cert)
        )
        assert trusting.post("/x", b"[0]") == (200, b'{"ok":true}')
        assert trusting.post("/x", b"[1]") == (200, b'{"ok":true}')
        trusting.close()
        assert server.connections == 1
        # A context that does not trust the certificate refuses the server.
        untrusting = PostConnection(url, {}, timeout=5.0, connect_timeout=2.0)
        with pytest.raises(ssl.SSLCertVerificationError):
            untrusting.post("/x", b"[]")
    finally:
        server.close()


def test_only_a_connection_idle_for_a_while_is_checked_before_reuse(
    make, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks: list[bool] = []
    real = post_module._readable

    def counted(sock: socket.socket) -> bool:
        checks.append(real(sock))
        return checks[-1]

    monkeypatch.setattr(post_module, "_readable", counted)
    server, conn = make([(OK, False), (OK, True), (OK, False)])
    assert conn.post("/x", b"[0]")[0] == 200
    assert conn.post("/x", b"[1]")[0] == 200  # busy: sent without a check; then closed
    assert checks == []
    monkeypatch.setattr(post_module, "_CHECK_AFTER_IDLE", 0.0)
    deadline = time.monotonic() + 5
    while not real(conn._sock) and time.monotonic() < deadline:
        time.sleep(0.01)  # until the server's close has arrived
    assert conn.post("/x", b"[2]")[0] == 200  # idle: the check finds the close, reconnects
    assert checks == [True]
    assert server.connections == 2


def test_endless_headers_and_oversized_lengths_are_refused(make) -> None:
    endless = b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 100_000
    huge = b"HTTP/1.1 200 OK\r\ncontent-length: 999999999999\r\n\r\n"
    server, conn = make([(endless, False), (huge, False), (OK, False)])
    with pytest.raises(KitaruBackendError, match="too large"):
        conn.post("/x", b"[]")
    with pytest.raises(KitaruBackendError, match="Content-Length"):
        conn.post("/x", b"[]")
    assert conn.post("/x", b"[]")[0] == 200
    assert server.connections == 3  # each refused answer closed its connection
