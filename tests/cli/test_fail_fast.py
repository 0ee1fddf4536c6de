"""Read commands against a server that is not there: one line naming it, exit 2, at once.

"At once" is measured against this machine's interpreter start-up: the same run first times
``kitaru --version`` (the baseline), and each command may take at most 2 s beyond it, where
the retry windows of a running flow (30 s) or a watcher's outage (60 s) would take far more.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator

import pytest
from _cli_kit import run_cli

pytestmark = [pytest.mark.slow]

MARGIN = 2.0


@pytest.fixture
def closed_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def hanging_url() -> Iterator[str]:
    # Listening but never accepting: the kernel completes the handshake, nothing answers.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture(scope="module")
def startup() -> float:
    times = []
    for _ in range(2):
        start = time.monotonic()
        assert run_cli(["--version"]).returncode == 0
        times.append(time.monotonic() - start)
    return max(times)


@pytest.mark.parametrize(
    "args",
    [
        ["executions", "list"],
        ["executions", "get", str(uuid.UUID(int=7))],
        ["executions", "events", str(uuid.UUID(int=7))],
        ["events", str(uuid.UUID(int=7))],
        ["events", "--latest"],
        ["events", "--flow", "report_flow"],
    ],
    ids=["list", "get", "executions-events", "events", "events-latest", "events-flow"],
)
def test_refused_connection_is_one_line_and_exit_2(
    closed_url: str, startup: float, args: list[str]
) -> None:
    # The flag for some, the environment for the others: both name the same server.
    how = "flag" if len(args) % 2 else "environment"
    start = time.monotonic()
    if how == "flag":
        result = run_cli([*args, "--server-url", closed_url], timeout=60)
    else:
        result = run_cli(args, server_url=closed_url, timeout=60)
    took = time.monotonic() - start
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert lines == [
        f"kitaru: error: cannot reach the kitaru server at {closed_url}: connection refused"
    ], lines
    assert result.stdout == ""
    assert took < startup + MARGIN, f"took {took:.2f} s, start-up alone {startup:.2f} s"


def test_hanging_server_is_reported_with_the_time_waited(hanging_url: str) -> None:
    result = run_cli(["executions", "list", "--server-url", hanging_url], timeout=90)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert hanging_url in lines[0]
    assert "did not answer within" in lines[0]
    waited = float(lines[0].rsplit("within ", 1)[1].split(" s")[0])
    assert waited >= 5.0  # the request timeout, not an instant give-up
