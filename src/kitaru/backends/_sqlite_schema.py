"""The SQLite event log's tables, and the migrations that bring an older file up to date.

Layout (version 3, ``docs/server-architecture.md``, "Event log storage"):

* ``event_logs``: one row per execution: its small integer ``log_id`` (what the other tables
  store instead of the execution ID), the newest sequence number, the first retained one
  (retention moves it up; a reader below it gets a gap) and the final status once ended.
* ``event_sources``: the distinct ``(correlation_id, kind, checkpoint_id, checkpoint_name,
  step_name)`` of each execution's events, each stored once and numbered ``src``.
* ``events``: per event its ``log_id``, ``seq``, ``src``, ``corr`` (the ``src`` of the first
  source with the same correlation ID: half of the idempotency key), ``idx`` and ``frame``,
  the event's SSE frame (:data:`~kitaru.backends._seq.FRAME_TEMPLATE`): its JSON as ingested
  plus about 80 bytes of ``id:``/``event:`` lines and cursor. A catch-up read is then one
  column of one table, joined as bytes; the filter fields are read through ``src``.

Version 1 (before 2026-12) stored per event the execution ID, correlation ID, kind and
checkpoint fields as text next to the frame, under a second unique index on the text key (about
2x the JSON). Version 2 stored the JSON alone (its head form,
:func:`~kitaru.backends._seq.frame_head`) and built the frame on read: a join for the kind and
Python formatting per event, which made catch-up reads about 0.7x as fast; version 3 keeps the
integer layout of version 2 and stores the frame again. Migrations run once, in order, each
inside one ``BEGIN IMMEDIATE`` transaction, so concurrent processes opening the same file
migrate it exactly once; the applied versions are recorded in ``event_log_migrations``. A file
migrated by a newer kitaru (an unknown version) is refused rather than guessed at. Add a
migration by appending to :data:`MIGRATIONS`; never edit one that was released.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from kitaru._sqlite_errors import rollback
from kitaru.backends._base import EventLogError
from kitaru.backends._seq import FRAME_TEMPLATE
from kitaru.events._frames import frame_data

__all__ = ["LATEST", "MIGRATIONS", "migrate", "v1_head"]

# ``events`` stays a rowid table: a WITHOUT ROWID table keeps at most about 1 KB of a row in
# its B-tree page and spills the rest of a larger event into an overflow page of its own
# (several KB written per event); in a rowid table rows up to about 4 KB stay inline. Its key
# (log_id, seq) is two small integers, so the index that serves it costs about 10 bytes an
# event.
_V2_TABLES = """
CREATE TABLE event_logs (
    log_id INTEGER PRIMARY KEY,
    exec_id TEXT NOT NULL UNIQUE,
    last_seq INTEGER NOT NULL DEFAULT 0,
    base_seq INTEGER NOT NULL DEFAULT 1,
    ended_status TEXT,
    ended_at REAL
);
CREATE INDEX event_logs_ended ON event_logs (ended_at);
CREATE TABLE event_sources (
    src INTEGER PRIMARY KEY,
    log_id INTEGER NOT NULL,
    correlation_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    checkpoint_id TEXT,
    checkpoint_name TEXT,
    step_name TEXT
);
CREATE INDEX event_sources_corr ON event_sources (log_id, correlation_id);
CREATE TABLE events (
    log_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    src INTEGER NOT NULL,
    corr INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    head BLOB NOT NULL,
    PRIMARY KEY (log_id, seq)
);
CREATE UNIQUE INDEX events_key ON events (corr, idx);
"""

_COPY_PAGE = 2_000


def v1_head(frame: bytes, seq: int) -> bytes:
    """The stored head (:func:`~kitaru.backends._seq.frame_head`) of a version-1 frame.

    A version-1 frame's data is exactly that head followed by the cursor.
    """
    data = frame_data(frame)
    suffix = b'"cursor":"%012d"}' % seq
    if not data.endswith(suffix) or data[-len(suffix) - 1 : -len(suffix)] not in (b",", b"{"):
        raise EventLogError(f"event {seq} of the version-1 event log has no cursor in its frame")
    return data[: -len(suffix)]


def _to_v2(conn: sqlite3.Connection) -> None:
    """Version 1 -> 2: integer execution keys, sources stored once, the JSON once."""
    fresh = conn.execute("SELECT 1 FROM sqlite_master WHERE name='events'").fetchone() is None
    if fresh:
        _script(conn, _V2_TABLES)
        return
    conn.execute("DROP INDEX IF EXISTS events_key")
    conn.execute("DROP INDEX IF EXISTS event_logs_ended")
    conn.execute("ALTER TABLE events RENAME TO events_v1")
    conn.execute("ALTER TABLE event_logs RENAME TO event_logs_v1")
    _script(conn, _V2_TABLES)
    conn.execute(
        "INSERT INTO event_logs (exec_id, last_seq, base_seq, ended_status, ended_at) "
        "SELECT exec_id, last_seq, base_seq, ended_status, ended_at FROM event_logs_v1 "
        "ORDER BY rowid"
    )
    # Executions with events but no event_logs row cannot exist (appends write both in one
    # transaction); INSERT OR IGNORE keeps the copy total anyway.
    conn.execute(
        "INSERT OR IGNORE INTO event_logs (exec_id, last_seq) "
        "SELECT exec_id, MAX(seq) FROM events_v1 GROUP BY exec_id"
    )
    log_ids = dict(conn.execute("SELECT exec_id, log_id FROM event_logs"))
    conn.execute(
        "INSERT INTO event_sources (log_id, correlation_id, kind, checkpoint_id, "
        "checkpoint_name, step_name) SELECT l.log_id, e.correlation_id, e.kind, "
        "e.checkpoint_id, e.checkpoint_name, e.step_name FROM (SELECT correlation_id, kind, "
        "checkpoint_id, checkpoint_name, step_name, exec_id, MIN(rowid) AS first FROM events_v1 "
        "GROUP BY exec_id, correlation_id, kind, checkpoint_id, checkpoint_name, step_name) e "
        "JOIN event_logs l ON l.exec_id = e.exec_id ORDER BY e.first"
    )
    srcs: dict[tuple[object, ...], int] = {}
    corrs: dict[tuple[int, str], int] = {}
    for src, log_id, corr_id, kind, cid, cname, sname in conn.execute(
        "SELECT src, log_id, correlation_id, kind, checkpoint_id, checkpoint_name, step_name "
        "FROM event_sources ORDER BY src"
    ):
        srcs[(log_id, corr_id, kind, cid, cname, sname)] = src
        corrs.setdefault((log_id, corr_id), src)
    last = -1
    while True:
        page = conn.execute(
            "SELECT rowid, exec_id, seq, correlation_id, idx, kind, checkpoint_id, "
            "checkpoint_name, step_name, frame FROM events_v1 WHERE rowid>? ORDER BY rowid "
            "LIMIT ?",
            (last, _COPY_PAGE),
        ).fetchall()
        if not page:
            break
        rows = []
        for _, exec_id, seq, corr_id, idx, kind, cid, cname, sname, frame in page:
            log_id = log_ids[exec_id]
            src = srcs[(log_id, corr_id, kind, cid, cname, sname)]
            rows.append((log_id, seq, src, corrs[(log_id, corr_id)], idx, v1_head(frame, seq)))
        conn.executemany(
            "INSERT INTO events (log_id, seq, src, corr, idx, head) VALUES (?,?,?,?,?,?)", rows
        )
        last = page[-1][0]
    conn.execute("DROP TABLE events_v1")
    conn.execute("DROP TABLE event_logs_v1")


def _stored_frame(seq: int, kind: str, head: bytes) -> bytes:
    return FRAME_TEMPLATE % (seq, kind.encode(), head, seq)


def _to_v3(conn: sqlite3.Connection) -> None:
    """Version 2 -> 3: each event's head is replaced by the frame built from it on read."""
    # One statement over the whole table; the frame is formatted by the same template the
    # version-2 reads used, so every event reads back byte for byte.
    conn.create_function("kitaru_v3_frame", 3, _stored_frame, deterministic=True)
    try:
        conn.execute(
            "UPDATE events SET head = kitaru_v3_frame(seq, "
            "(SELECT kind FROM event_sources s WHERE s.src = events.src), head)"
        )
    finally:
        conn.create_function("kitaru_v3_frame", 3, None)
    conn.execute("ALTER TABLE events RENAME COLUMN head TO frame")


