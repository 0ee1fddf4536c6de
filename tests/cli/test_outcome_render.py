"""Outcomes as the CLI draws them: verdicts of unfinished lanes, retries read as returned,
fan-out lanes by input position, the reconnecting state (docs/outcomes.md)."""

from __future__ import annotations

import io
import threading
from typing import Any

from _events_kit import EXEC
from rich.console import Console

from kitaru.cli._watch_live import LanesView
from kitaru.cli._watch_output import WatchInfo, summary_line
from kitaru.events import (
    CHECKPOINT_FAILED_KIND,
    CHECKPOINT_PROGRESS_KIND,
    CHECKPOINT_RETURNED_KIND,
    CHECKPOINT_STARTED_KIND,
)
from kitaru.events._models import ExecutionEvent
from kitaru.lanes import LaneBoard

INFO = WatchInfo.build(EXEC, "probe")


def event(
    corr: str,
    index: int,
    kind: str,
    ts: float,
    *,
    name: str = "process",
    step: str | None = None,
    call: str | None = None,
    attempt: int = 1,
    item: int | None = None,
    **payload: Any,
) -> ExecutionEvent:
    meta: dict[str, Any] = {"source": "kitaru", "checkpoint_name": name, "attempt": attempt}
    meta["ts"] = ts
    if item is not None:
        meta["item"] = item
    return ExecutionEvent(
        exec_id=EXEC,
        kind=kind,
        payload={"kitaru": meta, **payload},
        correlation_id=corr,
        index=index,
        cursor=None,
        checkpoint_id=call or f"cp-{corr}",
        checkpoint_name=name,
        step_name=step or name,
    )


def render(board: LaneBoard, *, status: str | None = None, reconnecting: bool = False) -> str:
    console = Console(width=120, height=40, file=io.StringIO(), color_system=None)
    view = LanesView(board, threading.Lock(), INFO)
    view.status = status
    view.reconnecting = lambda: reconnecting
    console.print(view)
    return console.file.getvalue()  # type: ignore[attr-defined,no-any-return]


def test_unfinished_lanes_take_the_verdict_and_stop_at_the_end() -> None:
    board = LaneBoard(
        [
            event("a", 0, CHECKPOINT_STARTED_KIND, 10.0, name="first"),
            event("a", 1, CHECKPOINT_RETURNED_KIND, 11.0, name="first"),
            event("b", 0, CHECKPOINT_STARTED_KIND, 12.0, name="second"),
            event("b", 1, CHECKPOINT_PROGRESS_KIND, 13.0, name="second", message="busy"),
        ]
    )
    board.settle("lost", 20.0)
    lane = board.get("b")
    assert lane is not None and lane.status == "lost" and lane.duration == 8.0
    first = board.get("a")
    assert first is not None and first.status == "returned" and first.ended_at == 11.0
    line = summary_line(INFO, "lost", board)
    assert "2 lanes: 1 returned, 1 lost" in line
    assert "✗ second  1 lost" in render(board, status="lost")
    # completed/failed executions leave lanes as their events say
    other = LaneBoard([event("c", 0, CHECKPOINT_STARTED_KIND, 1.0)]).settle("failed", 5.0)
    assert other.get("c").status == "running"  # type: ignore[union-attr]
    cancelled = LaneBoard([event("d", 0, CHECKPOINT_STARTED_KIND, 1.0)]).settle("cancelled")
    assert cancelled.get("d").status == "cancelled"  # type: ignore[union-attr]


def test_a_call_that_succeeded_after_retries_reads_as_returned() -> None:
    events = []
    for attempt, corr in enumerate(("x1", "x2", "x3"), start=1):
        events.append(
            event(
                corr, 0, CHECKPOINT_STARTED_KIND, attempt, name="flaky", call="c", attempt=attempt
            )
        )
        last = CHECKPOINT_RETURNED_KIND if attempt == 3 else CHECKPOINT_FAILED_KIND
        events.append(event(corr, 1, last, attempt + 0.5, name="flaky", call="c", attempt=attempt))
    board = LaneBoard(events)
    assert board.superseded() == {"x1", "x2"}
    line = summary_line(INFO, "completed", board)
    assert "1 lane: 1 returned · 2 retries" in line and "failed" not in line
    drawn = render(board, status="completed")
    assert "1 returned (2 retries)" in drawn and "failed" not in drawn and "✗" not in drawn


def test_fan_out_lanes_by_input_position_and_the_failed_item_named() -> None:
    events = []
    for item in range(6):
        corr = f"i{item}"
        step = "process" if item == 0 else f"process_{item + 1}"
        ts = 100.0 - item  # the last item started first
        events.append(event(corr, 0, CHECKPOINT_STARTED_KIND, ts, step=step, item=item))
        if item == 3:
            events.append(
                event(
                    corr,
                    1,
                    CHECKPOINT_FAILED_KIND,
                    ts + 1,
                    step=step,
                    item=item,
                    error_type="RuntimeError",
                )
            )
    board = LaneBoard(events)
    assert [lane.item for lane in board.lanes()] == [0, 1, 2, 3, 4, 5]
    drawn = render(board).splitlines()
    running = [line.split()[1] for line in drawn[3:] if "running" in line]
    assert running == ["process", "process_2", "process_3", "process_5", "process_6"]
    assert "1 failed (process_4 (item 3): RuntimeError)" in summary_line(INFO, None, board)


def test_reconnecting_shows_in_the_header_while_the_stream_is_down() -> None:
    board = LaneBoard([event("a", 0, CHECKPOINT_STARTED_KIND, 1.0)])
    assert "reconnecting" in render(board, reconnecting=True).splitlines()[0]
    assert "reconnecting" not in render(board, reconnecting=False)
