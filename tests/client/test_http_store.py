"""``HttpStore`` over a MockTransport REST double backed by a real ``SqliteStore``."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from kitaru import KitaruBackendError
from kitaru.remote import HttpStore
from kitaru.store import AttemptRecord, CheckpointRecord, ExecutionRecord, SqliteStore, StoredValue

URL = "http://records.test"


class RestDouble:
    """The record endpoints of the protocol, served from a SqliteStore."""

    def __init__(self, tmp_path: Path, token: str | None = None) -> None:
        self.store = SqliteStore(tmp_path / "server.db")
        self.token = token
        self.requests: list[httpx.Request] = []
        self.fail_next: list[Exception | int] = []
        self.transport = httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.fail_next:
            failure = self.fail_next.pop(0)
            if isinstance(failure, Exception):
                raise failure
            return httpx.Response(failure, json={"detail": "injected"})
        if self.token and request.headers.get("authorization") != f"Bearer {self.token}":
            return httpx.Response(401, json={"detail": "unauthorized"})
        path, method = request.url.path, request.method
        body: Any = orjson.loads(request.content) if request.content else None
        if path == "/api/v1/executions" and method == "POST":
            assert "checkpoints" not in body
            self.store.create_execution(ExecutionRecord.from_dict(body))
            return httpx.Response(201, json={})
        if path == "/api/v1/executions" and method == "GET":
            p = request.url.params
            rows = self.store.list_executions(
                flow_name=p.get("flow"), status=p.get("status"), limit=int(p["limit"])
            )
            return httpx.Response(200, json=[r.to_dict() for r in rows])
        if path == "/api/v1/checkpoints/cached":
            found = self.store.find_cached(request.url.params["key"])
            if found is None:
                return httpx.Response(404, json={"detail": "no cached checkpoint"})
            return httpx.Response(200, json=found.to_dict())
        m = re.fullmatch(r"/api/v1/executions/([^/]+)(/.*)?", path)
        assert m, path
        exec_id, rest = m.group(1), m.group(2) or ""
        if rest == "" and method == "GET":
            rec = self.store.get_execution(exec_id)
            if rec is None:
                return httpx.Response(404, json={"detail": f"no execution {exec_id}"})
            return httpx.Response(200, json=rec.to_dict())
        if rest == "/finish":
            out = body["output"]
            self.store.finish_execution(
                exec_id,
                body["status"],
                output=StoredValue(**out) if out else None,
                error_type=body["error_type"],
            )
            return httpx.Response(200, json={})
        if rest == "/heartbeat":
            self.store.heartbeat(exec_id)
            return httpx.Response(204)
        if rest.startswith("/checkpoints/") and method == "PUT":
            self.store.save_checkpoint(CheckpointRecord.from_dict(body))
            return httpx.Response(200, json={})
        return httpx.Response(404, json={"detail": "no route"})


def _execution(exec_id: str = "e-1") -> ExecutionRecord:
    return ExecutionRecord(
        exec_id=exec_id,
        flow_name="report_flow",
        flow_ref="m:report_flow",
        status="running",
        created_at=1.0,
        inputs=StoredValue("json", '{"args":[],"kwargs":{}}'),
    )


def _checkpoint(exec_id: str = "e-1") -> CheckpointRecord:
    return CheckpointRecord(
        checkpoint_id="cp-1",
        exec_id=exec_id,
        name="build_report",
        step_name="build_report",
        seq=0,
        checkpoint_type="checkpoint",
        status="completed",
        attempts=[AttemptRecord(0, "kitaru.checkpoint:build_report:" + "a" * 32, "completed", 1.0)],
        cache_key="k1",
        output=StoredValue("json", '"Report"'),
    )


def test_round_trip(tmp_path: Path) -> None:
    rest = RestDouble(tmp_path, token="tok")
    store = HttpStore(URL, "tok", transport=rest.transport)
    store.create_execution(_execution())
    store.save_checkpoint(_checkpoint())
    store.heartbeat("e-1")
    store.finish_execution("e-1", "completed", output=StoredValue("json", "1"))
    got = store.get_execution("e-1")
    assert got is not None
    assert got.status == "completed" and got.load_output() == 1
    assert [c.step_name for c in got.checkpoints] == ["build_report"]
    assert got.checkpoints[0].load_output() == "Report"
    assert [r.exec_id for r in store.list_executions(flow_name="report_flow")] == ["e-1"]
    assert store.list_executions(status="failed") == []
    cached = store.find_cached("k1")
    assert cached is not None and cached.checkpoint_id == "cp-1"
    assert store.find_cached("nope") is None
    assert store.get_execution("missing") is None
    assert all(r.headers["authorization"] == "Bearer tok" for r in rest.requests)
    store.close()


def test_ids_cannot_add_path_levels(tmp_path: Path) -> None:
    rest = RestDouble(tmp_path)
    store = HttpStore(URL, transport=rest.transport)
    assert store.get_execution("a/b") is None
    assert rest.requests[-1].url.raw_path == b"/api/v1/executions/a%2Fb"


def test_writes_ride_out_a_restart(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rest = RestDouble(tmp_path)
    rest.fail_next = [httpx.ConnectError("down"), 503, httpx.ReadTimeout("slow"), 502]
    store = HttpStore(URL, transport=rest.transport, retry_seconds=10)
    with caplog.at_level(logging.INFO, logger="kitaru"):
        store.create_execution(_execution())
    assert store.get_execution("e-1") is not None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and URL in warnings[0].getMessage()
    assert any("answers again" in r.getMessage() for r in caplog.records)


def test_writes_fail_clearly_after_the_retry_budget(tmp_path: Path) -> None:
    rest = RestDouble(tmp_path)
    rest.fail_next = [httpx.ConnectError("down")] * 1000
    store = HttpStore(URL, transport=rest.transport, retry_seconds=0.3)
    with pytest.raises(KitaruBackendError) as info:
        store.finish_execution("e-1", "completed")
    message = str(info.value)
    assert "finish execution e-1" in message and URL in message and "ConnectError" in message
    assert len(rest.requests) >= 2


def test_auth_and_bad_requests_are_not_retried(tmp_path: Path) -> None:
    rest = RestDouble(tmp_path, token="right")
    store = HttpStore(URL, "wrong", transport=rest.transport, retry_seconds=10)
    with pytest.raises(KitaruBackendError, match="authorization failed"):
        store.create_execution(_execution())
    assert len(rest.requests) == 1
    rest.fail_next = [422]
    with pytest.raises(KitaruBackendError, match="HTTP 422: injected"):
        HttpStore(URL, "right", transport=rest.transport).save_checkpoint(_checkpoint())


def test_heartbeat_is_one_attempt(tmp_path: Path) -> None:
    rest = RestDouble(tmp_path)
    rest.fail_next = [503, 503]
    store = HttpStore(URL, transport=rest.transport, retry_seconds=10)
    with pytest.raises(KitaruBackendError, match="heartbeat"):
        store.heartbeat("e-1")
    assert len(rest.requests) == 1


def test_record_retry_seconds_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KITARU_RECORD_RETRY_SECONDS", "7.5")
    assert HttpStore(URL).retry_seconds == 7.5
    assert HttpStore(URL, retry_seconds=2).retry_seconds == 2
