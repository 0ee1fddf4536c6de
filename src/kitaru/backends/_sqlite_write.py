"""The write transactions of the SQLite event log, in the layout of :mod:`._sqlite_schema`.

They run on the log's worker threads, one at a time under its write lock, each inside
``BEGIN IMMEDIATE`` so processes sharing the file serialize too. An event's source (its
correlation ID, kind and checkpoint fields) is stored once per execution in
``event_sources``; :class:`Sources` remembers the numbers of committed sources so most
appends look none up.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import attrgetter, itemgetter

from kitaru._sqlite_errors import rollback
from kitaru.backends._base import NewEvent
from kitaru.backends._seq import new_frames, parse_cursor

__all__ = ["Appended", "Sources", "append", "append_many", "expire", "mark_ended", "truncate"]

SourceKey = tuple[int, str, str, str | None, str | None, str | None]
BatchSource = tuple[str, str, str | None, str | None, str | None]

# The per-event work of an append runs as C-level loops over these getters (map, zip, set)
# rather than a Python statement per event: with 500-event batches that per-event Python was
# about half of an append's CPU (``benchmarks/README.md``, "Where the time goes").
_KEY = attrgetter("correlation_id", "index")
_SOURCE = attrgetter("correlation_id", "kind", "checkpoint_id", "checkpoint_name", "step_name")
_INDEX = attrgetter("index")
_FIRST = itemgetter(0)
_SECOND = itemgetter(1)

_INSERT_SQL = "INSERT INTO events (log_id, seq, src, corr, idx, frame) VALUES (?,?,?,?,?,?)"
_EXISTS_SQL = "SELECT 1 FROM events WHERE corr=? AND idx=?"
_FIND_SOURCE_SQL = (
    "SELECT src FROM event_sources WHERE log_id=? AND correlation_id=? AND kind=? "
    "AND checkpoint_id IS ? AND checkpoint_name IS ? AND step_name IS ?"
)
_ADD_SOURCE_SQL = (
    "INSERT INTO event_sources (log_id, correlation_id, kind, checkpoint_id, checkpoint_name, "
    "step_name) VALUES (?,?,?,?,?,?)"
)
_LOG_SQL = "SELECT log_id, last_seq, base_seq, ended_status FROM event_logs WHERE exec_id=?"
_NEW_LOG_SQL = "INSERT INTO event_logs (exec_id) VALUES (?) ON CONFLICT (exec_id) DO NOTHING"
_FIRST_SOURCE_SQL = "SELECT MIN(src) FROM event_sources WHERE log_id=? AND correlation_id=?"
_SOURCES_KEPT = 50_000  # committed source numbers remembered (about 10 MB at most)


class Sources:
    """Source numbers ``(src, corr)`` by source, as committed (rows are never changed).

    Numbers found or made inside a transaction are kept apart until it commits
    (:meth:`committed`), so a rolled-back one is never reused.
    """

    def __init__(self) -> None:
        self._known: dict[SourceKey, tuple[int, int]] = {}
        self._pending: dict[SourceKey, tuple[int, int]] = {}

    def ids(self, conn: sqlite3.Connection, log_id: int, ev: NewEvent) -> tuple[int, int]:
        """The ``(src, corr)`` of ``ev`` in execution ``log_id``, stored if new."""
        return self._ids(conn, log_id, _SOURCE(ev))

    def ids_of(
        self, conn: sqlite3.Connection, log_id: int, events: Sequence[NewEvent]
    ) -> list[tuple[int, int]]:
        """The ``(src, corr)`` of each of ``events``, new sources stored in order of first use.

        A batch has few distinct sources (usually one), so each is looked up once.
        """
        keys = list(map(_SOURCE, events))
        distinct = dict.fromkeys(keys)
        if len(distinct) == 1:
            return [self._ids(conn, log_id, keys[0])] * len(keys)
        found = {key: self._ids(conn, log_id, key) for key in distinct}
        return list(map(found.__getitem__, keys))

    def _ids(self, conn: sqlite3.Connection, log_id: int, source: BatchSource) -> tuple[int, int]:
        key = (log_id, *source)
        found = self._known.get(key) or self._pending.get(key)
        if found is not None:
            return found
        row = conn.execute(_FIND_SOURCE_SQL, key).fetchone()
        src = row[0] if row is not None else conn.execute(_ADD_SOURCE_SQL, key).lastrowid
        assert src is not None
        corr = conn.execute(_FIRST_SOURCE_SQL, (log_id, source[0])).fetchone()[0]
        self._pending[key] = found = (src, corr)
        return found

    def committed(self, ok: bool) -> None:
        """The transaction ended (``ok``: committed): keep or forget its numbers."""
        if ok and self._pending:
            if len(self._known) + len(self._pending) > _SOURCES_KEPT:
                self._known.clear()
            self._known.update(self._pending)
        self._pending.clear()


@dataclass(slots=True)
class Appended:
    """What :func:`append` committed.

    Attributes:
        events: The events stored, numbered from ``prev_last + 1``.
        frames: Their SSE frames, as stored.
        nbytes: The frames' total size.
        prev_last: The newest sequence number before the append.
        last_seq: The newest after it.
        base_seq: The first retained one after it.
        ended: Whether the log was marked ended.
        dropped_below: Set when retention dropped events: the new first retained number.
    """

    events: list[NewEvent]
    frames: list[bytes]
    nbytes: int
    prev_last: int
    last_seq: int
    base_seq: int
    ended: bool
    dropped_below: int | None


def append(
    conn: sqlite3.Connection,
    sources: Sources,
    exec_id: str,
    events: Sequence[NewEvent],
    max_events: int | None,
) -> Appended:
    """Append ``events`` in one transaction; already stored keys are skipped."""
    return append_many(conn, sources, [(exec_id, events)], max_events)[0]


def append_many(
    conn: sqlite3.Connection,
    sources: Sources,
    batches: Sequence[tuple[str, Sequence[NewEvent]]],
    max_events: int | None,
) -> list[Appended]:
    """Append each ``(exec_id, events)`` batch, in order, all in one transaction.

    One commit for batches that arrived together (several executions' appends waiting for the
    write lock) costs one ``BEGIN``/``COMMIT`` and one write of each changed page, not one per
    batch (``docs/server-architecture.md``, "Appends are grouped").
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        done = [
            _append_batch(conn, sources, exec_id, events, max_events) for exec_id, events in batches
        ]
        conn.execute("COMMIT")
    except BaseException:
        sources.committed(False)
        rollback(conn)  # keeps the error that got here (a full disk, say)
        raise
    sources.committed(True)
    return done


