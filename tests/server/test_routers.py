"""Each router mounted alone on a bare ``FastAPI()``: the routes are testable without a server.

No ``create_app`` here: a test builds a :class:`ServerState` over a fresh SQLite store and an
in-memory event log (or replaces the state dependency with a fake), gives it to the app with
``attach``, includes one router, and talks to it through ``TestClient`` (ASGI, no socket).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from _serverkit import execution_body, wire_event

from _support import require_server_deps
from kitaru import __version__, _wire

TOKEN = "router-test-token"

Mount = Callable[..., Any]


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Mount]:
    """``mount(router, ...)``: a TestClient for a bare app holding only those routers."""
    require_server_deps()
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from kitaru.backends import MemoryEventLog
    from kitaru.server import ServerSettings, ServerState
    from kitaru.server._deps import attach
    from kitaru.server._errors import install_error_handlers
    from kitaru.server._web import WebConfig
    from kitaru.store import SqliteStore

    clients: list[Any] = []

    def build(
        *routers: Any,
        token: str | None = None,
        streaming: bool = True,
        web: WebConfig | None = None,
    ) -> Any:
        db = tmp_path / f"routers-{len(clients)}.db"
        settings = ServerSettings(db=db, token=token, streaming=streaming)
        state = ServerState(settings, SqliteStore(db), MemoryEventLog() if streaming else None)
        app = FastAPI()
        attach(app, state, web)
        install_error_handlers(app)
        for router in routers:
            app.include_router(router)
        client = TestClient(app)
        client.app_state = state
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()
        client.app_state.store.close()


def _routes() -> Any:
    require_server_deps()
    from kitaru.server import (
        _routes_events,
        _routes_logs,
        _routes_meta,
        _routes_records,
        _routes_ui,
    )

    class Routes:
        meta = _routes_meta
        records = _routes_records
        events = _routes_events
        logs = _routes_logs
        ui = _routes_ui

    return Routes


def _kind(response: Any) -> str:
    return str(response.json()["detail"]["kind"])


def _create(client: Any, exec_id: str, **fields: Any) -> None:
    r = client.post(_wire.PATH_EXECUTIONS, json=execution_body(exec_id, **fields))
    assert r.status_code == 201, r.text


# -- meta ---------------------------------------------------------------------------------


def test_meta_router_alone_answers_info_metrics_and_tokens(mount: Mount) -> None:
    from kitaru.server._web import WebConfig

    meta = _routes().meta
    client = mount(
        meta.open_router, meta.router, web=WebConfig("https://traces.example/{trace_id}")
    )
    assert client.get(_wire.PATH_HEALTH).json() == {"status": "ok"}
    info = client.get(_wire.PATH_INFO).json()
    assert info["version"] == __version__
    assert info["streaming"] is True and info["auth"] is False
    assert info["event_log"] == "MemoryEventLog" and info["store"] == "SqliteStore"
    assert info["trace_url_template"] == "https://traces.example/{trace_id}"
    metrics = client.get(_wire.PATH_METRICS)
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    # Without server auth there is nothing to trade: the answer says so.
    tokens = client.post(_wire.PATH_STREAM_TOKENS, json={"ttl": 60})
    assert tokens.status_code == 200 and tokens.json()["token"] is None
    bad_ttl = client.post(_wire.PATH_STREAM_TOKENS, json={"ttl": -1})
    assert bad_ttl.status_code == 400 and "ttl" in bad_ttl.json()["detail"]["message"]


def test_meta_router_issues_read_tokens_that_its_own_check_accepts(mount: Mount) -> None:
    meta = _routes().meta
    client = mount(meta.open_router, meta.router, token=TOKEN)
    assert client.get(_wire.PATH_HEALTH).status_code == 200  # open without a token
    assert client.get(_wire.PATH_INFO).status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    issued = client.post(_wire.PATH_STREAM_TOKENS, json={"ttl": 60}, headers=auth)
    assert issued.status_code == 201 and issued.headers["cache-control"] == "no-store"
    read = {"Authorization": f"Bearer {issued.json()['token']}"}
    assert client.get(_wire.PATH_INFO, headers=read).json()["auth"] is True
    # A read-only token opens GET routes only.
    refused = client.post(_wire.PATH_STREAM_TOKENS, json={}, headers=read)
    assert refused.status_code == 403 and _kind(refused) == _wire.ERROR_UNAUTHORIZED


# -- records ------------------------------------------------------------------------------


def test_records_router_alone_creates_lists_and_finishes(mount: Mount) -> None:
    client = mount(_routes().records.router)
    body = execution_body("exec-a")
    assert client.post(_wire.PATH_EXECUTIONS, json=body).status_code == 201
    assert client.post(_wire.PATH_EXECUTIONS, json=body).status_code == 200  # idempotent
    conflict = client.post(_wire.PATH_EXECUTIONS, json={**body, "flow_name": "other"})
    assert conflict.status_code == 409 and _kind(conflict) == _wire.ERROR_CONFLICT
    listed = client.get(_wire.PATH_EXECUTIONS, params={"status": "running"}).json()
    assert [r["exec_id"] for r in listed] == ["exec-a"]
    assert client.get(_wire.PATH_EXECUTIONS, params={"status": "nope"}).status_code == 400
    beat = client.post(_wire.path_heartbeat("exec-a")).json()
    assert beat == {"exec_id": "exec-a", "status": "running", "cancel_requested": False}
    assert client.post(_wire.path_cancel("exec-a")).status_code == 200
    assert client.post(_wire.path_heartbeat("exec-a")).json()["cancel_requested"] is True
    done = client.post(
        _wire.path_finish("exec-a"),
        json={"status": "cancelled", "output": None, "error_type": None},
    )
    assert done.status_code == 200 and done.json()["status"] == "cancelled"
    unknown = client.get(_wire.path_execution("exec-missing"))
    assert unknown.status_code == 404 and _kind(unknown) == _wire.ERROR_EXECUTION_UNKNOWN
    missing = client.get(_wire.path_cached_checkpoint(), params={"key": "k"})
    assert missing.status_code == 404 and _kind(missing) == _wire.ERROR_NOT_FOUND


def test_records_router_reads_the_state_only_through_its_dependency(
    mount: Mount, tmp_path: Path
) -> None:
    """Replacing the state dependency is enough: the handler holds no server of its own."""
    from kitaru.server import ServerSettings
    from kitaru.server._deps import server_state
    from kitaru.store._records import ExecutionRecord

    record = ExecutionRecord.from_dict({**execution_body("exec-fake"), "checkpoints": []})
    asked: list[str] = []

    class FakeState:
        settings = ServerSettings(db=tmp_path / "never-opened.db", token=None)

        async def execution(self, exec_id: str) -> ExecutionRecord:
            asked.append(exec_id)
            return record

    client = mount(_routes().records.router)
    client.app.dependency_overrides[server_state] = FakeState
    r = client.get(_wire.path_execution("exec-fake"))
    assert r.status_code == 200 and r.json()["flow_name"] == "demo_flow"
    assert asked == ["exec-fake"]


def test_records_router_keeps_the_api_token(mount: Mount) -> None:
    client = mount(_routes().records.router, token=TOKEN)
    missing = client.get(_wire.PATH_EXECUTIONS)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    wrong = client.get(_wire.PATH_EXECUTIONS, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "wrong" in wrong.json()["detail"]["message"]
    # The query token is for the streams only.
    assert client.get(_wire.PATH_EXECUTIONS, params={_wire.QUERY_TOKEN: TOKEN}).status_code == 401
    ok = client.get(_wire.PATH_EXECUTIONS, headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and ok.json() == []


# -- events -------------------------------------------------------------------------------


def test_events_router_alone_ingests_snapshots_and_streams(mount: Mount) -> None:
    routes = _routes()
    client = mount(routes.records.router, routes.events.router, routes.events.stream_router)
    _create(client, "exec-e")
    events = [wire_event("exec-e", i, message=f"step {i}") for i in range(3)]
    path = _wire.path_events("exec-e")
    first = client.post(path, content=orjson.dumps(events)).json()
    assert first["stored"] == 3 and first["duplicates"] == 0
    again = client.post(path, content=orjson.dumps(events)).json()
    assert again["stored"] == 0 and again["duplicates"] == 3
    unknown = client.post(_wire.path_events("exec-missing"), content=b"[]")
    assert unknown.status_code == 404
    snap = client.get(_wire.path_snapshot("exec-e")).json()
    assert snap["status"] == "running" and snap["cursor"] == first["last_cursor"]
    assert [lane["message"] for lane in snap["lanes"]] == ["step 2"]
    client.post(
        _wire.path_finish("exec-e"),
        json={"status": "completed", "output": None, "error_type": None},
    )
    # The execution ended, so the stream replays its events and closes with ``end``.
    body = client.get(_wire.path_stream("exec-e")).text
    assert body.count("event: kitaru.checkpoint.progress") == 3
    assert "event: end" in body
    bad = client.get(_wire.path_stream("exec-e"), params={"kinds": " "})
    assert bad.status_code == 400 and "kinds" in bad.json()["detail"]["message"]


def test_events_router_without_streaming_answers_501(mount: Mount) -> None:
    routes = _routes()
    client = mount(routes.records.router, routes.events.router, streaming=False)
    _create(client, "exec-off")
    for response in (
        client.post(_wire.path_events("exec-off"), content=b"[]"),
        client.get(_wire.path_snapshot("exec-off")),
    ):
        assert response.status_code == 501
        assert _kind(response) == _wire.ERROR_STREAMING_DISABLED


def test_stream_router_takes_the_token_in_the_query(mount: Mount) -> None:
    routes = _routes()
    client = mount(routes.records.router, routes.events.stream_router, token=TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = client.post(
        _wire.PATH_EXECUTIONS, json=execution_body("exec-q", status="completed"), headers=auth
    )
    assert r.status_code == 201
    path = _wire.path_stream("exec-q")
    assert client.get(path).status_code == 401
    opened = client.get(path, params={_wire.QUERY_TOKEN: TOKEN})
    assert opened.status_code == 200 and "event: end" in opened.text


# -- logs ---------------------------------------------------------------------------------


def _log_line(exec_id: str, line: int) -> dict[str, Any]:
    return {
        "exec_id": exec_id,
        "checkpoint_id": "cp",
        "correlation_id": "corr",
        "checkpoint": "c",
        "step_name": "c",
        "attempt": 1,
        "line": line,
        "ts": 1.0 + line,
        "stream": "log",
        "level": "INFO",
        "message": f"line {line}",
    }


def test_logs_router_alone_appends_reads_and_follows(mount: Mount) -> None:
    routes = _routes()
    client = mount(routes.records.router, routes.logs.router, routes.logs.stream_router)
    _create(client, "exec-l")
    path = _wire.path_logs("exec-l")
    lines = [_log_line("exec-l", i) for i in range(3)]
    assert client.post(path, json=lines).json() == {"stored": 3}
    read = client.get(path, params={"limit": 2}).json()
    assert [x["message"] for x in read["lines"]] == ["line 0", "line 1"]
    assert read["status"] == "running"
    rest = client.get(path, params={"after": read["cursor"]}).json()
    assert [x["message"] for x in rest["lines"]] == ["line 2"]
    bad = client.get(path, params={"after": "x"})
    assert bad.status_code == 400 and _kind(bad) == _wire.ERROR_CURSOR_INVALID
    meta = client.put(_wire.path_execution_metadata("exec-l"), json={"metadata": [1]})
    assert meta.status_code == 400 and "metadata" in meta.json()["detail"]["message"]
    usage = client.get(_wire.PATH_USAGE).json()
    assert usage == {"executions": 1, "checkpoints": {}}
    client.post(
        _wire.path_finish("exec-l"),
        json={"status": "completed", "output": None, "error_type": None},
    )
    followed = client.get(_wire.path_logs_stream("exec-l"), params={"since": read["cursor"]})
    assert followed.text.count("event: log") == 1 and "line 2" in followed.text
    assert "event: end" in followed.text


# -- web view -----------------------------------------------------------------------------


def test_ui_router_alone_serves_the_page_and_its_files(mount: Mount) -> None:
    client = mount(_routes().ui.router, token=TOKEN)  # open even when the API needs a token
    root = client.get("/", follow_redirects=False)
    assert root.status_code == 307 and root.headers["location"] == _wire.PATH_UI
    for path in (_wire.PATH_UI, _wire.PATH_UI + "executions/exec-1"):
        page = client.get(path)
        assert page.status_code == 200 and page.text.lstrip().startswith("<!")
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    script = client.get(_wire.PATH_UI + "app.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith(
        "text/javascript"
    )
    missing = client.get(_wire.PATH_UI + "nope.js")
    assert missing.status_code == 404 and _kind(missing) == _wire.ERROR_NOT_FOUND
