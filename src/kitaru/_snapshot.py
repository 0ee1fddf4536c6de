"""Execution snapshots: the folded state of one execution's live events at a cursor.

A late joiner (the web view, ``kitaru events``, a dashboard) asks the server for a snapshot,
renders it at once, and then follows the stream from the snapshot's cursor. The server and the
clients share this module, so both sides fold events the same way:

* the lanes are :class:`kitaru.lanes.LaneBoard`'s (one lane per checkpoint execution);
* the timeline keeps the newest :data:`TIMELINE_LIMIT` custom events (kinds outside
  ``kitaru.checkpoint.*``) in stream order;
* ``lost`` counts the events retention removed before they could be folded (``gap`` frames).

The property that makes a snapshot useful: for a log ``events`` and any ``k``,
``SnapshotFold.from_snapshot(fold(events[:k]).snapshot(...)).extend(events[k:])`` has the same
state as ``fold(events)``, because the tail after the snapshot's cursor holds exactly the
events the snapshot did not see (the log stores each ``(correlation_id, index)`` once).

No I/O and no clock: the server computes snapshots with it, the client rebuilds them with it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from kitaru.events._codec import to_wire
from kitaru.events._models import ExecutionEvent
from kitaru.lanes import Lane, LaneBoard

__all__ = ["TIMELINE_LIMIT", "ExecutionSnapshot", "SnapshotFold", "is_custom_kind"]

TIMELINE_LIMIT = 100
"""How many of the newest custom events a snapshot keeps for the timeline."""

_LIFECYCLE_PREFIX = "kitaru.checkpoint."


def is_custom_kind(kind: str) -> bool:
    """True for event kinds a timeline shows: everything but kitaru's own checkpoint kinds."""
    return not kind.startswith(_LIFECYCLE_PREFIX)


