"""``kitaru events`` against a real server process: live lanes, JSON, plain lines, exit codes."""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pexpect
import pytest
from _cli_kit import KITARU, ServerProcess, base_env, run_cli, start_producer, start_server

pytestmark = pytest.mark.server

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path_factory.mktemp("server"))
    yield srv
    srv.stop()


def spawn(args: list[str], server_url: str, **env: str) -> pexpect.spawn:
    """``kitaru ARGS`` on a pseudo-terminal (so stdout is a TTY)."""
    return pexpect.spawn(
        KITARU[0],
        [*KITARU[1:], *args],
        env=base_env(
            KITARU_SERVER_URL=server_url, TERM="xterm-256color", COLUMNS="120", LINES="40", **env
        ),
        encoding="utf-8",
        dimensions=(40, 120),
        timeout=60,
    )


def finish(child: pexpect.spawn) -> tuple[int | None, str]:
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, ANSI.sub("", child.before or "")


def test_live_lanes_and_progress_bars_on_a_terminal(server: ServerProcess, tmp_path: Path) -> None:
    producer = start_producer(tmp_path, server.url)
    try:
        child = spawn(["events", producer.exec_id], server.url)
        # Every fetch item waits at 50 % until the gate opens: the lanes must be on screen
        # with a progress bar (rich draws it with "━") while the flow is still running.
        child.expect("kitaru")
        child.expect(r"fetch_\d")
        child.expect("━")
        child.expect(r"50%")
        child.expect(r"item \d: halfway")
        assert child.isalive()
        assert producer.proc.poll() is None
        assert producer.finish() == 0
        status, tail = finish(child)
    finally:
        producer.kill()
    assert status == 0
    assert "completed" in tail
    assert re.search(r"fetch\s+3 returned", tail), tail
    assert f"trace {uuid.UUID(producer.exec_id).hex}" in tail
    assert "Traceback" not in tail


def test_trace_link_from_the_url_template(server: ServerProcess, tmp_path: Path) -> None:
    producer = start_producer(tmp_path, server.url)
    try:
        producer.finish()
        child = spawn(
            ["events", producer.exec_id],
            server.url,
            KITARU_TRACE_URL_TEMPLATE="http://127.0.0.1:16686/trace/{trace_id}",
        )
        status, out = finish(child)
    finally:
        producer.kill()
    assert status == 0
    assert f"http://127.0.0.1:16686/trace/{uuid.UUID(producer.exec_id).hex}" in out


def test_plain_lines_when_stdout_is_not_a_terminal(server: ServerProcess, tmp_path: Path) -> None:
    producer = start_producer(tmp_path, server.url)
    try:
        producer.finish()
        result = run_cli(["events", producer.exec_id], server_url=server.url)
    finally:
        producer.kill()
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "\x1b[" not in result.stdout  # no escape codes into a pipe
    assert lines[0] == f"watching execution {producer.exec_id} (flow cli_probe)"
    assert lines[1] == f"trace {uuid.UUID(producer.exec_id).hex}"
    events = lines[2:-1]
    # 3 items x (started, 2 progress, returned), one line each.
    assert len(events) == 12, events
    for step in ("fetch", "fetch_2", "fetch_3"):
        mine = [line.split(" ", 2)[2] for line in events if line.split(" ")[1] == step]
        assert mine[0] == "started"
        assert re.fullmatch(r"progress\s+50% item \d: halfway", mine[1]), mine
        assert re.fullmatch(r"progress 100% item \d: done", mine[2]), mine
        assert re.fullmatch(r"returned in \d+\.\ds", mine[3]), mine
    assert lines[-1].startswith(f"execution {producer.exec_id} completed · 3 lanes: 3 returned")


def test_json_lines_parse_and_filters_apply(server: ServerProcess, tmp_path: Path) -> None:
    producer = start_producer(tmp_path, server.url)
    try:
        producer.finish()
        everything = run_cli(["events", producer.exec_id, "--json"], server_url=server.url)
        progress = run_cli(
            ["events", producer.exec_id, "--json", "--kind", "kitaru.checkpoint.progress"],
            server_url=server.url,
        )
    finally:
        producer.kill()
    assert everything.returncode == 0, everything.stderr
    events = [orjson.loads(line) for line in everything.stdout.splitlines()]
    assert len(events) == 12
    assert {e["exec_id"] for e in events} == {producer.exec_id}
    assert all(
        set(e)
        == {
            "exec_id",
            "kind",
            "correlation_id",
            "index",
            "cursor",
            "checkpoint_id",
            "checkpoint_name",
            "step_name",
            "payload",
        }
        for e in events
    )
    cursors = [e["cursor"] for e in events]
    assert len(set(cursors)) == 12 and all(cursors)
    assert len({e["correlation_id"] for e in events}) == 3
    # Summary and header go to stderr, so stdout stays pure JSON for jq.
    assert "completed" in everything.stderr
    assert progress.returncode == 0
    kinds = [orjson.loads(line)["kind"] for line in progress.stdout.splitlines()]
    assert kinds == ["kitaru.checkpoint.progress"] * 6

    # --since resumes after a cursor: exactly the events after it.
    middle = cursors[5]
    resumed = run_cli(
        ["events", producer.exec_id, "--json", "--since", middle], server_url=server.url
    )
    assert [orjson.loads(line)["cursor"] for line in resumed.stdout.splitlines()] == cursors[6:]

    # --correlation-id (repeatable) and --checkpoint.
    corr = events[0]["correlation_id"]
    one = run_cli(
        ["events", producer.exec_id, "--json", "--correlation-id", corr, "--checkpoint", "fetch"],
        server_url=server.url,
    )
    assert {orjson.loads(line)["correlation_id"] for line in one.stdout.splitlines()} == {corr}
    none = run_cli(
        ["events", producer.exec_id, "--json", "--checkpoint", "other"], server_url=server.url
    )
    assert none.returncode == 0 and none.stdout == ""


