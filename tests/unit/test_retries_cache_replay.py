"""Retries, cache hits and replay: what runs, what is reused, what is published."""

from __future__ import annotations

import pytest

import kitaru
from kitaru import KitaruStateError, checkpoint, flow

calls: dict[str, int] = {}


@checkpoint(retries=2)
def flaky(fail_times: int) -> str:
    calls["flaky"] = calls.get("flaky", 0) + 1
    kitaru.progress(f"attempt {calls['flaky']}")
    if calls["flaky"] <= fail_times:
        raise ConnectionError("transient")
    return "ok"


@flow
def retry_flow(fail_times: int) -> str:
    return flaky(fail_times)


def test_two_failures_then_success(kitaru_events):
    calls.clear()
    assert retry_flow(2) == "ok"
    lanes = list(kitaru_events.lanes().values())
    assert len(lanes) == 3
    attempts = sorted(lane[0].payload["kitaru"]["attempt"] for lane in lanes)
    assert attempts == [1, 2, 3]
    finals = {lane[0].payload["kitaru"]["attempt"]: lane[-1].kind for lane in lanes}
    assert finals == {
        1: "kitaru.checkpoint.failed",
        2: "kitaru.checkpoint.failed",
        3: "kitaru.checkpoint.returned",
    }
    assert len({lane[0].checkpoint_id for lane in lanes}) == 1
    record = kitaru.KitaruClient().executions.get(lanes[0][0].exec_id)
    (cp,) = record.checkpoints
    assert cp.status == "completed"
    assert [(a.attempt, a.status) for a in cp.attempts] == [
        (1, "failed"),
        (2, "failed"),
        (3, "completed"),
    ]
    assert {a.correlation_id for a in cp.attempts} == {lane[0].correlation_id for lane in lanes}


def test_retries_exhausted_raise(kitaru_events):
    calls.clear()
    with pytest.raises(ConnectionError):
        retry_flow(5)
    assert calls["flaky"] == 3


def test_cache_hit_publishes_nothing_and_is_recorded(kitaru_events):
    runs = []

    @checkpoint(cache=True)
    def expensive(x: int) -> int:
        runs.append(x)
        kitaru.progress("computing")
        return x * 10

    @flow
    def f(x: int) -> int:
        return expensive(x)

    assert f(3) == 30
    first = len(kitaru_events.events)
    assert first == 3
    assert f(3) == 30  # cache hit
    assert runs == [3]
    assert len(kitaru_events.events) == first
    assert f(4) == 40  # other inputs: a miss
    assert runs == [3, 4]
    executions = kitaru.KitaruClient().executions.list(flow="f")
    statuses = sorted(
        e.checkpoints[0].status
        for e in (kitaru.KitaruClient().executions.get(x.exec_id) for x in executions)
    )
    assert statuses == ["cached", "completed", "completed"]


@checkpoint
def fetch(n: int) -> list[int]:
    calls["fetch"] = calls.get("fetch", 0) + 1
    kitaru.progress("fetching")
    return list(range(n))


@checkpoint
def summarize(values: list[int], scale: int) -> int:
    calls["summarize"] = calls.get("summarize", 0) + 1
    kitaru.progress("summarizing")
    return sum(values) * scale


@flow
def two_step(n: int, scale: int = 1) -> int:
    return summarize(fetch(n), scale)


@pytest.mark.parametrize("via", ["client", "flow"])
def test_replay_from_second_checkpoint(kitaru_events, via):
    calls.clear()
    assert two_step(4) == 6
    original = kitaru_events.events[0].exec_id
    kitaru_events.clear()
    if via == "client":
        handle = kitaru.KitaruClient().executions.replay(original, from_="summarize", scale=10)
    else:
        handle = two_step.replay(original, from_="summarize", scale=10)
    assert handle.wait(timeout=30) == 60
    assert calls == {"fetch": 1, "summarize": 2}
    events = kitaru_events.events
    assert {e.checkpoint_name for e in events} == {"summarize"}
    assert {e.exec_id for e in events} == {handle.exec_id}
    assert [e.kind for e in events] == [
        "kitaru.checkpoint.started",
        "kitaru.checkpoint.progress",
        "kitaru.checkpoint.returned",
    ]
    record = kitaru.KitaruClient().executions.get(handle.exec_id)
    assert record.original_exec_id == original
    assert [c.status for c in record.checkpoints] == ["replayed", "completed"]
    assert record.checkpoints[0].load_output() == [0, 1, 2, 3]


def test_replay_selector_errors(kitaru_events):
    @checkpoint
    def step(x: int) -> int:
        return x

    @flow
    def twice() -> int:
        return step(1) + step(2)

    assert twice() == 3
    exec_id = kitaru_events.events[0].exec_id
    with pytest.raises(KitaruStateError, match="ambiguous"):
        twice.replay(exec_id, from_="step")
    with pytest.raises(KitaruStateError, match="names no checkpoint"):
        twice.replay(exec_id, from_="nope")
    with pytest.raises(KitaruStateError, match="no execution"):
        twice.replay("00000000-0000-4000-8000-000000000000", from_="step")
    first = twice.replay(exec_id, from_="step_1")
    assert first.wait(timeout=30) == 3
    assert [c.status for c in kitaru.KitaruClient().executions.get(first.exec_id).checkpoints] == [
        "completed",
        "completed",
    ]
    handle = twice.replay(exec_id, from_="step_2")
    assert handle.wait(timeout=30) == 3
    record = kitaru.KitaruClient().executions.get(handle.exec_id)
    assert [c.status for c in record.checkpoints] == ["replayed", "completed"]
