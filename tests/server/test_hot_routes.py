"""Ingest and heartbeats skip FastAPI's routing (``server/_hot.py``) and answer the same."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from kitaru import _wire
from kitaru.server import _hot, create_app
from kitaru.server._deps import server_state
from kitaru.server._state import ServerState

TOKEN = "hot-routes-token"


@pytest.fixture
def app(tmp_path: Path) -> Any:
    return create_app(db=tmp_path / "server.db", token=TOKEN, max_batch_events=3)


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _event(exec_id: str, index: int, **extra: Any) -> dict[str, Any]:
    return {
        "exec_id": exec_id,
        "kind": "progress",
        "correlation_id": "c1",
        "index": index,
        "checkpoint_id": None,
        "checkpoint_name": None,
        "step_name": None,
        "ts": 1.0,
        "payload": {"kitaru": {}, "message": "tick"},
        **extra,
    }


def _create(client: TestClient, exec_id: str) -> None:
    body = {"exec_id": exec_id, "flow_name": "f", "status": "running", "created_at": 1.0}
    assert client.post(_wire.PATH_EXECUTIONS, json=body, headers=_auth()).status_code == 201


def _requests(exec_id: str) -> list[tuple[str, dict[str, str], bytes]]:
    """Requests to the hot routes, good and bad: (path, headers, body)."""
    events = _wire.path_events(exec_id)
    beat = _wire.path_heartbeat(exec_id)
    ok = orjson.dumps([_event(exec_id, 0), _event(exec_id, 1)])
    return [
        (events, _auth(), ok),
        (events, _auth(), ok),  # a retry: duplicates
        (events, {}, ok),  # no token
        (events, _auth("wrong"), ok),
        (events, _auth(), b"not json"),
        (events, _auth(), orjson.dumps([_event(exec_id, i) for i in range(4)])),  # too many
        (events, _auth(), orjson.dumps([_event("other", 0)])),
        (_wire.path_events("unknown"), _auth(), ok),
        (beat, _auth(), b""),
        (beat, {}, b""),
        (_wire.path_heartbeat("unknown"), _auth(), b""),
        # several executions in one request: one stored, one unknown, one retried
        (_wire.PATH_EVENTS, _auth(), orjson.dumps([_event(exec_id, 2), _event("unknown", 0)])),
        (_wire.PATH_EVENTS, _auth(), orjson.dumps([_event(exec_id, 2)])),
        (_wire.PATH_EVENTS, {}, ok),
        (_wire.PATH_EVENTS, _auth(), b"{}"),
    ]


def _answers(client: TestClient, exec_id: str) -> list[tuple[int, Any, str | None]]:
    out = []
    for path, headers, body in _requests(exec_id):
        r = client.post(path, content=body, headers=headers)
        out.append((r.status_code, r.json(), r.headers.get("www-authenticate")))
    return out


def test_hot_routes_answer_as_the_routers_do(
    client: TestClient, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    hits: list[str] = []
    real_match = _hot._match

    def counting_match(scope: Any) -> Any:
        found = real_match(scope)
        if found is not None:
            hits.append(scope["path"])
        return found

    monkeypatch.setattr(_hot, "_match", counting_match)
    hot_id, routed_id = str(uuid.uuid4()), str(uuid.uuid4())
    _create(client, hot_id)
    _create(client, routed_id)
    hot = _answers(client, hot_id)
    assert len(hits) == len(_requests(hot_id))  # every one went the hot way

    # The same requests through FastAPI's router: an overridden dependency turns the hot
    # path off.
    state: ServerState = app.state.kitaru

    async def same_state() -> ServerState:
        return state

    app.dependency_overrides[server_state] = same_state
    routed = _answers(client, routed_id)

    def normal(answers: list[tuple[int, Any, str | None]], exec_id: str) -> list[Any]:
        return [orjson.loads(orjson.dumps(a).replace(exec_id.encode(), b"X")) for a in answers]

    assert normal(hot, hot_id) == normal(routed, routed_id)
    statuses = [200, 200, 401, 401, 400, 413, 400, 404, 200, 401, 404, 200, 200, 401, 400]
    assert [a[0] for a in hot] == statuses
    many = hot[11][1]["executions"]
    assert many[hot_id]["stored"] == 1 and many["unknown"]["error"]["status"] == 404
    assert hot[12][1]["executions"][hot_id]["duplicates"] == 1
    assert hot[0][1]["stored"] == 2 and hot[1][1]["duplicates"] == 2
    assert hot[8][1] == {"exec_id": hot_id, "status": "running", "cancel_requested": False}


def test_heartbeat_on_the_hot_path_reports_a_cancel(client: TestClient) -> None:
    exec_id = str(uuid.uuid4())
    _create(client, exec_id)
    assert client.post(_wire.path_cancel(exec_id), headers=_auth()).status_code == 200
    answer = client.post(_wire.path_heartbeat(exec_id), headers=_auth()).json()
    assert answer["cancel_requested"] is True
    record = client.get(_wire.path_execution(exec_id), headers=_auth()).json()
    assert record["heartbeat_at"] is not None and record["heartbeat_at"] > 1.0


def test_other_methods_and_paths_go_to_fastapi(client: TestClient) -> None:
    exec_id = str(uuid.uuid4())
    _create(client, exec_id)
    # GET on the ingest path is the router's 405; a deeper path is its 404.
    assert client.get(_wire.path_events(exec_id), headers=_auth()).status_code == 405
    deeper = _wire.path_events(exec_id) + "/more"
    assert client.post(deeper, headers=_auth()).status_code == 404
