"""``kitaru executions list | get | replay`` in local database mode (no server needed)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import orjson
import pytest
from _cli_kit import PRODUCER, base_env, run_cli


def run_producer(tmp_path: Path, *args: str) -> str:
    """Run the producer flow to its end in local database mode; returns its exec ID."""
    gate = tmp_path / "gate"
    gate.touch()  # open from the start: the flow runs straight through
    done = subprocess.run(
        [sys.executable, str(PRODUCER), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=base_env(KITARU_TEST_GATE=str(gate)),
    )
    return done.stdout.splitlines()[0].strip()


@pytest.fixture
def executions(tmp_path: Path) -> tuple[str, str]:
    return run_producer(tmp_path), run_producer(tmp_path, "--fail")


def test_list_shows_newest_first(executions: tuple[str, str]) -> None:
    ok, failed = executions
    table = run_cli(["executions", "list"])
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["EXEC_ID", "FLOW", "STATUS", "STARTED", "DURATION"]
    assert [line.split()[:3] for line in lines[1:]] == [
        [failed, "cli_probe", "failed"],
        [ok, "cli_probe", "completed"],
    ]
    as_json = run_cli(["executions", "list", "--json", "--status", "completed"])
    records = [orjson.loads(line) for line in as_json.stdout.splitlines()]
    assert [(r["exec_id"], r["status"]) for r in records] == [(ok, "completed")]
    assert records[0]["trace_id"] == uuid.UUID(ok).hex
    limited = run_cli(["executions", "list", "--limit", "1", "--json"])
    assert [orjson.loads(line)["exec_id"] for line in limited.stdout.splitlines()] == [failed]
    bad = run_cli(["executions", "list", "--limit", "0"])
    assert bad.returncode == 2 and "positive integer" in bad.stderr


def test_get_shows_checkpoints_trace_and_link(executions: tuple[str, str]) -> None:
    ok, failed = executions
    shown = run_cli(
        ["executions", "get", failed],
        KITARU_TRACE_URL_TEMPLATE="http://127.0.0.1:16686/trace/{trace_id}",
    )
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert out.splitlines()[0] == f"execution {failed}"
    assert "status     failed (ValueError)" in out
    assert f"trace      {uuid.UUID(failed).hex}" in out
    assert f"trace link http://127.0.0.1:16686/trace/{uuid.UUID(failed).hex}" in out
    lines = out.splitlines()
    table = lines[lines.index(next(x for x in lines if x.startswith("STEP"))) + 1 :][:3]
    steps = {line.split()[0]: line.split()[1:] for line in table}
    assert steps["fetch"][0] == "completed"
    assert steps["fetch_3"][0] == "failed" and steps["fetch_3"][-1] == "ValueError"
    # The record is the private place for the failure's text, and `get` prints it.
    assert lines[-2:] == ["fetch_3 failed:", "    ValueError: api_key=do-not-print"]
    record = orjson.loads(run_cli(["executions", "get", ok, "--json"]).stdout)
    assert record["exec_id"] == ok and record["status"] == "completed"
    assert sorted(cp["step_name"] for cp in record["checkpoints"]) == [
        "fetch",
        "fetch_2",
        "fetch_3",
    ]


@pytest.mark.parametrize("exec_id", [str(uuid.UUID(int=5)), "nope"])
def test_get_unknown_execution_exits_2(exec_id: str) -> None:
    result = run_cli(["executions", "get", exec_id])
    assert result.returncode == 2
    assert f"no execution with ID {exec_id!r}" in result.stderr


def test_replay_from_a_step(executions: tuple[str, str]) -> None:
    ok, _ = executions
    replayed = run_cli(
        ["executions", "replay", ok, "--from", "fetch_2", "--import", str(PRODUCER), "--json"],
        KITARU_TEST_GATE=str(PRODUCER),  # an existing file: the gate is open
    )
    assert replayed.returncode == 0, replayed.stderr
    record = orjson.loads(replayed.stdout)
    assert record["original_exec_id"] == ok
    assert record["status"] == "completed"
    assert record["exec_id"] != ok
    statuses = {cp["step_name"]: cp["status"] for cp in record["checkpoints"]}
    assert statuses == {"fetch": "replayed", "fetch_2": "completed", "fetch_3": "completed"}
    assert f"replaying {ok} as {record['exec_id']}" in replayed.stderr


def test_replay_that_fails_again_exits_1(executions: tuple[str, str]) -> None:
    _, failed = executions
    result = run_cli(
        ["executions", "replay", failed, "--import", str(PRODUCER)],
        KITARU_TEST_GATE=str(PRODUCER),
        KITARU_TEST_FAIL="1",
    )
    assert result.returncode == 1, result.stderr
    assert "failed (ValueError)" in result.stdout
    assert f"replay of  {failed}" in result.stdout


def test_replay_without_the_flow_exits_2_with_a_hint(executions: tuple[str, str]) -> None:
    ok, _ = executions
    result = run_cli(["executions", "replay", ok])
    assert result.returncode == 2
    assert "could not be imported" in result.stderr
    assert "--import" in result.stderr
    missing = run_cli(["executions", "replay", ok, "--import", "no_such_module_xyz"])
    assert missing.returncode == 2
    assert "no_such_module_xyz" in missing.stderr
