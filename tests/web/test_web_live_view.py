"""The web view in real headless Chromium: live lanes of a ``.map()`` of 4, then the end."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from _webkit import (
    WAIT_MS,
    Producer,
    all_lanes_at,
    connection_is,
    lanes_state,
    read_all_events,
    screenshot,
)

from kitaru import _wire
from kitaru._snapshot import SnapshotFold

pytestmark = [pytest.mark.browser, pytest.mark.server, pytest.mark.slow]

TOKEN = "web-view-test-token"


def test_lanes_advance_then_show_final_states(
    make_server: Callable[..., Any],
    browser_page: tuple[Any, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KITARU_TRACE_URL_TEMPLATE", "http://127.0.0.1:16686/trace/{trace_id}")
    server = make_server(token=TOKEN)
    page, log = browser_page
    producer = Producer(server.url, tmp_path / "gates", tmp_path / "producer.log", token=TOKEN)
    try:
        # The list first: the running execution is there, with its status.
        page.goto(f"{server.url}/ui/#token={TOKEN}")
        row = page.locator(f'tr.execution-row[data-exec-id="{producer.exec_id}"]')
        row.wait_for(timeout=WAIT_MS)
        assert row.locator(".badge").text_content() == "running"
        assert TOKEN not in page.url  # the API token left the address bar at once
        screenshot(page, "web-executions-list.png")

        # Into the execution (in-page navigation, as a user clicks).
        row.locator("a").click()
        page.wait_for_url(f"**/ui/executions/{producer.exec_id}")
        connection_is(page, "live")
        widths: list[list[str]] = []
        for step in range(1, 4):
            all_lanes_at(page, 4, str(step * 25))
            lanes = [lane for lane in lanes_state(page) if lane["percent"]]
            assert len(lanes) == 4
            assert all(lane["status"] == "running" for lane in lanes)
            # The latest message is the highest-index one: at step 2 the milestone's.
            template = "item {n} is halfway" if step == 2 else "item {n}: step {step} of 4"
            assert sorted(lane["message"] for lane in lanes) == [
                template.format(n=n, step=step) for n in range(4)
            ]
            widths.append(sorted(lane["width"] for lane in lanes))
            if step == 2:
                screenshot(page, "web-lanes-running.png")
            producer.release(step)
        # The bars advanced: 25 %, then 50 %, then 75 % wide.
        assert widths == [["25%"] * 4, ["50%"] * 4, ["75%"] * 4]

        assert producer.finish().splitlines()[-1] == "result 14"
        connection_is(page, "ended")
        page.wait_for_function(
            "() => document.getElementById('exec-status').textContent === 'completed'",
            timeout=WAIT_MS,
        )
        final = lanes_state(page)
        screenshot(page, "web-lanes-final.png")
    finally:
        producer.kill()

    # Four crunch lanes at 100 % and the summarize lane, all returned.
    assert len(final) == 5
    assert all(lane["status"] == "returned" for lane in final)
    crunch = [lane for lane in final if lane["name"].startswith("crunch")]
    assert len(crunch) == 4 and all(lane["percent"] == "100" for lane in crunch)

    # What the page shows is the fold of the full stream: no event missing or counted twice.
    events = read_all_events(server.url, producer.exec_id, TOKEN)
    full = SnapshotFold(producer.exec_id, events)
    expected = {lane.correlation_id: lane.event_count for lane in full.board.lanes()}
    assert {lane["correlation_id"]: lane["events"] for lane in final} == expected
    received = page.evaluate("window.kitaruView")
    assert received["duplicates"] == 0
    assert page.locator("#event-count").text_content() == f"{len(events)} events"

    # The timeline shows the 5 custom events (newest first), as text.
    kinds = page.eval_on_selector_all(
        "#timeline .timeline-item", "els => els.map(e => e.dataset.kind)"
    )
    assert kinds[0] == "demo.summary" and sorted(kinds[1:]) == ["demo.milestone"] * 4
    assert page.locator("#timeline .tl-message").first.text_content() == "total 14"

    # The trace link comes from the server's KITARU_TRACE_URL_TEMPLATE.
    href = page.locator("#trace-link").get_attribute("href")
    assert href == f"http://127.0.0.1:16686/trace/{full.board.trace_id}"
    info = httpx.get(
        server.url + _wire.PATH_INFO, headers={"Authorization": f"Bearer {TOKEN}"}
    ).json()
    assert info["trace_url_template"] == "http://127.0.0.1:16686/trace/{trace_id}"

    # The stream was opened with the short-lived read token, never with the API token.
    streams = [u for u in log.requests if "/events/stream" in u]
    assert streams and all("token=kitaru-read.v1." in u for u in streams)
    assert not [u for u in log.requests if TOKEN in u]
    assert log.page_errors == [] and log.dialogs == []


def test_a_late_joiner_renders_the_snapshot_of_an_ended_execution(
    make_server: Callable[..., Any], browser_page: tuple[Any, Any], tmp_path: Path
) -> None:
    server = make_server()
    page, log = browser_page
    producer = Producer(server.url, tmp_path / "gates", tmp_path / "producer.log")
    try:
        for step in range(1, 4):
            producer.release(step)
        assert producer.finish().splitlines()[-1] == "result 14"
    finally:
        producer.kill()
    page.goto(f"{server.url}/ui/executions/{producer.exec_id}")
    connection_is(page, "ended")
    page.wait_for_function(
        "() => document.querySelectorAll('#lanes .lane').length === 5", timeout=WAIT_MS
    )
    final = lanes_state(page)
    events = read_all_events(server.url, producer.exec_id)
    full = SnapshotFold(producer.exec_id, events)
    assert {lane["correlation_id"]: lane["events"] for lane in final} == {
        lane.correlation_id: lane.event_count for lane in full.board.lanes()
    }
    assert all(lane["status"] == "returned" for lane in final)
    # Everything came from the snapshot: the stream was never needed.
    assert page.evaluate("window.kitaruView.received.length") == 0
    assert page.locator("#timeline .timeline-item").count() == 5
    assert log.page_errors == []
