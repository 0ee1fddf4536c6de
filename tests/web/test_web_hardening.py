"""The web view: trace links only from real trace IDs; the deepest accepted event renders."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from _webkit import WAIT_MS, connection_is

from kitaru import _wire
from kitaru.server._validate import MAX_EVENT_DEPTH
from kitaru.server._web import WebConfig

pytestmark = [pytest.mark.browser, pytest.mark.server]

TEMPLATE = "https://traces.example/app/trace/{trace_id}"
STEER = "../../../../logout?next=https://evil.example/#"


@pytest.mark.parametrize(
    "trace_id",
    [STEER, "ABCDEF0123456789ABCDEF0123456789", "0" * 32, "a" * 31, "a" * 33, "", None],
)
def test_only_a_32_hex_trace_id_makes_a_link(trace_id: str | None) -> None:
    assert WebConfig(TEMPLATE).trace_url(trace_id) is None


def test_a_valid_trace_id_makes_an_encoded_link() -> None:
    tid = "0123456789abcdef0123456789abcdef"
    assert WebConfig(TEMPLATE).trace_url(tid) == f"https://traces.example/app/trace/{tid}"


def _event(exec_id: str, index: int, kind: str, trace_id: str, **payload: Any) -> dict[str, Any]:
    corr = "kitaru.checkpoint:cp:" + "ab" * 16
    return {
        "exec_id": exec_id,
        "kind": kind,
        "correlation_id": corr,
        "index": index,
        "checkpoint_id": "cp-1",
        "checkpoint_name": "cp",
        "step_name": "cp",
        "ts": time.time(),
        "payload": {
            "kitaru": {
                "source": "kitaru",
                "checkpoint_name": "cp",
                "correlation_id": corr,
                "trace_id": trace_id,
            },
            **payload,
        },
    }


def test_a_steered_trace_id_never_becomes_the_link(
    make_server: Callable[..., Any],
    browser_page: tuple[Any, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KITARU_TRACE_URL_TEMPLATE", TEMPLATE)
    server = make_server()
    page, _log = browser_page
    exec_id = str(uuid.uuid4())
    with httpx.Client(base_url=server.url, timeout=10) as c:
        r = c.post(
            _wire.PATH_EXECUTIONS,
            json={"exec_id": exec_id, "flow_name": "f", "status": "running", "created_at": 1.0},
        )
        assert r.status_code == 201, r.text
        events = [_event(exec_id, 0, "kitaru.checkpoint.started", STEER, status="started")]
        r = c.post(_wire.path_events(exec_id), content=orjson.dumps(events))
        assert r.status_code == 200, r.text
        snap = c.get(_wire.path_snapshot(exec_id)).json()
    # The server links the execution's own trace, never the producer's text.
    own = uuid.UUID(exec_id).hex
    assert snap["trace_id"] == own
    assert snap["trace_url"] == TEMPLATE.replace("{trace_id}", own)

    # And the page checks too: a snapshot whose trace ID is not 32 hex digits gets no link,
    # whatever URL comes with it.
    def steer(route: Any) -> None:
        response = route.fetch()
        body = response.json()
        body["trace_id"] = STEER
        body["trace_url"] = "https://traces.example/app/trace/" + STEER
        route.fulfill(response=response, body=json.dumps(body))

    page.route("**/snapshot*", steer)
    page.goto(f"{server.url}/ui/executions/{exec_id}")
    connection_is(page, "live")
    page.locator("#trace").wait_for(state="attached", timeout=WAIT_MS)
    page.wait_for_function(
        "() => document.getElementById('trace').textContent.length > 0", timeout=WAIT_MS
    )
    assert page.locator("#trace-link").count() == 0
    assert page.locator("#trace a").count() == 0


def test_the_deepest_accepted_event_renders(
    make_server: Callable[..., Any], browser_page: tuple[Any, Any]
) -> None:
    server = make_server()
    page, log = browser_page
    exec_id = str(uuid.uuid4())
    deep: Any = "bottom"
    for _ in range(MAX_EVENT_DEPTH - 2):  # event (1) > payload (2) > data (3 ... 64)
        deep = {"d": deep}
    with httpx.Client(base_url=server.url, timeout=10) as c:
        r = c.post(
            _wire.PATH_EXECUTIONS,
            json={"exec_id": exec_id, "flow_name": "f", "status": "running", "created_at": 1.0},
        )
        assert r.status_code == 201, r.text
        ev = _event(exec_id, 0, "custom.deep", "ab" * 16, message="deep one", data=deep)
        r = c.post(_wire.path_events(exec_id), content=orjson.dumps([ev]))
        assert r.status_code == 200, r.text
        too_deep = _event(exec_id, 1, "custom.deep", "ab" * 16, data={"d": deep})
        r = c.post(_wire.path_events(exec_id), content=orjson.dumps([too_deep]))
        assert r.status_code == 400, r.text
    page.goto(f"{server.url}/ui/executions/{exec_id}")
    connection_is(page, "live")
    item = page.locator("#timeline .timeline-item")
    item.first.wait_for(timeout=WAIT_MS)
    assert item.locator(".tl-message").first.text_content() == "deep one"
    # The data is shown (shortened: it is long), as text.
    assert (item.locator(".tl-data").first.text_content() or "").startswith('{"d":{"d":')
    assert log.page_errors == []
