"""Server mode end to end: real flows publishing to a real kitaru server."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _kitaru_server import start

import kitaru
from kitaru import (
    KitaruBackendError,
    KitaruClient,
    KitaruFeatureNotAvailableError,
    checkpoint,
    flow,
)
from kitaru.runtime._runtime import get_runtime, reset_runtime

pytestmark = pytest.mark.server

GO = threading.Event()
REACHED = threading.Event()


@checkpoint
def build_report(topic: str) -> str:
    kitaru.progress("Collecting notes", percent=0.25, topic=topic)
    notes = f"Notes about {topic}"
    GO.wait(10)
    kitaru.progress("Writing draft", percent=0.75)
    return f"Report: {notes}"


@flow
def report_flow(topic: str) -> str:
    return build_report(topic)


@checkpoint
def step_one() -> int:
    kitaru.progress("one")
    return 1


@checkpoint
def step_two(x: int) -> int:
    kitaru.progress("two")
    return x + 1


@flow
def restart_flow() -> int:
    a = step_one()
    REACHED.set()
    GO.wait(10)
    return step_two(a)


@pytest.fixture
def server_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A running server and KITARU_SERVER_URL pointing at it; the runtime is rebuilt."""
    GO.clear()
    REACHED.clear()
    server = start(tmp_path)
    monkeypatch.setenv("KITARU_SERVER_URL", server.url)
    reset_runtime()
    try:
        yield server
    finally:
        GO.set()
        reset_runtime()
        server.stop()


def test_product_page_watcher_example_on_a_live_flow(server_mode: Any) -> None:
    assert get_runtime().mode == "server"
    handle = report_flow.run("otters")
    client = KitaruClient()
    watcher = client.executions.events(
        handle.exec_id,
        kinds=["kitaru.checkpoint.progress"],
        checkpoint="build_report",
    )
    first = next(watcher)  # arrives while the checkpoint is still running
    assert handle.status == "running"
    GO.set()
    events = [first, *watcher]  # ends by itself when the execution ends
    assert [(e.kind, e.checkpoint_name, e.payload.get("message")) for e in events] == [
        ("kitaru.checkpoint.progress", "build_report", "Collecting notes"),
        ("kitaru.checkpoint.progress", "build_report", "Writing draft"),
    ]
    assert [e.data["percent"] for e in events] == [0.25, 0.75]
    assert events[0].data["topic"] == "otters"
    assert handle.wait(10) == "Report: Notes about otters"
    assert client.executions.get(handle.exec_id).status == "completed"

    # The whole stream of the finished execution, in publish order.
    everything = list(client.executions.events(handle.exec_id))
    assert [e.kind for e in everything] == [
        "kitaru.checkpoint.started",
        "kitaru.checkpoint.progress",
        "kitaru.checkpoint.progress",
        "kitaru.checkpoint.returned",
    ]
    assert [e.index for e in everything] == [0, 1, 2, 3]
    assert len({e.correlation_id for e in everything}) == 1


def test_every_event_reaches_the_server_before_the_execution_ends(server_mode: Any) -> None:
    GO.set()
    for topic in ("a", "b", "c"):
        handle = report_flow.run(topic)
        watcher = KitaruClient().executions.events(handle.exec_id)
        assert [e.index for e in watcher] == [0, 1, 2, 3]
        assert watcher.final_status == "completed"  # type: ignore[attr-defined]
        handle.wait(10)


def test_async_watcher_on_a_live_flow(server_mode: Any) -> None:
    import asyncio

    handle = report_flow.run("async")

    async def main() -> list[str]:
        out = []
        async with KitaruClient().executions.aevents(handle.exec_id) as watcher:  # type: ignore[attr-defined]
            async for event in watcher:
                out.append(event.kind)
                if event.kind == "kitaru.checkpoint.progress":
                    GO.set()
        return out

    kinds = asyncio.run(asyncio.wait_for(main(), 20))
    assert kinds[0] == "kitaru.checkpoint.started" and kinds[-1] == "kitaru.checkpoint.returned"
    assert len(kinds) == 4
    handle.wait(10)


def test_heartbeats_reach_the_server(server_mode: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KITARU_HEARTBEAT_INTERVAL", "0.05")
    reset_runtime()
    handle = report_flow.run("beat")
    client = KitaruClient()
    deadline = time.monotonic() + 10
    while client.executions.get(handle.exec_id).heartbeat_at is None:
        assert time.monotonic() < deadline, "no heartbeat arrived"
        time.sleep(0.05)
    GO.set()
    handle.wait(10)


def test_streaming_off_a_flow_completes_with_exactly_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    server = start(tmp_path, streaming=False)
    monkeypatch.setenv("KITARU_SERVER_URL", server.url)
    reset_runtime()
    GO.set()
    try:
        with caplog.at_level(logging.WARNING):
            assert report_flow("x") == "Report: Notes about x"
            assert report_flow("y") == "Report: Notes about y"
            kitaru.events.flush(2.0)
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
        assert "streaming disabled" in warnings[0].getMessage()
        client = KitaruClient()
        done = client.executions.list(status="completed")
        assert len(done) == 2
        with pytest.raises(KitaruFeatureNotAvailableError, match="streaming disabled"):
            client.executions.events(done[0].exec_id)
    finally:
        reset_runtime()
        server.stop()


def test_a_flow_survives_a_server_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    GO.clear()
    REACHED.clear()
    server = start(tmp_path)
    port = server.port
    monkeypatch.setenv("KITARU_SERVER_URL", server.url)
    reset_runtime()
    restarted: list[Any] = []
    try:
        handle = restart_flow.run()
        assert REACHED.wait(10)
        server.stop()  # killed mid-flow: the next record writes find nobody

        def come_back() -> None:
            time.sleep(3.5)  # longer than the publisher's backoff cap
            restarted.append(start(tmp_path, port=port))

        threading.Thread(target=come_back).start()
        GO.set()
        assert handle.wait(30) == 2
        assert restarted, "the flow finished before the server came back"
        # No flush here: the flow itself must have handed its retried events on before the
        # execution turned terminal, or a watcher reading to `end` would miss them.
        client = KitaruClient()
        record = client.executions.get(handle.exec_id)
        assert record.status == "completed"
        assert [c.status for c in record.checkpoints] == ["completed", "completed"]
        # Live events published during the outage were retried and arrived too.
        kinds = [(e.checkpoint_name, e.kind) for e in client.executions.events(handle.exec_id)]
        assert ("step_two", "kitaru.checkpoint.returned") in kinds
        assert len(kinds) == 6
    finally:
        GO.set()
        reset_runtime()
        for s in restarted:
            s.stop()


def test_wrong_token_is_an_authorization_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start(tmp_path, token="s3cret")
    monkeypatch.setenv("KITARU_SERVER_URL", server.url)
    monkeypatch.setenv("KITARU_API_TOKEN", "s3cret")
    monkeypatch.setenv("KITARU_RECORD_RETRY_SECONDS", "1")
    reset_runtime()
    GO.set()
    try:
        handle = report_flow.run("t")
        assert handle.wait(10) == "Report: Notes about t"
        good = KitaruClient()
        assert [e.index for e in good.executions.events(handle.exec_id)] == [0, 1, 2, 3]
        bad = KitaruClient(server.url, api_token="wrong")
        with pytest.raises(KitaruBackendError, match="authorization"):
            bad.executions.events(handle.exec_id)
        with pytest.raises(KitaruBackendError, match="authorization"):
            bad.executions.get(handle.exec_id)
    finally:
        reset_runtime()
        server.stop()
