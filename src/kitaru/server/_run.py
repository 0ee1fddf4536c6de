"""Running the app on uvicorn: in the foreground (the CLI) or in a thread (tests, embedding).

Both go through :class:`_Server`, which tells open SSE streams to close *before* uvicorn
waits for connections to finish; otherwise every watcher would hold shutdown open until the
graceful-shutdown timeout (see ``docs/server-architecture.md``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn
from fastapi import FastAPI

from kitaru import _config
from kitaru._checks import check_token
from kitaru.exceptions import KitaruBackendError, KitaruUsageError
from kitaru.server._app import create_app
from kitaru.server._connections import protocol_class
from kitaru.server._settings import DEFAULT_HOST
from kitaru.server._state import ServerState

__all__ = ["RunningServer", "check_bind_address", "serve", "serve_in_thread"]

# Backstop only: open streams close as soon as shutdown begins. Short, because a replica that
# is told to stop must make way within about 2 s even when a client stopped reading
# (docs/deployment.md).
_GRACEFUL_SECONDS = 1.5


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # any other host name may resolve to a public address


def check_bind_address(host: str, token: str | None, *, allow_insecure_remote: bool) -> None:
    """Refuse a non-loopback address without a token unless explicitly allowed.

    Raises:
        KitaruUsageError: ``host`` is not loopback, there is no token, and
            ``allow_insecure_remote`` is False.
    """
    check_token("token", token or None)
    if token or allow_insecure_remote or _is_loopback(host):
        return
    raise KitaruUsageError(
        f"refusing to listen on {host!r} without an API token: anyone who can reach it could "
        "read and write executions. Set --token (or KITARU_API_TOKEN), listen on 127.0.0.1, "
        "or pass --allow-insecure-remote if this network is trusted."
    )


def _bind(host: str, port: int) -> socket.socket:
    bare = host.strip("[]")
    try:
        infos = socket.getaddrinfo(bare, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise KitaruUsageError(f"cannot resolve host {host!r}: {exc}") from None
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        raise KitaruUsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class _Server(uvicorn.Server):
    """uvicorn, plus: open streams close first when shutdown begins."""

    def __init__(self, config: uvicorn.Config, state: ServerState) -> None:
        super().__init__(config)
        self.kitaru_state = state

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.kitaru_state.begin_shutdown()
        await super().shutdown(sockets)


def _uvicorn_config(
    app: FastAPI, log_level: str, *, quiet: bool, access_log: bool | None
) -> uvicorn.Config:
    settings = _state_of(app).settings
    options: dict[str, Any] = {
        "log_level": log_level,
        "lifespan": "on",
        "ws": "none",
        "http": protocol_class(settings.header_timeout),
        "timeout_graceful_shutdown": _GRACEFUL_SECONDS,
        # One line per request is noise at any real rate: off unless asked for
        # (argument, then KITARU_ACCESS_LOG; docs/deployment.md).
        "access_log": _config.access_log(access_log),
    }
    if quiet:
        options["log_config"] = None  # leave the host process's logging configuration alone
    config = uvicorn.Config(app, **options)
    if quiet and options["access_log"]:
        # uvicorn turns propagation of its (process-wide) access logger off whenever a server
        # starts without access logging; a server that wants it hands its lines on again.
        logging.getLogger("uvicorn.access").propagate = True
    return config


def _state_of(app: FastAPI) -> ServerState:
    state = getattr(app.state, "kitaru", None)
    if not isinstance(state, ServerState):
        raise KitaruUsageError("app was not built by kitaru.server.create_app()")
    return state


def _checked_app(
    app: FastAPI | None, host: str, allow_insecure_remote: bool, options: dict[str, Any]
) -> FastAPI:
    # Check the address before building the app, so a refusal opens no database.
    if app is None:
        token = options["token"] if "token" in options else _config.api_token()
        check_bind_address(host, token, allow_insecure_remote=allow_insecure_remote)
        return create_app(**options)
    check_bind_address(
        host, _state_of(app).settings.token, allow_insecure_remote=allow_insecure_remote
    )
    return app


class RunningServer:
    """A server running in a background thread; stop it with :meth:`stop` (or ``with``).

    Attributes:
        url: Base URL, e.g. ``http://127.0.0.1:50123``.
        app: The ASGI app.
    """

    def __init__(self, server: _Server, thread: threading.Thread, url: str, app: FastAPI) -> None:
        self._server = server
        self._thread = thread
        self.url = url
        self.app = app

    @property
    def state(self) -> ServerState:
        """The server's state (settings, store, event log)."""
        return self._server.kitaru_state

    @property
    def port(self) -> int:
        """The TCP port it listens on."""
        return int(self.url.rsplit(":", 1)[1])

    def stop(self, timeout: float = 10.0) -> None:
        """Close open streams, stop the server and wait for its thread. Idempotent."""
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve_in_thread(
    app: FastAPI | None = None,
    *,
    host: str = DEFAULT_HOST,
    port: int = 0,
    log_level: str = "warning",
    allow_insecure_remote: bool = False,
    startup_timeout: float = 10.0,
    access_log: bool | None = None,
    **options: Any,
) -> RunningServer:
    """Start a server in a daemon thread and return once it accepts connections.

    Args:
        app: An app from :func:`create_app`; default: one built from ``**options``.
        host: Address to listen on.
        port: TCP port; 0 picks a free one.
        log_level: uvicorn's log level.
        allow_insecure_remote: Allow a non-loopback ``host`` without a token.
        startup_timeout: Seconds to wait for the server to start.
        access_log: Log one line per request (default: ``KITARU_ACCESS_LOG``, else off).
        **options: :func:`create_app` options when ``app`` is not given.

    Returns:
        A :class:`RunningServer` with ``.url`` and ``.stop()``.
    """
    app = _checked_app(app, host, allow_insecure_remote, options)
    state = _state_of(app)
    sock = _bind(host, port)
    url = _url(sock)
    server = _Server(_uvicorn_config(app, log_level, quiet=True, access_log=access_log), state)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="kitaru-server", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(2.0)
            with contextlib.suppress(OSError):
                sock.close()
            raise KitaruBackendError(f"the kitaru server at {url} did not start")
        time.sleep(0.01)
    return RunningServer(server, thread, url, app)


def serve(
    app: FastAPI | None = None,
    *,
    host: str = DEFAULT_HOST,
    port: int = 8765,
    log_level: str = "info",
    allow_insecure_remote: bool = False,
    on_ready: Any = None,
    access_log: bool | None = None,
    **options: Any,
) -> None:
    """Run a server in the foreground until interrupted (what ``kitaru server start`` does).

    Args:
        app: An app from :func:`create_app`; default: one built from ``**options``.
        host: Address to listen on.
        port: TCP port.
        log_level: uvicorn's log level.
        allow_insecure_remote: Allow a non-loopback ``host`` without a token.
        on_ready: Called with the base URL once the socket is bound.
        access_log: Log one line per request (default: ``KITARU_ACCESS_LOG``, else off).
        **options: :func:`create_app` options when ``app`` is not given.
    """
    app = _checked_app(app, host, allow_insecure_remote, options)
    state = _state_of(app)
    sock = _bind(host, port)
    if on_ready is not None:
        on_ready(_url(sock))
    config = _uvicorn_config(app, log_level, quiet=False, access_log=access_log)
    _Server(config, state).run(sockets=[sock])
