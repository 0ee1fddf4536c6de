"""Cancel, Ctrl-C and resume in local database mode (docs/outcomes.md)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _outcome_flows import EXPECTED, counts, four_steps

import kitaru
from kitaru import KitaruCancelledError, KitaruClient, KitaruStateError
from kitaru.runtime._runtime import reset_runtime

HERE = Path(__file__).parent
FLOWS = HERE / "_outcome_flows.py"
KITARU = [sys.executable, "-m", "kitaru.cli"]
HEARTBEAT = 0.25


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Counting and gate files for the flows; the gate starts closed."""
    monkeypatch.setenv("KITARU_TEST_COUNTS", str(tmp_path / "counts"))
    monkeypatch.setenv("KITARU_TEST_GATE", str(tmp_path / "gate"))
    monkeypatch.setenv("KITARU_HEARTBEAT_INTERVAL", str(HEARTBEAT))
    reset_runtime()
    yield tmp_path
    (tmp_path / "gate").touch()


def _wait_for(predicate: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting")


def _reset_counts(files: Path) -> None:
    (files / "counts").unlink(missing_ok=True)


def _resume_and_check(files: Path, exec_id: str) -> None:
    """Resume runs only third and fourth and gives the uninterrupted result."""
    _reset_counts(files)
    (files / "gate").touch()
    handle = KitaruClient().executions.resume(exec_id)
    assert handle.wait(20) == EXPECTED
    assert counts() == ["third", "fourth"]
    record = KitaruClient().executions.get(handle.exec_id)
    assert record.status == "completed" and record.original_exec_id == exec_id
    assert [(c.step_name, c.status) for c in record.checkpoints] == [
        ("first", "replayed"),
        ("second", "replayed"),
        ("third", "completed"),
        ("fourth", "completed"),
    ]


def test_handle_cancel_then_resume(files: Path) -> None:
    handle = four_steps.run(1)
    _wait_for(lambda: "third" in counts())
    handle.cancel()
    with pytest.raises(KitaruCancelledError):
        handle.wait(10)
    assert handle.status == "cancelled"
    record = KitaruClient().executions.get(handle.exec_id)
    assert record.status == "cancelled"
    third = record.checkpoint("third")
    assert (third.status, third.error_type) == ("failed", "KitaruCancelledError")
    assert [c.step_name for c in record.checkpoints] == ["first", "second", "third"]
    assert counts() == ["first", "second", "third"]  # fourth never started
    _resume_and_check(files, handle.exec_id)


def test_resume_after_a_failure_the_user_fixed(files: Path, monkeypatch) -> None:
    (files / "gate").touch()
    monkeypatch.setenv("KITARU_TEST_BREAK", "third")
    handle = four_steps.run(1)
    with pytest.raises(RuntimeError, match="third is broken"):
        handle.wait(10)
    assert KitaruClient().executions.get(handle.exec_id).status == "failed"
    monkeypatch.delenv("KITARU_TEST_BREAK")  # the fix
    _resume_and_check(files, handle.exec_id)
    # The same resume through the flow itself.
    _reset_counts(files)
    assert four_steps.resume(handle.exec_id).wait(10) == EXPECTED
    assert counts() == ["third", "fourth"]


def test_only_failed_lost_or_cancelled_can_be_resumed(files: Path) -> None:
    (files / "gate").touch()
    handle = four_steps.run(1)
    assert handle.wait(10) == EXPECTED
    with pytest.raises(KitaruStateError, match="only failed, lost, cancelled"):
        KitaruClient().executions.resume(handle.exec_id)


def _producer(files: Path, mode: str) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env.pop("CI", None)
    return subprocess.Popen(
        [sys.executable, str(FLOWS), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _only_execution() -> str:
    (record,) = KitaruClient().executions.list()
    return record.exec_id


@pytest.mark.parametrize("mode", ["wait", "call"])
def test_sigint_cancels_and_exits_promptly_with_one_line(files: Path, mode: str) -> None:
    proc = _producer(files, mode)
    try:
        _wait_for(lambda: "third" in counts())
        time.sleep(0.1)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=10)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert took < 2.0, took
    assert proc.returncode == 130
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("kitaru: execution ") and "cancelled" in lines[0]
    assert "Traceback" not in err
    exec_id = _only_execution()
    assert lines[0].split()[2] == exec_id
    record = KitaruClient().executions.get(exec_id)
    assert record.status == "cancelled"
    assert record.checkpoint("third").error_type == "KitaruCancelledError"
    assert counts() == ["first", "second", "third"]
    if mode == "call":
        _resume_and_check(files, exec_id)


def _cancel_requested_at(home: Path, exec_id: str) -> float:
    conn = sqlite3.connect(home / "kitaru.db")
    try:
        (at,) = conn.execute(
            "SELECT requested_at FROM cancel_requests WHERE exec_id=?", (exec_id,)
        ).fetchone()
    finally:
        conn.close()
    return float(at)


def test_cancel_from_another_process_reaches_the_producer(files: Path) -> None:
    proc = _producer(files, "wait")
    try:
        assert proc.stdout is not None
        exec_id = proc.stdout.readline().strip()
        _wait_for(lambda: "third" in counts())
        done = subprocess.run(
            [*KITARU, "executions", "cancel", exec_id],
            capture_output=True,
            text=True,
            timeout=60,
        )
        out, _err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"execution {exec_id} cancelled"
    assert proc.returncode == 3 and out.splitlines()[-1] == "cancelled"
    record = KitaruClient().executions.get(exec_id)
    assert record.status == "cancelled" and record.ended_at is not None
    home = Path(str(kitaru._config.home_dir()))
    # Stopped within two heartbeat intervals of the request (plus a little scheduling).
    assert record.ended_at - _cancel_requested_at(home, exec_id) < 2 * HEARTBEAT + 0.2
    # Cancelling a finished execution changes nothing, and says so.
    again = subprocess.run(
        [*KITARU, "executions", "cancel", exec_id], capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 0 and "cancelled" in again.stdout
    # `get` shows the verdict; `resume` continues it from the CLI.
    shown = subprocess.run(
        [*KITARU, "executions", "get", exec_id], capture_output=True, text=True, timeout=60
    )
    assert "status     cancelled" in shown.stdout
    (files / "gate").touch()
    _reset_counts(files)
    resumed = subprocess.run(
        [*KITARU, "executions", "resume", exec_id, "--import", str(FLOWS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert counts() == ["third", "fourth"]


def test_cancel_of_a_flow_in_this_process_is_immediate(files: Path) -> None:
    handle = four_steps.run(1)
    _wait_for(lambda: "third" in counts())
    record = KitaruClient().executions.cancel(handle.exec_id, wait=5)
    assert record.status == "cancelled"
