"""Outcomes in server mode: the failure record over HTTP, cancel across processes, lost work
shown as lost and resumed, fan-out summaries, filter hints (docs/outcomes.md)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _outcome_flows import CANARY, EXPECTED, canary_flow, counts, four_steps, six_items

from _support import require_server_deps
from kitaru import KitaruClient
from kitaru.runtime._runtime import reset_runtime

pytestmark = pytest.mark.server

HERE = Path(__file__).parent
FLOWS = HERE / "_outcome_flows.py"
KITARU = [sys.executable, "-m", "kitaru.cli"]
HEARTBEAT = 0.25
LOST_AFTER = 1.5


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    require_server_deps()
    from kitaru.server import serve_in_thread

    srv = serve_in_thread(
        port=0, db=tmp_path / "server.db", token=None, lost_after=LOST_AFTER, ping_interval=0.5
    )
    monkeypatch.setenv("KITARU_SERVER_URL", srv.url)
    monkeypatch.setenv("KITARU_HEARTBEAT_INTERVAL", str(HEARTBEAT))
    monkeypatch.setenv("KITARU_TEST_COUNTS", str(tmp_path / "counts"))
    monkeypatch.setenv("KITARU_TEST_GATE", str(tmp_path / "gate"))
    reset_runtime()
    try:
        yield srv
    finally:
        (tmp_path / "gate").touch()
        reset_runtime()
        srv.stop()


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("CI", None)
    return subprocess.run(
        [*KITARU, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def _raw_stream(url: str, exec_id: str) -> bytes:
    """Every byte of the execution's SSE stream, from the start to ``end``."""
    out = b""
    with (
        httpx.Client(timeout=30) as client,
        client.stream("GET", f"{url}/api/v1/executions/{exec_id}/events/stream") as resp,
    ):
        assert resp.status_code == 200
        for chunk in resp.iter_bytes():
            out += chunk
            if b"event: end" in out:
                break
    return out


