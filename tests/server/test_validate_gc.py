"""Ingest decoding runs with the cyclic collector paused, and leaves it as it found it."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from kitaru.events._codec import wire_event
from kitaru.server._errors import ApiError
from kitaru.server._validate import parse_events, paused_collector

EXEC = "exec-gc-1"


def _body(n: int) -> bytes:
    meta = {"source": "kitaru", "checkpoint_name": "cp", "attempt": 1}
    events = [
        wire_event(
            EXEC,
            "kitaru.checkpoint.progress",
            "corr-1",
            i,
            None,
            "cp",
            "cp",
            1.0,
            {
                "kitaru": meta,
                "message": "m",
                "data": {"item": i, "tags": ["a", {"b": i}]},
            },
        )
        for i in range(n)
    ]
    return orjson.dumps(events)


@pytest.fixture()
def collections() -> Iterator[list[int]]:
    """The generations of the collections that run while the test does."""
    seen: list[int] = []

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            seen.append(info["generation"])

    was = gc.isenabled()
    gc.enable()
    gc.callbacks.append(on_gc)
    try:
        yield seen
    finally:
        gc.callbacks.remove(on_gc)
        if not was:
            gc.disable()


def test_a_large_batch_is_decoded_and_checked_without_a_collection(
    collections: list[int],
) -> None:
    body = _body(500)  # several dicts per event: far more than a young generation's threshold
    gc.collect()
    collections.clear()
    events = parse_events(body, EXEC, max_events=1000, max_event_bytes=1 << 16)
    assert len(events) == 500
    assert collections == []
    assert gc.isenabled()


def test_the_same_work_unpaused_runs_collections(collections: list[int]) -> None:
    # The counterpart of the test above: what the pause saves is real on this interpreter.
    body = _body(500)
    gc.collect()
    collections.clear()
    items = orjson.loads(body)
    assert len(items) == 500
    assert collections != []


def test_a_refused_batch_resumes_the_collector() -> None:
    items = orjson.loads(_body(3))
    items[2]["index"] = -1
    assert gc.isenabled()
    with pytest.raises(ApiError) as caught:
        parse_events(orjson.dumps(items), EXEC, max_events=10, max_event_bytes=1 << 16)
    assert "event [2]: index" in caught.value.message
    assert gc.isenabled()


def test_a_collector_already_paused_stays_paused() -> None:
    gc.disable()
    try:
        with paused_collector():
            assert not gc.isenabled()
        assert not gc.isenabled()
        parse_events(_body(2), EXEC, max_events=10, max_event_bytes=1 << 16)
        assert not gc.isenabled()
    finally:
        gc.enable()
