"""The user-facing event type and the internal record the publisher carries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Protocol

from kitaru.events import _codec

__all__ = ["EventRecord", "EventSource", "ExecutionEvent", "server_event"]


@dataclass(frozen=True, slots=True)
class ExecutionEvent:
    """One live event of an execution, as a watcher sees it.

    Attributes:
        exec_id: The execution the event belongs to.
        kind: What happened, for example ``kitaru.checkpoint.progress``.
        payload: The event payload; ``payload["kitaru"]`` holds kitaru's metadata.
        correlation_id: Groups the events of one checkpoint execution.
        index: Orders events inside one correlation group, from 0.
        cursor: The stream position used to resume (``None`` for captured, unsent events).
        checkpoint_id: The durable record ID of the checkpoint call, when known.
        checkpoint_name: The checkpoint's name.
        step_name: The checkpoint call's step name inside its execution, when known.
    """

    exec_id: str
    kind: str
    payload: Mapping[str, Any]
    correlation_id: str
    index: int
    cursor: str | None
    checkpoint_id: str | None
    checkpoint_name: str | None
    step_name: str | None

    @property
    def message(self) -> str | None:
        """The event's human-readable message, if any."""
        msg = self.payload.get("message")
        return msg if isinstance(msg, str) else None

    @property
    def data(self) -> Mapping[str, Any]:
        """The event's ``data`` mapping (empty when there is none)."""
        data = self.payload.get("data")
        return data if isinstance(data, Mapping) else {}

    @property
    def trace_id(self) -> str | None:
        """The OpenTelemetry trace ID (32 hex) of the event's execution, when known."""
        meta = self.payload.get("kitaru")
        value = meta.get("trace_id") if isinstance(meta, Mapping) else None
        return value if isinstance(value, str) else None

    @property
    def span_id(self) -> str | None:
        """The OpenTelemetry span ID (16 hex) of the event's checkpoint execution, when known."""
        meta = self.payload.get("kitaru")
        value = meta.get("span_id") if isinstance(meta, Mapping) else None
        return value if isinstance(value, str) else None

    @classmethod
    def from_wire(cls, data: Mapping[str, Any], cursor: str | None = None) -> ExecutionEvent:
        """Build an event from its wire dictionary (see ``docs/protocol.md``).

        Args:
            data: A wire or delivered event (unknown keys are ignored).
            cursor: The stream position (the SSE ``id:``); default: ``data["cursor"]``.
        """
        return cls(*_codec.decode_event(data, cursor))

    def to_wire(self) -> dict[str, Any]:
        """The event as a JSON-ready dictionary of its fields (``from_wire`` reads it back)."""
        return _codec.to_wire(self)


class _Unfrozen:
    """:class:`ExecutionEvent`'s slot layout without its frozen ``__setattr__``.

    A frozen dataclass's ``__init__`` stores each field through ``object.__setattr__``; plain
    attribute stores into the same slots are several times cheaper. :func:`server_event`
    fills one of these and then gives it its real class (allowed: same slots, same layout),
    so the result is an ordinary ``ExecutionEvent``.
    """

    __slots__ = ExecutionEvent.__slots__


_SERVER_FIELDS = itemgetter(
    "exec_id",
    "kind",
    "correlation_id",
    "index",
    "payload",
    "checkpoint_id",
    "checkpoint_name",
    "step_name",
)
_new = object.__new__


def server_event(
    data: dict[str, Any],
    cursor: str | None,
    exec_id_default: str | None = None,
    kind_default: str | None = None,
) -> ExecutionEvent:
    """:meth:`ExecutionEvent.from_wire` for the watcher's decoded data frames, made cheaply.

    A frame as the server writes it (``docs/protocol.md``) already holds every field with its
    type, so the conversions of :func:`~kitaru.events._codec.decode_event` would return what
    they are given; anything else goes through ``from_wire``. Same result either way.

    ``exec_id_default`` and ``kind_default``, when given, are set in ``data`` (as
    ``dict.setdefault`` would) for a missing ``"exec_id"`` or ``"kind"``; a server frame has
    both, so this costs nothing per event.
    """
    try:
        # One C call reads the eight keys a server frame always has (any missing: from_wire).
        exec_id, kind, correlation_id, index, payload, checkpoint_id, checkpoint_name, step = (
            _SERVER_FIELDS(data)
        )
    except KeyError:
        if exec_id_default is not None:
            data.setdefault("exec_id", exec_id_default)
        if kind_default is not None:
            data.setdefault("kind", kind_default)
        return ExecutionEvent.from_wire(data, cursor)
    if not (
        type(exec_id) is str
        and type(kind) is str
        and type(correlation_id) is str
        and type(index) is int
        and type(payload) is dict
    ):
        return ExecutionEvent.from_wire(data, cursor)
    # _Unfrozen's slots filled in place (no __init__ frame), then given its real class.
    event: Any = _new(_Unfrozen)
    event.exec_id = exec_id
    event.kind = kind
    event.payload = payload
    event.correlation_id = correlation_id
    event.index = index
    event.cursor = cursor if cursor is not None else data.get("cursor")
    event.checkpoint_id = checkpoint_id
    event.checkpoint_name = checkpoint_name
    event.step_name = step
    event.__class__ = ExecutionEvent
    built: ExecutionEvent = event  # typed without a call (typing.cast is one, per event)
    return built


class EventSource(Protocol):
    """What an :class:`EventRecord` needs from the checkpoint execution that published it."""

    @property
    def exec_id(self) -> str:
        """The execution's ID."""
        ...

    @property
    def checkpoint_id(self) -> str | None:
        """The checkpoint call's record ID."""
        ...

    @property
    def name(self) -> str:
        """The checkpoint's name."""
        ...

    @property
    def step_name(self) -> str | None:
        """The checkpoint call's step name."""
        ...

    @property
    def meta(self) -> Mapping[str, Any]:
        """``payload["kitaru"]`` of the checkpoint execution."""
        ...


class EventRecord:
    """An event as built on the calling thread: cheap to make, made JSON-safe by the sender.

    ``source`` is the publishing checkpoint execution (its IDs and shared, read-only
    ``payload["kitaru"]`` mapping); ``body`` holds the rest of the payload with user data not
    yet made JSON-safe. Kept to a few slots because one is built per ``progress()`` call.
    """

    __slots__ = ("body", "correlation_id", "index", "kind", "lifecycle", "seq", "source", "ts")

    def __init__(
        self,
        source: EventSource,
        kind: str,
        correlation_id: str,
        index: int,
        body: dict[str, Any],
        ts: float,
        lifecycle: bool = False,
    ) -> None:
        self.source = source
        self.kind = kind
        self.correlation_id = correlation_id
        self.index = index
        self.body = body
        self.ts = ts
        self.lifecycle = lifecycle
        self.seq = 0

    def __repr__(self) -> str:
        return f"<EventRecord {self.kind} {self.correlation_id}#{self.index}>"

    @property
    def exec_id(self) -> str:
        """The execution's ID."""
        return self.source.exec_id

    @property
    def checkpoint_id(self) -> str | None:
        """The checkpoint call's record ID."""
        return self.source.checkpoint_id

    @property
    def checkpoint_name(self) -> str:
        """The checkpoint's name."""
        return self.source.name

    @property
    def step_name(self) -> str | None:
        """The checkpoint call's step name."""
        return self.source.step_name

    @property
    def meta(self) -> Mapping[str, Any]:
        """``payload["kitaru"]`` of this event."""
        meta = self.source.meta
        if self.correlation_id != meta.get("correlation_id"):
            return {**meta, "correlation_id": self.correlation_id}
        return meta
