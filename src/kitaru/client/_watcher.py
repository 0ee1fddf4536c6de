"""The live-event watcher: ``watch()`` (sync) and ``awatch()`` (async) over httpx.

``KitaruClient().executions.events(...)`` and ``aevents(...)`` call these. The protocol logic
lives in :mod:`kitaru.client._watch_session` and the SSE parsing in :mod:`kitaru.events._codec`
(a fast path for the server's own data frames); this module only does I/O.

Deliberate choices:

* Arguments and options are validated when ``events()`` is called, before any request. The sync
  watcher then checks, still inside the call, that the server streams at all and that the
  execution exists under exactly this ID (unknown ID: :class:`~kitaru.KitaruStateError`, as for
  ``executions.get``). ``aevents()`` cannot await inside a plain call, so the async watcher runs
  the same checks when it is first iterated.
* Both watchers are closeable iterators and context managers: ``close()``/``aclose()``, or
  leaving the ``with`` block, or breaking out of a ``for`` loop over a generator-driven
  iterator closes the HTTP response at once.
* ``reconnect=False`` means a stream that was open and dropped raises
  :class:`~kitaru.client.StreamDisconnectedError`; getting the first stream open (a 503 from a
  restarting server, a refused connection) is still retried within ``max_outage``.
* Stall detection is the stream's read timeout: heartbeat comments arrive about every 10 s, so no
  byte for ``heartbeat_timeout`` (30 s) means the connection is dead even if TCP has not noticed.
"""

from __future__ import annotations

import functools
import ssl
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Generator,
    Iterator,
    Mapping,
)
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio
import httpx

from kitaru import _wire
from kitaru._http import auth_headers
from kitaru.client._errors import LOCAL_MODE_WATCH_MESSAGE
from kitaru.client._watch_options import RequestArguments, parse_options, validate_request
from kitaru.client._watch_session import WatchSession
from kitaru.events._frames import aiter_frame_lists, iter_frame_lists
from kitaru.events._models import ExecutionEvent
from kitaru.exceptions import KitaruFeatureNotAvailableError, KitaruUsageError

if TYPE_CHECKING:
    from kitaru.client._client import KitaruClient

__all__ = ["AsyncEventWatcher", "EventWatcher", "awatch", "open_session", "watch"]

_Http = TypeVar("_Http")
_Events = TypeVar("_Events")


def open_session(
    client: KitaruClient, arguments: RequestArguments, options: Mapping[str, Any]
) -> WatchSession:
    """The session of a new watch (``events()`` and ``aevents()`` alike), before any request.

    Takes the arguments and options of ``events()`` as given. Local database mode is refused
    first (whatever the arguments), then every argument and option is validated.

    Raises:
        KitaruFeatureNotAvailableError: Local database mode.
        KitaruUsageError: A bad argument or option (named in the message).
    """
    if client.server_url is None:
        raise KitaruFeatureNotAvailableError(LOCAL_MODE_WATCH_MESSAGE)
    request = validate_request(*arguments)
    return WatchSession(request, parse_options(options), client.server_url)


class _WatchState(Generic[_Http, _Events]):
    """What both watchers share: their session, HTTP client and driving generator (no I/O)."""

    def __init__(self, session: WatchSession, http: _Http) -> None:
        self._session = session
        self._http: _Http = http
        self._gen = self._iterate()

    def _iterate(self) -> _Events:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._session.exec_id} cursor={self.cursor!r}>"

    @property
    def exec_id(self) -> str:
        """The watched execution's ID."""
        return self._session.exec_id

    @property
    def cursor(self) -> str | None:
        """The last stream position seen (pass it as ``since=`` to resume in a new watch)."""
        return self._session.cursor

    @property
    def final_status(self) -> str | None:
        """The execution's final status from the ``end`` frame, once the watch has ended."""
        return self._session.final_status

    @property
    def reconnecting(self) -> bool:
        """True while the stream is down and the watcher is trying to get it back."""
        return self._session.reconnecting


