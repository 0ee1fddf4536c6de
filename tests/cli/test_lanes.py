"""The lane model: a pure fold of live events into one lane per checkpoint execution."""

from __future__ import annotations

import contextlib
import json
import random

from _events_kit import EXEC, TRACE, ev, lane_events
from hypothesis import given, settings
from hypothesis import strategies as st

import kitaru
from kitaru import checkpoint, flow
from kitaru.events import (
    CHECKPOINT_PROGRESS_KIND,
    CHECKPOINT_RETURNED_KIND,
    ExecutionEvent,
)
from kitaru.lanes import CANCELLED, FAILED, LOST, RETURNED, RUNNING, Lane, LaneBoard, fold


def test_one_lane_in_order():
    events = list(lane_events("c1"))
    board = LaneBoard()
    states = [board.apply(e) for e in events]
    assert [s.status for s in states] == [RUNNING] * 4 + [RETURNED]
    assert [s.percent for s in states] == [None, 0.25, 0.25, 0.75, 0.75]
    assert states[2].message == "a custom note"
    final = states[-1]
    assert final == board.get("c1")
    assert final.checkpoint_name == "fetch"
    assert final.event_count == 5
    assert final.started_at == 100.0 and final.ended_at == 104.0 and final.duration == 4.0
    assert final.trace_id == TRACE and final.span_id is not None and final.attempt == 1
    assert final.exec_id == EXEC and final.checkpoint_id == "cp-c1"
    assert final.last_index == 4 and final.last_kind == CHECKPOINT_RETURNED_KIND
    assert final.finished and final.error_type is None
    # The terminal event has no message: the latest message is still the last one published.
    assert final.message == "Writing draft"


def test_failed_lane_keeps_the_error_type():
    lane = fold(lane_events("c1", fail=True))[0]
    assert lane.status == FAILED
    assert lane.error_type == "ValueError"
    assert lane.message == "Checkpoint function raised an exception."


def test_duplicates_change_nothing():
    events = list(lane_events("c1"))
    board = LaneBoard(events)
    before = board.lanes()
    board.extend(events[1:3])
    assert board.lanes() == before
    assert board.get("c1").event_count == 5  # type: ignore[union-attr]


def test_out_of_order_terminal_and_progress():
    events = list(lane_events("c1"))
    board = LaneBoard([events[4], events[3], events[0], events[1]])
    lane = board.get("c1")
    assert lane is not None
    assert lane.status == RETURNED  # the terminal event arrived first and still counts
    assert lane.percent == 0.75  # index 1's 0.25 arrived later but is older
    assert lane.message == "Writing draft"
    assert lane.started_at == 100.0 and lane.ended_at == 104.0


def test_percent_only_from_fractions_and_numbers():
    board = LaneBoard(
        [
            ev("c", 0, "custom", data={"percent": 40}),
            ev("c", 1, "custom", data={"percent": True}),
            ev("c", 2, "custom", data={"percent": "0.5"}),
            ev("c", 3, "custom", data={"percent": float("nan")}),
        ]
    )
    assert board.get("c").percent is None  # type: ignore[union-attr]
    board.apply(ev("c", 4, CHECKPOINT_PROGRESS_KIND, message="half", data={"percent": 0.5}))
    assert board.get("c").percent == 0.5  # type: ignore[union-attr]


def test_lanes_order_counts_and_trace():
    a = list(lane_events("a", name="plan", t0=10))
    b = list(lane_events("b", name="fetch", t0=20))
    c = list(lane_events("c", name="fetch", t0=15, fail=True))[:3]  # still running
    board = LaneBoard(b + c + a)
    assert [lane.correlation_id for lane in board.lanes()] == ["a", "c", "b"]
    assert board.counts() == {RUNNING: 1, RETURNED: 2, FAILED: 0, LOST: 0, CANCELLED: 0}
    assert [lane.correlation_id for lane in board.running()] == ["c"]
    assert [lane.correlation_id for lane in board.finished()] == ["a", "b"]
    assert board.trace_id == TRACE
    assert len(board) == 3


