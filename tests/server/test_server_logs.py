"""Runtime logs, metadata and usage in server mode: stored on the server, never live events."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from _serverkit import collect, new_execution

import kitaru
from kitaru import KitaruClient, _wire, checkpoint, flow
from kitaru.runtime._runtime import reset_runtime

pytestmark = [pytest.mark.server]

log = logging.getLogger("kitaru_tests.server_user")


@checkpoint
def secretive(n: int) -> int:
    log.warning("hidden value %d", n)
    print("printed hidden")
    kitaru.log(score=0.9, model="m")
    kitaru.record_usage("m", input_tokens=3, output_tokens=2, cost_usd=0.1)
    kitaru.progress("working")
    return n


@flow
def secret_flow() -> int:
    kitaru.log(label="flow-level")
    return secretive(41)


@pytest.fixture
def server_mode(make_server: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    srv = make_server()
    monkeypatch.setenv("KITARU_SERVER_URL", srv.url)
    reset_runtime()
    return srv


def test_logs_metadata_and_usage_live_on_the_server(server_mode: Any) -> None:
    log.setLevel(logging.INFO)
    try:
        handle = secret_flow.run()
        handle.wait()
    finally:
        log.setLevel(logging.NOTSET)
    client = KitaruClient(server_url=server_mode.url)
    lines = client.executions.logs(handle.exec_id)
    assert [(x.checkpoint, x.level, x.message) for x in lines] == [
        ("secretive", "WARNING", "hidden value 41"),
        ("secretive", "STDOUT", "printed hidden"),
    ]
    record = client.executions.get(handle.exec_id)
    assert record.metadata == {"label": "flow-level"}
    assert record.checkpoint("secretive").attempts[0].metadata == {"score": 0.9, "model": "m"}
    assert record.usage_summary()["total"]["total_tokens"] == 5
    # Logs are private records: the live events carry none of their text.
    frames = collect(server_mode.url, handle.exec_id)
    assert frames[-1].event == "end"
    raw = b"".join(f.data.encode() for f in frames)
    assert b"hidden" not in raw and b"flow-level" not in raw and b"score" not in raw
    kinds = [orjson.loads(f.data)["kind"] for f in frames if f.event != "end"]
    assert "kitaru.checkpoint.progress" in kinds


def test_log_lines_are_validated(server: Any, client: httpx.Client) -> None:
    exec_id = new_execution(client)
    line = {
        "exec_id": exec_id,
        "checkpoint_id": "cp",
        "correlation_id": "corr",
        "checkpoint": "c",
        "step_name": "c",
        "attempt": 1,
        "line": 0,
        "ts": 1.0,
        "stream": "log",
        "level": "INFO",
        "message": "ok",
    }
    path = _wire.path_logs(exec_id)
    assert client.post(path, json=[line, line]).status_code == 200
    assert [x["message"] for x in client.get(path).json()["lines"]] == ["ok"]
    bad = client.post(path, json=[{**line, "stream": "elsewhere"}])
    assert bad.status_code == 400 and "stream" in bad.text
    other = client.post(path, json=[{**line, "exec_id": "another"}])
    assert other.status_code == 400 and "exec_id" in other.text
    assert client.post(_wire.path_logs("unknown-exec"), json=[]).status_code == 404
    meta = client.put(_wire.path_execution_metadata(exec_id), json={"metadata": [1]})
    assert meta.status_code == 400 and "metadata" in meta.text
    assert client.get(path, params={"after": "x"}).status_code == 400


def test_follow_stream_resumes_after_a_cursor(server: Any, client: httpx.Client) -> None:
    exec_id = new_execution(client)
    lines = [
        {
            "exec_id": exec_id,
            "checkpoint_id": "cp",
            "correlation_id": "corr",
            "checkpoint": "c",
            "step_name": "c",
            "attempt": 1,
            "line": i,
            "ts": 1.0,
            "stream": "stdout",
            "level": "STDOUT",
            "message": f"m{i}",
        }
        for i in range(4)
    ]
    client.post(_wire.path_logs(exec_id), json=lines)
    client.post(_wire.path_finish(exec_id), json={"status": "completed"})
    from httpx_sse import connect_sse

    def read(headers: dict[str, str]) -> list[Any]:
        with connect_sse(client, "GET", _wire.path_logs_stream(exec_id), headers=headers) as source:
            return [s for s in source.iter_sse() if s.event in ("log", "end")]

    every = read({})
    assert [s.event for s in every] == ["log"] * 4 + ["end"]
    cursors = [s.id for s in every[:4]]
    resumed = read({"Last-Event-ID": cursors[1]})
    assert [orjson.loads(s.data)["message"] for s in resumed[:-1]] == ["m2", "m3"]
    assert orjson.loads(resumed[-1].data)["status"] == "completed"


def test_usage_dashboard_sums_per_checkpoint_name(server_mode: Any) -> None:
    for _ in range(2):
        handle = secret_flow.run()
        handle.wait()
    with httpx.Client(base_url=server_mode.url, timeout=10) as c:
        body = c.get(_wire.PATH_USAGE, params={"limit": 10}).json()
        assert body["executions"] == 2
        row = body["checkpoints"]["secretive"]
        assert (row["executions"], row["input_tokens"], row["output_tokens"]) == (2, 6, 4)
        assert row["cost_usd"] == pytest.approx(0.2)
        assert c.get(_wire.PATH_USAGE, params={"flow": "other"}).json()["checkpoints"] == {}
