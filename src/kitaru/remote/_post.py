"""One keep-alive HTTP/1.1 connection that posts the live-event batches of one sender thread.

Why not ``httpx`` for this one request: the publisher posts one batch after another, and on the
benchmark machine ``httpx`` spent about 1.1 ms of CPU per POST (building the request and its URL,
the ``h11`` state machine, the response object) against about 30 µs here, on the same thread that
encodes the next batch and in the same process as the flow; the headers and body also go out in
one write, so the server reads the request in one piece (benchmarks/README.md, "Latency").
:class:`~kitaru.remote.HttpTransport` uses it only where it means the same as its ``httpx``
client: a plain ``http``/``https`` URL without credentials or query, no proxy from the
environment, the same verifying TLS context (``httpx.create_ssl_context``), no test transport.

The connection is opened on first use, kept open and reopened when the server closed it while
idle (it is readable when nothing is expected; checked after a second without requests), after
an error or in a forked child. A request on a reused connection that fails before any byte of
the answer arrived is sent once more on a new connection: the server may have closed the idle
connection just as the request went out, and ingest is idempotent (``docs/protocol.md``,
"Ingest: publishing live events").
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import ssl
import time
from urllib.parse import urlsplit

from kitaru.exceptions import KitaruBackendError

__all__ = ["PostConnection"]

_MAX_HEAD = 64 * 1024
_MAX_BODY = 16 * 1024 * 1024
_RECV = 64 * 1024
# Connections idle longer than this are checked before reuse (the server closes one idle for
# 10 s, docs/protocol.md "Limits"); a busy one is not, because the check costs a
# system call that gives up the interpreter lock on every request, and a close that arrives
# anyway is caught by the resend below.
_CHECK_AFTER_IDLE = 1.0
_BAD_CHUNKS = "malformed chunked answer from the server"


class _Stale(Exception):
    """The reused connection failed before any byte of the answer arrived."""


class PostConnection:
    """POSTs over one kept-alive connection to ``url``; one caller at a time.

    Args:
        url: Base URL (``http`` or ``https``); its path is the prefix of every request's path.
        headers: Headers sent with every request (besides ``Host`` and ``Content-Length``).
        timeout: Seconds each connect, write and read may take.
        connect_timeout: Seconds the TCP connect (and TLS handshake) may take.
        tls: The TLS context for an ``https`` URL.
    """

    def __init__(
        self,
        url: str,
        headers: dict[str, str],
        *,
        timeout: float,
        connect_timeout: float,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._tls = (tls or ssl.create_default_context()) if parts.scheme == "https" else None
        self._prefix = parts.path.rstrip("/").encode("ascii")
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        host = f"[{self._host}]" if ":" in self._host else self._host
        default_port = 443 if parts.scheme == "https" else 80
        if self._port != default_port:
            host = f"{host}:{self._port}"
        lines = [f"Host: {host}"] + [f"{k}: {v}" for k, v in headers.items()]
        self._head_tail = ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")
        self._sock: socket.socket | None = None
        self._pid = 0
        self._last = 0.0  # time.monotonic() of the last answer read
        self._buf = bytearray()

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """POST ``body`` to ``path``; the answer's status and body. Raises on network errors."""
        request = b"".join(
            (
                b"POST ",
                self._prefix,
                path.encode("ascii"),
                b" HTTP/1.1\r\n",
                self._head_tail,
                b"%d\r\n\r\n" % len(body),
                body,
            )
        )
        sock = self._usable()
        reused = sock is not None
        try:
            try:
                return self._exchange(sock or self._connect(), request, reused)
            except _Stale:
                self.close()
                return self._exchange(self._connect(), request, False)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the connection (the next request opens a new one)."""
        sock, self._sock = self._sock, None
        self._buf.clear()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()  # in a forked child this only releases the child's descriptor

    # -- internals ------------------------------------------------------------------------

    def _usable(self) -> socket.socket | None:
        """The open connection if it can carry a request; ``None`` otherwise (closed)."""
        sock = self._sock
        if sock is None:
            return None
        if self._pid != os.getpid():  # a forked child must not share the parent's socket
            self.close()
            return None
        idle = time.monotonic() - self._last > _CHECK_AFTER_IDLE
        if idle and _readable(sock):  # idle but readable: closed by the server (or junk)
            self.close()
            return None
        return sock

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self._host, self._port), timeout=self._connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=self._host)
            sock.settimeout(self._timeout)
        except BaseException:
            sock.close()
            raise
        self._sock, self._pid = sock, os.getpid()
        self._buf.clear()
        return sock

    def _exchange(self, sock: socket.socket, request: bytes, reused: bool) -> tuple[int, bytes]:
        try:
            sock.sendall(request)
            self._fill(sock)
        except (ConnectionError, ssl.SSLEOFError) as exc:  # _Eof is a ConnectionError
            if reused:
                raise _Stale from exc
            raise
        status, keep, length, chunked = self._head(sock)
        if status in (204, 304):
            body = b""
        elif chunked:
            body = self._chunked(sock)
        elif length is not None:
            body = self._take(sock, length)
        else:  # the body ends when the server closes the connection
            while True:
                try:
                    self._fill(sock)
                except _Eof:
                    break
                if len(self._buf) > _MAX_BODY:
                    raise KitaruBackendError("the server's answer is too large")
            body, keep = bytes(self._buf), False
            self._buf.clear()
        if not keep or self._buf:
            self.close()
        self._last = time.monotonic()
        return status, body

    def _fill(self, sock: socket.socket) -> None:
        data = sock.recv(_RECV)
        if not data:
            raise _Eof
        self._buf += data

    def _head(self, sock: socket.socket) -> tuple[int, bool, int | None, bool]:
        """Status, keep-alive, Content-Length and chunked of the answer (1xx skipped)."""
        while True:
            head = self._until(sock, b"\r\n\r\n", "the server's answer headers are too large")
            lines = head.decode("latin-1").split("\r\n")
            version, _, rest = lines[0].partition(" ")
            code = rest[:3]
            if not version.startswith("HTTP/1.") or not code.isdigit():
                raise KitaruBackendError("malformed HTTP answer from the server")
            status = int(code)
            if 100 <= status < 200:
                continue
            keep = version == "HTTP/1.1"
            length: int | None = None
            chunked = False
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name, value = name.strip().lower(), value.strip().lower()
                if name == "content-length":
                    if not value.isdigit() or int(value) > _MAX_BODY:
                        raise KitaruBackendError("bad Content-Length in the server's answer")
                    length = int(value)
                elif name == "transfer-encoding":
                    chunked = value.endswith("chunked")
                elif name == "connection":
                    tokens = {t.strip() for t in value.split(",")}
                    keep = "close" not in tokens and (keep or "keep-alive" in tokens)
            return status, keep, length, chunked

    def _take(self, sock: socket.socket, n: int) -> bytes:
        while len(self._buf) < n:
            self._fill(sock)
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def _until(self, sock: socket.socket, sep: bytes, too_long: str) -> bytes:
        """The bytes up to ``sep`` (consumed with it); ``too_long`` if it takes over 64 KiB."""
        end = self._buf.find(sep)
        while end < 0:
            if len(self._buf) > _MAX_HEAD:
                raise KitaruBackendError(too_long)
            self._fill(sock)
            end = self._buf.find(sep)
        out = bytes(self._buf[:end])
        del self._buf[: end + len(sep)]
        return out

    def _chunked(self, sock: socket.socket) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size_text = self._until(sock, b"\r\n", _BAD_CHUNKS).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise KitaruBackendError(_BAD_CHUNKS) from None
            if size == 0:
                while self._until(sock, b"\r\n", _BAD_CHUNKS):  # trailers, up to the empty line
                    pass
                return b"".join(parts)
            total += size
            if total > _MAX_BODY:
                raise KitaruBackendError("the server's answer is too large")
            parts.append(self._take(sock, size))
            if self._take(sock, 2) != b"\r\n":
                raise KitaruBackendError(_BAD_CHUNKS)


class _Eof(ConnectionError):
    """The server closed the connection."""


def _readable(sock: socket.socket) -> bool:
    """True when ``sock`` has something to read (or was closed) right now."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)
