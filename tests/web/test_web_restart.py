"""The server restarts while the page is open: "reconnecting", then on, nothing lost or doubled."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _webkit import (
    Producer,
    all_lanes_at,
    connection_is,
    lanes_state,
    read_all_events,
    require_browser,
    screenshot,
)

from _support import ServerProcess, free_port
from kitaru._snapshot import SnapshotFold

pytestmark = [pytest.mark.browser, pytest.mark.server, pytest.mark.slow]

TOKEN = "restart-test-token"


@pytest.fixture
def processes() -> Iterator[list[Any]]:
    require_browser()
    started: list[Any] = []
    yield started
    for proc in reversed(started):
        if isinstance(proc, Producer):
            proc.kill()
        else:
            proc.stop()


def test_page_rides_out_a_server_restart(
    browser_page: tuple[Any, Any], tmp_path: Path, processes: list[Any]
) -> None:
    page, log = browser_page
    db, server_log = tmp_path / "server.db", tmp_path / "server.log"
    port = free_port()
    first = ServerProcess(db, port, server_log, token=TOKEN)
    processes.append(first)
    producer = Producer(first.url, tmp_path / "gates", tmp_path / "producer.log", token=TOKEN)
    processes.append(producer)

    page.goto(f"{first.url}/ui/executions/{producer.exec_id}#token={TOKEN}")
    connection_is(page, "live")
    all_lanes_at(page, 4, "25")

    # The server goes away with the page open: the page says so.
    first.stop()
    connection_is(page, "reconnecting")
    screenshot(page, "web-restart-reconnecting.png")
    # Work goes on meanwhile: the producer keeps step 2's events queued and retries them.
    producer.release(1)

    second = ServerProcess(db, port, server_log, token=TOKEN)
    processes.append(second)
    # The read token still holds (same API token, same signing key); the page resumes from its
    # last cursor and also receives what was published during the outage.
    connection_is(page, "live")
    all_lanes_at(page, 4, "50")
    producer.release(2)
    producer.release(3)
    assert producer.finish().splitlines()[-1] == "result 14"
    connection_is(page, "ended")
    screenshot(page, "web-restart-ended.png")

    debug = page.evaluate("window.kitaruView")
    assert "reconnecting" in debug["transitions"]
    assert debug["transitions"].index("reconnecting") < len(debug["transitions"]) - 1

    events = read_all_events(second.url, producer.exec_id, TOKEN)
    all_keys = {f"{ev.correlation_id}#{ev.index}" for ev in events}
    # No event was delivered twice by the resumed stream, and the page folded each once.
    received = [item["key"] for item in debug["received"]]
    assert [k for k, n in Counter(received).items() if n > 1] == []
    assert debug["duplicates"] == 0
    assert set(received) <= all_keys
    # Nothing is missing: the lanes on the page are the fold of the whole stream.
    full = SnapshotFold(producer.exec_id, events)
    final = lanes_state(page)
    assert {lane["correlation_id"]: lane["events"] for lane in final} == {
        lane.correlation_id: lane.event_count for lane in full.board.lanes()
    }
    assert all(lane["status"] == "returned" for lane in final)
    assert page.locator("#event-count").text_content() == f"{len(events)} events"
    assert page.locator("#timeline .timeline-item").count() == 5
    assert log.page_errors == []
