"""Text from events and records is shown as text: markup in it never becomes HTML or runs."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from _webkit import WAIT_MS, connection_is, screenshot

from kitaru import _wire

pytestmark = [pytest.mark.browser, pytest.mark.server]

IMG = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>window.__pwned = 1; alert('script')</script>"
SVG = '<svg onload="alert(2)"></svg>'


def _event(exec_id: str, corr: str, index: int, kind: str, **payload: Any) -> dict[str, Any]:
    name = "<b>bold</b>_checkpoint"
    return {
        "exec_id": exec_id,
        "kind": kind,
        "correlation_id": corr,
        "index": index,
        "checkpoint_id": "cp-1",
        "checkpoint_name": name,
        "step_name": name,
        "ts": time.time(),
        "payload": {
            "kitaru": {
                "source": "kitaru",
                "checkpoint_name": name,
                "correlation_id": corr,
                "ts": time.time(),
            },
            **payload,
        },
    }


def test_markup_in_events_is_rendered_as_text_and_never_runs(
    make_server: Callable[..., Any],
    browser_page: tuple[Any, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A trace URL template that would be a script link: the page must not link it.
    monkeypatch.setenv("KITARU_TRACE_URL_TEMPLATE", "javascript:alert(3)//{trace_id}")
    server = make_server()
    page, log = browser_page
    exec_id = str(uuid.uuid4())
    corr = "kitaru.checkpoint:evil:" + "ab" * 16
    with httpx.Client(base_url=server.url, timeout=10) as c:
        r = c.post(
            _wire.PATH_EXECUTIONS,
            json={
                "exec_id": exec_id,
                "flow_name": SCRIPT,
                "status": "running",
                "created_at": time.time(),
            },
        )
        assert r.status_code == 201, r.text

        def post(*events: dict[str, Any]) -> None:
            resp = c.post(_wire.path_events(exec_id), content=orjson.dumps(list(events)))
            assert resp.status_code == 200, resp.text

        # Before the page opens (comes through the snapshot) ...
        post(
            _event(exec_id, corr, 0, "kitaru.checkpoint.started", status="started"),
            _event(
                exec_id,
                corr,
                1,
                "kitaru.checkpoint.progress",
                message=IMG,
                data={"percent": 0.5},
            ),
        )
        page.goto(f"{server.url}/ui/")
        page.locator(f'tr[data-exec-id="{exec_id}"] td.flow').wait_for(timeout=WAIT_MS)
        assert page.locator(f'tr[data-exec-id="{exec_id}"] td.flow').text_content() == SCRIPT

        page.goto(f"{server.url}/ui/executions/{exec_id}")
        connection_is(page, "live")
        message = page.locator("#lanes .lane-message")
        message.wait_for(timeout=WAIT_MS)
        assert message.text_content() == IMG

        # ... and after (comes through the live stream).
        post(
            _event(exec_id, corr, 2, "<i>custom</i>.kind", message=SVG, data={"html": SCRIPT}),
            _event(
                exec_id,
                corr,
                3,
                "kitaru.checkpoint.progress",
                message=SCRIPT + IMG,
                data={"percent": 0.75},
            ),
        )
        page.wait_for_function(
            "() => document.querySelector('#lanes .lane').dataset.percent === '75'",
            timeout=WAIT_MS,
        )
        assert message.text_content() == SCRIPT + IMG
        item = page.locator("#timeline .timeline-item")
        assert item.locator(".tl-message").text_content() == SVG
        assert item.locator(".tl-kind").text_content() == "<i>custom</i>.kind"
        assert item.locator(".tl-data").text_content() == orjson.dumps({"html": SCRIPT}).decode()
        assert page.locator(".lane-name").text_content() == "<b>bold</b>_checkpoint"
        assert page.locator("#flow-name").text_content() == SCRIPT
        screenshot(page, "web-markup-as-text.png")

    # Nothing of it became markup, and nothing ran.
    assert page.locator("#app img, #app script, #app svg, #app b, #app i").count() == 0
    assert page.evaluate("window.__alerts") == []
    assert page.evaluate("window.__pwned === undefined")
    assert log.dialogs == []
    assert log.page_errors == []
    # The javascript: trace template gave no link (the trace ID is shown as text instead).
    assert page.locator("#trace-link").count() == 0
    assert page.locator("#trace").text_content().startswith("trace ")
    # And the page asked for no image "x" (an onerror handler would have needed one).
    assert not [u for u in log.requests if u.endswith("/x")]