MIGRATIONS: list[tuple[int, str, Callable[[sqlite3.Connection], None]]] = [
    (2, "compact event storage", _to_v2),
    (3, "stored frames in the compact layout", _to_v3),
]
"""``(version, name, step)`` in order; version 1 is the original layout (no step)."""

LATEST = MIGRATIONS[-1][0]


def _script(conn: sqlite3.Connection, sql: str) -> None:
    # Statement by statement: executescript() would commit the migration's transaction.
    for statement in sql.split(";"):
        if statement.strip():
            conn.execute(statement)


def migrate(conn: sqlite3.Connection) -> list[int]:
    """Bring the event log's tables in ``conn`` up to date; the versions applied.

    Raises:
        EventLogError: The file has a version this kitaru does not know.
        sqlite3.Error: Storage failed (nothing was changed).
    """
    known = {version for version, _, _ in MIGRATIONS}
    done = _applied(conn)
    if done and max(done) == LATEST:
        return []  # the common case, without taking the write lock
    applied: list[int] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS event_log_migrations ("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
        )
        done = _applied(conn)
        unknown = sorted(done - known - {1})
        if unknown:
            raise EventLogError(
                f"the event log has schema version(s) {unknown} that this kitaru does not "
                f"know (it knows up to {LATEST}); upgrade kitaru"
            )
        for version, name, step in MIGRATIONS:
            if version in done:
                continue
            step(conn)
            conn.execute(
                "INSERT INTO event_log_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (version, name, time.time()),
            )
            applied.append(version)
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)  # keeps the error that got here (a full disk, say)
        raise
    return applied


def _applied(conn: sqlite3.Connection) -> set[int]:
    try:
        return {row[0] for row in conn.execute("SELECT version FROM event_log_migrations")}
    except sqlite3.OperationalError:  # no such table: version 1 or a new file
        return set()
