"""Helpers shared by backends that number each execution's events 1, 2, 3, ...

Such backends use the sequence number as the cursor, written as a zero-padded decimal so the
strings also sort in order (clients must still treat cursors as opaque). Numbers are
contiguous, so a gap can say exactly how many events were lost.

Wake-ups are process-local: :class:`Notifier` hands each waiting watcher a one-shot token for
its execution, and an append or end replaces and sets it. Taking the token before reading the
log means a wake-up between the read and the wait is never missed.
"""

from __future__ import annotations

import asyncio
import re
import weakref
from collections.abc import Iterable, Sequence
from itertools import repeat
from operator import attrgetter, itemgetter

from kitaru.backends._base import CursorInvalidError, Gap, LoggedEvent, NewEvent
from kitaru.events._frames import new_event_frame

__all__ = [
    "FRAME_TEMPLATE",
    "Notifier",
    "Token",
    "format_cursor",
    "frame_head",
    "gap_for",
    "logged_event",
    "logged_events",
    "new_frames",
    "parse_cursor",
]

_CURSOR_RE = re.compile(r"[0-9]{1,19}")
_MAX_SEQ = 2**63 - 1


def format_cursor(seq: int) -> str:
    """The cursor string of sequence number ``seq``."""
    return f"{seq:012d}"


FRAME_TEMPLATE = b'id: %012d\nevent: %b\ndata: %b"cursor":"%012d"}\n\n'
"""The frame of :func:`~kitaru.events._frames.new_event_frame` as a template over ``(seq, kind,
head, seq)`` (``head``: see :func:`frame_head`): what the SQLite log stores per event."""


def logged_event(seq: int, ev: NewEvent) -> LoggedEvent:
    """``ev`` as stored with sequence number ``seq``: what a read of it returns."""
    cursor = format_cursor(seq)
    return LoggedEvent(
        cursor,
        ev.kind,
        ev.correlation_id,
        ev.index,
        ev.checkpoint_id,
        ev.checkpoint_name,
        ev.step_name,
        new_event_frame(cursor, ev.kind, ev.body),
    )


# The constant parts of FRAME_TEMPLATE between its fields (see new_frames).
_EVENT, _DATA, _CURSOR, _END = b"\nevent: ", b"\ndata: ", b',"cursor":"', b'"}\n\n'
_NUM = b"%012d"
_BODY = attrgetter("body")
_KIND = attrgetter("kind")
_OPEN = itemgetter(slice(None, -1))  # a body without its closing brace
_EMPTY = b"{}"
_CORR = attrgetter("correlation_id")
_INDEX = attrgetter("index")
_CID = attrgetter("checkpoint_id")
_CNAME = attrgetter("checkpoint_name")
_SNAME = attrgetter("step_name")


def new_frames(last_seq: int, events: Sequence[NewEvent]) -> list[bytes]:
    """The SSE frames of ``events`` numbered from ``last_seq + 1``.

    Each is ``FRAME_TEMPLATE % (seq, kind, frame_head(body), seq)`` (the frame of
    :func:`~kitaru.events._frames.new_event_frame`), joined from its parts by C-level loops
    (``map`` over ``zip``; no Python statement per event): the numbers formatted once each,
    the body's closing brace cut by a slice, no head built. Appends build one per event, so
    per-event Python here was a large share of their CPU (``benchmarks/README.md``, "Where
    the time goes").
    """
    bodies = list(map(_BODY, events))
    if _EMPTY in bodies:
        # An empty body has no brace to cut before the cursor: the template (rare).
        return [
            FRAME_TEMPLATE % (seq, ev.kind.encode(), frame_head(ev.body), seq)
            for seq, ev in enumerate(events, last_seq + 1)
        ]
    nums = list(map(_NUM.__mod__, range(last_seq + 1, last_seq + 1 + len(events))))
    kinds = set(map(_KIND, events))
    if len(kinds) == 1:
        heads: Iterable[bytes] = repeat(_EVENT + kinds.pop().encode() + _DATA)
    else:
        by_kind = {kind: _EVENT + kind.encode() + _DATA for kind in kinds}
        heads = map(by_kind.__getitem__, map(_KIND, events))
    parts = zip(
        repeat(b"id: "), nums, heads, map(_OPEN, bodies), repeat(_CURSOR), nums, repeat(_END)
    )
    return list(map(b"".join, parts))


