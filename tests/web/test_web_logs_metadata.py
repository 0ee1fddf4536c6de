"""The web view shows a lane's log lines on demand, its metadata, and tokens and cost."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from _webkit import WAIT_MS, connection_is, screenshot

import kitaru
from kitaru import checkpoint, flow
from kitaru.runtime._runtime import reset_runtime

pytestmark = [pytest.mark.browser, pytest.mark.server]

log = logging.getLogger("kitaru_tests.web")
MARKUP = "<img src=x onerror=alert(1)>"


@checkpoint
def graded() -> float:
    log.warning("grading %s", MARKUP)
    print("printed line")
    kitaru.log(score=0.9, model="m")
    kitaru.record_usage("fake-model", input_tokens=100, output_tokens=20, cost_usd=0.0125)
    return 0.9


@checkpoint
def silent() -> int:
    return 1


@flow
def web_flow() -> float:
    kitaru.log(dataset="dev")
    silent()
    return graded()


def test_lane_logs_metadata_and_usage(
    make_server: Callable[..., Any],
    browser_page: tuple[Any, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = make_server()
    monkeypatch.setenv("KITARU_SERVER_URL", server.url)
    reset_runtime()
    handle = web_flow.run()
    handle.wait()
    page, log_ = browser_page
    page.goto(f"{server.url}/ui/executions/{handle.exec_id}")
    connection_is(page, "ended")
    lane = page.locator(".lane", has_text="graded")
    lane.wait_for(timeout=WAIT_MS)
    meta = lane.locator('[data-role="lane-meta"]')
    page.wait_for_function(
        "el => el.textContent.includes('score=0.9')", arg=meta.element_handle(), timeout=WAIT_MS
    )
    assert meta.text_content() == "score=0.9  model=m"
    assert page.locator("#exec-metadata").text_content() == "dataset=dev"

    # Log lines are fetched only when asked for.
    logs = lane.locator('[data-role="lane-logs"]')
    assert logs.is_hidden()
    lane.locator(".lane-logs-toggle").click()
    page.wait_for_function(
        "el => el.textContent.includes('printed line')", arg=logs.element_handle(), timeout=WAIT_MS
    )
    text = logs.text_content() or ""
    assert f"WARNING grading {MARKUP}" in text
    assert text.index("grading") < text.index("printed line")
    assert logs.locator("img").count() == 0  # markup stays text
    other = page.locator(".lane", has_text="silent")
    other.locator(".lane-logs-toggle").click()
    other_logs = other.locator('[data-role="lane-logs"]')
    page.wait_for_function(
        "el => el.textContent === 'No log lines.'", arg=other_logs.element_handle(), timeout=WAIT_MS
    )

    row = page.locator('#usage tr[data-step="graded"] td')
    assert [row.nth(i).text_content() for i in range(6)] == [
        "graded",
        "fake-model",
        "100",
        "20",
        "0",
        "0.0125",
    ]
    assert "120 tokens" in (page.locator("#usage-total").text_content() or "")
    screenshot(page, "web-lane-logs.png")

    # The list page's dashboard panel: tokens and cost per checkpoint name, over executions.
    second = web_flow.run()
    second.wait()
    page.goto(f"{server.url}/ui/")
    cells = page.locator('#usage-panel tr[data-checkpoint="graded"] td')
    cells.first.wait_for(timeout=WAIT_MS)
    assert [cells.nth(i).text_content() for i in range(6)] == [
        "graded",
        "2",
        "200",
        "40",
        "0",
        "0.0250",
    ]
    assert page.locator('#usage-panel tr[data-checkpoint="silent"]').count() == 0
    screenshot(page, "web-usage-panel.png")
    assert log_.dialogs == [] and log_.page_errors == []
    assert page.evaluate("window.__alerts") == []
