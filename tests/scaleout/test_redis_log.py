"""A real server on the Redis event log: retention gaps, and Redis restarting mid-stream."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from _replicas import execution_body, wire_events
from httpx_sse import connect_sse

from kitaru import KitaruClient, _wire

pytestmark = pytest.mark.redis


def _server(tmp_path: Path, redis_log_url: str, **options: Any) -> Any:
    from kitaru.server import serve_in_thread

    options.setdefault("ping_interval", 0.5)
    return serve_in_thread(
        db=tmp_path / "records.db", event_log_url=redis_log_url, token=None, **options
    )


def _frames(url: str, exec_id: str, last_event_id: str | None) -> list[Any]:
    headers = {_wire.HEADER_LAST_EVENT_ID: last_event_id} if last_event_id else {}
    out = []
    with (
        httpx.Client(base_url=url, timeout=20) as c,
        connect_sse(c, "GET", _wire.path_stream(exec_id), headers=headers) as src,
    ):
        assert src.response.status_code == 200
        for sse in src.iter_sse():
            out.append(sse)
            if sse.event in (_wire.CONTROL_END, _wire.CONTROL_ERROR):
                break
    return out


def test_resume_below_the_retained_window_gets_a_gap_then_the_rest(
    tmp_path: Path, redis_log_url: str
) -> None:
    server = _server(tmp_path, redis_log_url, max_events_per_execution=50)
    try:
        exec_id = str(uuid.uuid4())
        with httpx.Client(base_url=server.url, timeout=20) as c:
            assert c.post(_wire.PATH_EXECUTIONS, json=execution_body(exec_id)).status_code == 201
            first = c.post(_wire.path_events(exec_id), content=wire_events(exec_id, 0, 10))
            old_cursor = first.json()["last_cursor"]  # event 9
            for k in range(1, 12):
                c.post(_wire.path_events(exec_id), content=wire_events(exec_id, k * 10, 10))
            c.post(_wire.path_finish(exec_id), json={"status": "completed", "output": None})
        frames = _frames(server.url, exec_id, old_cursor)
        gap = [f for f in frames if f.event == _wire.CONTROL_GAP]
        assert len(gap) == 1
        info = orjson.loads(gap[0].data)
        # 120 events, the newest 50 kept: events 10..69 (cursors 11..70) are gone.
        assert info["after"] == old_cursor and info["lost"] == 60
        assert info["until"] == gap[0].id and int(info["until"]) == 70
        data = [orjson.loads(f.data) for f in frames if f.event == "test.tick"]
        assert [d["index"] for d in data] == list(range(70, 120))
        assert frames[-1].event == _wire.CONTROL_END
        # Resuming after the gap's own id reports no second gap.
        again = _frames(server.url, exec_id, info["until"])
        assert not [f for f in again if f.event == _wire.CONTROL_GAP]
        assert len([f for f in again if f.event == "test.tick"]) == 50
    finally:
        server.stop()


def test_ended_executions_expire_with_an_announced_gap(tmp_path: Path, redis_log_url: str) -> None:
    server = _server(tmp_path, redis_log_url, retain_ended=0.5)
    try:
        exec_id = str(uuid.uuid4())
        with httpx.Client(base_url=server.url, timeout=20) as c:
            assert c.post(_wire.PATH_EXECUTIONS, json=execution_body(exec_id)).status_code == 201
            c.post(_wire.path_events(exec_id), content=wire_events(exec_id, 0, 5))
            c.post(_wire.path_finish(exec_id), json={"status": "completed", "output": None})
        # The retention task runs every second or so; wait (bounded) until it has run.
        for _ in range(100):
            frames = _frames(server.url, exec_id, None)
            if any(f.event == _wire.CONTROL_GAP for f in frames):
                break
            time.sleep(0.1)
        gap = orjson.loads(next(f for f in frames if f.event == _wire.CONTROL_GAP).data)
        assert gap["lost"] == 5 and gap["after"] is None and gap["reason"] == "retention"
        assert [f.event for f in frames if f.data] == [_wire.CONTROL_GAP, _wire.CONTROL_END]
    finally:
        server.stop()


def test_redis_restart_mid_stream_never_hangs_and_later_events_arrive(
    tmp_path: Path, redis_service: Any
) -> None:
    if not redis_service.restartable:
        pytest.skip("KITARU_TEST_REDIS_URL names a Redis this test must not restart")
    prefix = f"restart{uuid.uuid4().hex[:8]}"
    server = _server(tmp_path, f"{redis_service.url}?prefix={prefix}")
    exec_id = str(uuid.uuid4())
    results: list[dict[str, Any]] = [{} for _ in range(4)]

    def watch(slot: dict[str, Any]) -> None:
        watcher = KitaruClient(server.url).executions.events(
            exec_id, on_gap="continue", backoff_max=0.5, max_outage=60
        )
        try:
            slot["indexes"] = [e.index for e in watcher]
            slot["status"] = watcher.final_status
        except Exception as exc:  # reported below; the test fails on it
            slot["error"] = repr(exc)

    try:
        with httpx.Client(base_url=server.url, timeout=20) as c:
            assert c.post(_wire.PATH_EXECUTIONS, json=execution_body(exec_id)).status_code == 201
            threads = [threading.Thread(target=watch, args=(slot,)) for slot in results]
            for t in threads:
                t.start()
            c.post(_wire.path_events(exec_id), content=wire_events(exec_id, 0, 20))
            time.sleep(0.3)
            redis_service.stop()  # a clean restart: Redis writes its append-only file
            # While Redis is away the server refuses events with 503 (the publisher retries).
            down = c.post(_wire.path_events(exec_id), content=wire_events(exec_id, 20, 20))
            assert down.status_code == 503
            time.sleep(1.0)
            redis_service.start()
            for _ in range(100):  # bounded: until the server reaches Redis again
                up = c.post(_wire.path_events(exec_id), content=wire_events(exec_id, 20, 20))
                if up.status_code == 200:
                    break
                time.sleep(0.1)
            assert up.status_code == 200, up.text
            c.post(_wire.path_events(exec_id), content=wire_events(exec_id, 40, 20))
            c.post(_wire.path_finish(exec_id), json={"status": "completed", "output": None})
            for t in threads:
                t.join(90)
            assert not any(t.is_alive() for t in threads), "a watcher hung"
        for slot in results:
            assert "error" not in slot, slot
            assert slot["status"] == "completed"
            # Every event published after the restart arrived; with the append-only file
            # nothing before it was lost either, and nothing came twice.
            assert slot["indexes"] == list(range(60)), slot
        stats = httpx.get(server.url + _wire.PATH_INFO, timeout=10).json()["event_log_stats"]
        assert stats["redis_errors"] > 0  # the outage was really seen
    finally:
        server.stop()
        redis_service.start()  # idempotent: the session's Redis is up for the next tests