def _uncoded(resp: httpx.Response) -> bool:
    """True when the stream has no content coding.

    Its raw pieces are then its bytes, read without httpx's decoding layer (a generator step
    per piece).
    """
    coding = resp.headers.get("content-encoding", "identity").strip().lower()
    return coding in ("", "identity")


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The verifying TLS context every watch's HTTP client shares (httpx's default one).

    Building one loads the CA bundle, tens of milliseconds of CPU: once per process, not once
    per ``events()`` call (a process with 50 watchers spent most of its start-up there).
    """
    return httpx.create_ssl_context()


def _http_options(client: KitaruClient, session: WatchSession, transport: Any) -> dict[str, Any]:
    """The ``httpx.Client``/``httpx.AsyncClient`` arguments of a watch."""
    options: dict[str, Any] = {
        "base_url": session.server_url,
        "headers": auth_headers(client.api_token),
        "timeout": session.request_timeout(),
        "transport": transport,
    }
    if transport is None:
        options["verify"] = _tls_context()
    return options


# -- sync -------------------------------------------------------------------------------------


class EventWatcher(
    _WatchState[httpx.Client, Generator[ExecutionEvent, None, None]], Iterator[ExecutionEvent]
):
    """A running watch: iterate it for :class:`~kitaru.ExecutionEvent` objects.

    Iteration ends by itself when the server sends ``end`` (the execution finished and every
    event was delivered). Call :meth:`close` (or use it as a context manager) to stop early;
    that closes the HTTP connection. Not safe to iterate from several threads at once.
    """

    def __iter__(self) -> EventWatcher:
        return self

    def __next__(self) -> ExecutionEvent:
        return next(self._gen)

    def close(self) -> None:
        """Stop watching and close the connection. Idempotent."""
        self._gen.close()
        self._http.close()

    def __enter__(self) -> EventWatcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _prepare(self) -> None:
        s = self._session
        while True:
            try:
                failure = s.check_info(self._http.get(_wire.PATH_INFO))
                if failure is None:
                    failure = s.check_lookup(self._http.get(s.lookup_path()))
            except httpx.TransportError as exc:
                failure = s.transport_failure(exc)
            if failure is None:
                s.prepared()
                return
            time.sleep(s.failed(failure))

    def _iterate(self) -> Generator[ExecutionEvent, None, None]:
        s = self._session
        try:
            while True:
                failure = yield from self._stream_once()
                if s.finished:
                    return
                time.sleep(s.failed(failure))
        finally:
            self._http.close()

    def _stream_once(self) -> Generator[ExecutionEvent, None, str]:
        s = self._session
        try:
            with self._http.stream(**s.stream_request()) as resp:
                if resp.status_code != 200:
                    resp.read()
                failure = s.check_stream(resp)
                if failure is not None:
                    return failure
                # Frames come a received piece at a time: one generator step per piece, not
                # per event.
                on_frame = s.on_frame
                body = resp.iter_raw() if _uncoded(resp) else resp.iter_bytes()
                for frames in iter_frame_lists(body, resp.encoding or "utf-8"):
                    for frame in frames:
                        event = on_frame(frame)
                        if event is not None:
                            yield event
                        if s.finished:
                            return ""
                return s.closed_without_end()
        except httpx.TransportError as exc:
            return s.transport_failure(exc)


def watch(client: KitaruClient, session: WatchSession) -> EventWatcher:
    """Watch the live events of one execution (see ``KitaruClient().executions.events``).

    Takes a session from :func:`open_session` (arguments already validated), checks that the
    server streams and that the execution exists (retrying a restarting server for up to
    ``max_outage`` seconds), and returns the watcher. The stream itself opens on the first
    ``next()``.

    Raises:
        KitaruUsageError: The ``transport`` option is not a sync httpx transport.
        KitaruFeatureNotAvailableError: Streaming is disabled.
        KitaruStateError: No execution has exactly this ID.
        KitaruBackendError: Authorization failed, or the server could not be reached.
    """
    transport = session.options.transport
    if transport is not None and not isinstance(transport, httpx.BaseTransport):
        raise KitaruUsageError(
            f"transport must be a sync httpx transport for events(), got {type(transport).__name__}"
        )
    http = httpx.Client(**_http_options(client, session, transport))
    watcher = EventWatcher(session, http)
    try:
        watcher._prepare()
    except BaseException:
        watcher.close()
        raise
    return watcher


# -- async ------------------------------------------------------------------------------------


class AsyncEventWatcher(
    _WatchState[httpx.AsyncClient, AsyncGenerator[ExecutionEvent, None]],
    AsyncIterator[ExecutionEvent],
):
    """The async twin of :class:`EventWatcher`: ``async for event in watcher``.

    The existence and streaming checks run on the first iteration. Call :meth:`aclose` (or use
    ``async with``) to stop early and close the connection.
    """

    def __aiter__(self) -> AsyncEventWatcher:
        return self

    def __anext__(self) -> Awaitable[ExecutionEvent]:
        # The generator's own awaitable, not a coroutine around it: one frame less per event.
        return self._gen.__anext__()

    async def aclose(self) -> None:
        """Stop watching and close the connection. Idempotent."""
        await self._gen.aclose()
        await self._http.aclose()

    async def __aenter__(self) -> AsyncEventWatcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _prepare(self) -> None:
        s = self._session
        while True:
            try:
                failure = s.check_info(await self._http.get(_wire.PATH_INFO))
                if failure is None:
                    failure = s.check_lookup(await self._http.get(s.lookup_path()))
            except httpx.TransportError as exc:
                failure = s.transport_failure(exc)
            if failure is None:
                s.prepared()
                return
            await anyio.sleep(s.failed(failure))

    async def _iterate(self) -> AsyncGenerator[ExecutionEvent, None]:
        s = self._session
        try:
            await self._prepare()
            while True:
                failure = ""
                try:
                    async with self._http.stream(**s.stream_request()) as resp:
                        if resp.status_code != 200:
                            await resp.aread()
                        checked = s.check_stream(resp)
                        if checked is not None:
                            failure = checked
                        else:
                            # As in the sync watcher: a received piece's frames at a time.
                            on_frame = s.on_frame
                            body = resp.aiter_raw() if _uncoded(resp) else resp.aiter_bytes()
                            pieces = aiter_frame_lists(body, resp.encoding or "utf-8")
                            async with aclosing(pieces):
                                async for frames in pieces:
                                    for frame in frames:
                                        event = on_frame(frame)
                                        if event is not None:
                                            yield event
                                        if s.finished:
                                            return
                            failure = s.closed_without_end()
                except httpx.TransportError as exc:
                    failure = s.transport_failure(exc)
                await anyio.sleep(s.failed(failure))
        finally:
            await self._http.aclose()


def awatch(client: KitaruClient, session: WatchSession) -> AsyncEventWatcher:
    """The async twin of :func:`watch` (see ``KitaruClient().executions.aevents``).

    The server and execution checks run on first iteration.

    Raises:
        KitaruUsageError: The ``transport`` option is not an async httpx transport.
    """
    transport = session.options.transport
    if transport is not None and not isinstance(transport, httpx.AsyncBaseTransport):
        raise KitaruUsageError(
            "transport must be an async httpx transport for aevents(), got "
            f"{type(transport).__name__}"
        )
    http = httpx.AsyncClient(**_http_options(client, session, transport))
    return AsyncEventWatcher(session, http)
