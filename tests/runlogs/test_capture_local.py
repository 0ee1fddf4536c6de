"""Runtime log capture, ``kitaru.log`` and ``kitaru.record_usage`` in local database mode."""

from __future__ import annotations

import contextvars
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest

from kitaru import KitaruClient, checkpoint, flow
from kitaru.cli import main
from kitaru.exceptions import KitaruUsageError
from kitaru.runtime._scope import _current_checkpoint
from kitaru.store import SqliteStore
from kitaru.store._logs import LogLine

user_log = logging.getLogger("kitaru_tests.user")


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def user_handler() -> Any:
    handler = Collect()
    user_log.addHandler(handler)
    user_log.setLevel(logging.INFO)
    yield handler
    user_log.removeHandler(handler)
    user_log.setLevel(logging.NOTSET)


@checkpoint
def chatty(x: int) -> int:
    user_log.info("starting %d", x)
    user_log.warning("careful")
    user_log.error("broken")
    print(f"printed {x}")
    return x


@checkpoint
def quiet() -> int:
    user_log.info("quiet here")
    return 0


@flow
def chatty_flow() -> int:
    return chatty(7) + quiet()


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_four_lines_in_order_with_their_checkpoint(
    user_handler: Collect, capsys: pytest.CaptureFixture[str]
) -> None:
    handle = chatty_flow.run()
    handle.wait()
    exec_id = handle.exec_id
    # The terminal still saw the print, and the user's handler every record, unchanged.
    assert "printed 7" in capsys.readouterr().out
    assert [r.getMessage() for r in user_handler.records] == [
        "starting 7",
        "careful",
        "broken",
        "quiet here",
    ]
    assert [r.levelname for r in user_handler.records[:3]] == ["INFO", "WARNING", "ERROR"]

    code, out, err = cli(capsys, "executions", "logs", exec_id)
    assert code == 0, err
    rows = [line.split(None, 3)[1:] for line in out.splitlines()]
    assert rows == [
        ["chatty", "INFO", "starting 7"],
        ["chatty", "WARNING", "careful"],
        ["chatty", "ERROR", "broken"],
        ["chatty", "STDOUT", "printed 7"],
        ["quiet", "INFO", "quiet here"],
    ]

    code, out, _ = cli(capsys, "executions", "logs", exec_id, "--checkpoint", "quiet")
    assert code == 0
    assert [line.split(None, 3)[1:] for line in out.splitlines()] == [
        ["quiet", "INFO", "quiet here"]
    ]

    code, out, _ = cli(capsys, "executions", "logs", exec_id, "--json")
    parsed = [orjson.loads(line) for line in out.splitlines()]
    assert [(p["checkpoint"], p["level"], p["message"]) for p in parsed][:4] == [
        ("chatty", "INFO", "starting 7"),
        ("chatty", "WARNING", "careful"),
        ("chatty", "ERROR", "broken"),
        ("chatty", "STDOUT", "printed 7"),
    ]
    assert parsed[0]["logger"] == "kitaru_tests.user"
    assert [p["line"] for p in parsed[:4]] == [0, 1, 2, 3]

    code, out, _ = cli(capsys, "executions", "logs", exec_id, "--grouped", "-v")
    assert out.splitlines()[0].startswith("== chatty (attempt 1)")
    assert "== quiet (attempt 1)" in out

    lines = KitaruClient().executions.logs(exec_id, checkpoint="chatty")
    assert [line.message for line in lines] == ["starting 7", "careful", "broken", "printed 7"]


@checkpoint
def worker(i: int) -> int:
    for n in range(20):
        user_log.info("worker %d line %d", i, n)
        print(f"w{i} p{n}")
    return i


@flow
def fan_flow() -> list[int]:
    return worker.map(range(6), max_concurrency=6)


def test_fan_out_lines_are_attributed_by_context(user_handler: Collect) -> None:
    handle = fan_flow.run()
    handle.wait()
    lines = KitaruClient().executions.logs(handle.exec_id)
    by_step: dict[str, list[LogLine]] = {}
    for line in lines:
        by_step.setdefault(line.step_name, []).append(line)
    assert len(by_step) == 6
    for items in by_step.values():
        # Every line of a checkpoint execution names its own input, and keeps its order.
        i = items[0].message.split()[1]
        logged = [x.message for x in items if x.stream == "log"]
        printed = [x.message for x in items if x.stream == "stdout"]
        assert logged == [f"worker {i} line {n}" for n in range(20)]
        assert printed == [f"w{i} p{n}" for n in range(20)]
        assert [x.line for x in items] == list(range(40))