@dataclass(frozen=True, slots=True)
class ExecutionSnapshot:
    """The folded live state of one execution at one stream position (immutable).

    Render it, then follow the stream after :attr:`cursor` (``since=snapshot.cursor``) and fold
    the tail into :meth:`board`: the result equals folding the whole stream.

    Attributes:
        exec_id: The execution.
        cursor: The stream position the snapshot was computed at (``None``: no events yet);
            resume the stream after it.
        lanes: One lane per checkpoint execution, ordered by start time.
        timeline: The newest custom events (up to :data:`TIMELINE_LIMIT`), oldest first.
        lost: Events removed by retention before they could be folded.
        status: The execution's status when the snapshot was taken (``running``,
            ``completed``, ``failed``, ``lost``), when known.
        ended: True when the stream had ended: the snapshot holds every retained event and
            there is no tail to follow.
        flow_name: The execution's flow, when known.
        created_at: When the execution started (seconds since the epoch), when known.
        ended_at: When the execution ended, when known.
        trace_id: The execution's OpenTelemetry trace ID.
        trace_url: A link to the trace, when the server has a trace URL template.
    """

    exec_id: str
    cursor: str | None = None
    lanes: tuple[Lane, ...] = ()
    timeline: tuple[ExecutionEvent, ...] = ()
    lost: int = 0
    status: str | None = None
    ended: bool = False
    flow_name: str | None = None
    created_at: float | None = None
    ended_at: float | None = None
    trace_id: str | None = None
    trace_url: str | None = field(default=None)

    def board(self) -> LaneBoard:
        """A fresh :class:`~kitaru.lanes.LaneBoard` of the lanes, ready to fold the tail."""
        return LaneBoard.from_dict(
            {"cursor": self.cursor, "lanes": [lane.to_dict() for lane in self.lanes]}
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form the server answers (see ``docs/protocol.md``)."""
        return {
            "exec_id": self.exec_id,
            "cursor": self.cursor,
            "status": self.status,
            "ended": self.ended,
            "flow_name": self.flow_name,
            "created_at": self.created_at,
            "ended_at": self.ended_at,
            "trace_id": self.trace_id,
            "trace_url": self.trace_url,
            "lost": self.lost,
            "lanes": [lane.to_dict() for lane in self.lanes],
            "timeline": [to_wire(ev) for ev in self.timeline],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExecutionSnapshot:
        """Rebuild a snapshot from :meth:`to_dict` output (unknown keys are ignored).

        Raises:
            ValueError: A required field is missing or has the wrong type.
        """
        exec_id = data.get("exec_id")
        if not isinstance(exec_id, str) or not exec_id:
            raise ValueError(f"a snapshot needs a non-empty exec_id, got {exec_id!r}")
        lanes = tuple(
            Lane.from_dict(raw)
            for raw in cast(Iterable[Mapping[str, Any]], data.get("lanes") or ())
        )
        timeline = tuple(
            ExecutionEvent.from_wire(raw)
            for raw in cast(Iterable[Mapping[str, Any]], data.get("timeline") or ())
        )
        lost = data.get("lost", 0)
        return cls(
            exec_id=exec_id,
            cursor=_opt_str(data.get("cursor")),
            lanes=lanes,
            timeline=timeline,
            lost=lost if isinstance(lost, int) and not isinstance(lost, bool) else 0,
            status=_opt_str(data.get("status")),
            ended=data.get("ended") is True,
            flow_name=_opt_str(data.get("flow_name")),
            created_at=_opt_float(data.get("created_at")),
            ended_at=_opt_float(data.get("ended_at")),
            trace_id=_opt_str(data.get("trace_id")),
            trace_url=_opt_str(data.get("trace_url")),
        )


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _opt_float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


class SnapshotFold:
    """Folds an execution's live events into the state a snapshot carries.

    Not locked: feed it from one thread (or one asyncio task at a time).

    Args:
        exec_id: The execution.
        events: Events to fold in right away, in stream order.
        timeline_limit: How many custom events the timeline keeps.
    """

    def __init__(
        self,
        exec_id: str,
        events: Iterable[ExecutionEvent] = (),
        *,
        timeline_limit: int = TIMELINE_LIMIT,
    ) -> None:
        self.exec_id = exec_id
        self.board = LaneBoard()
        self.timeline: deque[ExecutionEvent] = deque(maxlen=timeline_limit)
        self.lost = 0
        self._cursor: str | None = None
        self.extend(events)

    @property
    def cursor(self) -> str | None:
        """The position folded up to (an event's cursor, or the end of a gap)."""
        return self._cursor

    def apply(self, event: ExecutionEvent) -> Lane:
        """Fold one event in (stream order); returns its lane as it is now."""
        if event.cursor:
            self._cursor = event.cursor
        known = self.board.get(event.correlation_id)
        before = known.event_count if known is not None else 0
        lane = self.board.apply(event)
        # The board ignores an event it already folded; so does the timeline.
        if lane.event_count != before and is_custom_kind(event.kind):
            self.timeline.append(event)
        return lane

    def extend(self, events: Iterable[ExecutionEvent]) -> SnapshotFold:
        """Fold every event of ``events`` in order; returns the fold itself."""
        for event in events:
            self.apply(event)
        return self

    def skip(self, lost: int, until: str) -> None:
        """Note a ``gap``: ``lost`` events up to the cursor ``until`` are gone."""
        self.lost += lost
        self._cursor = until

    def state(self) -> tuple[list[Lane], list[ExecutionEvent], int]:
        """What two folds must agree on: the lanes, the timeline and the lost count."""
        return self.board.lanes(), list(self.timeline), self.lost

    def snapshot(self, **fields: Any) -> ExecutionSnapshot:
        """The snapshot of the current state; ``fields`` are the execution's other fields."""
        return ExecutionSnapshot(
            exec_id=self.exec_id,
            cursor=self._cursor,
            lanes=tuple(self.board.lanes()),
            timeline=tuple(self.timeline),
            lost=self.lost,
            **fields,
        )

    @classmethod
    def from_snapshot(
        cls, snapshot: ExecutionSnapshot, *, timeline_limit: int = TIMELINE_LIMIT
    ) -> SnapshotFold:
        """A fold that continues from ``snapshot``: fold the stream after its cursor into it."""
        fold = cls(snapshot.exec_id, timeline_limit=timeline_limit)
        fold.board = snapshot.board()
        fold.timeline.extend(snapshot.timeline)
        fold.lost = snapshot.lost
        fold._cursor = snapshot.cursor
        return fold
