"""The server's own metrics at GET /metrics: Prometheus text, behind the API's token rules."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from _serverkit import collect, finish, new_execution, post_events, wire_event
from httpx_sse import connect_sse

from kitaru import _wire

pytestmark = pytest.mark.server


def parse(text: str) -> dict[str, float]:
    """``{'name{labels}': value}`` of every sample line."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def scrape(client: httpx.Client) -> dict[str, float]:
    response = client.get(_wire.PATH_METRICS)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


def test_metrics_follow_the_token_rules(make_server: Callable[..., Any]) -> None:
    srv = make_server(token="s3cret")
    with httpx.Client(base_url=srv.url, timeout=10) as anonymous:
        assert anonymous.get(_wire.PATH_METRICS).status_code == 401
        wrong = anonymous.get(_wire.PATH_METRICS, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
    with httpx.Client(
        base_url=srv.url, timeout=10, headers={"Authorization": "Bearer s3cret"}
    ) as c:
        assert scrape(c)["kitaru_server_open_streams"] == 0


def test_ingest_rejections_and_latency_are_counted(make_server: Callable[..., Any]) -> None:
    srv = make_server()
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        exec_id = new_execution(c)
        post_events(c, exec_id, [wire_event(exec_id, i) for i in range(5)])
        post_events(c, exec_id, [wire_event(exec_id, 0)])  # a producer's retry
        bad = c.post(_wire.path_events(exec_id), content=b"not json")
        assert bad.status_code == 400
        unknown = c.post(_wire.path_events("0" * 32), json={"events": []})
        assert unknown.status_code == 404
        m = scrape(c)
    assert m["kitaru_server_events_ingested_total"] == 5
    assert m["kitaru_server_events_duplicate_total"] == 1
    assert m['kitaru_server_ingest_rejected_total{reason="invalid_request"}'] == 1
    rejected = sum(v for k, v in m.items() if k.startswith("kitaru_server_ingest_rejected_total"))
    assert rejected == 2
    assert m["kitaru_server_ingest_duration_seconds_count"] == 2
    assert m['kitaru_server_ingest_duration_seconds_bucket{le="+Inf"}'] == 2
    assert 0 < m["kitaru_server_ingest_duration_seconds_sum"] < 10
    assert m["kitaru_server_database_bytes"] > 0


def test_open_streams_and_watchers_behind(make_server: Callable[..., Any]) -> None:
    srv = make_server(read_batch=10)
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        exec_id = new_execution(c)
        post_events(c, exec_id, [wire_event(exec_id, i) for i in range(3)])
        stop = threading.Event()
        opened = threading.Barrier(4)

        def watch() -> None:
            with (
                httpx.Client(timeout=30) as w,
                connect_sse(w, "GET", srv.url + _wire.path_stream(exec_id)) as source,
            ):
                opened.wait(10)
                for _ in source.iter_sse():
                    if stop.is_set():
                        return

        threads = [threading.Thread(target=watch, daemon=True) for _ in range(3)]
        for t in threads:
            t.start()
        opened.wait(10)
        deadline = time.monotonic() + 10
        while scrape(c)["kitaru_server_open_streams"] != 3:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # Caught up: nobody behind.
        while scrape(c)["kitaru_server_watchers_behind"] != 0:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        m = scrape(c)
        assert m['kitaru_server_watcher_lag_events{stat="max"}'] == 0
        assert m["kitaru_server_streams_opened_total"] == 3
        stop.set()
        finish(c, exec_id)
        for t in threads:
            t.join(10)
        deadline = time.monotonic() + 10
        while scrape(c)["kitaru_server_open_streams"] != 0:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_lag_counts_events_a_stream_has_not_been_sent() -> None:
    from kitaru.server._metrics import ServerMetrics, StreamTrack

    metrics = ServerMetrics()
    slow, fast = StreamTrack("e", "000000000010"), StreamTrack("e", "000000000250")
    metrics.stream_opened(slow)
    metrics.stream_opened(fast)
    metrics.head("e", "000000000250")
    assert sorted(metrics.lag()) == [0, 240]
    text = parse(metrics.render(started_at=time.time()).decode())
    assert text["kitaru_server_watchers_behind"] == 1
    assert text['kitaru_server_watcher_lag_events{stat="max"}'] == 240
    metrics.stream_closed(slow)
    assert metrics.lag() == [0]


def test_lost_verdicts_are_counted(make_server: Callable[..., Any]) -> None:
    srv = make_server(lost_after=0.3)
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        exec_id = new_execution(c)
        frames = collect(srv.url, exec_id, timeout=15)
        assert frames[-1].event == "end"
        assert scrape(c)["kitaru_server_lost_verdicts_total"] == 1
