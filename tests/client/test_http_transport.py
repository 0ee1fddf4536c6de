"""``HttpTransport`` and the server-mode runtime over MockTransport doubles."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_http_store import RestDouble

import kitaru
from kitaru import _wire, checkpoint, flow
from kitaru._compose import build_server_runtime
from kitaru.events._codec import EncodedEvent
from kitaru.events._transport import TransportDisabledError, TransportRejectedError
from kitaru.remote import HttpStore, HttpTransport
from kitaru.remote._transport import _spans
from kitaru.runtime._runtime import Runtime, set_runtime

URL = "http://events.test"


def encoded(exec_id: str, index: int, size: int = 0) -> EncodedEvent:
    data = {
        "exec_id": exec_id,
        "kind": "k",
        "correlation_id": "c",
        "index": index,
        "pad": "x" * size,
    }
    return EncodedEvent(data=data, json=orjson.dumps(data))


MANY = "(several)"  # what Ingest.posts names a request to the multi-execution route


class Ingest:
    """An ingest double; ``multi_status`` answers the multi-execution route (404: an older
    server without it), ``refuse`` maps execution IDs to the status their events get there."""

    def __init__(
        self, status: int = 200, *, multi_status: int = 200, refuse: dict[str, int] | None = None
    ) -> None:
        self.status = status
        self.multi_status = multi_status
        self.refuse = refuse or {}
        self.posts: list[tuple[str, list[dict]]] = []
        self.transport = httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        assert request.method == "POST"
        assert request.headers["content-type"] == "application/json"
        body = orjson.loads(request.content)
        if request.url.path == _wire.PATH_EVENTS:
            self.posts.append((MANY, body))
            if self.multi_status != 200:
                return httpx.Response(self.multi_status, json={"detail": {"kind": "not_found"}})
            if self.status != 200:
                return self.refusal(self.status)
            answers: dict[str, dict] = {}
            for event in body:
                status = self.refuse.get(event["exec_id"])
                answer = answers.setdefault(event["exec_id"], {"stored": 0})
                if status is not None:
                    answer.clear()
                    answer["error"] = {"status": status, "kind": "k", "message": "refused"}
                else:
                    answer["stored"] += 1
            return httpx.Response(200, json={"executions": answers})
        exec_id = request.url.path.split("/")[4]
        self.posts.append((exec_id, body))
        return self.refusal(self.refuse.get(exec_id, self.status))

    @staticmethod
    def refusal(status: int) -> httpx.Response:
        if status == 501:
            return httpx.Response(501, json={"detail": {"kind": "streaming_disabled"}})
        return httpx.Response(status, json={"detail": "x"})


def test_one_request_carries_every_execution_in_order() -> None:
    ingest = Ingest()
    transport = HttpTransport(URL, "tok", transport=ingest.transport)
    transport.send([encoded("a", 0), encoded("b", 0), encoded("a", 1), encoded("b", 1)])
    assert [(e, [(d["exec_id"], d["index"]) for d in body]) for e, body in ingest.posts] == [
        (MANY, [("a", 0), ("b", 0), ("a", 1), ("b", 1)])
    ]
    assert transport.multi_execution
    transport.shutdown()


def test_a_refused_execution_is_rejected_and_the_others_are_sent() -> None:
    ingest = Ingest(refuse={"b": 404})
    transport = HttpTransport(URL, transport=ingest.transport)
    with pytest.raises(TransportRejectedError) as refused:
        transport.send([encoded("a", 0), encoded("b", 0), encoded("b", 1), encoded("a", 1)])
    assert refused.value.rejected == 2
    assert "404" in str(refused.value)
    assert len(ingest.posts) == 1
    # A batch without the refused execution is sent without complaint.
    transport.send([encoded("a", 2)])


@pytest.mark.parametrize("status", [404, 405])
def test_a_server_without_the_route_gets_one_request_per_execution_from_then_on(
    status: int,
) -> None:
    ingest = Ingest(multi_status=status)
    transport = HttpTransport(URL, transport=ingest.transport)
    transport.send([encoded("a", 0), encoded("b", 0), encoded("a", 1)])
    transport.send([encoded("b", 1)])
    assert [(e, [d["index"] for d in body]) for e, body in ingest.posts] == [
        (MANY, [0, 0, 1]),  # tried once, then remembered
        ("a", [0, 1]),
        ("b", [0]),
        ("b", [1]),
    ]
    assert not transport.multi_execution


def test_an_answer_it_does_not_understand_falls_back_to_per_execution_requests() -> None:
    posts: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        posts.append(request.url.path)
        if request.url.path == _wire.PATH_EVENTS:
            return httpx.Response(200, text="<html>a proxy's page</html>")
        return httpx.Response(200, json={"stored": 1})

    transport = HttpTransport(URL, transport=httpx.MockTransport(handle))
    transport.send([encoded("a", 0)])
    assert posts == [_wire.PATH_EVENTS, _wire.path_events("a")]


def test_batches_are_grouped_by_execution_in_order() -> None:
    ingest = Ingest(multi_status=404)
    transport = HttpTransport(URL, "tok", transport=ingest.transport)
    transport.send([encoded("a", 0), encoded("b", 0), encoded("a", 1), encoded("b", 1)])
    assert [(e, [d["index"] for d in body]) for e, body in ingest.posts] == [
        (MANY, [0, 0, 1, 1]),
        ("a", [0, 1]),
        ("b", [0, 1]),
    ]
    transport.shutdown()


def test_large_batches_are_split_into_requests_of_at_most_1_mib() -> None:
    ingest = Ingest()
    transport = HttpTransport(URL, transport=ingest.transport)
    transport.send([encoded("a", i, size=60_000) for i in range(40)])
    assert len(ingest.posts) >= 3
    assert [d["index"] for _, body in ingest.posts for d in body] == list(range(40))


def test_large_batches_per_execution_are_split_too_and_an_oversized_event_goes_alone() -> None:
    ingest = Ingest(multi_status=404)
    transport = HttpTransport(URL, transport=ingest.transport)
    big = encoded("b", 0, size=1_100_000)  # alone larger than a request's limit
    transport.send([*(encoded("a", i, size=60_000) for i in range(40)), big])
    sizes = [len(orjson.dumps(body)) for e, body in ingest.posts if e != MANY]
    per_exec = [(e, [d["index"] for d in body]) for e, body in ingest.posts if e != MANY]
    assert [i for e, idx in per_exec if e == "a" for i in idx] == list(range(40))
    assert [e for e, _ in per_exec].count("a") >= 3
    assert ("b", [0]) in per_exec
    assert all(
        size <= 1024 * 1024 for size, (e, _) in zip(sizes, per_exec, strict=True) if e == "a"
    )


def _greedy_runs(sizes: list[int], limit: int) -> list[tuple[int, int]]:
    """The reference split: add items while the array's JSON stays within ``limit``."""
    runs: list[tuple[int, int]] = []
    start, size = 0, 1
    for i, n in enumerate(sizes):
        if i > start and size + n + 1 > limit:
            runs.append((start, i))
            start, size = i, 1
        size += n + 1
    if start < len(sizes):
        runs.append((start, len(sizes)))
    return runs