def test_failed_execution_exits_1(server: ServerProcess, tmp_path: Path) -> None:
    producer = start_producer(tmp_path, server.url, "--fail")
    try:
        assert producer.finish() == 1
        result = run_cli(["executions", "events", producer.exec_id], server_url=server.url)
    finally:
        producer.kill()
    assert result.returncode == 1, result.stderr
    assert re.search(r"fetch_3 failed: ValueError", result.stdout), result.stdout
    assert "failed · 3 lanes: 2 returned, 1 failed" in result.stdout
    assert "do-not-print" not in result.stdout + result.stderr


def test_lost_execution_exits_1(tmp_path: Path) -> None:
    srv = start_server(tmp_path, "--lost-after", "1")
    producer = start_producer(tmp_path, srv.url, KITARU_HEARTBEAT_INTERVAL="0.2")
    try:
        child = spawn(["events", producer.exec_id], srv.url)
        child.expect(r"50%")
        producer.kill()  # SIGKILL: no finish record, no more heartbeats
        status, out = finish(child)
    finally:
        producer.kill()
        srv.stop()
    assert status == 1
    assert "lost" in out
    assert "Traceback" not in out


@pytest.mark.parametrize(
    "exec_id", [str(uuid.UUID(int=1)), "not-an-execution", "0000"], ids=["uuid", "name", "prefix"]
)
def test_unknown_execution_exits_2(server: ServerProcess, exec_id: str) -> None:
    result = run_cli(["events", exec_id], server_url=server.url)
    assert result.returncode == 2
    assert f"no execution with ID {exec_id!r}" in result.stderr
    assert "Traceback" not in result.stderr


def test_prefix_of_a_real_execution_exits_2(server: ServerProcess, tmp_path: Path) -> None:
    producer = start_producer(tmp_path, server.url)
    try:
        producer.finish()
        result = run_cli(["events", producer.exec_id[:8]], server_url=server.url)
    finally:
        producer.kill()
    assert result.returncode == 2
    assert "exact" in result.stderr


def test_connection_and_usage_errors_exit_2(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    unreachable = run_cli(
        ["events", str(uuid.uuid4()), "--max-outage", "0.5"], server_url=closed, timeout=30
    )
    assert unreachable.returncode == 2
    assert f"cannot reach the kitaru server at {closed}" in unreachable.stderr
    local = run_cli(["events", str(uuid.uuid4())])  # no KITARU_SERVER_URL: local mode
    assert local.returncode == 2
    assert "server-backed connection" in local.stderr
    bad_url = run_cli(["events", str(uuid.uuid4()), "--server-url", "ftp://x"])
    assert bad_url.returncode == 2
    assert "ftp://x" in bad_url.stderr
    missing = run_cli(["events"])
    assert missing.returncode == 2
    assert "EXEC_ID" in missing.stderr
    blank_kind = run_cli(["events", str(uuid.uuid4()), "--kind", " "], server_url=closed)
    assert blank_kind.returncode == 2
    assert "kinds" in blank_kind.stderr
    for result in (unreachable, local, bad_url, missing, blank_kind):
        assert "Traceback" not in result.stderr


def test_ctrl_c_exits_130_without_traceback(server: ServerProcess, tmp_path: Path) -> None:
    producer = start_producer(tmp_path, server.url)
    try:
        child = spawn(["events", producer.exec_id], server.url)
        child.expect(r"50%")
        child.sendintr()
        status, out = finish(child)
    finally:
        producer.finish()
        producer.kill()
    assert status == 130
    assert "Traceback" not in out
    assert "interrupted" in out


def test_missing_rich_prints_the_install_command(server: ServerProcess, tmp_path: Path) -> None:
    producer = start_producer(tmp_path, server.url)
    try:
        producer.finish()
        code = (
            "import sys; sys.modules['rich'] = None; sys.modules['rich.console'] = None\n"
            "from kitaru.cli import main\n"
            f"sys.exit(main(['events', {producer.exec_id!r}]))"
        )
        child = pexpect.spawn(
            sys.executable,
            ["-c", code],
            env=base_env(KITARU_SERVER_URL=server.url, TERM="xterm"),
            encoding="utf-8",
            timeout=60,
        )
        status, out = finish(child)
    finally:
        producer.kill()
    assert "pip install 'kitaru[cli]'" in out
    assert status == 0  # it still watches, with plain lines
    assert "completed · 3 lanes" in out


def test_events_help_lists_the_filters() -> None:
    for args in (["events", "--help"], ["executions", "events", "--help"]):
        result = run_cli(args)
        assert result.returncode == 0
        for flag in (
            "--kind",
            "--checkpoint",
            "--correlation-id",
            "--since",
            "--no-reconnect",
            "--json",
        ):
            assert flag in result.stdout


def test_no_reconnect_exits_2_when_the_server_goes_away(tmp_path: Path) -> None:
    srv = start_server(tmp_path)
    producer = start_producer(tmp_path, srv.url)
    try:
        child = spawn(["events", producer.exec_id, "--no-reconnect", "--plain"], srv.url)
        child.expect(r"50% item \d: halfway")
        srv.proc.kill()
        srv.proc.wait(10)
        status, out = finish(child)
    finally:
        producer.kill()
        srv.stop()
    assert status == 2
    assert "reconnect=False" in out
    assert "Traceback" not in out
