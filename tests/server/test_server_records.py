"""Record endpoints, auth, info and OpenAPI against a real server."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from _serverkit import (
    collect,
    error_detail,
    execution_body,
    finish,
    new_execution,
    post_events,
    wire_event,
)

from kitaru import __version__, _wire

pytestmark = pytest.mark.server


def checkpoint_body(exec_id: str, checkpoint_id: str = "cp-1", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "checkpoint_id": checkpoint_id,
        "exec_id": exec_id,
        "name": "build_report",
        "step_name": "build_report",
        "seq": 0,
        "checkpoint_type": "checkpoint",
        "status": "completed",
        "attempts": [
            {
                "attempt": 0,
                "correlation_id": "kitaru.checkpoint:build_report:" + "a" * 32,
                "status": "completed",
                "started_at": 1.0,
                "ended_at": 2.0,
                "error_type": None,
            }
        ],
        "started_at": 1.0,
        "ended_at": 2.0,
        "cache_key": None,
        "reused_from": None,
        "error_type": None,
        "output": {"format": "json", "data": '"Report"'},
    }
    body.update(fields)
    return body


def test_health_and_info(client: httpx.Client) -> None:
    assert client.get(_wire.PATH_HEALTH).json() == {"status": "ok"}
    info = client.get(_wire.PATH_INFO).json()
    assert info["version"] == __version__ and info["streaming"] is True
    assert info["auth"] is False and info["max_event_bytes"] == 64 * 1024


def test_openapi_schema_lists_the_routes(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for path in (
        _wire.PATH_EXECUTIONS,
        _wire.path_execution("{exec_id}"),
        _wire.path_events("{exec_id}"),
        _wire.path_stream("{exec_id}"),
        _wire.path_cached_checkpoint(),
    ):
        assert path in paths, path
    ingest = paths[_wire.path_events("{exec_id}")]["post"]
    assert ingest["requestBody"]["content"]["application/json"]["schema"]["type"] == "array"
    assert (
        "text/event-stream"
        in paths[_wire.path_stream("{exec_id}")]["get"]["responses"]["200"]["content"]
    )


def test_create_get_list_and_finish(client: httpx.Client) -> None:
    body = execution_body()
    r = client.post(_wire.PATH_EXECUTIONS, json=body)
    assert r.status_code == 201
    exec_id = body["exec_id"]
    got = client.get(_wire.path_execution(exec_id)).json()
    assert got["exec_id"] == exec_id and got["status"] == "running"
    assert got["inputs"] == {"format": "json", "data": "[]"} and got["checkpoints"] == []
    other = new_execution(client, flow_name="other_flow")
    listed = client.get(_wire.PATH_EXECUTIONS, params={"flow": "demo_flow"}).json()
    assert [e["exec_id"] for e in listed] == [exec_id]
    assert {e["exec_id"] for e in client.get(_wire.PATH_EXECUTIONS).json()} == {exec_id, other}
    assert len(client.get(_wire.PATH_EXECUTIONS, params={"limit": 1}).json()) == 1
    r = client.post(
        _wire.path_finish(exec_id),
        json={"status": "failed", "output": None, "error_type": "ValueError"},
    )
    assert r.status_code == 200 and r.json()["status"] == "failed"
    assert r.json()["error_type"] == "ValueError"
    failed = client.get(_wire.PATH_EXECUTIONS, params={"status": "failed"}).json()
    assert [e["exec_id"] for e in failed] == [exec_id]


def test_create_is_idempotent_for_the_same_body_and_conflicts_otherwise(
    client: httpx.Client,
) -> None:
    body = execution_body()
    assert client.post(_wire.PATH_EXECUTIONS, json=body).status_code == 201
    client.post(_wire.path_heartbeat(body["exec_id"]))
    again = client.post(_wire.PATH_EXECUTIONS, json=body)
    assert again.status_code == 200 and again.json()["exec_id"] == body["exec_id"]
    changed = dict(body, flow_name="another_flow")
    r = client.post(_wire.PATH_EXECUTIONS, json=changed)
    assert r.status_code == 409 and error_detail(r)["kind"] == _wire.ERROR_CONFLICT
    assert client.get(_wire.path_execution(body["exec_id"])).json()["flow_name"] == "demo_flow"


def test_unknown_execution_is_404_with_json_detail(client: httpx.Client) -> None:
    for method, path in (
        ("GET", _wire.path_execution("nope")),
        ("POST", _wire.path_heartbeat("nope")),
        ("GET", _wire.path_stream("nope")),
    ):
        r = client.request(method, path)
        assert r.status_code == 404, (method, path)
        assert error_detail(r)["kind"] == _wire.ERROR_EXECUTION_UNKNOWN
    r = client.post(
        _wire.path_finish("nope"), json={"status": "completed", "output": None, "error_type": None}
    )
    assert r.status_code == 404
    r = client.put(_wire.path_checkpoint("nope", "cp-1"), json=checkpoint_body("nope"))
    assert r.status_code == 404


def test_finish_is_final_and_answers_the_actual_status(client: httpx.Client) -> None:
    exec_id = new_execution(client)
    assert finish(client, exec_id, "completed")["status"] == "completed"
    again = finish(client, exec_id, "failed")
    assert again["status"] == "completed"


def test_heartbeat_records_time_and_answers_status(client: httpx.Client) -> None:
    exec_id = new_execution(client)
    before = time.time()
    r = client.post(_wire.path_heartbeat(exec_id))
    assert r.status_code == 200 and r.json() == {
        "exec_id": exec_id,
        "status": "running",
        "cancel_requested": False,
    }
    got = client.get(_wire.path_execution(exec_id)).json()
    assert got["heartbeat_at"] >= before - 1


def test_cancel_request_reaches_the_heartbeat_answer(client: httpx.Client) -> None:
    exec_id = new_execution(client)
    r = client.post(_wire.path_cancel(exec_id))
    assert r.status_code == 200 and r.json()["status"] == "running"
    assert client.post(_wire.path_cancel(exec_id)).status_code == 200  # idempotent
    beat = client.post(_wire.path_heartbeat(exec_id)).json()
    assert beat["cancel_requested"] is True
    done = client.post(_wire.path_finish(exec_id), json={"status": "cancelled"})
    assert done.status_code == 200 and done.json()["status"] == "cancelled"
    assert client.post(_wire.path_cancel(exec_id)).json()["status"] == "cancelled"
    unknown = client.post(_wire.path_cancel("no-such-execution"))
    assert unknown.status_code == 404


def test_checkpoints_and_cache_lookup(client: httpx.Client) -> None:
    exec_id = new_execution(client)
    r = client.get(_wire.path_cached_checkpoint(), params={"key": "k1"})
    assert r.status_code == 404 and error_detail(r)["kind"] == _wire.ERROR_NOT_FOUND
    running = checkpoint_body(exec_id, status="running", cache_key="k1", output=None)
    assert client.put(_wire.path_checkpoint(exec_id, "cp-1"), json=running).status_code == 200
    assert client.get(_wire.path_cached_checkpoint(), params={"key": "k1"}).status_code == 404
    done = checkpoint_body(exec_id, cache_key="k1")
    assert client.put(_wire.path_checkpoint(exec_id, "cp-1"), json=done).status_code == 200
    got = client.get(_wire.path_execution(exec_id)).json()
    assert [c["step_name"] for c in got["checkpoints"]] == ["build_report"]
    assert got["checkpoints"][0]["attempts"][0]["attempt"] == 0
    cached = client.get(_wire.path_cached_checkpoint(), params={"key": "k1"})
    assert cached.status_code == 200 and cached.json()["output"]["data"] == '"Report"'


def test_checkpoint_ids_must_match_the_path(client: httpx.Client) -> None:
    exec_id = new_execution(client)
    r = client.put(_wire.path_checkpoint(exec_id, "cp-2"), json=checkpoint_body(exec_id))
    assert r.status_code == 400 and "checkpoint_id" in error_detail(r)["message"]
    other = new_execution(client)
    r = client.put(_wire.path_checkpoint(other, "cp-1"), json=checkpoint_body(exec_id))
    assert r.status_code == 400 and "exec_id" in error_detail(r)["message"]
    assert client.get(_wire.path_execution(other)).json()["checkpoints"] == []


@pytest.fixture
def secured(make_server: Callable[..., Any]) -> Any:
    return make_server(token="s3cret")


def test_token_is_required_on_every_api_route(secured: Any) -> None:
    with httpx.Client(base_url=secured.url, timeout=10) as anon:
        assert anon.get(_wire.PATH_HEALTH).status_code == 200
        for method, path in (
            ("GET", _wire.PATH_INFO),
            ("GET", _wire.PATH_EXECUTIONS),
            ("POST", _wire.PATH_EXECUTIONS),
            ("GET", _wire.path_execution("x")),
            ("POST", _wire.path_events("x")),
            ("GET", _wire.path_stream("x")),
            ("GET", _wire.path_cached_checkpoint()),
        ):
            r = anon.request(method, path)
            assert r.status_code == 401, (method, path)
            assert error_detail(r)["kind"] == _wire.ERROR_UNAUTHORIZED
            assert r.headers["www-authenticate"].startswith("Bearer")
        wrong = anon.get(_wire.PATH_INFO, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "wrong" in error_detail(wrong)["message"]
        # ?token= is only for the stream (EventSource cannot send headers).
        assert anon.get(_wire.PATH_INFO, params={"token": "s3cret"}).status_code == 401
    headers = {"Authorization": "Bearer s3cret"}
    with httpx.Client(base_url=secured.url, timeout=10, headers=headers) as c:
        assert c.get(_wire.PATH_INFO).json()["auth"] is True
        exec_id = new_execution(c)
        post_events(c, exec_id, [wire_event(exec_id, 0)])
        finish(c, exec_id)
    frames = collect(secured.url, exec_id, params={"token": "s3cret"})
    assert [f.event for f in frames] == ["kitaru.checkpoint.progress", "end"]
    frames = collect(secured.url, exec_id, headers=headers)
    assert frames[-1].event == "end"
    with httpx.Client(timeout=10) as anon:
        r = anon.get(secured.url + _wire.path_stream(exec_id), params={"token": "bad"})
        assert r.status_code == 401


def test_env_token_and_home_are_the_defaults(
    make_server: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("KITARU_API_TOKEN", "from-env")
    from kitaru.server import serve_in_thread

    with serve_in_thread() as srv:  # no db, no token: KITARU_HOME/server.db, KITARU_API_TOKEN
        assert httpx.get(srv.url + _wire.PATH_INFO).status_code == 401
        ok = httpx.get(srv.url + _wire.PATH_INFO, headers={"Authorization": "Bearer from-env"})
        assert ok.status_code == 200
    assert (tmp_path / "kitaru-home" / "server.db").exists()