def _wait_for(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting")


def test_failure_record_on_the_server_and_nowhere_in_the_stream(server: Any) -> None:
    with pytest.raises(RuntimeError):
        canary_flow()
    (record,) = KitaruClient().executions.list()
    cp = KitaruClient().executions.get(record.exec_id).checkpoint("leaky")
    assert (cp.error_type, cp.error_message) == ("RuntimeError", CANARY)
    assert cp.error_traceback is not None and "explode_with_canary" in cp.error_traceback
    shown = _cli("executions", "get", record.exec_id)
    assert shown.returncode == 0, shown.stderr
    assert f"RuntimeError: {CANARY}" in shown.stdout
    raw = _raw_stream(server.url, record.exec_id)
    assert b"kitaru.checkpoint.failed" in raw and b"RuntimeError" in raw  # the stream is real
    assert CANARY.encode() not in raw
    snap = httpx.get(f"{server.url}/api/v1/executions/{record.exec_id}/snapshot", timeout=10)
    assert snap.status_code == 200 and CANARY not in snap.text


def _cancel_requested_at(db: Path, exec_id: str) -> float:
    conn = sqlite3.connect(db)
    try:
        (at,) = conn.execute(
            "SELECT requested_at FROM cancel_requests WHERE exec_id=?", (exec_id,)
        ).fetchone()
    finally:
        conn.close()
    return float(at)


def test_cancel_from_another_process_in_server_mode(server: Any, tmp_path: Path) -> None:
    env = dict(os.environ)
    env.pop("CI", None)
    proc = subprocess.Popen(
        [sys.executable, str(FLOWS), "wait"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        exec_id = proc.stdout.readline().strip()
        _wait_for(lambda: "third" in counts())
        watcher = KitaruClient().executions.events(exec_id)
        first = next(watcher)  # the stream is open while the flow runs
        done = _cli("executions", "cancel", exec_id)
        rest = list(watcher)  # ends by itself
        out, _err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert done.returncode == 0, done.stderr + done.stdout
    assert done.stdout.strip() == f"execution {exec_id} cancelled"
    assert watcher.final_status == "cancelled"  # type: ignore[attr-defined]
    kinds = [e.kind for e in [first, *rest]]
    assert kinds[-1] == "kitaru.checkpoint.failed"
    record = KitaruClient().executions.get(exec_id)
    assert record.status == "cancelled" and record.ended_at is not None
    # The producer stopped within two heartbeat intervals of the request (plus scheduling).
    took = record.ended_at - _cancel_requested_at(tmp_path / "server.db", exec_id)
    assert took < 2 * HEARTBEAT + 0.3, took
    assert record.checkpoint("third").error_type == "KitaruCancelledError"
    assert proc.returncode == 3 and out.splitlines()[-1] == "cancelled"
    watched = _cli("events", exec_id)
    assert watched.returncode == 3  # the exit-code table: cancelled


def test_lost_execution_shows_lost_lanes_and_resumes(server: Any, tmp_path: Path) -> None:
    env = dict(os.environ)
    env.pop("CI", None)
    proc = subprocess.Popen(
        [sys.executable, str(FLOWS), "wait"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        exec_id = proc.stdout.readline().strip()
        _wait_for(lambda: "third" in counts())
        # Wait until third's progress reached the server, then kill the producer.
        _wait_for(
            lambda: any(
                lane["step_name"] == "third"
                for lane in httpx.get(
                    f"{server.url}/api/v1/executions/{exec_id}/snapshot", timeout=5
                ).json()["lanes"]
            )
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    _wait_for(lambda: KitaruClient().executions.get(exec_id).status == "lost", timeout=30)
    record = KitaruClient().executions.get(exec_id)
    snap = httpx.get(f"{server.url}/api/v1/executions/{exec_id}/snapshot", timeout=10).json()
    by_step = {lane["step_name"]: lane for lane in snap["lanes"]}
    assert by_step["third"]["status"] == "lost"
    assert by_step["third"]["ended_at"] == pytest.approx(record.ended_at)
    assert by_step["second"]["status"] == "returned"
    shown = _cli("executions", "get", exec_id)
    rows = {line.split()[0]: line.split()[1] for line in shown.stdout.splitlines() if line}
    assert rows["third"] == "lost" and rows["second"] == "completed"
    watched = _cli("events", exec_id)
    assert watched.returncode == 1
    assert "1 lost" in watched.stdout.splitlines()[-1]
    # Resume: only third and fourth run, and the result is an uninterrupted run's.
    (tmp_path / "gate").touch()
    (tmp_path / "counts").unlink()
    handle = KitaruClient().executions.resume(exec_id)
    assert handle.wait(20) == EXPECTED
    assert counts() == ["third", "fourth"]
    resumed = KitaruClient().executions.get(handle.exec_id)
    assert resumed.original_exec_id == exec_id
    assert [c.status for c in resumed.checkpoints] == [
        "replayed",
        "replayed",
        "completed",
        "completed",
    ]


def test_fan_out_summary_names_the_failed_item_and_lanes_keep_input_order(server: Any) -> None:
    with pytest.raises(RuntimeError):
        six_items()
    (record,) = KitaruClient().executions.list()
    watched = _cli("events", record.exec_id)
    assert watched.returncode == 1
    summary = watched.stdout.splitlines()[-1]
    assert "5 returned, 1 failed (process_4 (item 3): RuntimeError)" in summary
    snap = httpx.get(f"{server.url}/api/v1/executions/{record.exec_id}/snapshot", timeout=10)
    lanes = snap.json()["lanes"]
    assert [lane["item"] for lane in lanes] == [0, 1, 2, 3, 4, 5]
    assert [lane["step_name"] for lane in lanes] == [
        "process",
        "process_2",
        "process_3",
        "process_4",
        "process_5",
        "process_6",
    ]


def test_filter_that_matched_nothing_says_so(server: Any) -> None:
    with pytest.raises(RuntimeError):
        canary_flow()
    (record,) = KitaruClient().executions.list()
    missed = _cli("events", record.exec_id, "--kind", "progress")
    assert missed.returncode == 1  # the execution failed; the filter changes no exit code
    assert "no event matched --kind progress" in missed.stderr
    assert "kitaru.checkpoint.progress" in missed.stderr  # the kinds it does have
    typo = _cli("events", record.exec_id, "--checkpoint", "leak")
    assert "and checkpoints: leaky" in typo.stderr
    hit = _cli("events", record.exec_id, "--kind", "kitaru.checkpoint.progress")
    assert "no event matched" not in hit.stderr


def test_filter_hint_on_a_completed_run_exits_0(server: Any, tmp_path: Path) -> None:
    (tmp_path / "gate").touch()
    handle = four_steps.run(1)
    assert handle.wait(20) == EXPECTED
    missed = _cli("events", handle.exec_id, "--kind", "progress")
    assert missed.returncode == 0, missed.stderr
    lines = missed.stderr.splitlines()
    assert "kitaru: no event matched --kind progress" in lines
    assert (
        "kitaru: hint: the execution has kinds: kitaru.checkpoint.returned, "
        "kitaru.checkpoint.started" in lines
    )
    assert "kitaru: hint: and checkpoints: first, fourth, second, third" in lines