@given(st.lists(st.integers(min_value=2, max_value=120), max_size=40), st.integers(2, 400))
def test_request_runs_are_the_greedy_split_within_the_limit(sizes: list[int], limit: int) -> None:
    runs = list(_spans(sizes, limit))
    assert runs == _greedy_runs(sizes, limit)
    for start, end in runs:
        assert end - start == 1 or sum(sizes[start:end]) + (end - start) + 1 <= limit


def test_a_batch_within_the_limit_is_one_run() -> None:
    assert list(_spans([10] * 500, 500 * 11 + 1)) == [(0, 500)]
    assert list(_spans([10] * 500, 500 * 11)) == [(0, 499), (499, 500)]
    assert list(_spans([], 100)) == []


def test_streaming_disabled_turns_the_transport_off() -> None:
    transport = HttpTransport(URL, transport=Ingest(501).transport)
    with pytest.raises(TransportDisabledError, match="streaming disabled"):
        transport.send([encoded("a", 0)])


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_transient_failures_raise_so_the_publisher_retries(status: int) -> None:
    transport = HttpTransport(URL, transport=Ingest(status).transport)
    with pytest.raises(kitaru.KitaruBackendError, match=str(status)):
        transport.send([encoded("a", 0)])


def test_permanent_refusals_are_reported_as_rejected_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport = HttpTransport(URL, transport=Ingest(422).transport)
    with caplog.at_level(logging.WARNING, logger="kitaru"):
        with pytest.raises(TransportRejectedError) as first:
            transport.send([encoded("a", 0), encoded("a", 1)])
        with pytest.raises(TransportRejectedError):
            transport.send([encoded("a", 2)])
    assert first.value.rejected == 2
    assert len([r for r in caplog.records if "refused" in r.getMessage()]) == 1


def test_build_server_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KITARU_HEARTBEAT_INTERVAL", "0.5")
    rt = build_server_runtime("http://127.0.0.1:9", "tok")
    try:
        assert rt.mode == "server" and rt.server_url == "http://127.0.0.1:9"
        assert rt.api_token == "tok"
        assert isinstance(rt.store, HttpStore)
        assert isinstance(rt.transport, HttpTransport)
        assert rt._heartbeat_interval == 0.5
    finally:
        rt.shutdown()


@checkpoint
def shout(word: str) -> str:
    kitaru.progress("shouting", percent=0.5)
    return word.upper()


@flow
def shout_flow(word: str) -> str:
    return shout(word)


def test_a_flow_on_a_server_with_streaming_off_completes_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rest = RestDouble(tmp_path)
    ingest = Ingest(501)
    rt = Runtime(
        HttpStore(URL, transport=rest.transport),
        HttpTransport(URL, transport=ingest.transport),
        mode="server",
        server_url=URL,
    )
    set_runtime(rt)
    with caplog.at_level(logging.WARNING):
        assert shout_flow("a") == "A"
        assert shout_flow("b") == "B"
        kitaru.events.flush(2.0)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "streaming disabled" in warnings[0].getMessage()
    assert rt.publisher.disabled
    assert len(ingest.posts) == 1
    done = rest.store.list_executions(status="completed")
    assert len(done) == 2


def test_a_flows_events_reach_the_server_before_it_is_marked_terminal(tmp_path: Path) -> None:
    rest = RestDouble(tmp_path)
    order: list[str] = []
    ingest_handler = Ingest()

    def events(request: httpx.Request) -> httpx.Response:
        order.extend(d["kind"] for d in orjson.loads(request.content))
        return ingest_handler.handle(request)

    def records(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/finish"):
            order.append("finish")
        return rest.handle(request)

    rt = Runtime(
        HttpStore(URL, transport=httpx.MockTransport(records)),
        HttpTransport(URL, transport=httpx.MockTransport(events)),
        mode="server",
        server_url=URL,
    )
    set_runtime(rt)
    assert shout_flow("x") == "X"
    assert order == [
        "kitaru.checkpoint.started",
        "kitaru.checkpoint.progress",
        "kitaru.checkpoint.returned",
        "finish",
    ]
