"""A loopback TCP proxy that cuts connections, for resume tests.

Everything listens on and connects to 127.0.0.1 only. The proxy forwards bytes both ways; on
the server-to-client side it counts SSE frames that carry an ``id:`` and, after a random number
of them (``cut_every``), forwards only a random prefix of the current chunk and then closes
both sockets: the client sees a stream that breaks in the middle of a frame, the way a real
network or a restarting load balancer breaks it.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
from types import TracebackType

__all__ = ["CuttingProxy"]

_ID_LINE = b"\nid: "


class CuttingProxy:
    """Forward ``127.0.0.1:<port>`` to ``127.0.0.1:<target_port>``, cutting streams.

    Args:
        target_port: The server's port on 127.0.0.1.
        cut_every: ``(low, high)``: cut after a random number of id-carrying frames in that
            range; ``None`` never cuts.
        seed: Seed of the proxy's random choices (reproducible cuts).

    Attributes:
        url: The proxy's base URL.
        cuts: How many connections it cut.
        request_heads: The head of every request it forwarded, in order.
    """

    def __init__(
        self, target_port: int, *, cut_every: tuple[int, int] | None = (200, 400), seed: int = 7
    ) -> None:
        self.target_port = target_port
        self.cut_every = cut_every
        self.cuts = 0
        self.request_heads: list[bytes] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._closed = threading.Event()
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name="cutting-proxy", daemon=True)
        self._thread.start()

    def __enter__(self) -> CuttingProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop accepting and close every open connection."""
        self._closed.set()
        with contextlib.suppress(OSError):
            self._sock.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            _kill(conn)
        self._thread.join(2.0)

    def last_event_ids(self) -> list[str | None]:
        """The ``Last-Event-ID`` of every stream request, in order."""
        out: list[str | None] = []
        with self._lock:
            heads = list(self.request_heads)
        for head in heads:
            lines = head.decode("latin-1").split("\r\n")
            if "/events/stream" not in lines[0]:
                continue
            value = None
            for line in lines[1:]:
                name, _, rest = line.partition(":")
                if name.strip().lower() == "last-event-id":
                    value = rest.strip()
            out.append(value)
        return out

    def _next_budget(self) -> int | None:
        if self.cut_every is None:
            return None
        with self._lock:
            return self._rng.randint(*self.cut_every)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                _kill(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._up, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._down, args=(upstream, client), daemon=True).start()

    def _up(self, client: socket.socket, upstream: socket.socket) -> None:
        """Client to server: forward, remembering each request head."""
        buf = b""
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                buf += data
                while b"\r\n\r\n" in buf:
                    head, buf = buf.split(b"\r\n\r\n", 1)
                    with self._lock:
                        self.request_heads.append(head)
                    buf = b""  # request bodies are not parsed: heads are all we need
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            _kill(upstream)
            _kill(client)

    def _down(self, upstream: socket.socket, client: socket.socket) -> None:
        """Server to client: forward, cutting after a random number of frames."""
        budget = self._next_budget()
        try:
            while True:
                data = upstream.recv(65536)
                if not data:
                    break
                frames = data.count(_ID_LINE)
                if budget is not None and frames and frames >= budget:
                    cut_at = self._cut_point(data, budget)
                    client.sendall(data[:cut_at])
                    with self._lock:
                        self.cuts += 1
                    break
                if budget is not None:
                    budget -= frames
                client.sendall(data)
        except OSError:
            pass
        finally:
            _kill(client)
            _kill(upstream)

    def _cut_point(self, data: bytes, budget: int) -> int:
        # Somewhere inside the frame that exhausts the budget: mid-frame, not on a boundary.
        pos = -1
        for _ in range(budget):
            pos = data.find(_ID_LINE, pos + 1)
        end = data.find(b"\n\n", pos + 1)
        end = len(data) if end < 0 else end
        with self._lock:
            return self._rng.randint(pos + 1, max(pos + 1, end))


def _kill(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
