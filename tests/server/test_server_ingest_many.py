"""``POST /api/v1/events``: one request carrying the live events of several executions."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from _serverkit import collect, data_frames, error_detail, finish, new_execution, wire_event

from kitaru import _wire


def post_many(client: httpx.Client, events: list[Any]) -> httpx.Response:
    return client.post(_wire.PATH_EVENTS, content=orjson.dumps(events))


def messages(url: str, exec_id: str) -> list[str]:
    return [orjson.loads(f.data)["payload"]["message"] for f in data_frames(collect(url, exec_id))]


def test_events_of_several_executions_are_stored_per_execution_in_order(
    server: Any, client: httpx.Client
) -> None:
    a, b = new_execution(client), new_execution(client)
    events = [wire_event(a, 0), wire_event(b, 0), wire_event(a, 1), wire_event(b, 1)]
    r = post_many(client, events)
    assert r.status_code == 200, r.text
    answers = r.json()["executions"]
    assert list(answers) == [a, b]
    for exec_id in (a, b):
        assert answers[exec_id]["stored"] == 2
        assert answers[exec_id]["duplicates"] == 0
        assert isinstance(answers[exec_id]["last_cursor"], str)
        finish(client, exec_id)
        assert messages(server.url, exec_id) == ["event 0", "event 1"]


def test_a_refused_execution_does_not_drop_the_others(server: Any, client: httpx.Client) -> None:
    good, bad = new_execution(client), new_execution(client)
    unknown = "no-such-execution"
    broken = wire_event(bad, 1)
    broken["kind"] = "end"  # reserved: refuses every event of that execution
    events = [
        wire_event(good, 0),
        wire_event(bad, 0),
        wire_event(unknown, 0),
        broken,
        wire_event(good, 1),
    ]
    r = post_many(client, events)
    assert r.status_code == 200, r.text
    answers = r.json()["executions"]
    assert answers[good]["stored"] == 2
    assert answers[bad]["error"]["status"] == 400
    assert answers[bad]["error"]["kind"] == _wire.ERROR_INVALID_REQUEST
    assert "reserved" in answers[bad]["error"]["message"]
    assert answers[unknown]["error"]["status"] == 404
    assert answers[unknown]["error"]["kind"] == _wire.ERROR_EXECUTION_UNKNOWN
    for exec_id in (good, bad):
        finish(client, exec_id)
    assert messages(server.url, good) == ["event 0", "event 1"]
    assert messages(server.url, bad) == []  # nothing of the refused execution was stored


def test_a_retried_request_is_stored_once(server: Any, client: httpx.Client) -> None:
    a, b = new_execution(client), new_execution(client)
    first = [wire_event(a, 0), wire_event(b, 0)]
    assert post_many(client, first).status_code == 200
    # The retry also carries an event the first request did not have.
    r = post_many(client, [*first, wire_event(a, 1)])
    assert r.status_code == 200, r.text
    answers = r.json()["executions"]
    assert (answers[a]["stored"], answers[a]["duplicates"]) == (1, 1)
    assert (answers[b]["stored"], answers[b]["duplicates"]) == (0, 1)
    # The per-execution route shares the idempotency key.
    again = client.post(_wire.path_events(a), content=orjson.dumps([wire_event(a, 1)]))
    assert again.json()["duplicates"] == 1
    finish(client, a)
    assert messages(server.url, a) == ["event 0", "event 1"]


def test_an_event_naming_no_valid_execution_refuses_the_request(client: httpx.Client) -> None:
    a = new_execution(client)
    for bad in ([wire_event(a, 0), {"kind": "x"}], [wire_event(a, 0), 7]):
        r = post_many(client, bad)
        assert r.status_code == 400, r.text
        assert "event [1]" in error_detail(r)["message"]
    r = post_many(client, {"exec_id": a})  # type: ignore[arg-type]
    assert r.status_code == 400
    assert "JSON array" in error_detail(r)["message"]
    finish(client, a)
    # Nothing was stored by the refused requests.
    r = post_many(client, [wire_event(a, 0)])
    assert r.json()["executions"][a]["stored"] == 1


def test_too_many_events_is_413_and_streaming_off_is_501(make_server: Any) -> None:
    server = make_server(max_batch_events=2)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        a = new_execution(client)
        r = post_many(client, [wire_event(a, i) for i in range(3)])
        assert r.status_code == 413
        assert error_detail(r)["kind"] == _wire.ERROR_TOO_LARGE
    off = make_server(streaming=False)
    with httpx.Client(base_url=off.url, timeout=10) as client:
        a = new_execution(client)
        r = post_many(client, [wire_event(a, 0)])
        assert r.status_code == 501
        assert error_detail(r)["kind"] == _wire.ERROR_STREAMING_DISABLED


def test_the_route_is_in_the_openapi_document(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    body = paths[_wire.PATH_EVENTS]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["type"] == "array"
