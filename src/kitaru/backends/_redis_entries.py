"""The Redis event log's stream entries on the Python side: append arguments and decoding.

The layout is described in :mod:`kitaru.backends._redis_scripts`. An event entry carries its
idempotency key, its source number and its JSON; the source (kind, correlation ID and
checkpoint fields) is stored once per execution and the SSE frame is built here on read with
the one codec (:func:`~kitaru.events._codec.new_event_frame`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from kitaru.backends._base import LoggedEvent, NewEvent
from kitaru.backends._seq import format_cursor
from kitaru.events._codec import new_event_frame

__all__ = ["Item", "Sources", "append_args", "decode", "decode_fields", "source_numbers"]

Source = tuple[str, str, str | None, str | None, str | None]
Item = tuple[bytes, LoggedEvent | str]
"""One stream entry decoded: its ID and its event, or the final status of the end entry."""

_KEPT = 50_000  # source numbers remembered, over every execution


def append_args(max_events: int, events: Sequence[NewEvent]) -> list[Any]:
    """The arguments of the ``APPEND`` script for ``events``."""
    positions: dict[Source, int] = {}
    sources: list[Any] = []
    parts: list[bytes] = []
    for ev in events:
        src = (ev.kind, ev.correlation_id, ev.checkpoint_id, ev.checkpoint_name, ev.step_name)
        pos = positions.get(src)
        if pos is None:
            pos = positions[src] = len(positions) + 1
            sources += [orjson.dumps(src), ev.correlation_id]
        body = ev.body
        parts += (b"%d %d %d " % (pos, ev.index, len(body)), body)
    return [max_events, len(positions), *sources, b"".join(parts)]


class Sources:
    """Source numbers of each execution, as read from Redis (a number never changes meaning)."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, bytes], Source] = {}

    def learn(self, exec_id: str, flat: Sequence[bytes]) -> None:
        """Remember ``[number, source JSON, ...]`` pairs of ``exec_id``."""
        if len(self._known) > _KEPT:
            self._known.clear()
        for i in range(0, len(flat), 2):
            kind, corr, cid, cname, sname = orjson.loads(flat[i + 1])
            self._known[(exec_id, bytes(flat[i]))] = (kind, corr, cid, cname, sname)

    def missing(self, exec_id: str, numbers: Sequence[bytes]) -> list[bytes]:
        """Which of ``numbers`` are not known yet."""
        known = self._known
        return list({n for n in numbers if (exec_id, n) not in known})

    def get(self, exec_id: str, number: bytes) -> Source:
        """The source ``number`` of ``exec_id`` (learned before)."""
        return self._known[(exec_id, number)]


def decode(exec_id: str, sources: Sources, flat: Sequence[bytes]) -> list[Item]:
    """Entries as returned by ``READ``/``TAIL`` (four values each), in the order given."""
    out: list[Item] = []
    for i in range(0, len(flat), 4):
        out.append(_item(exec_id, sources, flat[i], flat[i + 1], flat[i + 2], flat[i + 3]))
    return out


def decode_fields(
    exec_id: str, sources: Sources, entries: Sequence[tuple[bytes, dict[bytes, bytes]]]
) -> list[Item]:
    """Entries as ``XREAD`` returns them (ID and field map)."""
    out: list[Item] = []
    for entry_id, f in entries:
        status = f.get(b"e")
        if status is not None:
            out.append((entry_id, status.decode()))
        elif b"d" in f:
            out.append(_item(exec_id, sources, entry_id, f[b"k"], f[b"s"], f[b"d"]))
        else:
            out.append(_item(exec_id, sources, entry_id, f[b"k"], f[b"m"], f[b"f"]))
    return out


def source_numbers(entries: Sequence[tuple[bytes, dict[bytes, bytes]]]) -> list[bytes]:
    """The source numbers ``XREAD`` entries use."""
    return [f[b"s"] for _, f in entries if b"s" in f]


def _item(
    exec_id: str, sources: Sources, entry_id: bytes, key: bytes, src: bytes, data: bytes
) -> Item:
    if not key:
        return entry_id, data.decode()  # the end entry
    seq = int(entry_id.partition(b"-")[0])
    cursor = format_cursor(seq)
    if src[:1] == b"[":  # the older layout: ready-made frame and per-event metadata
        kind, corr, index, cid, cname, sname = orjson.loads(src)
        return entry_id, LoggedEvent(cursor, kind, corr, index, cid, cname, sname, data)
    kind, corr, cid, cname, sname = sources.get(exec_id, src)
    index = int(key.rpartition(b":")[2])
    frame = new_event_frame(cursor, kind, data)
    return entry_id, LoggedEvent(cursor, kind, corr, index, cid, cname, sname, frame)
