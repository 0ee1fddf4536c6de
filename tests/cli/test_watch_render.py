"""Rendering of ``kitaru events`` on synthetic events: live lanes, plain lines, JSON lines."""

from __future__ import annotations

import io
import threading

import orjson
from _events_kit import EXEC, TRACE, ev, lane_events
from rich.console import Console

from kitaru.cli._watch_live import LanesView
from kitaru.cli._watch_output import (
    JsonOutput,
    PlainOutput,
    WatchInfo,
    plain_line,
    summary_line,
)
from kitaru.events import CHECKPOINT_PROGRESS_KIND
from kitaru.lanes import LaneBoard


def render(board: LaneBoard, *, height: int = 40, status: str | None = None) -> str:
    console = Console(width=100, height=height, file=io.StringIO(), color_system=None)
    view = LanesView(board, threading.Lock(), WatchInfo.build(EXEC, "report_flow"))
    view.status = status
    console.print(view)
    return console.file.getvalue()  # type: ignore[attr-defined,no-any-return]


def test_running_lanes_show_a_bar_and_the_latest_message() -> None:
    board = LaneBoard(list(lane_events("a", name="fetch", t0=1))[:4])
    out = render(board)
    lines = out.splitlines()
    assert lines[0] == f"kitaru execution {EXEC} (flow report_flow)"
    assert lines[1] == f"trace {TRACE}"
    assert "━" in lines[2] and " 75% " in lines[2] and "Writing draft" in lines[2]
    assert lines[2].split()[1] == "fetch"


def test_a_lane_without_percent_says_running() -> None:
    out = render(LaneBoard([ev("a", 0, "kitaru.checkpoint.started", name="plan", ts=1.0)]))
    assert "plan" in out and "running" in out and "━" not in out


def test_finished_lanes_collapse_into_one_row_per_checkpoint() -> None:
    events = []
    for i in range(5):
        events += list(lane_events(f"f{i}", name="fetch", t0=i, fail=i == 4))
    events += list(lane_events("s", name="summarize", t0=10))[:2]
    out = render(LaneBoard(events))
    rows = out.splitlines()[2:]
    assert len(rows) == 2, out
    assert rows[0].startswith("✗ fetch") and "4 returned" in rows[0]
    assert "1 failed: ValueError" in rows[0] and "4.0s avg" in rows[0]
    assert "summarize" in rows[1] and "25%" in rows[1]


def test_running_lanes_beyond_the_screen_are_counted() -> None:
    events = [ev(f"c{i:02}", 0, "kitaru.checkpoint.started", ts=float(i)) for i in range(30)]
    out = render(LaneBoard(events), height=12)
    assert len(out.splitlines()) <= 12
    assert "more running" in out
    shown = sum(1 for line in out.splitlines() if " fetch " in f" {line} ")
    hidden = int(out.split("… ")[1].split()[0])
    assert shown + hidden == 30


def test_final_frame_has_the_status_and_no_spinners() -> None:
    board = LaneBoard(list(lane_events("a", t0=1)) + list(lane_events("b", t0=2))[:2])
    out = render(board, status="lost")
    assert out.splitlines()[0].endswith("lost")
    assert "? fetch" in out
    assert out.splitlines()[-1] == (f"execution {EXEC} lost · 2 lanes: 1 returned, 1 running")


def test_waiting_before_any_event() -> None:
    assert "waiting for live events" in render(LaneBoard())


def test_trace_link_from_the_template(monkeypatch) -> None:
    monkeypatch.setenv("KITARU_TRACE_URL_TEMPLATE", "http://127.0.0.1:16686/trace/{trace_id}")
    info = WatchInfo.build(EXEC, None)
    assert info.trace_url == f"http://127.0.0.1:16686/trace/{TRACE}"
    assert info.trace_line() == f"trace {TRACE}  http://127.0.0.1:16686/trace/{TRACE}"
    assert f"http://127.0.0.1:16686/trace/{TRACE}" in render(LaneBoard())
    monkeypatch.delenv("KITARU_TRACE_URL_TEMPLATE")
    assert WatchInfo.build(EXEC, None).trace_url is None


def test_plain_lines() -> None:
    events = list(lane_events("a", name="fetch", t0=1_700_000_000, fail=True))
    board = LaneBoard()
    lines = []
    for e in events:
        board.apply(e)
        lines.append(plain_line(e, board.get("a")))  # type: ignore[arg-type]
    bodies = [line.split(" ", 1)[1] for line in lines]
    assert bodies == [
        "fetch started",
        "fetch progress  25% Collecting notes",
        "fetch custom.note a custom note",
        "fetch progress  75% Writing draft",
        "fetch failed: ValueError in 4.0s",
    ]
    assert all(len(line.split(" ", 1)[0]) == len("12:00:00.000") for line in lines)
    retry = ev("r", 1, CHECKPOINT_PROGRESS_KIND, message="again", attempt=2)
    board.apply(retry)
    assert plain_line(retry, board.get("r")) == "fetch (attempt 2) progress again"  # type: ignore[arg-type]


def test_plain_and_json_outputs() -> None:
    events = list(lane_events("a", t0=1))
    board = LaneBoard()
    info = WatchInfo.build(EXEC, "report_flow")
    plain, out, err = io.StringIO(), io.StringIO(), io.StringIO()
    outputs = [PlainOutput(plain), JsonOutput(out, err)]
    for o in outputs:
        o.start(info, board, threading.Lock())
    for e in events:
        board.apply(e)
        for o in outputs:
            o.event(e, board)
    for o in outputs:
        o.finish("completed", board)
    lines = plain.getvalue().splitlines()
    assert lines[0] == f"watching execution {EXEC} (flow report_flow)"
    assert len(lines) == 2 + len(events) + 1
    assert lines[-1] == summary_line(info, "completed", board)
    assert lines[-1] == f"execution {EXEC} completed · 1 lane: 1 returned · trace {TRACE}"
    parsed = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert [p["index"] for p in parsed] == [0, 1, 2, 3, 4]
    assert parsed[1]["payload"]["data"] == {"percent": 0.25}
    assert "completed" in err.getvalue() and out.getvalue().count("\n") == len(events)
