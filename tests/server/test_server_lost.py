"""Lost producers: a running execution that goes silent is marked lost and its streams end."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from _serverkit import collect, data_frames, finish, new_execution, post_events, wire_event

from kitaru import _wire

pytestmark = pytest.mark.server


def test_a_silent_execution_is_marked_lost_and_its_stream_ends(
    make_server: Callable[..., Any],
) -> None:
    srv = make_server(lost_after=0.5)
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        exec_id = new_execution(c)
        post_events(c, exec_id, [wire_event(exec_id, 0)])
        # Opened while running: the stream delivers the event, then ends when the server
        # gives up on the producer.
        frames = collect(srv.url, exec_id, timeout=15)
        assert len(data_frames(frames)) == 1
        assert frames[-1].event == "end"
        assert orjson.loads(frames[-1].data)["status"] == "lost"
        assert c.get(_wire.path_execution(exec_id)).json()["status"] == "lost"
        # A producer that finishes late does not change the verdict, and is not refused.
        assert finish(c, exec_id, "completed")["status"] == "lost"
        # Streams opened afterwards end at once with the same status.
        again = collect(srv.url, exec_id)
        assert [f.event for f in again][-1] == "end"
        assert orjson.loads(again[-1].data)["status"] == "lost"


def test_heartbeats_and_record_writes_keep_executions_running(
    make_server: Callable[..., Any],
) -> None:
    srv = make_server(lost_after=0.6)
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        silent = new_execution(c)
        beating = new_execution(c)
        writing = new_execution(c)
        deadline = time.monotonic() + 15
        n = 0
        # Keep two producers alive until the server has given up on the silent one.
        while c.get(_wire.path_execution(silent)).json()["status"] == "running":
            assert time.monotonic() < deadline, "the silent execution was never marked lost"
            assert c.post(_wire.path_heartbeat(beating)).json()["status"] == "running"
            post_events(c, writing, [wire_event(writing, n)])
            n += 1
            time.sleep(0.05)
        assert c.get(_wire.path_execution(silent)).json()["status"] == "lost"
        assert c.get(_wire.path_execution(beating)).json()["status"] == "running"
        assert c.get(_wire.path_execution(writing)).json()["status"] == "running"