def test_lanes_without_times_sort_after_and_by_correlation_id():
    board = LaneBoard([ev("z", 1, "x"), ev("y", 1, "x"), ev("t", 0, "x", ts=5.0)])
    assert [lane.correlation_id for lane in board.lanes()] == ["t", "y", "z"]


def test_cursor_follows_the_last_event_with_one():
    board = LaneBoard([ev("a", 0, "x", cursor="1"), ev("a", 1, "x"), ev("b", 0, "x", cursor="3")])
    assert board.cursor == "3"


def test_snapshot_round_trips_through_json():
    board = LaneBoard(list(lane_events("a")) + list(lane_events("b", t0=50))[:2])
    board.cursor = "42"
    snap = json.loads(json.dumps(board.to_dict()))
    again = LaneBoard.from_dict(snap)
    assert again == board
    assert again.cursor == "42"
    assert Lane.from_dict(snap["lanes"][0]) == board.lanes()[0]


def test_lane_from_dict_rejects_bad_input():
    import pytest

    with pytest.raises(ValueError, match="status"):
        Lane.from_dict({"correlation_id": "c", "status": "done"})
    with pytest.raises(ValueError, match="correlation_id"):
        Lane.from_dict({"status": "running"})


def _stream() -> list[ExecutionEvent]:
    """Four interleaved lanes, with cursors in stream order, as a server would send them."""
    lanes = [
        list(lane_events(f"lane-{i}", name="fetch" if i else "plan", t0=10 * i, fail=i == 2))
        for i in range(4)
    ]
    rng = random.Random(7)
    out: list[ExecutionEvent] = []
    while any(lanes):
        lane = rng.choice([lane for lane in lanes if lane])
        e = lane.pop(0)
        out.append(
            ExecutionEvent(**{**{f: getattr(e, f) for f in e.__slots__}, "cursor": str(len(out))})
        )
    return out


STREAM = _stream()


@settings(max_examples=60, deadline=None)
@given(st.permutations(STREAM))
def test_fold_does_not_depend_on_order(events):
    expected = fold(STREAM)
    assert fold(events) == expected


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_snapshot_plus_tail_equals_full_fold(data):
    cut = data.draw(st.integers(0, len(STREAM)))
    full = LaneBoard(STREAM)
    snapshot = json.loads(json.dumps(LaneBoard(STREAM[:cut]).to_dict()))
    resumed = LaneBoard.from_dict(snapshot)
    tail = STREAM[cut:]
    # A reconnect inside the tail may deliver a stretch of it again, from an older cursor.
    drop_at = data.draw(st.integers(0, len(tail)))
    resume_at = data.draw(st.integers(0, drop_at))
    resumed.extend(tail[:drop_at] + tail[resume_at:])
    assert resumed == full
    assert resumed.cursor == full.cursor


def test_fold_of_a_real_flow(kitaru_events):
    @checkpoint
    def fetch(n: int) -> int:
        kitaru.progress("downloading", percent=0.5, n=n)
        return n

    @checkpoint
    def boom() -> None:
        raise RuntimeError("secret text")

    @flow
    def pipeline() -> list[int]:
        out = fetch.map([1, 2, 3])
        with contextlib.suppress(RuntimeError):
            boom()
        return out

    pipeline()
    lanes = fold(kitaru_events.events)
    assert len(lanes) == 4
    fetches = [lane for lane in lanes if lane.checkpoint_name == "fetch"]
    assert len(fetches) == 3
    assert all(lane.status == RETURNED and lane.percent == 0.5 for lane in fetches)
    assert all(lane.event_count == 3 for lane in fetches)
    assert all(lane.started_at is not None and lane.ended_at is not None for lane in lanes)
    assert len({lane.trace_id for lane in lanes}) == 1
    failed = next(lane for lane in lanes if lane.checkpoint_name == "boom")
    assert failed.status == FAILED and failed.error_type == "RuntimeError"
    assert "secret" not in json.dumps(LaneBoard(kitaru_events.events).to_dict())
