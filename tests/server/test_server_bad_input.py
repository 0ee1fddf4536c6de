"""Bad input gets a 4xx with a JSON detail naming the problem, and stored data stays intact."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from _serverkit import (
    collect,
    data_frames,
    error_detail,
    execution_body,
    finish,
    post_events,
    wire_event,
)

from _support import require_server_deps
from kitaru import _wire

pytestmark = pytest.mark.server

EXEC = "0b7d1c1e-2a39-4a7e-9f43-0d5f3e0a1c00"


def event(n: int = 10, **changes: Any) -> dict[str, Any]:
    ev = wire_event(EXEC, n)
    for key, value in changes.items():
        if value is _DROP:
            ev.pop(key, None)
        else:
            ev[key] = value
    return ev


_DROP = object()


def with_payload(payload: Any) -> dict[str, Any]:
    ev = event()
    ev["payload"] = payload
    return ev


def body(*events: Any) -> bytes:
    return orjson.dumps(list(events))


# (id, method, path, content, expected status, expected error kind, words in the message)
INGEST = _wire.path_events(EXEC)
CASES: list[tuple[str, str, str, Any, int, str, str]] = [
    ("malformed json", "POST", INGEST, b"[{", 400, "invalid_request", "not valid JSON"),
    ("empty body", "POST", INGEST, b"", 400, "invalid_request", "empty"),
    ("not an array", "POST", INGEST, b'{"a": 1}', 400, "invalid_request", "JSON array"),
    ("item not object", "POST", INGEST, b"[1]", 400, "invalid_request", "event [0]"),
    ("index string", "POST", INGEST, body(event(index="1")), 400, "invalid_request", "index"),
    ("index negative", "POST", INGEST, body(event(index=-1)), 400, "invalid_request", "index"),
    ("index bool", "POST", INGEST, body(event(index=True)), 400, "invalid_request", "index"),
    ("index float", "POST", INGEST, body(event(index=1.5)), 400, "invalid_request", "index"),
    (
        "index huge",
        "POST",
        INGEST,
        body(event()).replace(b'"index":10', b'"index":99999999999999999999999'),
        400,
        "invalid_request",
        "",
    ),
    ("index missing", "POST", INGEST, body(event(index=_DROP)), 400, "invalid_request", "index"),
    (
        "correlation_id number",
        "POST",
        INGEST,
        body(event(correlation_id=5)),
        400,
        "invalid_request",
        "correlation_id",
    ),
    (
        "correlation_id blank",
        "POST",
        INGEST,
        body(event(correlation_id="  ")),
        400,
        "invalid_request",
        "correlation_id",
    ),
    ("kind number", "POST", INGEST, body(event(kind=5)), 400, "invalid_request", "kind"),
    ("kind blank", "POST", INGEST, body(event(kind=" ")), 400, "invalid_request", "blank"),
    ("kind newline", "POST", INGEST, body(event(kind="a\nb")), 400, "invalid_request", "line"),
    ("kind cr", "POST", INGEST, body(event(kind="a\rb")), 400, "invalid_request", "line"),
    ("kind end", "POST", INGEST, body(event(kind="end")), 400, "invalid_request", "reserved"),
    (
        "kind cursor",
        "POST",
        INGEST,
        body(event(kind=" cursor ")),
        400,
        "invalid_request",
        "reserved",
    ),
    ("kind gap", "POST", INGEST, body(event(kind="gap")), 400, "invalid_request", "reserved"),
    ("kind error", "POST", INGEST, body(event(kind="error")), 400, "invalid_request", "reserved"),
    ("kind system", "POST", INGEST, body(event(kind="system")), 400, "invalid_request", "reserved"),
    (
        "payload missing",
        "POST",
        INGEST,
        body(event(payload=_DROP)),
        400,
        "invalid_request",
        "payload",
    ),
    ("payload list", "POST", INGEST, body(with_payload([1])), 400, "invalid_request", "payload"),
    (
        "payload without kitaru",
        "POST",
        INGEST,
        body(with_payload({"message": "x"})),
        400,
        "invalid_request",
        "payload.kitaru",
    ),
    (
        "payload kitaru string",
        "POST",
        INGEST,
        body(with_payload({"kitaru": "x"})),
        400,
        "invalid_request",
        "payload.kitaru",
    ),
    (
        "checkpoint_name number",
        "POST",
        INGEST,
        body(event(checkpoint_name=5)),
        400,
        "invalid_request",
        "checkpoint_name",
    ),
    ("ts string", "POST", INGEST, body(event(ts="now")), 400, "invalid_request", "ts"),
    ("ts bool", "POST", INGEST, body(event(ts=True)), 400, "invalid_request", "ts"),
    (
        "oversize event",
        "POST",
        INGEST,
        body(with_payload({"kitaru": {}, "data": {"blob": "x" * 70_000}})),
        413,
        "too_large",
        "65536",
    ),
    (
        "too many events",
        "POST",
        INGEST,
        body(*[event(i) for i in range(100, 10_101)]),
        413,
        "too_large",
        "10001",
    ),
    (
        "mismatched exec id",
        "POST",
        INGEST,
        body(event(exec_id="someone-else")),
        400,
        "invalid_request",
        "does not match",
    ),
    (
        "one bad event spoils the batch",
        "POST",
        INGEST,
        body(event(20), event(21), event(22, kind="end")),
        400,
        "invalid_request",
        "event [2]",
    ),
    (
        "unknown execution",
        "POST",
        _wire.path_events("no-such-execution"),
        body(event(exec_id="no-such-execution")),
        404,
        "execution_unknown",
        "no-such-execution",
    ),
    (
        "invalid cursor",
        "GET",
        _wire.path_stream(EXEC) + "?since=abc",
        None,
        400,
        "cursor_invalid",
        "since",
    ),
    (
        "cursor beyond the end",
        "GET",
        _wire.path_stream(EXEC) + "?since=999999",
        None,
        400,
        "cursor_invalid",
        "beyond",
    ),
    (
        "blank kinds filter",
        "GET",
        _wire.path_stream(EXEC) + "?kinds=%20",
        None,
        400,
        "invalid_request",
        "kinds",
    ),
    (
        "kinds filter with a newline",
        "GET",
        _wire.path_stream(EXEC) + "?kinds=a%0Ab",
        None,
        400,
        "invalid_request",
        "line",
    ),
    (
        "create: malformed json",
        "POST",
        _wire.PATH_EXECUTIONS,
        b"{",
        400,
        "invalid_request",
        "JSON",
    ),
    (
        "create: missing flow_name",
        "POST",
        _wire.PATH_EXECUTIONS,
        orjson.dumps({k: v for k, v in execution_body().items() if k != "flow_name"}),
        400,
        "invalid_request",
        "flow_name",
    ),
    (
        "create: bogus status",
        "POST",
        _wire.PATH_EXECUTIONS,
        orjson.dumps(execution_body(status="done")),
        400,
        "invalid_request",
        "status",
    ),
    (
        "create: created_at string",
        "POST",
        _wire.PATH_EXECUTIONS,
        orjson.dumps(execution_body(created_at="today")),
        400,
        "invalid_request",
        "created_at",
    ),
    (
        "create: inputs format",
        "POST",
        _wire.PATH_EXECUTIONS,
        orjson.dumps(execution_body(inputs={"format": "xml", "data": ""})),
        400,
        "invalid_request",
        "inputs",
    ),
    (
        "create: exec_id with space",
        "POST",
        _wire.PATH_EXECUTIONS,
        orjson.dumps(execution_body(exec_id="a b")),
        400,
        "invalid_request",
        "exec_id",
    ),
    (
        "create: with checkpoints",
        "POST",
        _wire.PATH_EXECUTIONS,
        orjson.dumps(execution_body(checkpoints=[{"x": 1}])),
        400,
        "invalid_request",
        "checkpoints",
    ),
    (
        "create: conflicting duplicate",
        "POST",
        _wire.PATH_EXECUTIONS,
        orjson.dumps(execution_body(exec_id=EXEC, flow_name="other")),
        409,
        "conflict",
        EXEC,
    ),
    (
        "finish: not terminal",
        "POST",
        _wire.path_finish(EXEC),
        orjson.dumps({"status": "running"}),
        400,
        "invalid_request",
        "status",
    ),
    (
        "finish: not an object",
        "POST",
        _wire.path_finish(EXEC),
        b"[]",
        400,
        "invalid_request",
        "object",
    ),
    (
        "checkpoint: negative seq",
        "PUT",
        _wire.path_checkpoint(EXEC, "cp-9"),
        orjson.dumps(
            {
                "checkpoint_id": "cp-9",
                "exec_id": EXEC,
                "name": "n",
                "step_name": "n",
                "seq": -1,
                "checkpoint_type": "checkpoint",
                "status": "running",
                "started_at": 1.0,
            }
        ),
        400,
        "invalid_request",
        "seq",
    ),
    (
        "list: limit 0",
        "GET",
        _wire.PATH_EXECUTIONS + "?limit=0",
        None,
        400,
        "invalid_request",
        "limit",
    ),
    (
        "list: limit text",
        "GET",
        _wire.PATH_EXECUTIONS + "?limit=abc",
        None,
        400,
        "invalid_request",
        "limit",
    ),
    (
        "list: bad status",
        "GET",
        _wire.PATH_EXECUTIONS + "?status=x",
        None,
        400,
        "invalid_request",
        "status",
    ),
    ("cached: no key", "GET", _wire.path_cached_checkpoint(), None, 400, "invalid_request", "key"),
]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Any:
    require_server_deps()
    from kitaru.server import serve_in_thread

    srv = serve_in_thread(db=tmp_path_factory.mktemp("bad") / "server.db", token=None)
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        r = c.post(_wire.PATH_EXECUTIONS, json=execution_body(exec_id=EXEC))
        assert r.status_code == 201
        post_events(c, EXEC, [wire_event(EXEC, i) for i in range(3)])
        # Finished, so a stream shows the whole stored log and ends (late events would still
        # be accepted, so every ingest case below is still checked for partial writes).
        finish(c, EXEC)
        before = c.get(_wire.path_execution(EXEC)).json()
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        yield srv, before, c
    srv.stop()


@pytest.mark.parametrize(
    ("method", "path", "content", "status", "kind", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_bad_input_is_refused_clearly(
    seeded: Any, method: str, path: str, content: Any, status: int, kind: str, words: str
) -> None:
    srv, before, c = seeded
    r = c.request(method, path, content=content)
    assert r.status_code == status, r.text
    detail = error_detail(r)
    assert detail["kind"] == kind
    assert words in detail["message"]
    # Nothing already stored was lost or changed.
    assert c.get(_wire.path_execution(EXEC)).json() == before
    frames = collect(srv.url, EXEC)
    assert [orjson.loads(f.data)["index"] for f in data_frames(frames)] == [0, 1, 2]
    assert frames[-1].event == "end"


def test_tokens_are_checked_before_anything_else(make_server: Callable[..., Any]) -> None:
    srv = make_server(token="tok")
    auth = {"Authorization": "Bearer tok"}
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        r = c.post(_wire.PATH_EXECUTIONS, json=execution_body(exec_id=EXEC), headers=auth)
        assert r.status_code == 201
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic dG9r"}):
            r = c.post(INGEST, content=body(event()), headers=headers)
            assert r.status_code == 401 and error_detail(r)["kind"] == "unauthorized"
        r = c.post(INGEST, content=b"[{", headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401
        ok = c.post(INGEST, content=body(event(0)), headers=auth)
        assert ok.status_code == 200 and ok.json()["stored"] == 1
