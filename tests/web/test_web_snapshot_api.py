"""The snapshot endpoint, ``executions.snapshot()``, the web routes and read-only tokens."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from _support import require_server_deps
from kitaru import KitaruClient, _wire
from kitaru._snapshot import ExecutionSnapshot, SnapshotFold
from kitaru.events._models import ExecutionEvent
from kitaru.exceptions import (
    KitaruBackendError,
    KitaruFeatureNotAvailableError,
    KitaruStateError,
    KitaruUsageError,
)

pytestmark = [pytest.mark.server]

CORR_A = "kitaru.checkpoint:fetch:" + "a" * 32
CORR_B = "kitaru.checkpoint:fetch:" + "b" * 32


def _event(exec_id: str, corr: str, index: int, kind: str, **payload: Any) -> dict[str, Any]:
    name = corr.split(":")[1]
    return {
        "exec_id": exec_id,
        "kind": kind,
        "correlation_id": corr,
        "index": index,
        "checkpoint_id": "cp-" + corr[-1],
        "checkpoint_name": name,
        "step_name": name,
        "ts": 1000.0 + index,
        "payload": {
            "kitaru": {
                "source": "kitaru",
                "checkpoint_name": name,
                "correlation_id": corr,
                "ts": 1000.0 + index,
                "trace_id": "0123456789abcdef0123456789abcdef",
                "span_id": "00000000000000a" + corr[-1],
                "attempt": 1,
            },
            **payload,
        },
    }


def _lifecycle(exec_id: str) -> list[dict[str, Any]]:
    return [
        _event(exec_id, CORR_A, 0, "kitaru.checkpoint.started", status="started"),
        _event(exec_id, CORR_B, 0, "kitaru.checkpoint.started", status="started"),
        _event(
            exec_id,
            CORR_A,
            1,
            "kitaru.checkpoint.progress",
            message="a half",
            data={"percent": 0.5},
        ),
        _event(exec_id, CORR_B, 1, "demo.custom", message="b custom", data={"rows": 3}),
        _event(exec_id, CORR_A, 2, "kitaru.checkpoint.returned", status="returned"),
        _event(
            exec_id,
            CORR_B,
            2,
            "kitaru.checkpoint.failed",
            status="failed",
            error_type="ValueError",
            message="The checkpoint function raised an exception.",
        ),
    ]


def _create(c: httpx.Client, flow_name: str = "snap_flow") -> str:
    exec_id = str(uuid.uuid4())
    r = c.post(
        _wire.PATH_EXECUTIONS,
        json={"exec_id": exec_id, "flow_name": flow_name, "status": "running", "created_at": 5.0},
    )
    assert r.status_code == 201, r.text
    return exec_id


def _post(c: httpx.Client, exec_id: str, events: list[dict[str, Any]]) -> None:
    r = c.post(_wire.path_events(exec_id), content=orjson.dumps(events))
    assert r.status_code == 200, r.text


def test_snapshot_holds_the_folded_lanes_and_the_cursor(
    make_server: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KITARU_TRACE_URL_TEMPLATE", "http://127.0.0.1:16686/trace/{trace_id}")
    server = make_server()
    with httpx.Client(base_url=server.url, timeout=10) as c:
        exec_id = _create(c)
        empty = c.get(_wire.path_snapshot(exec_id)).json()
        assert empty["cursor"] is None and empty["lanes"] == [] and empty["ended"] is False
        assert empty["trace_url"] == f"http://127.0.0.1:16686/trace/{empty['trace_id']}"
        _post(c, exec_id, _lifecycle(exec_id))
        body = c.get(_wire.path_snapshot(exec_id)).json()
        assert body["exec_id"] == exec_id and body["status"] == "running"
        assert body["flow_name"] == "snap_flow" and body["created_at"] == 5.0
        assert body["cursor"] == "000000000006" and body["ended"] is False
        assert body["trace_id"] == "0123456789abcdef0123456789abcdef"
        a, b = body["lanes"]
        assert (a["correlation_id"], a["status"], a["message"], a["percent"]) == (
            CORR_A,
            "returned",
            "a half",
            0.5,
        )
        assert a["event_count"] == 3 and a["checkpoint_name"] == "fetch"
        assert a["span_id"] == "00000000000000aa" and a["trace_id"] == body["trace_id"]
        assert (b["status"], b["error_type"], b["event_count"]) == ("failed", "ValueError", 3)
        assert [e["kind"] for e in body["timeline"]] == ["demo.custom"]
        assert body["timeline"][0]["cursor"] == "000000000004"
        # Finished: the snapshot says the stream has ended, with the final status.
        r = c.post(
            _wire.path_finish(exec_id),
            json={"status": "failed", "output": None, "error_type": "ValueError"},
        )
        assert r.status_code == 200
        done = c.get(_wire.path_snapshot(exec_id)).json()
        assert done["ended"] is True and done["status"] == "failed"
        assert done["ended_at"] is not None and done["lanes"] == body["lanes"]

        r = c.get(_wire.path_snapshot("no-such-execution"))
        assert r.status_code == 404 and r.json()["detail"]["kind"] == "execution_unknown"
        info = c.get(_wire.PATH_INFO).json()
        assert info["trace_url_template"] == "http://127.0.0.1:16686/trace/{trace_id}"


def test_snapshot_is_501_when_streaming_is_off(make_server: Callable[..., Any]) -> None:
    server = make_server(streaming=False)
    with httpx.Client(base_url=server.url, timeout=10) as c:
        exec_id = _create(c)
        r = c.get(_wire.path_snapshot(exec_id))
        assert r.status_code == 501 and r.json()["detail"]["kind"] == "streaming_disabled"
    with pytest.raises(KitaruFeatureNotAvailableError, match="disabled"):
        KitaruClient(server_url=server.url).executions.snapshot(exec_id)


def test_concurrent_snapshots_while_events_arrive_are_each_a_prefix_of_the_log(
    make_server: Callable[..., Any],
) -> None:
    server = make_server(read_batch=3)
    with httpx.Client(base_url=server.url, timeout=10) as c:
        exec_id = _create(c)

    async def run() -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as ac:

            async def writer() -> None:
                for i in range(40):
                    evs = [
                        _event(exec_id, CORR_A, i, "kitaru.checkpoint.progress", message=f"m{i}")
                    ]
                    r = await ac.post(_wire.path_events(exec_id), content=orjson.dumps(evs))
                    assert r.status_code == 200

            async def reader() -> list[dict[str, Any]]:
                out = []
                for _ in range(15):
                    r = await ac.get(_wire.path_snapshot(exec_id))
                    out.append(r.json())
                return out

            results = await asyncio.gather(writer(), reader(), reader(), reader())
            return [snap for part in results[1:] for snap in part]

    snaps = asyncio.run(run())
    with httpx.Client(base_url=server.url, timeout=10) as c:
        c.post(
            _wire.path_finish(exec_id),
            json={"status": "completed", "output": None, "error_type": None},
        )
        stream = c.get(_wire.path_stream(exec_id)).text
    cursors = [f[4:].split("\n")[0] for f in stream.split("\n\n") if f.startswith("id: ")]
    assert len(cursors) == 40
    for snap in snaps:
        count = sum(lane["event_count"] for lane in snap["lanes"])
        # Each snapshot is exactly the fold of the log up to its cursor: no event twice.
        assert count == (cursors.index(snap["cursor"]) + 1 if snap["cursor"] else 0)
        if count:
            assert snap["lanes"][0]["message"] == f"m{count - 1}"


def test_the_client_snapshot_and_how_to_follow_it(make_server: Callable[..., Any]) -> None:
    server = make_server(token="tok")
    client = KitaruClient(server_url=server.url, api_token="tok")
    with httpx.Client(
        base_url=server.url, headers={"Authorization": "Bearer tok"}, timeout=10
    ) as c:
        exec_id = _create(c)
        events = _lifecycle(exec_id)
        _post(c, exec_id, events[:3])
        snap = client.executions.snapshot(exec_id)
        assert isinstance(snap, ExecutionSnapshot)
        assert snap.cursor == "000000000003" and len(snap.lanes) == 2 and not snap.ended
        _post(c, exec_id, events[3:])
        r = c.post(
            _wire.path_finish(exec_id),
            json={"status": "completed", "output": None, "error_type": None},
        )
        assert r.status_code == 200
    # The documented way: render the snapshot, then fold the stream after its cursor.
    board = snap.board()
    for event in client.executions.events(exec_id, since=snap.cursor):
        board.apply(event)
    full = list(client.executions.events(exec_id))
    assert board.lanes() == SnapshotFold(exec_id, full).board.lanes()
    assert [lane.status for lane in board.lanes()] == ["returned", "failed"]

    with pytest.raises(KitaruStateError, match="no execution"):
        client.executions.snapshot(str(uuid.uuid4()))
    with pytest.raises(KitaruBackendError, match="authorization"):
        KitaruClient(server_url=server.url, api_token="wrong").executions.snapshot(exec_id)
    with pytest.raises(KitaruUsageError):
        client.executions.snapshot(" spaced ")


def test_local_mode_has_no_snapshots() -> None:
    with pytest.raises(KitaruFeatureNotAvailableError, match="server"):
        KitaruClient().executions.snapshot("some-execution")


def test_an_unreachable_server_is_a_backend_error_after_retries() -> None:
    from kitaru.client._snapshot import fetch_snapshot

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(KitaruBackendError, match="did not answer"):
        fetch_snapshot(
            "http://127.0.0.1:9",
            None,
            "x",
            retry_seconds=0.3,
            transport=httpx.MockTransport(refuse),
        )
    calls = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) < 3:
            return httpx.Response(503)
        return httpx.Response(200, json={"exec_id": "x", "cursor": "7", "lanes": []})

    snap = fetch_snapshot(
        "http://127.0.0.1:9", None, "x", retry_seconds=5, transport=httpx.MockTransport(flaky)
    )
    assert snap.cursor == "7" and calls == [_wire.path_snapshot("x")] * 3


def test_message_events_streams_every_kind_as_a_message(make_server: Callable[..., Any]) -> None:
    server = make_server()
    with httpx.Client(base_url=server.url, timeout=10) as c:
        exec_id = _create(c)
        _post(c, exec_id, _lifecycle(exec_id))
        c.post(
            _wire.path_finish(exec_id),
            json={"status": "completed", "output": None, "error_type": None},
        )
        plain = c.get(_wire.path_stream(exec_id), params={"message_events": "true"}).text
        named = c.get(_wire.path_stream(exec_id)).text
    frames = [f for f in plain.split("\n\n") if f.startswith("id:")]
    assert len(frames) == 6
    assert not [f for f in frames if "\nevent:" in f]
    assert "event: end" in plain  # control frames keep their names
    assert named.count("event: kitaru.checkpoint.") == 5
    events = [
        ExecutionEvent.from_wire(orjson.loads(f.split("data: ", 1)[1]), f[4:16]) for f in frames
    ]
    assert [e.kind for e in events] == [e["kind"] for e in _lifecycle(exec_id)]


def test_web_routes_serve_the_page_with_a_strict_policy(make_server: Callable[..., Any]) -> None:
    server = make_server(token="tok")
    with httpx.Client(base_url=server.url, timeout=10) as c:
        assert c.get("/").headers["location"] == _wire.PATH_UI
        assert c.get("/ui").headers["location"] == _wire.PATH_UI
        for path in (_wire.PATH_UI, "/ui/executions/some-id"):
            r = c.get(path)
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
            csp = r.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp
            assert r.headers["referrer-policy"] == "no-referrer"
            assert '<script type="module" src="/ui/app.js"' in r.text
        # The entry module and every module it imports, transitively, served from /ui/.
        pending, modules = ["app.js"], {}
        while pending:
            name = pending.pop()
            js = c.get("/ui/" + name)
            assert js.status_code == 200, name
            assert js.headers["content-type"].startswith("text/javascript")
            modules[name] = js.text
            pending += [
                m for m in re.findall(r'from "\./([\w]+\.js)"', js.text) if m not in modules
            ]
        assert {"app.js", "lanes.js", "waterfall.js", "list.js", "execution.js"} <= set(modules)
        for name, text in modules.items():
            # The page never parses event text as HTML.
            assert "innerHTML" not in text and "insertAdjacentHTML" not in text, name
            assert "document.write" not in text and "outerHTML" not in text, name
        assert c.get("/ui/app.css").status_code == 200
        assert c.get("/ui/favicon.svg").status_code == 200
        assert c.get("/ui/secrets.txt").status_code == 404
        assert c.get("/ui/..%2Fpy.typed").status_code == 404


def test_read_tokens_expire_and_are_bound_to_the_api_token() -> None:
    require_server_deps()
    from kitaru.server._tokens import StreamTokens

    now = [1_000_000.0]
    tokens = StreamTokens("api", clock=lambda: now[0])
    token, expires = tokens.issue(60)
    assert expires == 1_000_060 and tokens.verify(token)
    now[0] = 1_000_059.0
    assert tokens.verify(token)
    now[0] = 1_000_060.0
    assert not tokens.verify(token)
    now[0] = 1_000_000.0
    assert not StreamTokens("other", clock=lambda: now[0]).verify(token)
    assert not tokens.verify("api")
    body, _, sig = token.rpartition(".")
    later = body.replace(".1000060.", ".9999999999.")
    assert not tokens.verify(f"{later}.{sig}")  # a longer expiry breaks the signature
    assert not StreamTokens(None).enabled and not StreamTokens(None).verify(token)
    with pytest.raises(RuntimeError):
        StreamTokens(None).issue()


def test_snapshot_round_trips_through_its_dict() -> None:
    events = [ExecutionEvent.from_wire(e, f"{i:03d}") for i, e in enumerate(_lifecycle("x"))]
    snap = SnapshotFold("x", events).snapshot(status="running", trace_id="t" * 32, created_at=1)
    again = ExecutionSnapshot.from_dict(orjson.loads(orjson.dumps(snap.to_dict())))
    assert again == snap
    with pytest.raises(ValueError):
        ExecutionSnapshot.from_dict({"cursor": None})