def _append_batch(
    conn: sqlite3.Connection,
    sources: Sources,
    exec_id: str,
    events: Sequence[NewEvent],
    max_events: int | None,
) -> Appended:
    """Append one batch inside the caller's transaction."""
    # Duplicates inside the batch are dropped here; duplicates of stored events are looked up
    # only when the plain insert of the whole batch hits the unique key (a retried batch), so
    # the common path is one executemany.
    batch = list(events)
    keys = list(map(_KEY, batch))
    if len(set(keys)) < len(keys):
        firsts = dict(zip(reversed(keys), range(len(keys) - 1, -1, -1), strict=True))
        batch = [batch[i] for i in sorted(firsts.values())]
    # The execution's log row, made on its first append (one statement when it exists).
    row = conn.execute(_LOG_SQL, (exec_id,)).fetchone()
    if row is None:
        conn.execute(_NEW_LOG_SQL, (exec_id,))
        row = conn.execute(_LOG_SQL, (exec_id,)).fetchone()
    log_id, last_seq, base_seq, ended = row
    ids = sources.ids_of(conn, log_id, batch)
    prev_last = last_seq
    frames = new_frames(last_seq, batch)
    conn.execute("SAVEPOINT batch")
    try:
        conn.executemany(_INSERT_SQL, _rows(log_id, last_seq, batch, ids, frames))
    except sqlite3.IntegrityError:
        conn.execute("ROLLBACK TO batch")
        kept = [
            (ev, i)
            for ev, i in zip(batch, ids, strict=True)
            if conn.execute(_EXISTS_SQL, (i[1], ev.index)).fetchone() is None
        ]
        batch = [ev for ev, _ in kept]
        ids = [i for _, i in kept]
        frames = new_frames(last_seq, batch)
        conn.executemany(_INSERT_SQL, _rows(log_id, last_seq, batch, ids, frames))
    conn.execute("RELEASE batch")
    last_seq += len(batch)
    dropped_below: int | None = None
    if max_events is not None and last_seq - base_seq + 1 > max_events:
        base_seq = dropped_below = last_seq - max_events + 1
        conn.execute("DELETE FROM events WHERE log_id=? AND seq<?", (log_id, base_seq))
    conn.execute(
        "UPDATE event_logs SET last_seq=?, base_seq=? WHERE log_id=?",
        (last_seq, base_seq, log_id),
    )
    nbytes = sum(map(len, frames))
    return Appended(
        batch, frames, nbytes, prev_last, last_seq, base_seq, ended is not None, dropped_below
    )


