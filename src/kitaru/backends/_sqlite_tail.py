"""The in-memory tail of the SQLite event log: the newest committed rows of one execution.

Live watchers at the end of an execution's log are served from here without a SQLite call, and
one joined chunk of frames serves every watcher at the same position (see the module docstring
of :mod:`kitaru.backends._sqlite` for how reads fall back to SQLite).
"""

from __future__ import annotations

from collections import OrderedDict
from operator import attrgetter, itemgetter

__all__ = ["BLOCK_BYTES", "TAIL_EXECUTIONS", "TAIL_FIELDS", "Row", "Tail"]

# Bounds of the in-memory tails (see kitaru.backends._sqlite): per execution the newest
# _TAIL_EVENTS events and at most _TAIL_BYTES of frames; tails for the TAIL_EXECUTIONS
# executions read most recently (so at most about 64 MiB in all, far less for typical events).
# Followers read their executions in turn, so with more watched executions than tails every
# read would miss (least-recently-used order) and go to SQLite: there are many small tails.
_TAIL_EVENTS = 2_000
_TAIL_BYTES = 1024 * 1024
TAIL_EXECUTIONS = 64
_TAIL_JOINED = 8  # joined chunks remembered per tail (one per position watchers read from)
# Full catch-up reads kept for other readers at the same position, newest first, in all.
BLOCK_BYTES = 8 * 1024 * 1024

_FRAME = itemgetter(2)
TAIL_FIELDS = attrgetter(
    "kind", "correlation_id", "index", "checkpoint_id", "checkpoint_name", "step_name"
)
"""The fields of an event a tail keeps besides its frame (in ``LoggedEvent``'s order)."""
Row = tuple[int, tuple[str, str, int, str | None, str | None, str | None], bytes]
"""A committed event as a tail keeps it: its sequence number, ``TAIL_FIELDS`` of the event, its
stored frame. Not the event itself: its JSON body would double the tail's memory beside the
frame that already carries it."""


class Tail:
    """The newest committed rows of one execution: a contiguous run of sequence numbers."""

    __slots__ = ("first", "joined", "nbytes", "rows")

    def __init__(self, first: int) -> None:
        self.first = first  # sequence number of rows[0] (or of the next append when empty)
        self.rows: list[Row] = []
        self.nbytes = 0
        # (after_seq, count) -> the frames of those rows joined; rows never change once
        # committed, so an entry stays valid for the life of the tail.
        self.joined: OrderedDict[tuple[int, int], bytes] = OrderedDict()

    @property
    def last(self) -> int:
        return self.first + len(self.rows) - 1

    def add(self, prev_last: int, rows: list[Row], base_seq: int, nbytes: int) -> None:
        """Rows numbered from ``prev_last + 1`` (``nbytes`` of frames) were committed.

        The tail stays contiguous.
        """
        if self.last != prev_last:
            # Appends this tail did not see (another process, or before it existed): start
            # over at these rows rather than leave a hole.
            self.rows, self.nbytes, self.first = [], 0, prev_last + 1
            self.joined.clear()
        self.rows.extend(rows)
        self.nbytes += nbytes
        drop = min(len(self.rows), max(0, base_seq - self.first, len(self.rows) - _TAIL_EVENTS))
        dropped_bytes = sum(map(len, map(_FRAME, self.rows[:drop]))) if drop else 0
        while drop < len(self.rows) and self.nbytes - dropped_bytes > _TAIL_BYTES:
            dropped_bytes += len(self.rows[drop][2])
            drop += 1
        if drop:
            self.nbytes -= dropped_bytes
            del self.rows[:drop]
            self.first += drop
            for key in [k for k in self.joined if k[0] < self.first - 1]:
                del self.joined[key]

    def slice(self, after_seq: int, limit: int) -> list[Row] | None:
        """Up to ``limit`` rows after ``after_seq``, or ``None`` when the tail cannot tell."""
        if after_seq < self.first - 1 or after_seq >= self.last:
            return None
        i = after_seq - self.first + 1
        return self.rows[i : i + limit]

    def frames(self, after_seq: int, rows: list[Row]) -> bytes:
        key = (after_seq, len(rows))
        joined = self.joined.get(key)
        if joined is None:
            joined = b"".join(map(_FRAME, rows))
            self.joined[key] = joined
            if len(self.joined) > _TAIL_JOINED:
                self.joined.popitem(last=False)
        return joined
