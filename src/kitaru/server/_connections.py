"""The server's TCP connections: a request-header timeout, and closing a stalled connection.

Two things uvicorn does not do on its own, done by a thin subclass of its HTTP protocol:

* **Request-header timeout.** uvicorn waits for request headers without limit (its keep-alive
  timeout only covers the idle time after a response), so a client that sends headers a byte
  at a time holds a connection for ever. Here a connection whose next request's headers are not
  complete within ``header_timeout`` seconds is closed.
* **Closing a stalled connection.** An ASGI app can stop writing, but cannot close the socket:
  when a client stops reading, the socket's send buffer stays full and ``transport.close()``
  waits for it to drain, i.e. for ever. The protocol registers its transport under the
  connection's addresses, and :func:`abort_connection` (given the request's ASGI scope)
  aborts it, dropping what is buffered and freeing the socket at once.
* **Writing a stream's body directly.** :func:`direct_writer` gives a live stream a way to
  put one chunk of its (chunked) body straight on the transport, framed once for every
  watcher that gets the same bytes: the fan-out of ``server/_fanout.py`` writes a batch of
  frames to every watcher at one position this way, without a task wake-up or an ASGI
  ``send`` per watcher. It refuses (returns False) whenever uvicorn's own path must be used:
  the client's socket buffer is over its high-water mark, the connection is closing, or the
  response is no longer the one being written.

See ``docs/server-architecture.md`` ("Stalled and slow clients", "Fan-out").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import MutableMapping
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["DirectWriter", "abort_connection", "chunk", "direct_writer", "protocol_class"]

logger = logging.getLogger("kitaru.server")

_Key = tuple[Any, Any]

# (server address, client address) -> protocol, for every open connection of every server in
# this process. Written and read on each server's event loop; single dict operations are atomic.
_open: dict[_Key, _KitaruProtocol] = {}


def _key(server: Any, client: Any) -> _Key | None:
    if server is None or client is None:
        return None
    return (tuple(server), tuple(client))


def abort_connection(scope: MutableMapping[str, Any]) -> bool:
    """Abort the TCP connection that carries the request of ``scope``; False if unknown.

    Unlike ``close()``, an abort does not wait for the send buffer to drain, so it also
    frees the connection of a client that stopped reading.
    """
    key = _key(scope.get("server"), scope.get("client"))
    protocol = _open.get(key) if key is not None else None
    if protocol is None:
        return False
    protocol.transport.abort()
    return True


def chunk(body: bytes) -> bytes:
    """``body`` as one chunk of an HTTP/1.1 chunked body (what uvicorn writes for a ``send``)."""
    return b"%x\r\n%b\r\n" % (len(body), body)


class DirectWriter:
    """Writes pre-framed chunks of one streaming response straight to its transport."""

    __slots__ = ("_cycle", "_protocol")

    def __init__(self, protocol: _KitaruProtocol, cycle: Any) -> None:
        self._protocol = protocol
        self._cycle = cycle

    def write(self, framed: bytes) -> bool:
        """Write ``framed`` (made by :func:`chunk`) now; False if uvicorn's path must be used.

        Refused while the transport is paused (its buffer is over the high-water mark: the
        stream's own ``send`` then waits for it under ``send_timeout``), closing, or carries
        another response than the one this writer was made for.
        """
        protocol = self._protocol
        cycle = self._cycle
        if (
            protocol.flow.write_paused
            or protocol.cycle is not cycle
            or cycle.response_complete
            or cycle.disconnected
            or protocol.transport.is_closing()
        ):
            return False
        protocol.transport.write(framed)
        return True


def direct_writer(scope: MutableMapping[str, Any]) -> DirectWriter | None:
    """A :class:`DirectWriter` for the streaming response of ``scope``, or ``None``.

    ``None`` unless the request came through this module's protocol and its response has
    started with a chunked body (another ASGI server, or a test transport, keeps ``send``).
    """
    key = _key(scope.get("server"), scope.get("client"))
    protocol = _open.get(key) if key is not None else None
    if protocol is None:
        return None
    cycle = protocol.cycle
    if cycle is None or cycle.chunked_encoding is not True or cycle.response_complete:
        return None
    return DirectWriter(protocol, cycle)


class _KitaruProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol plus the header timeout and the connection registry."""

    header_timeout: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._kitaru_key = _key(self.server, self.client)
        if self._kitaru_key is not None:
            _open[self._kitaru_key] = self
        self._header_timer: asyncio.TimerHandle | None = None
        self._header_cycle: Any = None
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._kitaru_key is not None and _open.get(self._kitaru_key) is self:
            del _open[self._kitaru_key]
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        cycle = self.cycle
        # Between requests (none yet, or the last one answered): these bytes start a new
        # request, whose headers must complete in time. A timer armed for an earlier request
        # that did complete is stale and is replaced.
        if (cycle is None or cycle.response_complete) and (
            self._header_timer is None or self._header_cycle is not cycle
        ):
            self._arm_header_timer()
        super().data_received(data)

    def _arm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        self._header_cycle = self.cycle
        self._header_timer = self.loop.call_later(self.header_timeout, self._header_timeout)

    def _header_timeout(self) -> None:
        self._header_timer = None
        # A new cycle exists once a request's headers are complete: nothing to do then.
        if self.cycle is not self._header_cycle or self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # an answer is still being written: not waiting for headers
        logger.info(
            "kitaru server: closed a connection from %s that sent no complete request "
            "headers within %.0f s",
            _peer(self.client),
            self.header_timeout,
        )
        self.transport.abort()


def _peer(client: Any) -> str:
    if not client:
        return "an unknown address"
    host, port = client[0], client[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def protocol_class(header_timeout: float) -> type[HttpToolsProtocol]:
    """The uvicorn ``http=`` protocol class for a server with this request-header timeout."""
    return type("KitaruHttpProtocol", (_KitaruProtocol,), {"header_timeout": header_timeout})