def test_lines_outside_checkpoints_and_other_threads_are_not_captured(
    user_handler: Collect,
) -> None:
    @checkpoint
    def spawns() -> int:
        # A thread started without the checkpoint's context is not part of it.
        t = threading.Thread(target=lambda: user_log.info("from a bare thread"))
        t.start()
        t.join()
        user_log.info("inside")
        return 1

    @flow
    def f() -> int:
        user_log.info("in the flow body")
        return spawns()

    handle = f.run()
    handle.wait()
    assert [x.message for x in KitaruClient().executions.logs(handle.exec_id)] == ["inside"]
    assert "from a bare thread" in [r.getMessage() for r in user_handler.records]


def test_bound_per_checkpoint_execution_with_a_visible_mark(
    monkeypatch: pytest.MonkeyPatch, user_handler: Collect
) -> None:
    monkeypatch.setenv("KITARU_LOG_MAX_LINES", "5")
    from kitaru.runtime._runtime import reset_runtime

    reset_runtime()

    @checkpoint
    def flood() -> int:
        for n in range(12):
            user_log.info("line %d", n)
        return 1

    @flow
    def f() -> int:
        return flood()

    handle = f.run()
    handle.wait()
    lines = KitaruClient().executions.logs(handle.exec_id)
    assert [x.message for x in lines[:5]] == [f"line {n}" for n in range(5)]
    assert len(lines) == 6
    assert lines[5].level == "NOTICE" and lines[5].stream == "kitaru"
    assert "7 more line(s)" in lines[5].message
    # The user's handler still got all twelve.
    assert len(user_handler.records) == 12


def test_retried_attempts_keep_their_own_lines(user_handler: Collect) -> None:
    calls = {"n": 0}

    @checkpoint(retries=1)
    def flaky() -> int:
        calls["n"] += 1
        user_log.warning("attempt %d", calls["n"])
        if calls["n"] == 1:
            raise ValueError("first time")
        return 1

    @flow
    def f() -> int:
        return flaky()

    handle = f.run()
    handle.wait()
    lines = KitaruClient().executions.logs(handle.exec_id)
    assert [(x.attempt, x.message) for x in lines] == [(1, "attempt 1"), (2, "attempt 2")]
    assert lines[0].correlation_id != lines[1].correlation_id


def test_a_line_names_its_checkpoint_execution(user_handler: Collect) -> None:
    seen: list[dict[str, Any]] = []

    @checkpoint
    def named(i: int) -> int:
        scope = _current_checkpoint.get()
        assert scope is not None
        seen.append(
            {
                "exec_id": scope.exec_id,
                "checkpoint_id": scope.checkpoint_id,
                "correlation_id": scope.correlation_id,
                "checkpoint": scope.name,
                "step_name": scope.step_name,
                "attempt": scope.attempt,
            }
        )
        user_log.info("hello %d", i)
        return i

    @flow
    def f() -> int:
        return named(1) + named(2)  # the second call's step name is not the checkpoint's name

    handle = f.run()
    handle.wait()
    lines = KitaruClient().executions.logs(handle.exec_id)
    assert [line.message for line in lines] == ["hello 1", "hello 2"]
    assert seen[1]["step_name"] != seen[1]["checkpoint"] == "named"
    for line, identity in zip(lines, seen, strict=True):
        assert identity["exec_id"] == handle.exec_id
        assert {key: getattr(line, key) for key in identity} == identity
        assert (line.stream, line.level, line.logger) == ("log", "INFO", "kitaru_tests.user")


def test_capture_off(monkeypatch: pytest.MonkeyPatch, user_handler: Collect) -> None:
    monkeypatch.setenv("KITARU_CAPTURE_LOGS", "false")
    from kitaru.runtime._runtime import reset_runtime

    reset_runtime()
    handle = chatty_flow.run()
    handle.wait()
    assert KitaruClient().executions.logs(handle.exec_id) == []
    assert len(user_handler.records) == 4


def test_bad_capture_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from kitaru.runtime._logcapture import CaptureSettings

    monkeypatch.setenv("KITARU_LOG_MAX_LINES", "many")
    with pytest.raises(KitaruUsageError, match="KITARU_LOG_MAX_LINES"):
        CaptureSettings.resolve()


def test_unknown_execution_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "executions", "logs", "no-such-execution")
    assert code == 2 and "no execution with ID" in err


