"""Hostile input to a real server: execution IDs, clocks, nesting depth, tokens."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from _serverkit import execution_body, finish, new_execution, post_events, wire_event
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kitaru import KitaruClient, _wire
from kitaru._checks import MAX_EXEC_ID_LENGTH
from kitaru.exceptions import KitaruUsageError
from kitaru.server import ServerSettings
from kitaru.server._validate import MAX_CLOCK_SKEW, MAX_EVENT_DEPTH

pytestmark = pytest.mark.server

BAD_IDS = [".", "..", "a/b", "x" * (MAX_EXEC_ID_LENGTH + 1), "a\u001bb", ""]


def _message(r: httpx.Response) -> str:
    detail = r.json()["detail"]
    return str(detail["message"] if isinstance(detail, dict) else detail)


# -- execution IDs: one rule, one message, on both sides ---------------------------------


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
def test_bad_execution_ids_are_refused_by_client_and_server_alike(
    client: httpx.Client, bad: str
) -> None:
    # Nothing listens on port 9 of 127.0.0.1: had the client sent a request, the error would
    # be a connection failure, not a usage error.
    remote = KitaruClient(server_url="http://127.0.0.1:9")
    with pytest.raises(KitaruUsageError) as on_client:
        remote.executions.get(bad)
    with pytest.raises(KitaruUsageError) as on_snapshot:
        remote.executions.snapshot(bad)
    body = execution_body()
    body["exec_id"] = bad
    r = client.post(_wire.PATH_EXECUTIONS, json=body)
    assert r.status_code == 400, r.text
    assert _message(r) == str(on_client.value) == str(on_snapshot.value)
    assert "exec_id" in _message(r)


def test_the_longest_allowed_execution_id_works_end_to_end(client: httpx.Client) -> None:
    exec_id = "x" * MAX_EXEC_ID_LENGTH
    new_execution(client, exec_id=exec_id)
    assert client.get(_wire.path_execution(exec_id)).status_code == 200


# -- clocks: liveness by the server's clock, bounded timestamps ---------------------------


def test_lost_detection_ignores_a_future_created_at(make_server: Callable[..., Any]) -> None:
    srv = make_server(lost_after=1.0)
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        # An hour ahead (within the allowed skew) and a heartbeat claimed for the future.
        ahead = time.time() + 3600
        exec_id = new_execution(c, created_at=ahead, heartbeat_at=ahead)
        control = new_execution(c)
        deadline = time.monotonic() + 10
        statuses: dict[str, str] = {}
        while time.monotonic() < deadline:
            statuses = {
                e: c.get(_wire.path_execution(e)).json()["status"] for e in (exec_id, control)
            }
            if set(statuses.values()) == {"lost"}:
                break
            time.sleep(0.1)
        assert statuses == {exec_id: "lost", control: "lost"}


@pytest.mark.parametrize(
    "value",
    [time.time() + MAX_CLOCK_SKEW + 3600, 1e308, -1.0, 10**30],
    ids=["far-future", "1e308", "negative", "huge-int"],
)
def test_out_of_bounds_timestamps_are_refused_clearly(client: httpx.Client, value: float) -> None:
    r = client.post(_wire.PATH_EXECUTIONS, json=execution_body(created_at=value))
    assert r.status_code == 400, r.text
    assert "created_at" in _message(r) and "server's clock" in _message(r)
    exec_id = new_execution(client)
    ev = wire_event(exec_id, 0)
    ev["ts"] = 0.0
    body = orjson.dumps([ev]).replace(b'"ts":0.0', b'"ts":' + repr(value).encode())
    r = client.post(_wire.path_events(exec_id), content=body)
    assert r.status_code == 400, r.text
    assert "event [0]: ts" in _message(r) and "server's clock" in _message(r)


@pytest.mark.parametrize("literal", [b"1e400", b"-1e400", b"NaN", b"Infinity"])
def test_non_finite_timestamps_are_refused(client: httpx.Client, literal: bytes) -> None:
    body = orjson.dumps(execution_body(created_at=0.0)).replace(
        b'"created_at":0.0', b'"created_at":' + literal
    )
    assert literal in body
    r = client.post(_wire.PATH_EXECUTIONS, content=body)
    assert r.status_code == 400, r.text


# -- nesting depth: 2xx or 4xx, never 5xx; what is accepted can be read back ---------------


def _nested(depth: int, shapes: list[bool]) -> Any:
    """A value ``depth`` containers deep (``shapes``: True = object, False = array)."""
    value: Any = "leaf"
    for level in range(depth):
        value = {"k": value, "n": level} if shapes[level % len(shapes)] else [value, level]
    return value


def _depth_of_event(payload_extra_depth: int) -> int:
    # event object (1) > payload (2) > "data" value (3...)
    return 2 + payload_extra_depth


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    depth=st.one_of(st.integers(1, 2000), st.sampled_from([61, 62, 63, 64, 250, 251, 253, 1000])),
    shapes=st.lists(st.booleans(), min_size=1, max_size=4),
)
def test_any_nesting_depth_is_2xx_or_4xx_and_accepted_events_read_back(
    client: httpx.Client, depth: int, shapes: list[bool]
) -> None:
    exec_id = new_execution(client)
    ev = wire_event(exec_id, 0, kind="custom.deep")  # custom kinds go to the timeline
    ev["payload"]["data"] = _nested(depth, shapes)
    try:
        body = orjson.dumps([ev])
    except orjson.JSONEncodeError:
        # Too deep for any JSON encoder here: send the same shape as text.
        body = _deep_text(exec_id, depth, shapes)
    r = client.post(_wire.path_events(exec_id), content=body)
    assert r.status_code < 500, r.text
    accepted = r.status_code == 200
    assert accepted == (_depth_of_event(depth) <= MAX_EVENT_DEPTH), (depth, r.text)
    if not accepted:
        assert r.status_code == 400, r.text
        assert "levels deep" in _message(r) or "not valid JSON" in _message(r), _message(r)
        return
    finish(client, exec_id)
    snap = client.get(_wire.path_snapshot(exec_id))
    assert snap.status_code == 200, snap.text
    assert snap.json()["timeline"][-1]["payload"]["data"] == ev["payload"]["data"]
    with client.stream("GET", _wire.path_stream(exec_id)) as resp:
        assert resp.status_code == 200
        text = resp.read().decode()
    assert "event: custom.deep" in text and "event: end" in text


def _deep_text(exec_id: str, depth: int, shapes: list[bool]) -> bytes:
    head = orjson.dumps([wire_event(exec_id, 0, kind="custom.deep")])
    opens, closes = [], []
    for level in reversed(range(depth)):
        if shapes[level % len(shapes)]:
            opens.append(b'{"k":')
            closes.append(b',"n":%d}' % level)
        else:
            opens.append(b"[")
            closes.append(b",%d]" % level)
    value = b"".join(opens) + b'"leaf"' + b"".join(reversed(closes))
    return head.replace(b'"payload":{', b'"payload":{"data":' + value + b",", 1)


def test_too_deep_events_are_refused_before_anything_is_stored(client: httpx.Client) -> None:
    exec_id = new_execution(client)
    good = wire_event(exec_id, 0)
    deep = wire_event(exec_id, 1)
    deep["payload"]["data"] = _nested(MAX_EVENT_DEPTH, [True])
    r = client.post(_wire.path_events(exec_id), content=orjson.dumps([good, deep]))
    assert r.status_code == 400
    assert _message(r).startswith("event [1]: payload is nested more than")
    assert post_events(client, exec_id, [good])["stored"] == 1  # the batch stored nothing


# -- tokens ---------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [" ", "\t\n", "a b", "tok\u0007"])
def test_unusable_tokens_are_refused_at_startup(token: str) -> None:
    with pytest.raises(KitaruUsageError, match="token"):
        ServerSettings(token=token)
    from kitaru.server import check_bind_address

    with pytest.raises(KitaruUsageError, match="token"):
        check_bind_address("0.0.0.0", token, allow_insecure_remote=False)


def test_a_scoped_read_only_token_opens_one_execution_only(
    make_server: Callable[..., Any],
) -> None:
    srv = make_server(token="s3cret")
    admin = {"Authorization": "Bearer s3cret"}
    with httpx.Client(base_url=srv.url, timeout=10, headers=admin) as c:
        mine = new_execution(c)
        other = new_execution(c)
        post_events(c, mine, [wire_event(mine, 0)])
        r = c.post(_wire.PATH_STREAM_TOKENS, json={"exec_id": mine})
        assert r.status_code == 201, r.text
        assert r.json()["exec_id"] == mine
        scoped = r.json()["token"]
        bad = c.post(_wire.PATH_STREAM_TOKENS, json={"exec_id": ".."})
        assert bad.status_code == 400
    with httpx.Client(base_url=srv.url, timeout=10) as anon:
        h = {"Authorization": f"Bearer {scoped}"}
        assert anon.get(_wire.path_execution(mine), headers=h).status_code == 200
        assert anon.get(_wire.path_snapshot(mine), headers=h).status_code == 200
        assert anon.get(_wire.path_execution(other), headers=h).status_code == 403
        assert anon.get(_wire.path_snapshot(other), headers=h).status_code == 403
        assert anon.get(_wire.PATH_EXECUTIONS, headers=h).status_code == 403
        assert anon.post(_wire.path_heartbeat(mine), headers=h).status_code == 403
        # The stream takes it in the URL, for EventSource.
        with anon.stream(
            "GET", _wire.path_stream(other), params={_wire.QUERY_TOKEN: scoped}
        ) as resp:
            assert resp.status_code == 403
        tampered = scoped.rsplit(".", 2)
        assert len(tampered) == 3
        forged = f"{tampered[0]}.xb3RoZXI.{tampered[2]}"  # another scope, same signature
        h = {"Authorization": f"Bearer {forged}"}
        assert anon.get(_wire.path_execution(other), headers=h).status_code == 401
