"""The Redis event log's stream entries on the Python side: append arguments and decoding.

The layout is described in :mod:`kitaru.backends._redis_scripts`. An event entry carries its
idempotency key, its source number and its JSON; the source (kind, correlation ID and
checkpoint fields) is stored once per execution and the SSE frame is built here on read with
the one codec (:func:`~kitaru.events._frames.new_event_frame`).
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from kitaru.backends._base import LoggedEvent, NewEvent
from kitaru.backends._seq import format_cursor, logged_events
from kitaru.events._frames import new_event_frame

__all__ = [
    "Item",
    "Sources",
    "decode",
    "decode_fields",
    "logged",
    "source_numbers",
]

Source = tuple[str, str, str | None, str | None, str | None]
Item = tuple[bytes, LoggedEvent | str]
"""One stream entry decoded: its ID and its event, or the final status of the end entry."""

# new_event_frame's frame of a JSON object that is not empty, over (seq, kind, JSON without its
# closing brace, seq).
_FRAME = b'id: %012d\nevent: %b\ndata: %b,"cursor":"%012d"}\n\n'
_KEPT = 50_000  # source numbers remembered, over every execution


class Sources:
    """Source numbers of each execution, as read from Redis (a number never changes meaning)."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, bytes], Source] = {}
        self._kinds: dict[str, bytes] = {}  # each kind as it goes into a frame

    def learn(self, exec_id: str, flat: Sequence[bytes]) -> None:
        """Remember ``[number, source JSON, ...]`` pairs of ``exec_id``."""
        if len(self._known) > _KEPT:
            self._known.clear()
            self._kinds.clear()
        for i in range(0, len(flat), 2):
            kind, corr, cid, cname, sname = orjson.loads(flat[i + 1])
            self._known[(exec_id, bytes(flat[i]))] = (kind, corr, cid, cname, sname)
            self._kinds[kind] = kind.encode()

    def missing(self, exec_id: str, numbers: Sequence[bytes]) -> list[bytes]:
        """Which of ``numbers`` are not known yet."""
        known = self._known
        return list({n for n in numbers if (exec_id, n) not in known})

    def get(self, exec_id: str, number: bytes) -> Source:
        """The source ``number`` of ``exec_id`` (learned before)."""
        return self._known[(exec_id, number)]

    def kind_bytes(self, kind: str) -> bytes:
        """``kind`` encoded (for a kind of a learned source)."""
        return self._kinds[kind]


def decode(exec_id: str, sources: Sources, flat: Sequence[bytes]) -> list[Item]:
    """Entries as returned by ``READ``/``TAIL`` (four values each), in the order given."""
    out: list[Item] = []
    for i in range(0, len(flat), 4):
        out.append(_item(exec_id, sources, flat[i], flat[i + 1], flat[i + 2], flat[i + 3]))
    return out


def decode_fields(
    exec_id: str, sources: Sources, entries: Sequence[tuple[bytes, Sequence[bytes]]]
) -> list[Item]:
    """Entries as the raw ``XREAD`` reply lists them: ID and flat ``[field, value, ...]``.

    The fields are in the order the scripts add them: ``e`` alone (the end entry), or ``k``
    then ``s``/``m`` then ``d``/``f`` (an event of either layout, told apart by :func:`_item`).
    """
    # The follower decodes every event it reads here, so the common case (an event of the
    # current layout) is built inline: the source from the cache, the frame in one formatting.
    out: list[Item] = []
    known = sources.get
    kinds = sources.kind_bytes
    for entry_id, f in entries:
        if f[0] == b"e":
            out.append((entry_id, f[1].decode()))
            continue
        key, src, data = f[1], f[3], f[5]
        if src[:1] == b"[" or data == b"{}":
            out.append(_item(exec_id, sources, entry_id, key, src, data))
            continue
        kind, corr, cid, cname, sname = known(exec_id, src)
        seq = int(entry_id[:-2])  # an event's entry ID is "<seq>-0"
        frame = _FRAME % (seq, kinds(kind), memoryview(data)[:-1], seq)
        index = int(key.rpartition(b":")[2])
        event = LoggedEvent(f"{seq:012d}", kind, corr, index, cid, cname, sname, frame)
        out.append((entry_id, event))
    return out


def logged(first_seq: int, events: Sequence[NewEvent]) -> list[LoggedEvent]:
    """``events`` as stored with the numbers from ``first_seq``: what a read would return."""
    return logged_events(first_seq, events)


def source_numbers(entries: Sequence[tuple[bytes, Sequence[bytes]]]) -> list[bytes]:
    """The source numbers raw ``XREAD`` entries use (see :func:`decode_fields`)."""
    return [f[3] for _, f in entries if len(f) == 6 and f[2] == b"s"]


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
