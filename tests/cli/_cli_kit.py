"""Helpers of the CLI tests: a real ``kitaru server start`` process and the producer flow."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from _support import require_server_deps, server_start_argv, stop_process

HERE = Path(__file__).parent
PRODUCER = HERE / "_producer.py"
KITARU = [sys.executable, "-m", "kitaru.cli"]
_URL = re.compile(r"http://127\.0\.0\.1:\d+")


def base_env(**extra: str) -> dict[str, str]:
    """The test process's (already cleaned) environment plus ``extra``."""
    env = dict(os.environ)
    env.pop("CI", None)  # the CLI must not behave differently in CI
    env.update(extra)
    return env


@dataclass
class ServerProcess:
    """A ``kitaru server start`` subprocess on a free 127.0.0.1 port."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self) -> None:
        stop_process(self.proc, signal.SIGINT, timeout=10, kill_timeout=10)


def start_server(tmp_path: Path, *args: str) -> ServerProcess:
    """Start ``kitaru server start --port 0`` and wait until it answers ``/health``."""
    require_server_deps()
    log = tmp_path / f"server-{time.monotonic_ns()}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            server_start_argv(
                0, tmp_path / f"server-{time.monotonic_ns()}.db", "--host", "127.0.0.1", *args
            ),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=base_env(),
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"kitaru server exited: {log.read_text()}")
        found = _URL.search(log.read_text(errors="replace"))
        if found:
            try:
                if httpx.get(found.group(0) + "/health", timeout=2).status_code == 200:
                    return ServerProcess(proc, found.group(0), log)
            except httpx.TransportError:
                pass
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"kitaru server did not start: {log.read_text()}")


@dataclass
class Producer:
    """The producer flow in a subprocess; :meth:`release` lets it finish."""

    proc: subprocess.Popen[str]
    exec_id: str
    gate: Path
    lines: list[str] = field(default_factory=list)

    def release(self) -> None:
        self.gate.touch()

    def finish(self, timeout: float = 60) -> int:
        self.release()
        out, _ = self.proc.communicate(timeout=timeout)
        self.lines = out.splitlines()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


def start_producer(tmp_path: Path, server_url: str, *args: str, **env: str) -> Producer:
    """Start the producer flow against ``server_url``; returns once its exec ID is known."""
    gate = tmp_path / f"gate-{time.monotonic_ns()}"
    proc = subprocess.Popen(
        [sys.executable, str(PRODUCER), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=base_env(KITARU_SERVER_URL=server_url, KITARU_TEST_GATE=str(gate), **env),
    )
    assert proc.stdout is not None
    exec_id = proc.stdout.readline().strip()
    if not exec_id:
        proc.kill()
        raise AssertionError("the producer did not print an execution ID")
    return Producer(proc, exec_id, gate)


def run_cli(
    args: Sequence[str], *, server_url: str | None = None, timeout: float = 60, **env: Any
) -> subprocess.CompletedProcess[str]:
    """Run ``kitaru ARGS`` with pipes (no terminal) and return the finished process."""
    extra = {k: str(v) for k, v in env.items()}
    if server_url is not None:
        extra["KITARU_SERVER_URL"] = server_url
    return subprocess.run(
        [*KITARU, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=base_env(**extra),
        stdin=subprocess.DEVNULL,
    )
