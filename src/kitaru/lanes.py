"""Lanes: fold an execution's live events into one lane per checkpoint execution.

A *lane* is what a dashboard draws for one checkpoint execution (one correlation ID): its
checkpoint name, whether it is still running, its latest message and percent, how many events
it published, and where its OpenTelemetry span is. The terminal watcher (``kitaru events``),
the examples and any web view build on the same fold::

    from kitaru import KitaruClient
    from kitaru.lanes import LaneBoard

    board = LaneBoard()
    for event in KitaruClient().executions.events(exec_id):
        lane = board.apply(event)
        print(lane.checkpoint_name, lane.status, lane.percent, lane.message)

The fold is pure (no I/O, no clock) and built so that it does not depend on how events of
different lanes interleave, nor on duplicates:

* an event is identified by ``(correlation_id, index)``; applying it again changes nothing;
* the latest message and percent are those of the highest ``index`` that carried one, not of
  the last event applied;
* the status is ``returned`` or ``failed`` as soon as a terminal lifecycle event is known,
  whenever it arrives;
* times come from ``payload["kitaru"]["ts"]`` (the publish time): a lane starts at the
  earliest time seen and ends at its terminal event's time;
* lanes are ordered by start time, then correlation ID; lanes of one ``.map()`` or
  ``.product()`` (``payload["kitaru"]["item"]`` is the input position) are ordered by it;
* when the execution ends ``lost`` or ``cancelled``, :meth:`LaneBoard.settle` gives every lane
  that never reached a terminal event that verdict, its time stopping at the execution's end
  (``docs/outcomes.md``).

So ``LaneBoard.from_dict(snapshot).extend(tail)`` equals the fold of the whole stream when the
snapshot was taken at a cursor and the tail is the stream after that cursor.

Thread safety: a :class:`LaneBoard` is not locked; feed it from one thread.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, cast

from kitaru.events._kinds import CHECKPOINT_FAILED_KIND, CHECKPOINT_RETURNED_KIND
from kitaru.events._models import ExecutionEvent

__all__ = [
    "CANCELLED",
    "FAILED",
    "LOST",
    "RETURNED",
    "RUNNING",
    "Lane",
    "LaneBoard",
    "LaneStatus",
    "fold",
]

LaneStatus = Literal["running", "returned", "failed", "lost", "cancelled"]
"""Status of a lane: its checkpoint body is running, returned, or raised; or the execution
ended ``lost`` or ``cancelled`` before the lane reached a terminal event."""

RUNNING: LaneStatus = "running"
"""The checkpoint body is running (no terminal lifecycle event seen yet)."""

RETURNED: LaneStatus = "returned"
"""The checkpoint body returned (``kitaru.checkpoint.returned``)."""

FAILED: LaneStatus = "failed"
"""The checkpoint body raised (``kitaru.checkpoint.failed``)."""

LOST: LaneStatus = "lost"
"""The execution was lost (its producer stopped) before this lane ended."""

CANCELLED: LaneStatus = "cancelled"
"""The execution was cancelled before this lane ended."""

VERDICTS: frozenset[str] = frozenset({LOST, CANCELLED})
"""Execution statuses that unfinished lanes take over when the execution ends."""

_TERMINAL_STATUS: dict[str, LaneStatus] = {
    CHECKPOINT_RETURNED_KIND: RETURNED,
    CHECKPOINT_FAILED_KIND: FAILED,
}
_STATUSES: tuple[LaneStatus, ...] = (RUNNING, RETURNED, FAILED, LOST, CANCELLED)


@dataclass(frozen=True, slots=True)
class Lane:
    """One checkpoint execution as its live events describe it (immutable).

    Attributes:
        correlation_id: The checkpoint execution's correlation ID (the lane's identity).
        checkpoint_name: The checkpoint's name, when known.
        status: ``running``, ``returned`` or ``failed``.
        message: The message of the highest-index event that had one.
        percent: The percent (0 to 1) of the highest-index event that had one.
        event_count: Distinct events folded into the lane.
        started_at: Publish time (seconds since the epoch) of the earliest event seen: the
            ``started`` event's, unless a filter removed it.
        ended_at: Publish time of the terminal event, once known.
        last_index: The highest ``index`` seen.
        last_kind: The kind of the highest-index event.
        error_type: The exception class name of a failed lane.
        trace_id: The OpenTelemetry trace ID (32 hex) of the lane's execution, when known.
        span_id: The OpenTelemetry span ID (16 hex) of the checkpoint execution, when known.
        attempt: The attempt number of a retried checkpoint, when known.
        checkpoint_id: The durable record ID of the checkpoint call, when known.
        step_name: The checkpoint call's step name, when known.
        exec_id: The execution the lane belongs to.
        message_index: The index :attr:`message` came from (keeps the fold order-independent).
        percent_index: The index :attr:`percent` came from.
        terminal_index: The index of the terminal event, once known.
        item: The input position of a ``.map()``/``.product()`` call, when it is one.
    """

    correlation_id: str
    checkpoint_name: str | None = None
    status: LaneStatus = RUNNING
    message: str | None = None
    percent: float | None = None
    event_count: int = 0
    started_at: float | None = None
    ended_at: float | None = None
    last_index: int = -1
    last_kind: str | None = None
    error_type: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    attempt: int | None = None
    checkpoint_id: str | None = None
    step_name: str | None = None
    exec_id: str | None = None
    message_index: int = -1
    percent_index: int = -1
    terminal_index: int = -1
    item: int | None = None

    @property
    def finished(self) -> bool:
        """True once the checkpoint body returned or failed, or the execution's end settled it."""
        return self.status != RUNNING

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, once both are known."""
        if self.started_at is None or self.ended_at is None:
            return None
        return max(0.0, self.ended_at - self.started_at)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary of every field (see :meth:`from_dict`)."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Lane:
        """Rebuild a lane from :meth:`to_dict` output; unknown keys are ignored."""
        values = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        status = values.get("status", RUNNING)
        if status not in _STATUSES:
            raise ValueError(f"lane status must be one of {_STATUSES}, got {status!r}")
        if "correlation_id" not in values:
            raise ValueError("a lane dictionary needs a correlation_id")
        return cls(**values)

    def _sort_key(self) -> tuple[int, float, str]:
        if self.started_at is None:
            return (1, 0.0, self.correlation_id)
        return (0, self.started_at, self.correlation_id)

    def settle(self, verdict: str, ended_at: float | None) -> Lane:
        """This lane as the execution's end leaves it.

        Unchanged once it finished; else it takes ``verdict`` (``lost`` or ``cancelled``) and
        ends when the execution ended.
        """
        if self.finished or verdict not in VERDICTS:
            return self
        end = ended_at
        if end is not None and self.started_at is not None:
            end = max(end, self.started_at)
        return replace(self, status=cast(LaneStatus, verdict), ended_at=end)


def _meta(event: ExecutionEvent) -> Mapping[str, Any]:
    meta = event.payload.get("kitaru")
    return meta if isinstance(meta, Mapping) else {}


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _percent(event: ExecutionEvent) -> float | None:
    value = _number(event.data.get("percent"))
    # Custom events may carry their own "percent" on another scale; only fractions count.
    return value if value is not None and 0.0 <= value <= 1.0 else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _merge(lane: Lane, event: ExecutionEvent) -> Lane:
    """The lane with ``event`` folded in (the event is known to be new to the lane)."""
    meta = _meta(event)
    index = event.index
    ts = _number(meta.get("ts"))
    changes: dict[str, Any] = {"event_count": lane.event_count + 1}
    # Identity fields: first known value wins, so the result does not depend on order as long
    # as the events of one lane agree (they come from one checkpoint execution).
    for field, value in (
        ("checkpoint_name", event.checkpoint_name or _str(meta.get("checkpoint_name"))),
        ("checkpoint_id", event.checkpoint_id or _str(meta.get("checkpoint_id"))),
        ("step_name", event.step_name),
        ("exec_id", event.exec_id or _str(meta.get("execution_id"))),
        ("trace_id", event.trace_id),
        ("span_id", event.span_id),
    ):
        if value and getattr(lane, field) is None:
            changes[field] = value
    attempt = meta.get("attempt")
    if lane.attempt is None and isinstance(attempt, int) and not isinstance(attempt, bool):
        changes["attempt"] = attempt
    item = meta.get("item")
    if lane.item is None and isinstance(item, int) and not isinstance(item, bool):
        changes["item"] = item
    if index > lane.last_index:
        changes["last_index"] = index
        changes["last_kind"] = event.kind
    message = event.message
    if message is not None and index > lane.message_index:
        changes["message"] = message
        changes["message_index"] = index
    percent = _percent(event)
    if percent is not None and index > lane.percent_index:
        changes["percent"] = percent
        changes["percent_index"] = index
    # The started event is published first, so the earliest time is its time, and when it
    # was filtered out the earliest time seen stands in for it: a minimum, whatever the order.
    if ts is not None and (lane.started_at is None or ts < lane.started_at):
        changes["started_at"] = ts
    terminal = _TERMINAL_STATUS.get(event.kind)
    # One checkpoint execution has one terminal event; should a lane ever show two (a
    # hand-made correlation ID), the higher index wins, in any order.
    if terminal is not None and index > lane.terminal_index:
        error_type = event.payload.get("error_type")
        changes["status"] = terminal
        changes["terminal_index"] = index
        changes["ended_at"] = ts
        changes["error_type"] = (
            error_type if terminal == FAILED and isinstance(error_type, str) else None
        )
    return replace(lane, **changes)


class LaneBoard:
    """The lanes of one execution, folded from its live events.

    Args:
        events: Events to fold in right away.
    """

    def __init__(self, events: Iterable[ExecutionEvent] = ()) -> None:
        self._lanes: dict[str, Lane] = {}
        self._seen: dict[str, set[int]] = {}
        self.cursor: str | None = None
        """The cursor of the last applied event that had one (resume a watch from here)."""
        self.extend(events)

    def __repr__(self) -> str:
        counts = self.counts()
        return (
            f"<LaneBoard running={counts[RUNNING]} returned={counts[RETURNED]} "
            f"failed={counts[FAILED]} cursor={self.cursor!r}>"
        )

    def __len__(self) -> int:
        return len(self._lanes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LaneBoard):
            return NotImplemented
        return self.lanes() == other.lanes()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def apply(self, event: ExecutionEvent) -> Lane:
        """Fold one event in and return its lane as it is now.

        An event already folded (same correlation ID and index) changes nothing.
        """
        if event.cursor:
            self.cursor = event.cursor
        key = event.correlation_id
        seen = self._seen.setdefault(key, set())
        lane = self._lanes.get(key) or Lane(correlation_id=key)
        if event.index in seen:
            return lane
        seen.add(event.index)
        lane = _merge(lane, event)
        self._lanes[key] = lane
        return lane

    def extend(self, events: Iterable[ExecutionEvent]) -> LaneBoard:
        """Fold every event of ``events`` in order; returns the board itself."""
        for event in events:
            self.apply(event)
        return self

    def get(self, correlation_id: str) -> Lane | None:
        """The lane with this correlation ID, if any event of it was seen."""
        return self._lanes.get(correlation_id)

    def lanes(self) -> list[Lane]:
        """Every lane, ordered by start time, then correlation ID.

        Lanes of one fan-out (same checkpoint name, each with an input position) keep their
        place among the others but are listed by input position.
        """
        ordered = sorted(self._lanes.values(), key=Lane._sort_key)
        groups: dict[str | None, list[Lane]] = {}
        for lane in ordered:
            if lane.item is not None:
                groups.setdefault(lane.checkpoint_name, []).append(lane)
        if not groups:
            return ordered
        queues = {
            name: iter(sorted(lanes, key=lambda ln: (ln.item or 0, ln.attempt or 0)))
            for name, lanes in groups.items()
        }
        return [next(queues[ln.checkpoint_name]) if ln.item is not None else ln for ln in ordered]

    def settle(self, status: str | None, ended_at: float | None = None) -> LaneBoard:
        """Apply the execution's end; returns the board.

        With ``status`` ``lost`` or ``cancelled``, every lane still running takes that verdict
        and ends at ``ended_at``.
        """
        if status in VERDICTS:
            for key, lane in list(self._lanes.items()):
                self._lanes[key] = lane.settle(status, ended_at)
        return self

    def superseded(self) -> set[str]:
        """Correlation IDs of failed attempts that a later attempt of the same call replaced.

        A call that succeeded on its third attempt reads as returned (with two retries), not
        as a failure.
        """
        calls: dict[str, list[Lane]] = {}
        for lane in self._lanes.values():
            key = lane.checkpoint_id or lane.step_name
            if key is not None and lane.attempt is not None:
                calls.setdefault(key, []).append(lane)
        out: set[str] = set()
        for attempts in calls.values():
            if len(attempts) < 2:
                continue
            last = max(ln.attempt or 0 for ln in attempts)
            out.update(
                ln.correlation_id for ln in attempts if ln.attempt != last and ln.status == FAILED
            )
        return out

    def running(self) -> list[Lane]:
        """Lanes whose checkpoint body is still running, in :meth:`lanes` order."""
        return [lane for lane in self.lanes() if not lane.finished]

    def finished(self) -> list[Lane]:
        """Lanes whose checkpoint body returned or failed, in :meth:`lanes` order."""
        return [lane for lane in self.lanes() if lane.finished]

    def counts(self) -> dict[LaneStatus, int]:
        """How many lanes have each status (every status is a key)."""
        out: dict[LaneStatus, int] = dict.fromkeys(_STATUSES, 0)
        for lane in self._lanes.values():
            out[lane.status] += 1
        return out

    @property
    def trace_id(self) -> str | None:
        """The execution's trace ID, as carried by its events (``None`` before any)."""
        for lane in self._lanes.values():
            if lane.trace_id:
                return lane.trace_id
        return None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready snapshot: ``{"cursor": ..., "lanes": [lane dicts]}``."""
        return {"cursor": self.cursor, "lanes": [lane.to_dict() for lane in self.lanes()]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LaneBoard:
        """Rebuild a board from a :meth:`to_dict` snapshot, ready to fold the tail after it.

        The snapshot does not list which indexes each lane has seen, so events of the tail are
        trusted to come after the snapshot's cursor (as a stream resumed from it delivers them).
        """
        board = cls()
        cursor = data.get("cursor")
        board.cursor = cursor if isinstance(cursor, str) else None
        for raw in cast(Iterable[Mapping[str, Any]], data.get("lanes") or ()):
            lane = Lane.from_dict(raw)
            board._lanes[lane.correlation_id] = lane
            board._seen[lane.correlation_id] = set()
        return board


def fold(events: Iterable[ExecutionEvent]) -> list[Lane]:
    """The lanes of ``events``: ``LaneBoard(events).lanes()``."""
    return LaneBoard(events).lanes()