def _rows(
    log_id: int,
    last_seq: int,
    events: list[NewEvent],
    ids: list[tuple[int, int]],
    frames: list[bytes],
) -> Iterator[tuple[int, int, int, int, int, bytes]]:
    """The ``events`` table's rows of ``events`` (consumed once, by ``executemany``)."""
    return zip(
        repeat(log_id),
        range(last_seq + 1, last_seq + 1 + len(events)),
        map(_FIRST, ids),
        map(_SECOND, ids),
        map(_INDEX, events),
        frames,
        strict=False,  # repeat() is endless; the others have one item per event
    )


def mark_ended(conn: sqlite3.Connection, exec_id: str, status: str) -> None:
    """Mark the log ended (the first status wins)."""
    conn.execute(
        "INSERT INTO event_logs (exec_id, ended_status, ended_at) VALUES (?,?,?) "
        "ON CONFLICT(exec_id) DO UPDATE SET ended_status=excluded.ended_status, "
        "ended_at=excluded.ended_at WHERE event_logs.ended_status IS NULL",
        (exec_id, status, time.time()),
    )


def truncate(conn: sqlite3.Connection, exec_id: str, through: str) -> int:
    """Drop events up to and including ``through``; how many."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute(
            "SELECT log_id, last_seq, base_seq FROM event_logs WHERE exec_id=?", (exec_id,)
        ).fetchone()
        seq = parse_cursor(through, row[1] if row else 0)
        dropped = 0
        if row is not None and seq >= row[2]:
            dropped = conn.execute(
                "DELETE FROM events WHERE log_id=? AND seq<=?", (row[0], seq)
            ).rowcount
            conn.execute("UPDATE event_logs SET base_seq=? WHERE log_id=?", (seq + 1, row[0]))
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)  # keeps the error that got here (a full disk, say)
        raise
    return dropped


def expire(conn: sqlite3.Connection, cutoff: float) -> tuple[int, list[str]]:
    """Drop the events of executions that ended at or before ``cutoff``; how many, and whose."""
    dropped = 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        rows = conn.execute(
            "SELECT log_id, exec_id, last_seq FROM event_logs "
            "WHERE ended_at IS NOT NULL AND ended_at<=? AND base_seq<=last_seq",
            (cutoff,),
        ).fetchall()
        for log_id, _, last_seq in rows:
            dropped += conn.execute("DELETE FROM events WHERE log_id=?", (log_id,)).rowcount
            conn.execute("UPDATE event_logs SET base_seq=? WHERE log_id=?", (last_seq + 1, log_id))
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)  # keeps the error that got here (a full disk, say)
        raise
    return dropped, [exec_id for _, exec_id, _ in rows]