def logged_events(first_seq: int, events: Sequence[NewEvent]) -> list[LoggedEvent]:
    """``events`` as stored with the numbers from ``first_seq``: what a read returns.

    Built by C-level loops like :func:`new_frames` (one ``LoggedEvent`` call per event).
    """
    cursors = map("%012d".__mod__, range(first_seq, first_seq + len(events)))
    return list(
        map(
            LoggedEvent,
            cursors,
            map(_KIND, events),
            map(_CORR, events),
            map(_INDEX, events),
            map(_CID, events),
            map(_CNAME, events),
            map(_SNAME, events),
            new_frames(first_seq - 1, events),
        )
    )


def frame_head(body: bytes) -> bytes:
    """An event's JSON with its closing brace turned into the place for the cursor.

    ``{"a":1}`` becomes ``{"a":1,`` and ``{}`` becomes ``{``: the frame's data is the head
    followed by ``"cursor":"..."}``. Same size as the JSON.
    """
    return b"{" if body == b"{}" else body[:-1] + b","


def parse_cursor(cursor: str | None, last_seq: int) -> int:
    """The sequence number of ``cursor`` (0 for ``None``), checked against the log's end.

    Raises:
        CursorInvalidError: Malformed, or beyond the newest event ``last_seq``.
    """
    if cursor is None:
        return 0
    if not isinstance(cursor, str) or _CURSOR_RE.fullmatch(cursor) is None:
        raise CursorInvalidError(f"cursor {cursor!r} is not a cursor this server issued")
    seq = int(cursor)
    if seq > _MAX_SEQ:
        raise CursorInvalidError(f"cursor {cursor!r} is not a cursor this server issued")
    if seq > last_seq:
        raise CursorInvalidError(
            f"cursor {cursor!r} is beyond the end of this execution's event log"
        )
    return seq


def gap_for(after: str | None, after_seq: int, base_seq: int) -> Gap | None:
    """The gap between position ``after_seq`` and the first retained event ``base_seq``."""
    if after_seq >= base_seq - 1:
        return None
    return Gap(
        reason="retention",
        after=after,
        until=format_cursor(base_seq - 1),
        lost=base_seq - 1 - after_seq,
    )


class Token:
    """A one-shot wake-up for the watchers of one execution."""

    __slots__ = ("__weakref__", "event")

    def __init__(self) -> None:
        self.event = asyncio.Event()


class Notifier:
    """Per-execution wake-ups; memory is held only while someone waits."""

    def __init__(self) -> None:
        self._tokens: weakref.WeakValueDictionary[str, Token] = weakref.WeakValueDictionary()

    def token(self, exec_id: str) -> Token:
        """The current token of ``exec_id``; it is set by the next :meth:`notify`."""
        tok = self._tokens.get(exec_id)
        if tok is None:
            tok = Token()
            self._tokens[exec_id] = tok
        return tok

    def notify(self, exec_id: str) -> None:
        """Wake everyone waiting on ``exec_id``; later waiters get a fresh token."""
        tok = self._tokens.pop(exec_id, None)
        if tok is not None:
            tok.event.set()

    def notify_all(self) -> None:
        """Wake every waiter (used on close)."""
        tokens = list(self._tokens.values())
        self._tokens.clear()
        for tok in tokens:
            tok.event.set()

    @staticmethod
    async def sleep_on(token: Token, timeout: float) -> bool:
        """Wait for ``token``; False on timeout."""
        try:
            async with asyncio.timeout(max(0.0, timeout)):
                await token.event.wait()
        except TimeoutError:
            return False
        return True
