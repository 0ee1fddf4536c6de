"""What ``kitaru events`` prints: the shared header and summary, plain lines, JSON lines.

The live lanes view lives in :mod:`kitaru.cli._watch_live` (it needs ``rich``); the two outputs
here need nothing beyond the standard library, so pipes keep working without the ``cli`` extra.
"""

from __future__ import annotations

import datetime as dt
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, TextIO

import orjson

from kitaru import _config
from kitaru._ids import trace_id_for
from kitaru.cli._terminal import terminal_safe
from kitaru.events._codec import to_wire
from kitaru.events._kinds import (
    CHECKPOINT_FAILED_KIND,
    CHECKPOINT_PROGRESS_KIND,
    CHECKPOINT_RETURNED_KIND,
    CHECKPOINT_STARTED_KIND,
)
from kitaru.events._models import ExecutionEvent
from kitaru.lanes import CANCELLED, FAILED, LOST, RETURNED, RUNNING, Lane, LaneBoard

__all__ = [
    "JsonOutput",
    "PlainOutput",
    "WatchInfo",
    "WatchOutput",
    "event_json",
    "lane_label",
    "plain_line",
    "summary_line",
]

_SHORT_KINDS = {
    CHECKPOINT_STARTED_KIND: "started",
    CHECKPOINT_PROGRESS_KIND: "progress",
    CHECKPOINT_RETURNED_KIND: "returned",
    CHECKPOINT_FAILED_KIND: "failed",
}


@dataclass(frozen=True, slots=True)
class WatchInfo:
    """What the watch is about, shown above the lanes and in the summary."""

    exec_id: str
    flow_name: str | None
    trace_id: str
    trace_url: str | None

    @classmethod
    def build(cls, exec_id: str, flow_name: str | None) -> WatchInfo:
        """The info of ``exec_id``; the trace link comes from ``KITARU_TRACE_URL_TEMPLATE``."""
        trace_id = trace_id_for(exec_id)
        template = _config.trace_url_template()
        # A plain replace, not str.format: a template may hold other braces (URL-encoded JSON).
        url = template.replace("{trace_id}", trace_id) if template else None
        return cls(exec_id=exec_id, flow_name=flow_name, trace_id=trace_id, trace_url=url)

    def header(self) -> str:
        """``execution <id> (flow <name>)``."""
        flow = f" (flow {self.flow_name})" if self.flow_name else ""
        return f"execution {self.exec_id}{flow}"

    def trace_line(self) -> str:
        """``trace <trace id>`` plus the trace link when a template is configured."""
        return f"trace {self.trace_id}" + (f"  {self.trace_url}" if self.trace_url else "")


class WatchOutput(Protocol):
    """Where ``kitaru events`` sends what it watches; called from one thread."""

    def start(self, info: WatchInfo, board: LaneBoard, lock: threading.Lock) -> None:
        """The watch is open; the loop folds events into ``board`` while holding ``lock``."""

    def event(self, event: ExecutionEvent, board: LaneBoard) -> None:
        """``event`` arrived; ``board`` already holds it."""

    def finish(self, status: str | None, board: LaneBoard) -> None:
        """The stream ended with the execution's final ``status`` (``None``: cut short)."""


def lane_label(lane: Lane) -> str:
    """How a lane is named on screen: its step name (``fetch_2``), plus a retry's attempt."""
    name = terminal_safe(lane.step_name or lane.checkpoint_name or lane.correlation_id)
    if lane.attempt is not None and lane.attempt > 1:
        name += f" (attempt {lane.attempt})"
    return name


def failure_label(lane: Lane) -> str:
    """``process_4 (item 3): RuntimeError``: which call failed, and how."""
    name = lane.step_name or lane.checkpoint_name or lane.correlation_id
    if lane.item is not None:
        name += f" (item {lane.item})"
    return f"{name}: {lane.error_type or 'error'}"


_MAX_NAMED_FAILURES = 3


def _clock(event: ExecutionEvent) -> str | None:
    meta = event.payload.get("kitaru")
    ts = meta.get("ts") if isinstance(meta, Mapping) else None
    if isinstance(ts, bool) or not isinstance(ts, int | float):
        return None
    return dt.datetime.fromtimestamp(ts).strftime("%H:%M:%S.%f")[:-3]


def _seconds(value: float | None) -> str:
    return "" if value is None else f" in {value:.1f}s"


