"""The failure reason lives in the durable record, and only there (docs/outcomes.md)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from _outcome_flows import CANARY, canary_flow

import kitaru
from kitaru import KitaruClient, checkpoint, flow
from kitaru.runtime._runtime import reset_runtime
from kitaru.store._failure import MAX_TRACEBACK_CHARS, describe_failure
from kitaru.testing import capture_events

KITARU = [sys.executable, "-m", "kitaru.cli"]


def _store_bytes(home: Path) -> bytes:
    """Every byte of the local database, WAL included (nothing is hidden by checkpointing)."""
    return b"".join(p.read_bytes() for p in sorted(home.glob("kitaru.db*")))


def test_record_keeps_type_message_and_traceback(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        canary_flow()
    (record,) = KitaruClient().executions.list()
    record = KitaruClient().executions.get(record.exec_id)
    assert record.status == "failed"
    (cp,) = record.checkpoints
    assert (cp.error_type, cp.error_message) == ("RuntimeError", CANARY)
    assert cp.error_traceback is not None
    assert "explode_with_canary" in cp.error_traceback  # names the raising function
    assert cp.error_traceback.rstrip().endswith(f"RuntimeError: {CANARY}")
    (attempt,) = cp.attempts
    assert (attempt.error_type, attempt.error_message) == ("RuntimeError", CANARY)


def test_cli_get_prints_the_message(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        canary_flow()
    (record,) = KitaruClient().executions.list()
    shown = subprocess.run(
        [*KITARU, "executions", "get", record.exec_id],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert f"RuntimeError: {CANARY}" in shown.stdout
    assert "explode_with_canary" not in shown.stdout  # the traceback only with --traceback
    full = subprocess.run(
        [*KITARU, "executions", "get", record.exec_id, "--traceback"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "explode_with_canary" in full.stdout


def test_type_only_switch_keeps_the_canary_out_of_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KITARU_ERROR_DETAIL", "type")
    reset_runtime()
    with pytest.raises(RuntimeError):
        canary_flow()
    (record,) = KitaruClient().executions.list()
    (cp,) = KitaruClient().executions.get(record.exec_id).checkpoints
    assert (cp.error_type, cp.error_message, cp.error_traceback) == ("RuntimeError", None, None)
    reset_runtime()  # closes the database
    home = Path(str(kitaru._config.home_dir()))
    raw = _store_bytes(home)
    assert b"RuntimeError" in raw  # the store is really what was read
    assert CANARY.encode() not in raw
    # And with the default, the same bytes do hold it (the check above can fail).
    monkeypatch.delenv("KITARU_ERROR_DETAIL")
    with pytest.raises(RuntimeError):
        canary_flow()
    reset_runtime()
    assert CANARY.encode() in _store_bytes(home)


def test_bad_switch_value_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KITARU_ERROR_DETAIL", "message")
    reset_runtime()
    with pytest.raises(kitaru.KitaruUsageError, match="KITARU_ERROR_DETAIL"):
        canary_flow()


def test_canary_in_no_live_event() -> None:
    with capture_events() as cap:
        with pytest.raises(RuntimeError):
            canary_flow()
        raw = repr([dict(e.payload) for e in cap.events]) + repr(cap.transport.raw)
        assert [e.kind for e in cap.events][-1] == "kitaru.checkpoint.failed"
        assert CANARY not in raw
        (record,) = cap.store.list_executions()
        (cp,) = cap.store.get_execution(record.exec_id).checkpoints  # type: ignore[union-attr]
        assert cp.error_message == CANARY  # ...while the record has it


def test_long_traceback_is_bounded_with_a_visible_mark() -> None:
    def deep(n: int) -> None:
        if n == 0:
            raise ValueError("x" * 200_000)
        deep(n - 1)

    try:
        deep(300)
    except ValueError as exc:
        detail = describe_failure(exc)
    assert detail.traceback is not None and detail.message is not None
    assert len(detail.traceback) < MAX_TRACEBACK_CHARS + 200
    assert "[kitaru: truncated" in detail.traceback
    assert "in deep" in detail.traceback
    assert "truncated" in detail.message and len(detail.message) < 9000
    assert describe_failure(ValueError("short")).traceback is not None
    assert "truncated" not in (describe_failure(ValueError("short")).message or "")


def test_retried_attempts_each_keep_their_reason() -> None:
    tries = {"n": 0}

    @checkpoint(retries=1)
    def flaky() -> int:
        tries["n"] += 1
        if tries["n"] == 1:
            raise ConnectionError("first try refused")
        return 1

    @flow
    def f() -> int:
        return flaky()

    assert f() == 1
    (record,) = KitaruClient().executions.list()
    (cp,) = KitaruClient().executions.get(record.exec_id).checkpoints
    assert cp.status == "completed" and cp.retries == 1
    assert [a.error_message for a in cp.attempts] == ["first try refused", None]
    assert cp.error_message is None


def test_sqlite_file_is_the_local_record(tmp_path: Path) -> None:
    # The record is in the store a second process reads: not in memory only.
    with pytest.raises(RuntimeError):
        canary_flow()
    reset_runtime()
    home = Path(str(kitaru._config.home_dir()))
    conn = sqlite3.connect(home / "kitaru.db")
    bodies = [r[0] for r in conn.execute("SELECT body FROM checkpoints")]
    conn.close()
    assert any(CANARY in b for b in bodies)
