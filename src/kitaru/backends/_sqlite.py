"""The SQLite event log: durable, in the server's database file.

Each execution's events are numbered 1, 2, 3, ...; the numbers are the cursors, so cursors
stay valid across server restarts on the same file. Tables, layout and migrations are in
:mod:`kitaru.backends._sqlite_schema`, the write transactions in
:mod:`kitaru.backends._sqlite_write`, the queue that groups concurrent appends in
:mod:`kitaru.backends._sqlite_queue`; this module runs them and serves reads. Each event's
SSE frame is stored once with integer keys, its source (filter fields) once per execution
(``docs/server-architecture.md``, "Event log storage").

SQLite calls run on a small thread pool so the event loop never blocks on disk. Writes are
serialized in-process by a lock and across processes by ``BEGIN IMMEDIATE``. Wake-ups are
process-local: watchers served by another process on the same file still see new events at
their next heartbeat, because they re-read the log every time their wait times out.

Live watchers at the tail are served from memory: for executions someone reads, the newest
events appended by this process (their committed rows, frames built) stay in a bounded
:class:`Tail`, so a read that falls inside it costs no SQLite call and no worker thread, and
one joined chunk of frames serves every watcher at the same position. The log stays the source
of truth: a tail only ever holds a contiguous run of rows exactly as committed, reads outside it
(catch-up, gaps, invalid cursors, the end) go to SQLite, and a tail read never reports ``ended``
(the reader's next read past the tail asks SQLite, which does).

The WAL is not checkpointed by the append that happens to cross SQLite's threshold (that
append would stall every producer and watcher behind it); appends count what they wrote and,
past :data:`_CHECKPOINT_BYTES`, a passive checkpoint runs on the log's pool outside the write
lock, concurrently with the next appends.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from kitaru._sqlite_connect import connect
from kitaru._sqlite_errors import describe
from kitaru.backends import _sqlite_write as write
from kitaru.backends._base import (
    AppendResult,
    EventLog,
    EventLogError,
    FrameBatch,
    Gap,
    LoggedEvent,
    NewEvent,
    ReadResult,
    Retention,
)
from kitaru.backends._seq import (
    _CURSOR_RE,
    Notifier,
    format_cursor,
    gap_for,
    parse_cursor,
)
from kitaru.backends._sqlite_queue import AppendQueue, Queued
from kitaru.backends._sqlite_schema import migrate
from kitaru.backends._sqlite_tail import BLOCK_BYTES, TAIL_EXECUTIONS, TAIL_FIELDS, Row, Tail
from kitaru.backends._sqlite_write import Sources

__all__ = ["SqliteEventLog"]

T = TypeVar("T")

_READ_SQL = (
    "SELECT e.seq, s.kind, s.correlation_id, e.idx, s.checkpoint_id, s.checkpoint_name, "
    "s.step_name, e.frame FROM events e CROSS JOIN event_sources s ON s.src = e.src "
    "WHERE e.log_id=? AND e.seq>? ORDER BY e.seq LIMIT ?"
)
# The catch-up read: one column of one table (no join), joined as bytes (see _read_frames).
_FRAMES_SQL = "SELECT frame FROM events WHERE log_id=? AND seq>? ORDER BY seq LIMIT ?"
_BOUNDS_SQL = "SELECT log_id, last_seq, base_seq, ended_status FROM event_logs WHERE exec_id=?"

# WAL bytes appended before a checkpoint is started off the hot path (SQLite's own automatic
# checkpoint, every 1,000 pages, is turned off on the log's connections).
_CHECKPOINT_BYTES = 8 * 1024 * 1024


class SqliteEventLog(EventLog):
    """An :class:`~kitaru.backends.EventLog` in one SQLite file (shared with the store).

    Args:
        path: The database file; its folder is created if needed.
        retention: How much of each execution's log to keep (default: everything).
        threads: Size of the thread pool that runs SQLite calls.
    """

    durable = True
    """Whether cursors survive a restart of the process."""

    def __init__(
        self, path: str | Path, *, retention: Retention | None = None, threads: int = 4
    ) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EventLogError(f"cannot open the event log: {describe(exc, self.path)}") from exc
        self.retention = retention or Retention()
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, threads), thread_name_prefix="kitaru-log"
        )
        self._notifier = Notifier()
        # Newest sequence number and ended flag per execution as last seen by this process;
        # only a hint for wait(): a stale value costs one extra read or one heartbeat of delay.
        self._hint: dict[str, tuple[int, bool]] = {}
        # In-memory tails of the executions read most recently (see the module docstring);
        # guarded by _tail_lock (appends update them on worker threads, reads on the loop).
        self._tails: OrderedDict[str, Tail] = OrderedDict()
        self._tail_lock = threading.Lock()
        # Catch-up reads shared between readers at the same position (read_frames).
        self._blocks: OrderedDict[tuple[str, int, int], FrameBatch] = OrderedDict()
        self._block_bytes = 0
        self._inflight: dict[tuple[str, int, int], asyncio.Future[FrameBatch]] = {}
        self._wal_bytes = 0
        self._checkpointing = False
        self._closed = False
        self._sources = Sources()
        # Appends waiting for the worker that writes them as one group (see append).
        self._appends = AppendQueue(
            self._pool, self._append_batches, self._storage_error, self._notifier
        )
        try:
            migrate(self._conn())
        except sqlite3.Error as exc:
            raise EventLogError(f"cannot open the event log: {describe(exc, self.path)}") from exc

    # -- plumbing -------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, "wal_autocheckpoint=0")  # see _maybe_checkpoint
            self._local.conn = conn
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    async def _run(self, fn: Callable[[], T]) -> T:
        if self._closed:
            raise EventLogError("the event log is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, fn)
        except sqlite3.Error as exc:
            raise self._storage_error(exc) from exc
        except RuntimeError as exc:  # the pool was shut down by close()
            raise EventLogError(f"the event log is closed ({exc})") from exc

    # -- writes ---------------------------------------------------------------------------

    async def append(self, exec_id: str, events: Sequence[NewEvent]) -> AppendResult:
        """Append ``events`` in one transaction; already stored keys are skipped.

        Appends that arrive while another is being written wait in a queue, and the worker
        that finishes writes them all in one transaction (``write.append_many``): under a load
        of many small batches that is one worker-thread hop and one commit for all of them.
        A group that fails is retried one batch at a time, so one batch never fails another
        (:mod:`kitaru.backends._sqlite_queue`).
        """
        if self._closed:
            raise EventLogError("the event log is closed")
        result = await self._appends.append(exec_id, events)
        if result.stored:
            self._maybe_checkpoint()
        return result

    def _storage_error(self, exc: Exception) -> BaseException:
        """What a caller is told of ``exc``: storage errors as :class:`EventLogError`."""
        if isinstance(exc, sqlite3.Error):
            err = EventLogError(f"event log storage failed: {describe(exc, self.path)}")
            err.__cause__ = exc
            return err
        return exc

    def _append_batches(self, group: list[Queued]) -> list[AppendResult | BaseException]:
        conn = self._conn()
        out: list[AppendResult | BaseException] = []
        with self._write_lock:
            batches = [(item.exec_id, item.events) for item in group]
            appended = write.append_many(conn, self._sources, batches, self.retention.max_events)
            for item, done in zip(group, appended, strict=True):
                out.append(self._applied(item.exec_id, len(item.events), done))
        return out

    def _maybe_checkpoint(self) -> None:
        """Start a passive WAL checkpoint on the pool once enough was appended since the last."""
        if self._wal_bytes < _CHECKPOINT_BYTES or self._checkpointing or self._closed:
            return
        self._wal_bytes = 0
        self._checkpointing = True

        def run() -> None:
            try:
                # PASSIVE: copies what it can without waiting for readers or blocking writers.
                self._conn().execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                pass  # the next one retries; the WAL only grows meanwhile
            finally:
                self._checkpointing = False

        try:
            self._pool.submit(run)
        except RuntimeError:  # closing
            self._checkpointing = False

    def _applied(self, exec_id: str, sent: int, done: write.Appended) -> AppendResult:
        """Bring the tails and hints up to a committed append (under the write lock)."""
        # Still under the write lock: tails see commits in commit order.
        if done.events:
            self._wal_bytes += done.nbytes + 32 * len(done.events)  # frames and keys
            with self._tail_lock:
                tail = self._tails.get(exec_id)
                if tail is not None:
                    rows = list(
                        zip(
                            range(done.prev_last + 1, done.last_seq + 1),
                            map(TAIL_FIELDS, done.events),
                            done.frames,
                            strict=True,
                        )
                    )
                    tail.add(done.prev_last, rows, done.base_seq, done.nbytes)
        if done.dropped_below is not None and self._blocks:
            self._drop_tail(exec_id, below=done.dropped_below - 1)
        last_seq = done.last_seq
        self._hint[exec_id] = (last_seq, done.ended)
        return AppendResult(
            stored=len(done.events),
            duplicates=sent - len(done.events),
            last_cursor=format_cursor(last_seq) if last_seq else None,
        )

    async def mark_ended(self, exec_id: str, status: str) -> None:
        """Mark the log ended (the first status wins) and wake its watchers."""
        await self._run(lambda: self._mark_ended(exec_id, status))
        self._notifier.notify(exec_id)

    def _mark_ended(self, exec_id: str, status: str) -> None:
        conn = self._conn()
        with self._write_lock:
            write.mark_ended(conn, exec_id, status)
        last = self._hint.get(exec_id, (0, False))[0]
        self._hint[exec_id] = (last, True)

    async def truncate(self, exec_id: str, through: str) -> int:
        """Drop events up to and including ``through``."""
        return await self._run(lambda: self._truncate(exec_id, through))

    def _truncate(self, exec_id: str, through: str) -> int:
        conn = self._conn()
        with self._write_lock:
            dropped = write.truncate(conn, exec_id, through)
            self._drop_tail(exec_id)
        return dropped

    async def enforce_retention(self, now: float | None = None) -> int:
        """Drop the events of executions that ended more than ``ended_ttl`` seconds ago."""
        cutoff = self.retention.ended_cutoff(now)
        if cutoff is None:
            return 0
        return await self._run(lambda: self._expire(cutoff))

    def _expire(self, cutoff: float) -> int:
        conn = self._conn()
        with self._write_lock:
            dropped, exec_ids = write.expire(conn, cutoff)
            for exec_id in exec_ids:
                self._drop_tail(exec_id)
        return dropped

    # -- reads ----------------------------------------------------------------------------

    def _drop_tail(self, exec_id: str, below: int | None = None) -> None:
        """Forget what memory holds of ``exec_id`` (``below``: only blocks under that seq)."""
        with self._tail_lock:
            if below is None:
                self._tails.pop(exec_id, None)
            for key in [k for k in self._blocks if k[0] == exec_id]:
                if below is None or key[1] < below:
                    self._block_bytes -= len(self._blocks.pop(key).frames)

    def _from_tail(
        self, exec_id: str, after: str | None, limit: int
    ) -> tuple[Tail, int, list[Row]] | None:
        """Rows after ``after`` from the execution's tail, or ``None`` (ask SQLite).

        A tail read never reports ``ended``; see the module docstring.
        """
        if after is None:
            after_seq = 0
        elif _CURSOR_RE.fullmatch(after) is not None:
            after_seq = int(after)
        else:
            return None  # let SQLite's path raise the cursor error
        with self._tail_lock:
            tail = self._tails.get(exec_id)
            if tail is None:
                return None
            self._tails.move_to_end(exec_id)
            rows = tail.slice(after_seq, limit)
            last = tail.last
        if not rows:
            return None
        if len(rows) < limit:
            # Fewer than asked: the reader takes this as "caught up", so it must be the whole
            # story. Once the log has ended, or a read saw events beyond the tail (another
            # process), SQLite answers instead: with the end status and everything it holds.
            hint = self._hint.get(exec_id)
            if hint is not None and (hint[1] or hint[0] > last):
                return None
        return tail, after_seq, rows

    def _watch(self, exec_id: str, last_seq: int) -> None:
        """Start keeping a tail for ``exec_id`` (read at ``last_seq``), if it has none."""
        with self._tail_lock:
            if exec_id in self._tails:
                return
            self._tails[exec_id] = Tail(last_seq + 1)
            while len(self._tails) > TAIL_EXECUTIONS:
                self._tails.popitem(last=False)

    async def read(self, exec_id: str, after: str | None, limit: int) -> ReadResult:
        """Up to ``limit`` events after ``after``, with a gap when some were dropped."""
        limit = max(1, limit)
        hit = self._from_tail(exec_id, after, limit)
        if hit is not None:
            tail, _, rows = hit
            events = [
                LoggedEvent(format_cursor(seq), *fields, frame) for seq, fields, frame in rows
            ]
            last = self._hint.get(exec_id, (tail.last, False))[0]
            return ReadResult(
                events=events, gap=None, ended=None, last_cursor=format_cursor(max(last, tail.last))
            )
        return await self._run(lambda: self._read(exec_id, after, limit))

    def _select(
        self, sql: str, exec_id: str, after: str | None, limit: int
    ) -> tuple[list[Any], int, Gap | None, str | None, int]:
        """Rows of ``sql`` after ``after``, with the log's newest number, gap and end status.

        Also returns the position the rows follow (moved up past a gap).
        """
        conn = self._conn()
        # One read transaction: the log's bounds and its events come from the same snapshot,
        # so a concurrent truncation can never make events vanish without a gap.
        conn.execute("BEGIN")
        try:
            row = conn.execute(_BOUNDS_SQL, (exec_id,)).fetchone()
            if row is None:
                return [], parse_cursor(after, 0), None, None, 0
            log_id, last_seq, base_seq, ended = row
            after_seq = parse_cursor(after, last_seq)
            gap = gap_for(after, after_seq, base_seq)
            if gap is not None:
                after_seq = base_seq - 1
            rows = conn.execute(sql, (log_id, after_seq, limit)).fetchall()
        finally:
            conn.execute("COMMIT")
        self._hint[exec_id] = (last_seq, ended is not None)
        if ended is None:
            self._watch(exec_id, last_seq)
        return rows, last_seq, gap, ended, after_seq

    def _read(self, exec_id: str, after: str | None, limit: int) -> ReadResult:
        rows, last_seq, gap, ended, _ = self._select(_READ_SQL, exec_id, after, limit)
        events = [
            LoggedEvent(format_cursor(seq), kind, corr, idx, cid, cname, sname, frame)
            for seq, kind, corr, idx, cid, cname, sname, frame in rows
        ]
        return ReadResult(
            events=events,
            gap=gap,
            ended=ended,
            last_cursor=format_cursor(last_seq) if last_seq else None,
        )

    async def read_frames(self, exec_id: str, after: str | None, limit: int) -> FrameBatch:
        """Up to ``limit`` events after ``after`` as concatenated frames (no decoding)."""
        limit = max(1, limit)
        hit = self._from_tail(exec_id, after, limit)
        if hit is not None:
            tail, after_seq, rows = hit
            with self._tail_lock:
                frames = tail.frames(after_seq, rows)
            count = len(rows)
            return FrameBatch(frames, count, format_cursor(after_seq + count), None, None)
        if after is None:
            after_seq = 0
        elif _CURSOR_RE.fullmatch(after) is not None:
            after_seq = int(after)
        else:
            return await self._run(lambda: self._read_frames(exec_id, after, limit))
        # Below the tail (catching up): read up to the next multiple of ``limit`` only, so
        # every reader's later reads start at the same positions, and share those reads: one
        # read in flight per position, full ones kept briefly (see BLOCK_BYTES).
        want = limit - after_seq % limit
        key = (exec_id, after_seq, want)
        with self._tail_lock:
            cached = self._blocks.get(key)
            if cached is not None:
                self._blocks.move_to_end(key)
                return cached
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._read_block(key, after, limit))
            self._inflight[key] = task
            task.add_done_callback(lambda t: self._read_done(key, t))
        return await asyncio.shield(task)

    def _read_done(self, key: tuple[str, int, int], task: asyncio.Future[FrameBatch]) -> None:
        self._inflight.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved: every reader that still waits gets it raised

    async def _read_block(
        self, key: tuple[str, int, int], after: str | None, limit: int
    ) -> FrameBatch:
        exec_id, _, want = key
        fb = await self._run(lambda: self._read_frames(exec_id, after, want))
        if fb.count == want < limit and fb.ended is not None:
            # Cut short and filled (also after a gap): there may be more, so ``ended`` must not
            # end a stream that asked for ``limit``; its next read reports the end.
            fb = FrameBatch(fb.frames, fb.count, fb.cursor, fb.gap, None)
        if fb.count < want or fb.gap is not None:
            return fb  # the end of the log (and maybe its end status), or a gap: not kept
        with self._tail_lock:
            self._blocks[key] = fb
            self._block_bytes += len(fb.frames)
            while self._block_bytes > BLOCK_BYTES and self._blocks:
                _, old = self._blocks.popitem(last=False)
                self._block_bytes -= len(old.frames)
        return fb

    def _read_frames(self, exec_id: str, after: str | None, limit: int) -> FrameBatch:
        rows, _, gap, ended, after_seq = self._select(_FRAMES_SQL, exec_id, after, limit)
        count = len(rows)
        return FrameBatch(
            frames=b"".join([r[0] for r in rows]),
            count=count,
            # Retained sequence numbers are contiguous, so the last one is implied by the count.
            cursor=format_cursor(after_seq + count) if count else None,
            gap=gap,
            ended=ended,
        )

    async def wait(self, exec_id: str, after: str | None, timeout: float) -> bool:
        """Sleep until there is something after ``after``, the log ends, or the timeout."""
        if self._closed:
            raise EventLogError("the event log is closed")
        token = self._notifier.token(exec_id)
        hint = self._hint.get(exec_id)
        if hint is not None:
            after_seq = int(after) if after is not None and after.isdigit() else 0
            if hint[1] or hint[0] > after_seq:
                return True
        return await Notifier.sleep_on(token, timeout)

    async def close(self) -> None:
        """Close every connection and wake every waiter. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._notifier.notify_all()
        await asyncio.get_running_loop().run_in_executor(None, self._shutdown)

    def _shutdown(self) -> None:
        self._pool.shutdown(wait=True)
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
