"""The live event's one codec: in-memory event <-> wire dictionary <-> JSON.

Every place that writes or reads an event's wire shape goes through here: the publisher
(:func:`encode_record`), the server's ingest validation (:func:`wire_event`), the server's
snapshots and the watcher (:func:`decode_event`, behind :meth:`ExecutionEvent.from_wire`),
snapshots and the CLI's JSON output (:func:`to_wire`). An event's SSE frame, which carries this
JSON as its data, is written and read by :mod:`kitaru.events._frames`. The shapes are
described in ``docs/protocol.md``; the server's OpenAPI schema of an ingested event is checked
against :data:`WIRE_FIELDS` by a test.

Two dictionary shapes:

* **wire event** (:data:`WIRE_FIELDS`, in this key order): what a producer posts and the server
  validates. The order is part of the contract: the server re-encodes an event with the same
  keys in the same order to measure it against the same size limit as the publisher.
* **delivered event** (:data:`EVENT_FIELDS`): what a watcher receives, the fields of
  :class:`~kitaru.ExecutionEvent`: the wire event plus the stream ``cursor``, without ``ts``
  (the publish time also travels in ``payload["kitaru"]["ts"]``).
"""

from __future__ import annotations

import json
from collections.abc import (
    Mapping,
)
from typing import TYPE_CHECKING, Any

import orjson

from kitaru.events._jsonsafe import is_json_native, json_safe_mapping

if TYPE_CHECKING:
    from kitaru.events._models import EventRecord, ExecutionEvent

__all__ = [
    "EVENT_FIELDS",
    "WIRE_FIELDS",
    "WIRE_KEYS",
    "EncodedEvent",
    "decode_event",
    "dumps",
    "encode_record",
    "to_wire",
    "wire_event",
]

WIRE_FIELDS = (
    "exec_id",
    "kind",
    "correlation_id",
    "index",
    "checkpoint_id",
    "checkpoint_name",
    "step_name",
    "ts",
    "payload",
)
"""The keys of a wire event, in encoding order."""

WIRE_KEYS = frozenset(WIRE_FIELDS)
"""The keys of a wire event, as a set (a dictionary with exactly these is sent as it is)."""

EVENT_FIELDS = (
    "exec_id",
    "kind",
    "correlation_id",
    "index",
    "cursor",
    "checkpoint_id",
    "checkpoint_name",
    "step_name",
    "payload",
)
"""The keys of a delivered event (:class:`~kitaru.ExecutionEvent`'s fields), in order."""


class EncodedEvent:
    """One event ready for the wire: its JSON-safe dictionary (``data``) and its JSON bytes.

    An event the publisher encoded from a record (:func:`encode_record`) builds ``data`` on
    first access: the sender needs only ``json`` and ``exec_id``, and building the dictionary
    cost as much as encoding it. Equal either way to what the general path builds.
    """

    __slots__ = ("_data", "_lazy", "exec_id", "json")

    def __init__(self, data: dict[str, Any], json: bytes) -> None:
        self._data: dict[str, Any] | None = data
        self._lazy: tuple[EventRecord, dict[str, Any]] | None = None
        self.json = json
        # A plain attribute, not a property: the HTTP transport reads it for every event of a
        # batch between the server's answer and the next request (docs/performance.md).
        self.exec_id: str = str(data.get("exec_id"))

    @property
    def data(self) -> dict[str, Any]:
        """The wire event (:data:`WIRE_FIELDS`) as a dictionary."""
        data = self._data
        if data is None:
            assert self._lazy is not None  # set together: one or the other
            data = self._data = _wire_dict(*self._lazy)
            self._lazy = None
        return data

    def __repr__(self) -> str:
        return f"EncodedEvent(data={self.data!r}, json={self.json!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EncodedEvent):
            return NotImplemented
        return (self.data, self.json) == (other.data, other.json)

    __hash__ = None  # type: ignore[assignment]  # holds a dictionary, compared by value


def wire_event(
    exec_id: str,
    kind: str,
    correlation_id: str,
    index: int,
    checkpoint_id: str | None,
    checkpoint_name: str | None,
    step_name: str | None,
    ts: float | None,
    payload: Mapping[str, Any],
) -> dict[str, Any]:
    """A wire event, with its keys in :data:`WIRE_FIELDS` order."""
    return {
        "exec_id": exec_id,
        "kind": kind,
        "correlation_id": correlation_id,
        "index": index,
        "checkpoint_id": checkpoint_id,
        "checkpoint_name": checkpoint_name,
        "step_name": step_name,
        "ts": ts,
        "payload": payload,
    }


