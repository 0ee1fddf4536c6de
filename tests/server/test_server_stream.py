"""The SSE stream against a real server: order, filters, cursor frames, end, resume, gaps."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from _serverkit import (
    collect,
    data_frames,
    error_detail,
    finish,
    new_execution,
    post_events,
    wire_event,
)
from httpx_sse import ServerSentEvent

from kitaru import _wire
from kitaru.backends import EventLogError, MemoryEventLog

pytestmark = pytest.mark.server

CORR_A = "kitaru.checkpoint:alpha:" + "a" * 32
CORR_B = "kitaru.checkpoint:beta:" + "b" * 32
CORR_C = "kitaru.checkpoint:gamma:" + "c" * 32


class Reader:
    """Collects a stream on a thread, so the test can publish while it reads."""

    def __init__(self, url: str, exec_id: str, **kwargs: Any) -> None:
        self.frames: list[ServerSentEvent] = []
        self.error: BaseException | None = None
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, args=(url, exec_id, kwargs))
        self._thread.start()

    def _run(self, url: str, exec_id: str, kwargs: dict[str, Any]) -> None:
        def stop(frames: list[ServerSentEvent]) -> bool:
            with self._changed:
                self.frames = list(frames)
                self._changed.notify_all()
            return False

        try:
            frames = collect(url, exec_id, stop=stop, **kwargs)
            with self._changed:
                self.frames = frames
                self._changed.notify_all()
        except BaseException as exc:
            self.error = exc

    def wait_for(self, predicate: Callable[[list[ServerSentEvent]], bool]) -> None:
        deadline = time.monotonic() + 10
        with self._changed:
            while not predicate(self.frames):
                assert self.error is None, self.error
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"stream never got there: {self.frames}"
                self._changed.wait(min(remaining, 0.1))

    def join(self) -> list[ServerSentEvent]:
        self._thread.join(15)
        assert not self._thread.is_alive(), "stream did not end"
        assert self.error is None, self.error
        return self.frames


def test_ingest_then_stream_keeps_order_and_fields(server: Any, client: httpx.Client) -> None:
    exec_id = new_execution(client)
    events = []
    for i in range(10):
        events.append(wire_event(exec_id, i, corr=CORR_A, name="alpha"))
        events.append(wire_event(exec_id, i, corr=CORR_B, name="beta", kind="custom.kind"))
    result = post_events(client, exec_id, events[:7])
    assert result["stored"] == 7
    post_events(client, exec_id, events[7:])
    finish(client, exec_id)
    frames = collect(server.url, exec_id)
    data = data_frames(frames)
    assert [(f.event, orjson.loads(f.data)["index"]) for f in data] == [
        (e["kind"], e["index"]) for e in events
    ]
    cursors = [f.id for f in data]
    assert cursors == sorted(set(cursors)) and all(cursors)
    first = orjson.loads(data[1].data)
    assert first["cursor"] == data[1].id
    for key in ("exec_id", "kind", "correlation_id", "index", "checkpoint_id"):
        assert first[key] == events[1][key]
    assert first["checkpoint_name"] == "beta" and first["step_name"] == "beta"
    assert first["payload"] == events[1]["payload"]
    assert frames[-1].event == "end"
    end = orjson.loads(frames[-1].data)
    assert end["status"] == "completed" and end["exec_id"] == exec_id
    assert end["cursor"] == cursors[-1]


def test_live_events_reach_an_open_stream(server: Any, client: httpx.Client) -> None:
    exec_id = new_execution(client)
    reader = Reader(server.url, exec_id)
    post_events(client, exec_id, [wire_event(exec_id, 0)])
    reader.wait_for(lambda fs: len(fs) >= 1)
    for start in (1, 4, 9):
        post_events(client, exec_id, [wire_event(exec_id, i) for i in range(start, start + 3)])
    finish(client, exec_id, "failed")
    frames = reader.join()
    indexes = [orjson.loads(f.data)["index"] for f in data_frames(frames)]
    assert indexes == [0, 1, 2, 3, 4, 5, 6, 9, 10, 11]
    assert frames[-1].event == "end" and orjson.loads(frames[-1].data)["status"] == "failed"


def test_a_retried_batch_is_stored_once(server: Any, client: httpx.Client) -> None:
    exec_id = new_execution(client)
    batch = [wire_event(exec_id, i) for i in range(5)]
    assert post_events(client, exec_id, batch)["stored"] == 5
    again = post_events(client, exec_id, [*batch, wire_event(exec_id, 5)])
    assert again["stored"] == 1 and again["duplicates"] == 5
    finish(client, exec_id)
    assert len(data_frames(collect(server.url, exec_id))) == 6


def test_kinds_filter_sends_a_cursor_frame_for_a_trailing_filtered_run(
    server: Any, client: httpx.Client
) -> None:
    exec_id = new_execution(client)
    kinds = ["a", "b", "a", "b", "b"]
    post_events(client, exec_id, [wire_event(exec_id, i, kind=k) for i, k in enumerate(kinds)])
    finish(client, exec_id)
    everything = data_frames(collect(server.url, exec_id))
    frames = collect(server.url, exec_id, params={"kinds": "a"})
    assert [f.event for f in frames] == ["a", "a", "cursor", "end"]
    assert [f.id for f in frames[:2]] == [everything[0].id, everything[2].id]
    assert frames[2].id == everything[-1].id
    assert orjson.loads(frames[2].data) == {"cursor": everything[-1].id}
    # Resuming from the cursor frame replays nothing.
    again = collect(
        server.url, exec_id, params={"kinds": "a"}, headers={"Last-Event-ID": frames[2].id}
    )
    assert [f.event for f in again] == ["end"]
    # Several kinds (repeatable).
    both = collect(server.url, exec_id, params=[("kinds", "a"), ("kinds", "b")])
    assert len(data_frames(both)) == 5


def test_checkpoint_filter_on_a_finished_execution(server: Any, client: httpx.Client) -> None:
    exec_id = new_execution(client)
    events = [
        wire_event(exec_id, 0, corr=CORR_A, name="alpha"),
        wire_event(exec_id, 0, corr=CORR_B, name="beta", step="beta_2"),
        wire_event(exec_id, 1, corr=CORR_A, name="alpha"),
        wire_event(exec_id, 1, corr=CORR_B, name="beta", step="beta_2"),
    ]
    post_events(client, exec_id, events)
    finish(client, exec_id)
    by_name = collect(server.url, exec_id, params={"checkpoint": "alpha"})
    assert [f.event for f in by_name] == [events[0]["kind"]] * 2 + ["cursor", "end"]
    assert {orjson.loads(f.data)["checkpoint_name"] for f in data_frames(by_name)} == {"alpha"}
    by_step = collect(server.url, exec_id, params={"checkpoint": "beta_2"})
    assert [orjson.loads(f.data)["correlation_id"] for f in data_frames(by_step)] == [CORR_B] * 2
    assert by_step[-2].event != "cursor"  # the last event matched: no cursor frame needed


def test_checkpoint_filter_on_a_running_execution(server: Any, client: httpx.Client) -> None:
    exec_id = new_execution(client)
    reader = Reader(server.url, exec_id, params={"checkpoint": "beta"})
    noise = post_events(
        client, exec_id, [wire_event(exec_id, i, corr=CORR_A, name="alpha") for i in range(3)]
    )
    # The filtered run is announced before the stream waits for more.
    reader.wait_for(lambda fs: any(f.event == "cursor" for f in fs))
    assert [(f.event, f.id) for f in reader.frames] == [("cursor", noise["last_cursor"])]
    post_events(client, exec_id, [wire_event(exec_id, 0, corr=CORR_B, name="beta")])
    finish(client, exec_id)
    frames = reader.join()
    assert [f.event for f in frames][1:] == ["kitaru.checkpoint.progress", "end"]
    assert orjson.loads(frames[1].data)["checkpoint_name"] == "beta"


def test_correlation_id_filter_is_repeatable(server: Any, client: httpx.Client) -> None:
    exec_id = new_execution(client)
    events = [wire_event(exec_id, i, corr=c) for i in range(3) for c in (CORR_A, CORR_B, CORR_C)]
    post_events(client, exec_id, events)
    finish(client, exec_id)
    frames = collect(
        server.url, exec_id, params=[("correlation_id", CORR_A), ("correlation_id", CORR_C)]
    )
    corrs = [orjson.loads(f.data)["correlation_id"] for f in data_frames(frames)]
    assert corrs == [CORR_A, CORR_C] * 3
    assert frames[-1].event == "end"


def test_end_for_an_execution_that_never_published(server: Any, client: httpx.Client) -> None:
    exec_id = new_execution(client)
    finish(client, exec_id)
    frames = collect(server.url, exec_id)
    assert [f.event for f in frames] == ["end"]
    assert orjson.loads(frames[0].data) == {
        "exec_id": exec_id,
        "status": "completed",
        "cursor": None,
    }


def test_end_arrives_live_for_a_quiet_running_execution(server: Any, client: httpx.Client) -> None:
    exec_id = new_execution(client)
    reader = Reader(server.url, exec_id)
    time.sleep(0.3)  # let the stream reach its wait (not needed for correctness)
    finish(client, exec_id, "failed")
    frames = reader.join()
    assert [f.event for f in frames] == ["end"]
    assert orjson.loads(frames[0].data)["status"] == "failed"


def test_end_with_a_cursor_at_the_last_event(server: Any, client: httpx.Client) -> None:
    exec_id = new_execution(client)
    last = post_events(client, exec_id, [wire_event(exec_id, i) for i in range(3)])["last_cursor"]
    finish(client, exec_id)
    frames = collect(server.url, exec_id, params={"since": last})
    assert [f.event for f in frames] == ["end"]
    assert orjson.loads(frames[0].data)["cursor"] == last


def test_resume_from_last_event_id_or_since_and_the_header_wins(
    server: Any, client: httpx.Client
) -> None:
    exec_id = new_execution(client)
    post_events(client, exec_id, [wire_event(exec_id, i) for i in range(8)])
    finish(client, exec_id)
    cursors = [f.id for f in data_frames(collect(server.url, exec_id))]

    def indexes(**kwargs: Any) -> list[int]:
        return [
            orjson.loads(f.data)["index"]
            for f in data_frames(collect(server.url, exec_id, **kwargs))
        ]

    assert indexes(headers={"Last-Event-ID": cursors[4]}) == [5, 6, 7]
    assert indexes(params={"since": cursors[1]}) == [2, 3, 4, 5, 6, 7]
    assert indexes(params={"since": cursors[1]}, headers={"Last-Event-ID": cursors[5]}) == [6, 7]
    # An empty Last-Event-ID (what EventSource sends after an id reset) means "no position".
    assert indexes(params={"since": cursors[6]}, headers={"Last-Event-ID": ""}) == [7]


def test_invalid_cursor_is_400(server: Any, client: httpx.Client) -> None:
    exec_id = new_execution(client)
    last = post_events(client, exec_id, [wire_event(exec_id, 0)])["last_cursor"]
    path = _wire.path_stream(exec_id)
    for params, headers in (
        ({"since": "not-a-cursor"}, {}),
        ({"since": str(int(last) + 5)}, {}),
        ({}, {"Last-Event-ID": "x" * 300}),
    ):
        r = client.get(path, params=params, headers=headers)
        assert r.status_code == 400, (params, headers)
        assert error_detail(r)["kind"] == _wire.ERROR_CURSOR_INVALID


def test_heartbeats_are_comments_without_id(make_server: Callable[..., Any]) -> None:
    srv = make_server(ping_interval=0.1, retry_ms=1234)
    with httpx.Client(base_url=srv.url, timeout=5) as c:
        exec_id = new_execution(c)
        post_events(c, exec_id, [wire_event(exec_id, 0)])
        lines: list[str] = []
        with c.stream("GET", _wire.path_stream(exec_id)) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            assert r.headers["cache-control"] == "no-store"
            assert r.headers["x-accel-buffering"] == "no"
            for line in r.iter_lines():
                lines.append(line)
                if lines.count(": ping") >= 2:
                    break
    assert lines[0] == "retry: 1234"
    assert lines.count("id: " + "0" * 11 + "1") == 1  # the one event
    ping_at = lines.index(": ping")
    # A ping is its own frame: blank line before it, nothing else in it.
    assert lines[ping_at - 1] == "" and lines[ping_at + 1] == ""


def test_gap_when_retention_dropped_events(make_server: Callable[..., Any]) -> None:
    srv = make_server(max_events_per_execution=3)
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        exec_id = new_execution(c)
        first = post_events(c, exec_id, [wire_event(exec_id, 0)])["last_cursor"]
        post_events(c, exec_id, [wire_event(exec_id, i) for i in range(1, 6)])
        finish(c, exec_id)
    frames = collect(srv.url, exec_id)
    assert frames[0].event == "gap"
    gap = orjson.loads(frames[0].data)
    assert gap["reason"] == "retention" and gap["lost"] == 3 and gap["after"] is None
    assert frames[0].id == gap["until"]
    assert [orjson.loads(f.data)["index"] for f in data_frames(frames)] == [3, 4, 5]
    assert frames[-1].event == "end"
    resumed = collect(srv.url, exec_id, params={"since": first})
    assert orjson.loads(resumed[0].data)["lost"] == 2
    inside = collect(srv.url, exec_id, params={"since": frames[1].id})
    assert inside[0].event != "gap"


def test_streaming_off_answers_501_and_records_still_work(
    make_server: Callable[..., Any],
) -> None:
    srv = make_server(streaming=False)
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        assert c.get(_wire.PATH_INFO).json()["streaming"] is False
        exec_id = new_execution(c)
        r = c.post(_wire.path_events(exec_id), content=orjson.dumps([wire_event(exec_id, 0)]))
        assert r.status_code == 501
        assert error_detail(r)["kind"] == _wire.ERROR_STREAMING_DISABLED
        r = c.get(_wire.path_stream(exec_id))
        assert r.status_code == 501
        assert error_detail(r)["kind"] == _wire.ERROR_STREAMING_DISABLED
        assert finish(c, exec_id)["status"] == "completed"


def test_a_slow_watcher_loses_nothing(server: Any, client: httpx.Client) -> None:
    exec_id = new_execution(client)
    post_events(client, exec_id, [wire_event(exec_id, 0)])
    got: list[int] = []
    with (
        httpx.Client(timeout=10) as c,
        c.stream("GET", server.url + _wire.path_stream(exec_id)) as r,
    ):
        lines = r.iter_lines()
        for line in lines:
            if line.startswith("data: "):
                got.append(orjson.loads(line[6:])["index"])
                break
        # The watcher stops reading while thousands of events arrive.
        for start in range(1, 3001, 500):
            post_events(
                client, exec_id, [wire_event(exec_id, i) for i in range(start, start + 500)]
            )
        finish(client, exec_id)
        for line in lines:
            if line.startswith("data: "):
                payload = orjson.loads(line[6:])
                if "index" in payload:
                    got.append(payload["index"])
            if line == "event: end":
                break
    assert got == list(range(3001))


def test_server_shutdown_closes_open_streams_without_end(
    make_server: Callable[..., Any],
) -> None:
    srv = make_server(ping_interval=5)
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        exec_id = new_execution(c)
    reader = Reader(srv.url, exec_id)
    time.sleep(0.2)
    srv.stop()
    frames = reader.join()
    assert all(f.event != "end" for f in frames)


class FlakyLog(MemoryEventLog):
    """An in-memory log whose storage can be made to fail."""

    fail_appends = False
    fail_reads = False

    async def append(self, exec_id: str, events: Any) -> Any:
        if self.fail_appends:
            raise EventLogError("disk full")
        return await super().append(exec_id, events)

    async def read(self, exec_id: str, after: str | None, limit: int) -> Any:
        if self.fail_reads:
            raise EventLogError("disk gone")
        return await super().read(exec_id, after, limit)

    async def read_frames(self, exec_id: str, after: str | None, limit: int) -> Any:
        if self.fail_reads:
            raise EventLogError("disk gone")
        return await super().read_frames(exec_id, after, limit)


def test_storage_failures_are_503_or_an_error_frame(make_server: Callable[..., Any]) -> None:
    log = FlakyLog()
    srv = make_server(event_log=log)
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        exec_id = new_execution(c)
        post_events(c, exec_id, [wire_event(exec_id, 0)])
        log.fail_appends = True
        r = c.post(_wire.path_events(exec_id), content=orjson.dumps([wire_event(exec_id, 1)]))
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert error_detail(r)["kind"] == _wire.ERROR_BACKEND
        log.fail_appends = False
        log.fail_reads = True
        r = c.get(_wire.path_stream(exec_id))
        assert r.status_code == 503 and error_detail(r)["kind"] == _wire.ERROR_BACKEND
        log.fail_reads = False
        reader = Reader(srv.url, exec_id)
        reader.wait_for(lambda fs: len(fs) >= 1)
        log.fail_reads = True
        post_events(c, exec_id, [wire_event(exec_id, 1)])
        frames = reader.join()
    assert [f.event for f in frames] == ["kitaru.checkpoint.progress", "error"]
    assert orjson.loads(frames[-1].data)["kind"] == _wire.ERROR_BACKEND
    assert "disk" not in frames[-1].data  # internals stay in the server log
