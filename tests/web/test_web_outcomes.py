"""The web view tells the truth about outcomes: the failure text on the failed lane (as text,
from the durable record) and fan-out lanes in input order."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from _webkit import WAIT_MS, lanes_state

import kitaru
from kitaru import KitaruClient, checkpoint, flow
from kitaru.runtime._runtime import reset_runtime

pytestmark = [pytest.mark.browser, pytest.mark.server, pytest.mark.slow]

CANARY = "token=sk-canary-5150 <b>bold</b>"


def explode_with_canary() -> None:
    raise RuntimeError(CANARY)


@checkpoint
def process(n: int) -> int:
    kitaru.progress(f"item {n}")
    if n == 3:
        explode_with_canary()
    return n


@flow
def six_items() -> list[int]:
    return process.map(range(6))


def test_failed_lane_shows_the_records_text_and_lanes_keep_input_order(
    make_server: Callable[..., Any],
    browser_page: tuple[Any, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = make_server()
    monkeypatch.setenv("KITARU_SERVER_URL", server.url)
    reset_runtime()
    try:
        with pytest.raises(RuntimeError):
            six_items()
        (record,) = KitaruClient().executions.list()
    finally:
        reset_runtime()
    page, log = browser_page
    page.goto(f"{server.url}/ui/executions/{record.exec_id}")
    summary = page.locator('#lanes .lane[data-status="failed"] .lane-error-summary')
    summary.wait_for(timeout=WAIT_MS)
    assert summary.text_content() == f"RuntimeError: {CANARY}"
    # Text, never markup: the page made no <b> element of it.
    assert page.locator("#lanes .lane-error b").count() == 0
    summary.click()
    traceback = page.locator("#lanes .lane-traceback")
    traceback.wait_for(timeout=WAIT_MS)
    assert "explode_with_canary" in (traceback.text_content() or "")
    names = [lane["name"] for lane in lanes_state(page)]
    assert names == ["process", "process_2", "process_3", "process_4", "process_5", "process_6"]
    assert not log.page_errors


def _event(exec_id: str, item: int, index: int, kind: str, ts: float) -> dict[str, Any]:
    corr = f"kitaru.checkpoint:work:{uuid.uuid4().hex}"
    return {
        "exec_id": exec_id,
        "kind": kind,
        "correlation_id": corr,
        "index": index,
        "checkpoint_id": str(uuid.uuid4()),
        "checkpoint_name": "work",
        "step_name": "work" if item == 0 else f"work_{item + 1}",
        "ts": ts,
        "payload": {
            "kitaru": {
                "source": "kitaru",
                "checkpoint_name": "work",
                "correlation_id": corr,
                "item": item,
                "ts": ts,
            },
            "status": "started",
        },
    }


def test_lanes_that_started_out_of_order_are_listed_by_input_position(
    make_server: Callable[..., Any], browser_page: tuple[Any, Any], tmp_path: Path
) -> None:
    server = make_server()
    exec_id = str(uuid.uuid4())
    now = time.time()
    with httpx.Client(base_url=server.url, timeout=10) as http:
        created = http.post(
            "/api/v1/executions",
            json={
                "exec_id": exec_id,
                "flow_name": "shuffled",
                "flow_ref": None,
                "status": "running",
                "created_at": now,
            },
        )
        assert created.status_code == 201, created.text
        # Item 2 started first, item 0 last.
        events = [
            _event(exec_id, item, 0, "kitaru.checkpoint.started", now + (2 - item))
            for item in range(3)
        ]
        posted = http.post(f"/api/v1/executions/{exec_id}/events", json=events)
        assert posted.status_code < 300, posted.text
    page, _log = browser_page
    page.goto(f"{server.url}/ui/executions/{exec_id}")
    page.wait_for_function(
        "() => document.querySelectorAll('#lanes .lane').length === 3", timeout=WAIT_MS
    )
    assert [lane["name"] for lane in lanes_state(page)] == ["work", "work_2", "work_3"]


def test_a_failed_attempt_that_was_retried_reads_as_retried(
    make_server: Callable[..., Any], browser_page: tuple[Any, Any]
) -> None:
    server = make_server()
    exec_id = str(uuid.uuid4())
    now = time.time()
    call = str(uuid.uuid4())
    events = []
    for attempt, kind in ((1, "kitaru.checkpoint.failed"), (2, "kitaru.checkpoint.returned")):
        start = _event(exec_id, 0, 0, "kitaru.checkpoint.started", now + attempt)
        start["checkpoint_id"] = call
        start["payload"]["kitaru"]["attempt"] = attempt
        end = dict(start, index=1, kind=kind)
        end["payload"] = {
            "kitaru": dict(start["payload"]["kitaru"], ts=now + attempt + 0.5),
            "status": kind.rsplit(".", 1)[-1],
        }
        if attempt == 1:
            end["payload"]["error_type"] = "ConnectionError"
        events += [start, end]
    with httpx.Client(base_url=server.url, timeout=10) as http:
        created = http.post(
            "/api/v1/executions",
            json={
                "exec_id": exec_id,
                "flow_name": "flaky",
                "flow_ref": None,
                "status": "running",
                "created_at": now,
            },
        )
        assert created.status_code == 201, created.text
        posted = http.post(f"/api/v1/executions/{exec_id}/events", json=events)
        assert posted.status_code < 300, posted.text
    page, _log = browser_page
    page.goto(f"{server.url}/ui/executions/{exec_id}")
    page.wait_for_function(
        "() => document.querySelectorAll('#lanes .lane[data-status=returned]').length === 1",
        timeout=WAIT_MS,
    )
    assert sorted(lane["status"] for lane in lanes_state(page)) == ["retried", "returned"]
