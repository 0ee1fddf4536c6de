"""Helpers shared by several test folders: skip-or-fail checks, free ports, server processes.

Imported by name (``from _support import ...``): ``tests/`` is on ``sys.path`` through the
root ``conftest.py``, like ``_services``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kitaru import _wire

__all__ = [
    "HAVE_SERVER_DEPS",
    "ServerProcess",
    "clean_env",
    "free_port",
    "require",
    "require_server_deps",
    "server_start_argv",
    "stop_process",
    "thread_servers",
    "wait_healthy",
]

HAVE_SERVER_DEPS = all(
    importlib.util.find_spec(m) is not None for m in ("fastapi", "uvicorn", "httptools")
)


def require(component: str, available: bool, how: str) -> None:
    """Skip when a component is missing, but fail in CI (CI=true) where it must be there."""
    if available:
        return
    message = f"{component} is not available: {how}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def require_server_deps() -> None:
    """Skip without the server extra (fastapi, uvicorn, httptools); fail instead in CI."""
    require(
        "the kitaru server (fastapi, uvicorn, httptools)",
        HAVE_SERVER_DEPS,
        "pip install 'kitaru[server]'",
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without ``KITARU_*``/``OTEL_*`` settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KITARU_", "OTEL_"))}
    env.update(extra)
    return env


def server_start_argv(port: int, db: str | Path, *options: str) -> list[str]:
    """The command line of ``kitaru server start`` on 127.0.0.1, logging warnings only."""
    return [
        sys.executable,
        "-m",
        "kitaru.cli",
        "server",
        "start",
        "--port",
        str(port),
        "--db",
        str(db),
        "--log-level",
        "warning",
        *options,
    ]


def stop_process(
    proc: subprocess.Popen[Any],
    sig: int = signal.SIGTERM,
    *,
    timeout: float = 15,
    kill_timeout: float = 5,
) -> int:
    """Send ``sig`` to a running process, kill it after ``timeout`` seconds; its return code."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(kill_timeout)
    return int(proc.returncode)


class ServerProcess:
    """``kitaru server start`` as a subprocess (so a test can restart it on the same port).

    Args:
        db: The server's SQLite database.
        port: Its TCP port on 127.0.0.1.
        log: File that receives the server's output (appended to, so restarts share it).
        token: API token the server requires (``KITARU_API_TOKEN``).
        ping_interval: ``--ping-interval`` in seconds.
        **env: More environment variables of the server.
    """

    def __init__(
        self,
        db: Path,
        port: int,
        log: Path,
        *,
        token: str | None = None,
        ping_interval: float = 0.5,
        **env: str,
    ) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self._log = log.open("ab")
        extra = dict(env)
        if token:
            extra["KITARU_API_TOKEN"] = token
        self.proc = subprocess.Popen(
            server_start_argv(port, db, "--ping-interval", str(ping_interval)),
            stdout=self._log,
            stderr=self._log,
            env=clean_env(**extra),
        )
        wait_healthy(self.url, self.proc, log, deadline=time.monotonic() + 30)

    def stop(self) -> int:
        """Stop the server (SIGTERM, then kill); its return code. Idempotent."""
        code = stop_process(self.proc)
        self._log.close()
        return code


def wait_healthy(
    url: str, proc: subprocess.Popen[Any], log: Path, *, deadline: float, name: str = "server"
) -> None:
    """Wait until the server process ``proc`` answers ``/health`` at ``url``.

    Raises:
        AssertionError: The process exited, or ``deadline`` (``time.monotonic()``) passed;
            the message holds its log.
    """
    while True:
        assert proc.poll() is None, f"{name} exited: {log.read_text()[-2000:]}"
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url + _wire.PATH_HEALTH, timeout=2).status_code == 200:
                return
        assert time.monotonic() < deadline, f"{name} did not start: {log.read_text()}"
        time.sleep(0.05)


def thread_servers(tmp_path: Path, *, ping_interval: float) -> Iterator[Callable[..., Any]]:
    """The body of a ``make_server`` fixture: start servers in threads, stop them all after.

    Yields a function that takes :func:`kitaru.server.serve_in_thread` options (defaults: a
    new database in ``tmp_path``, this ``ping_interval``, no token) and returns the server.
    """
    require_server_deps()
    from kitaru.server import serve_in_thread

    started: list[Any] = []

    def start(**options: Any) -> Any:
        options.setdefault("db", tmp_path / f"server-{len(started)}.db")
        options.setdefault("ping_interval", ping_interval)
        options.setdefault("token", None)
        srv = serve_in_thread(**options)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()