def test_control_characters_are_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    @checkpoint
    def evil() -> int:
        user_log.warning("\x1b]0;owned\x07 red \x1b[31mtext")
        return 1

    @flow
    def f() -> int:
        return evil()

    user_log.setLevel(logging.INFO)
    try:
        handle = f.run()
        handle.wait()
    finally:
        user_log.setLevel(logging.NOTSET)
    code, out, _ = cli(capsys, "executions", "logs", handle.exec_id)
    assert code == 0
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b]0;owned\\x07 red \\x1b[31mtext" in out


def test_old_sqlite_database_gets_the_new_tables(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    # The schema before runtime logs existed.
    conn.executescript(
        "CREATE TABLE executions (exec_id TEXT PRIMARY KEY, flow_name TEXT NOT NULL, "
        "flow_ref TEXT, status TEXT NOT NULL, created_at REAL NOT NULL, ended_at REAL, "
        "original_exec_id TEXT, error_type TEXT, inputs TEXT, output TEXT, heartbeat_at REAL);"
        "CREATE TABLE checkpoints (checkpoint_id TEXT PRIMARY KEY, exec_id TEXT NOT NULL, "
        "seq INTEGER NOT NULL, cache_key TEXT, status TEXT NOT NULL, ended_at REAL, "
        "body TEXT NOT NULL);"
        "INSERT INTO executions (exec_id, flow_name, status, created_at) "
        "VALUES ('e1', 'old', 'completed', 1.0);"
    )
    conn.close()
    store = SqliteStore(db)
    line = LogLine("e1", "c1", "corr", "cp", "cp", 1, 0, 2.0, "log", "INFO", "hello")
    store.append_logs([line, line])  # the repeat is stored once
    store.save_execution_metadata("e1", {"k": 1})
    got = store.read_logs("e1")
    assert [(x.message, x.cursor) for x in got] == [("hello", 1)]
    record = store.get_execution("e1")
    assert record is not None and record.metadata == {"k": 1} and record.flow_name == "old"
    store.close()


def test_handler_output_to_stderr_is_not_captured_twice(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import sys

    @checkpoint
    def warns() -> int:
        # A handler writing to the (teed) stderr, as logging.basicConfig sets up.
        handler = logging.StreamHandler(sys.stderr)
        user_log.addHandler(handler)
        try:
            user_log.warning("once")
        finally:
            user_log.removeHandler(handler)
        sys.stdout.write("x" * 20_000)  # no line break: cut, not buffered without bound
        sys.stdout.write("tail\n")
        return 1

    @flow
    def f() -> int:
        return warns()

    handle = f.run()
    handle.wait()
    assert "once" in capsys.readouterr().err  # the terminal still got it
    lines = KitaruClient().executions.logs(handle.exec_id)
    assert (lines[0].stream, lines[0].message) == ("log", "once")
    assert [x.stream for x in lines].count("stderr") == 0
    printed = [x.message for x in lines if x.stream == "stdout"]
    assert len(printed) == 2 and len(printed[0]) > 8000 and printed[1].endswith("tail")


def test_first_lines_from_several_threads_share_one_numbering_and_late_lines_are_dropped(
    user_handler: Collect,
) -> None:
    """A checkpoint execution's capture state is made at its first line, once, by one thread."""
    late: list[threading.Thread] = []

    @checkpoint
    def threaded() -> int:
        barrier = threading.Barrier(4)

        def lines(k: int) -> None:
            barrier.wait()  # the four first lines race for the execution's state
            for n in range(50):
                user_log.info("t%d line %d", k, n)

        threads = [
            threading.Thread(target=contextvars.copy_context().run, args=(lines, k))
            for k in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        gate = threading.Event()

        def after_the_end() -> None:
            gate.wait()
            user_log.info("after the end")

        late.append(threading.Thread(target=contextvars.copy_context().run, args=(after_the_end,)))
        late[0].start()
        late.append(threading.Thread(target=gate.set))
        return 1

    @flow
    def f() -> int:
        result = threaded()
        late[1].start()  # the checkpoint has ended: now its thread logs
        late[0].join()
        return result

    handle = f.run()
    handle.wait()
    lines = KitaruClient().executions.logs(handle.exec_id)
    assert len(lines) == 200
    assert sorted(x.line for x in lines) == list(range(200))
    assert "after the end" not in [x.message for x in lines]
    assert "after the end" in [r.getMessage() for r in user_handler.records]