def plain_line(event: ExecutionEvent, lane: Lane) -> str:
    """One line for one event: time, lane, what happened, percent and message."""
    parts = [p for p in (_clock(event), lane_label(lane)) if p]
    kind = _SHORT_KINDS.get(event.kind, event.kind)
    if event.kind == CHECKPOINT_RETURNED_KIND:
        kind += _seconds(lane.duration)
    elif event.kind == CHECKPOINT_FAILED_KIND:
        error_type = event.payload.get("error_type")
        kind += (f": {error_type}" if isinstance(error_type, str) else "") + _seconds(lane.duration)
    parts.append(kind)
    percent = event.data.get("percent")
    if event.kind == CHECKPOINT_PROGRESS_KIND and isinstance(percent, int | float):
        parts.append(f"{percent:4.0%}")
    # A failed event's message is the library's fixed sentence; the error type says more.
    if event.message and event.kind != CHECKPOINT_FAILED_KIND:
        parts.append(event.message)
    return " ".join(parts)


def summary_line(
    info: WatchInfo, status: str | None, board: LaneBoard, *, trace: bool = True
) -> str:
    """``execution <id> failed · 6 lanes: 5 returned, 1 failed (process_4 (item 3): ...)``.

    A failed attempt that a later attempt of the same call replaced counts as a retry, not as
    a failure; failed lanes are named (step, input position, error type).
    """
    retried = board.superseded()
    current = [lane for lane in board.lanes() if lane.correlation_id not in retried]
    counts = {s: 0 for s in (RETURNED, FAILED, LOST, CANCELLED, RUNNING)}
    for lane in current:
        counts[lane.status] += 1
    failed = [lane for lane in current if lane.status == FAILED]
    shown: list[str] = []
    for name, count in counts.items():
        if not count:
            continue
        part = f"{count} {name}"
        if name == FAILED:
            named = ", ".join(failure_label(lane) for lane in failed[:_MAX_NAMED_FAILURES])
            more = len(failed) - _MAX_NAMED_FAILURES
            part += f" ({named}{f', {more} more' if more > 0 else ''})"
        shown.append(part)
    lanes = f"{len(current)} lane{'s' if len(current) != 1 else ''}"
    if shown:
        lanes += ": " + ", ".join(shown)
    if retried:
        lanes += f" · {len(retried)} retr{'ies' if len(retried) != 1 else 'y'}"
    state = status or "still running (watch stopped)"
    line = f"execution {info.exec_id} {state} · {lanes}"
    return line + (f" · trace {info.trace_id}" if trace else "")


def event_json(event: ExecutionEvent) -> bytes:
    """The event as one compact JSON object (the fields of :class:`~kitaru.ExecutionEvent`)."""
    return orjson.dumps(to_wire(event), option=orjson.OPT_NON_STR_KEYS)


class PlainOutput:
    """Plain lines, one per event, for logs and terminals without ``rich``."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out or sys.stdout
        self._info: WatchInfo | None = None

    def _print(self, line: str) -> None:
        # Plain lines carry no styling of their own, so the whole line is made safe.
        self._out.write(terminal_safe(line) + "\n")
        # Line by line even into a pipe: whoever reads it is watching live.
        self._out.flush()

    def start(self, info: WatchInfo, board: LaneBoard, lock: threading.Lock) -> None:
        """Print the header and the trace line."""
        self._info = info
        self._print(f"watching {info.header()}")
        self._print(info.trace_line())

    def event(self, event: ExecutionEvent, board: LaneBoard) -> None:
        """Print one line for ``event``."""
        lane = board.get(event.correlation_id)
        if lane is not None:
            self._print(plain_line(event, lane))

    def finish(self, status: str | None, board: LaneBoard) -> None:
        """Print the summary line."""
        if self._info is not None:
            self._print(summary_line(self._info, status, board))


class JsonOutput:
    """One JSON object per event on stdout; header and summary go to stderr (for ``jq``)."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self._out = out or sys.stdout
        self._err = err or sys.stderr
        self._info: WatchInfo | None = None

    def start(self, info: WatchInfo, board: LaneBoard, lock: threading.Lock) -> None:
        """Note the header on stderr."""
        self._info = info
        self._err.write(f"watching {terminal_safe(info.header())}\n{info.trace_line()}\n")
        self._err.flush()

    def event(self, event: ExecutionEvent, board: LaneBoard) -> None:
        """Write ``event`` as one JSON line."""
        self._out.write(event_json(event).decode() + "\n")
        self._out.flush()

    def finish(self, status: str | None, board: LaneBoard) -> None:
        """Note the summary on stderr."""
        if self._info is not None:
            self._err.write(terminal_safe(summary_line(self._info, status, board)) + "\n")
            self._err.flush()
