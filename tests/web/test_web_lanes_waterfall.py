"""The web view in headless Chromium with 30 lanes, 10 of them running.

Shows: running lanes first, fan-out items in input order (not start order), finished lanes
past a screenful collapsed behind a button; the waterfall with one bar per checkpoint
execution whose left edges follow the ``started`` times and whose running bars grow; a bad
execution ID gives a not-found page; the list filters, searches and pages. Screenshots of
the list, the running execution and the waterfall go to ``test-artifacts/``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from _fanout import FAILED, ITEMS, RETRIED, RUNNING, FanOut
from _webkit import WAIT_MS, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.server, pytest.mark.slow]

LANES_JS = """() => [...document.querySelectorAll('#lanes .lane')].map(r => ({
    position: Number(r.dataset.position),
    status: r.dataset.status,
    hidden: r.hidden,
    group: r.closest('.lane-group').dataset.checkpoint,
}))"""

BARS_JS = """() => [...document.querySelectorAll('#waterfall-rows .wf-row')].map(r => {
    const bar = r.querySelector('.wf-bar').getBoundingClientRect();
    const track = r.querySelector('.wf-track').getBoundingClientRect();
    return {key: r.dataset.key, status: r.dataset.status, started: Number(r.dataset.started),
            attempt: Number(r.dataset.attempt), retry: r.classList.contains('wf-retry'),
            left: bar.left - track.left, width: bar.width, track: track.width};
})"""


def _finished_positions() -> list[int]:
    return [n for n in range(1, ITEMS + 1) if n not in RUNNING]


def test_thirty_lanes_running_first_in_input_order_and_a_growing_waterfall(
    make_server: Callable[..., Any], browser_page: tuple[Any, Any]
) -> None:
    server = make_server(lost_after=600)
    page, log = browser_page
    run = FanOut(server.url)
    try:
        page.goto(f"{server.url}/ui/executions/{run.exec_id}")
        page.wait_for_function(
            "n => document.querySelectorAll('#lanes .lane').length === n",
            arg=ITEMS,
            timeout=WAIT_MS,
        )
        lanes = page.evaluate(LANES_JS)
        assert {lane["group"] for lane in lanes} == {"fetch"}
        visible = [lane for lane in lanes if not lane["hidden"]]
        # Running first, in input order (they started in the opposite order).
        assert [lane["status"] for lane in visible[:10]] == ["running"] * 10
        assert [lane["position"] for lane in visible[:10]] == RUNNING
        # Then finished ones in input order, up to a screenful (12 lanes) ...
        assert [lane["position"] for lane in visible[10:]] == _finished_positions()[:2]
        # ... and the rest behind one button that says how many.
        more = page.locator(".lane-group .group-more")
        assert more.text_content() == "… 18 more finished (show)"
        screenshot(page, "web-execution-running.png")

        # The waterfall: one bar per checkpoint execution, left edges in `started` order and
        # proportional to the `started` times (one axis for all).
        bars = page.evaluate(BARS_JS)
        assert len(bars) == ITEMS
        started = [bar["started"] for bar in bars]
        assert started == sorted(started)
        assert sorted(started) == sorted(run.started.values())
        first, last = bars[0], bars[-1]
        scale = (last["left"] - first["left"]) / (last["started"] - first["started"])
        assert scale > 0
        for bar in bars:
            expected = first["left"] + (bar["started"] - first["started"]) * scale
            assert abs(bar["left"] - expected) <= 1.5, bar
        assert {bar["status"] for bar in bars} == {"running", "returned", "failed"}
        assert [bar["attempt"] for bar in bars if bar["retry"]] == [2]
        assert sum(bar["status"] == "running" for bar in bars) == len(RUNNING)
        screenshot_waterfall(page, "web-waterfall-running.png")

        # Running bars grow while the page watches (no event arrives in between).
        widths = {bar["key"]: bar["width"] for bar in bars if bar["status"] == "running"}
        page.wait_for_function(
            """before => {
                const rows = [...document.querySelectorAll('#waterfall-rows .wf-row')]
                    .filter(r => r.dataset.status === 'running');
                return rows.length === Object.keys(before).length && rows.every(
                    r => r.querySelector('.wf-bar').getBoundingClientRect().width
                         > before[r.dataset.key] + 2);
            }""",
            arg=widths,
            timeout=WAIT_MS,
        )

        # Expand the finished ones: all 30, running first, each part in input order.
        more.click()
        lanes = page.evaluate(LANES_JS)
        assert not any(lane["hidden"] for lane in lanes)
        assert [lane["position"] for lane in lanes] == RUNNING + _finished_positions()
        failed = page.locator(f'#lanes .lane[data-position="{FAILED}"] .lane-message')
        assert failed.text_content().startswith("ValueError")
        assert (
            page.locator(f'#lanes .lane[data-position="{RETRIED}"] .lane-sub').text_content()
            == "attempt 2"
        )

        # The running ones end: bars stop at their end, everything in input order.
        run.finish_running()
        page.wait_for_function(
            "() => document.getElementById('exec-status').textContent === 'completed'",
            timeout=WAIT_MS,
        )
        page.wait_for_function(
            "() => ![...document.querySelectorAll('.wf-row')]"
            ".some(r => r.dataset.status === 'running')",
            timeout=WAIT_MS,
        )
        lanes = page.evaluate(LANES_JS)
        assert [lane["position"] for lane in lanes] == list(range(1, ITEMS + 1))
        ended = {bar["key"]: bar["width"] for bar in page.evaluate(BARS_JS)}
        time.sleep(1.5)  # the page ticks every 0.5 s: nothing may move once all ended
        assert {bar["key"]: bar["width"] for bar in page.evaluate(BARS_JS)} == ended
        screenshot_waterfall(page, "web-waterfall-ended.png")
        assert log.page_errors == []
    finally:
        run.close()


def screenshot_waterfall(page: Any, name: str) -> None:
    from _webkit import ARTIFACTS

    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#waterfall").screenshot(path=str(ARTIFACTS / name), animations="disabled")


def test_a_bad_execution_id_gives_a_not_found_page(
    make_server: Callable[..., Any], browser_page: tuple[Any, Any]
) -> None:
    server = make_server()
    page, log = browser_page
    bad = str(uuid.uuid4())[:8]
    page.goto(f"{server.url}/ui/executions/{bad}")
    page.locator("#not-found").wait_for(timeout=WAIT_MS)
    assert page.locator("#not-found-id").text_content() == bad
    assert page.locator("#notice").is_hidden()  # no error banner over the page
    assert page.locator("#conn").count() == 0  # no "connecting" header either
    assert "not found" in page.title()
    page.locator("#back-to-list").click()
    page.wait_for_url(f"{server.url}/ui/")
    page.locator("#filters").wait_for(timeout=WAIT_MS)
    assert log.page_errors == []


def test_list_filters_search_and_pages(
    make_server: Callable[..., Any], browser_page: tuple[Any, Any]
) -> None:
    import httpx

    from kitaru import _wire

    server = make_server(lost_after=600)
    page, log = browser_page
    ids: dict[str, list[str]] = {"alpha": [], "beta": []}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        base = time.time() - 100
        for i in range(30):
            flow = "alpha" if i % 3 else "beta"
            exec_id = str(uuid.uuid4())
            status = "running" if i >= 28 else "completed"
            body = {
                "exec_id": exec_id,
                "flow_name": flow,
                "flow_ref": f"tests:{flow}",
                "status": "running",
                "created_at": base + i,
                "ended_at": None,
                "original_exec_id": None,
                "error_type": None,
                "inputs": None,
                "output": None,
                "heartbeat_at": None,
            }
            assert client.post(_wire.PATH_EXECUTIONS, json=body).status_code == 201
            if status == "completed":
                r = client.post(
                    _wire.path_finish(exec_id),
                    json={"status": "completed", "output": None, "error_type": None},
                )
                assert r.status_code == 200
            ids[flow].append(exec_id)

    def rows() -> list[dict[str, str]]:
        result: list[dict[str, str]] = page.eval_on_selector_all(
            "tr.execution-row",
            """rows => rows.map(r => ({id: r.dataset.execId, status: r.dataset.status,
                flow: r.querySelector('.flow').textContent,
                started: r.querySelector('.started').textContent}))""",
        )
        return result

    def wait_rows(count: int) -> None:
        page.wait_for_function(
            "n => document.querySelectorAll('tr.execution-row').length === n",
            arg=count,
            timeout=WAIT_MS,
        )

    page.goto(f"{server.url}/ui/")
    wait_rows(25)  # one page
    assert page.locator("#page-next").is_enabled() and page.locator("#page-prev").is_disabled()
    first_page = rows()
    assert first_page[0]["status"] == "running"  # newest first
    assert all(row["started"].endswith("ago") for row in first_page)  # relative times
    screenshot(page, "web-executions-list.png")
    page.locator("#page-next").click()
    wait_rows(5)
    assert {row["id"] for row in rows()}.isdisjoint(row["id"] for row in first_page)
    assert "page=2" in page.url

    page.select_option("#filter-status", "running")
    wait_rows(2)
    assert {row["status"] for row in rows()} == {"running"}
    page.select_option("#filter-status", "")
    page.fill("#filter-flow", "beta")
    wait_rows(10)
    assert {row["flow"] for row in rows()} == {"beta"}
    target = ids["alpha"][4]
    page.fill("#filter-flow", "")
    page.fill("#filter-id", target[:6])
    page.wait_for_function(
        "id => { const r = [...document.querySelectorAll('tr.execution-row')];"
        " return r.length >= 1 && r.every(x => x.dataset.execId.startsWith(id)); }",
        arg=target[:6],
        timeout=WAIT_MS,
    )
    assert target in {row["id"] for row in rows()}
    page.fill("#filter-id", "zz")
    page.locator("#executions-empty").wait_for(timeout=WAIT_MS)
    assert page.locator("#executions-empty").text_content() == "No executions match these filters."
    assert log.page_errors == []