def dumps(data: Mapping[str, Any]) -> bytes:
    """Compact JSON of a wire dictionary.

    Integers beyond 64 bits are plain JSON but orjson refuses them, so those (rare) events go
    through the standard library instead.
    """
    try:
        return orjson.dumps(data)
    except TypeError:
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def encode_record(rec: EventRecord) -> EncodedEvent:
    """Make a published record JSON-safe and encode it (runs on the publisher's sender thread).

    The fields one checkpoint execution repeats in every event (IDs, names, kind, the
    ``payload["kitaru"]`` metadata) are encoded once per lane and reused as JSON fragments;
    per event only the index, the time and the rest of the payload are encoded. The bytes are
    those of :func:`dumps` of the wire dictionary (orjson writes each value the same wherever
    it sits); anything the fragments cannot express exactly takes the general path.
    """
    body = _safe_body(rec.body)
    source = rec.source
    meta = source.meta
    key = (
        source.exec_id,
        rec.kind,
        rec.correlation_id,
        source.checkpoint_id,
        source.name,
        source.step_name,
        id(meta),
    )
    parts = _FRAGMENTS.get(key)
    if parts is None or parts[0] is not meta:
        parts = _fragments(rec, meta)
        if len(_FRAGMENTS) >= _MAX_FRAGMENTS:
            _FRAGMENTS.clear()
        _FRAGMENTS[key] = parts
    head, middle, kitaru = parts[1]
    if head and "kitaru" not in body:
        try:
            ts = _orjson_dumps(rec.ts)
            # The body's own object (without its "{") closes the payload; no body: "}}".
            rest = b"}," + _orjson_dumps(body)[1:] + b"}" if body else b"}}}"
            json = b"".join((head, _orjson_dumps(rec.index), middle, ts, kitaru, ts, rest))
        except TypeError:
            pass  # a value orjson refuses (an integer beyond 64 bits...): the general path
        else:
            encoded = _new(EncodedEvent)
            encoded._data = None
            encoded._lazy = (rec, body)
            encoded.json = json
            encoded.exec_id = str(key[0])
            return encoded
    data = _wire_dict(rec, body)
    return EncodedEvent(data, dumps(data))


_orjson_dumps = orjson.dumps
_new = object.__new__
_MAX_FRAGMENTS = 256
_FRAGMENTS: dict[tuple[Any, ...], tuple[Mapping[str, Any], tuple[bytes, bytes, bytes]]] = {}
"""Per lane (the key: the values the fragments are made of, and the metadata's identity),
the metadata they were made from and the fragments. An entry holds its metadata mapping, so
the ``id`` in its key cannot be reused by another mapping while the entry exists; the
metadata is read-only once published (:class:`~kitaru.events._models.EventRecord`)."""

_NO_FRAGMENTS = (b"", b"", b"")


def _fragments(
    rec: EventRecord, meta: Mapping[str, Any]
) -> tuple[Mapping[str, Any], tuple[bytes, bytes, bytes]]:
    """The JSON fragments of ``rec``'s lane, with the metadata they were made from.

    Before the index, between the index and the time, and the payload's start up to the
    metadata's ``"ts":``; empty ones when the lane cannot use them.
    """
    source = rec.source
    lane_meta = rec.meta  # the checkpoint's, or with another correlation ID
    if "ts" in lane_meta:
        return meta, _NO_FRAGMENTS  # the time would replace a key in place: general path
    dumps_ = _orjson_dumps
    try:
        meta_json = dumps_(dict(lane_meta))
        head = b'{"exec_id":%b,"kind":%b,"correlation_id":%b,"index":' % (
            dumps_(source.exec_id),
            dumps_(rec.kind),
            dumps_(rec.correlation_id),
        )
        middle = b',"checkpoint_id":%b,"checkpoint_name":%b,"step_name":%b,"ts":' % (
            dumps_(source.checkpoint_id),
            dumps_(source.name),
            dumps_(source.step_name),
        )
    except TypeError:
        return meta, _NO_FRAGMENTS
    kitaru = b',"payload":{"kitaru":' + (
        meta_json[:-1] + b',"ts":' if meta_json != b"{}" else b'{"ts":'
    )
    return meta, (head, middle, kitaru)


def _safe_body(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with its ``data`` made JSON-safe (``body`` itself when that changes nothing)."""
    data = body.get("data")
    if data is None or (type(data) is dict and is_json_native(data)):
        return body  # what json_safe_mapping would hand back as it is
    safe = json_safe_mapping(data)
    return body if safe is data else {**body, "data": safe}


def _wire_dict(rec: EventRecord, body: dict[str, Any]) -> dict[str, Any]:
    """The wire event of ``rec`` whose payload (besides the metadata) is ``body``."""
    source = rec.source
    meta = dict(rec.meta)
    # The publish time also travels inside the library-owned metadata: the wire's top-level
    # ``ts`` is not a field of ExecutionEvent, and lanes (kitaru.lanes) need it for their
    # started/ended times on every path (SSE, snapshots, in-memory captures).
    meta["ts"] = rec.ts
    payload: dict[str, Any] = {"kitaru": meta}
    payload.update(body)
    return wire_event(
        source.exec_id,
        rec.kind,
        rec.correlation_id,
        rec.index,
        source.checkpoint_id,
        source.name,
        source.step_name,
        rec.ts,
        payload,
    )


def decode_event(
    data: Mapping[str, Any], cursor: str | None = None
) -> tuple[str, str, Mapping[str, Any], str, int, Any, Any, Any, Any]:
    """The fields of :class:`~kitaru.ExecutionEvent`, in order, from a wire or delivered event.

    ``cursor`` (the SSE ``id:``) wins over a ``"cursor"`` key of ``data``.
    """
    payload = data.get("payload")
    return (
        str(data.get("exec_id", "")),
        str(data.get("kind", "")),
        payload if isinstance(payload, Mapping) else {},
        str(data.get("correlation_id", "")),
        int(data.get("index", 0)),
        cursor if cursor is not None else data.get("cursor"),
        data.get("checkpoint_id"),
        data.get("checkpoint_name"),
        data.get("step_name"),
    )


def to_wire(event: ExecutionEvent) -> dict[str, Any]:
    """A delivered event as a dictionary with the keys of :data:`EVENT_FIELDS`."""
    payload = event.payload
    return {
        "exec_id": event.exec_id,
        "kind": event.kind,
        "correlation_id": event.correlation_id,
        "index": event.index,
        "cursor": event.cursor,
        "checkpoint_id": event.checkpoint_id,
        "checkpoint_name": event.checkpoint_name,
        "step_name": event.step_name,
        "payload": payload if type(payload) is dict else dict(payload),
    }
