"""The Redis Streams event log: one stream per execution, shared by every server replica.

Layout and atomicity are in :mod:`kitaru.backends._redis_scripts`: every read, end and
truncation is one Lua script and every append one optimistic transaction
(:mod:`kitaru.backends._redis_append`), so each sees and changes one consistent state. Cursors are
the same zero-padded event numbers as the SQLite log's (the stream entry ``n-0`` is cursor
``n``), strictly increasing and contiguous, so a gap says exactly how many events were lost.

Per replica, one follower task per watched execution reads its stream with a blocking
``XREAD`` into a :class:`~kitaru.backends._redis_tail.Tail` that all of the replica's watchers
of that execution read from (``docs/deployment.md``: Redis reads grow with executions, not
watchers).
Events the replica appends itself go into that tail as soon as Redis has stored them
(``docs/server-architecture.md``, "Event log storage"); the follower skips them when it reads
them back.
Executions ended on any replica are seen by every follower through the stream's end entry.

When Redis cannot be reached, calls raise :class:`EventLogUnavailableError` (the server turns
it into 503, or closes a stream so its watcher reconnects); followers retry with backoff and
jitter, and a reconnected follower reloads its tail before serving from memory again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from kitaru._backoff import Backoff
from kitaru.backends import _redis_scripts as lua
from kitaru.backends._base import (
    AppendResult,
    CursorInvalidError,
    EventLog,
    EventLogError,
    EventLogUnavailableError,
    FrameBatch,
    NewEvent,
    ReadResult,
    Retention,
)
from kitaru.backends._redis_append import Appender
from kitaru.backends._redis_entries import (
    Item,
    Sources,
    decode,
    decode_fields,
    logged,
    source_numbers,
)
from kitaru.backends._redis_tail import Tail
from kitaru.backends._seq import Notifier, format_cursor, gap_for, parse_cursor

__all__ = ["RedisEventLog"]

logger = logging.getLogger("kitaru.backends.redis")

T = TypeVar("T")

_EXPIRE_PAGE = 500
# Stands in for a source number missing from its hash (never written apart from its events).
_UNKNOWN_SOURCE = orjson.dumps(["", "", None, None, None])


class RedisEventLog(EventLog):
    """An :class:`~kitaru.backends.EventLog` in Redis Streams, for several server replicas.

    Args:
        url: ``redis://[user:password@]host:port/db`` (``rediss://`` for TLS).
        retention: How much of each execution's log to keep (default: everything).
        prefix: Prefix of every key, so several deployments can share one Redis database.
        tail_size: Newest events per followed execution kept in memory for the watchers.
        block: Seconds one blocking read of a follower waits before it polls again.
        follow_grace: Seconds a follower keeps reading after its last watcher left (a
            reconnecting watcher finds its tail still warm).
        client: An existing ``redis.asyncio.Redis`` to use instead of ``url`` (not closed).
    """

    durable = True
    """Whether cursors survive a restart of the server process."""

    def __init__(
        self,
        url: str | None = None,
        *,
        retention: Retention | None = None,
        prefix: str = "kitaru",
        tail_size: int = 2000,
        block: float = 2.0,
        follow_grace: float = 10.0,
        client: aioredis.Redis | None = None,
    ) -> None:
        if client is None and not url:
            raise EventLogError("RedisEventLog needs a redis:// URL or a client")
        self.retention = retention or Retention()
        self.prefix = prefix
        self.tail_size = tail_size
        self.block = block
        self.follow_grace = follow_grace
        self._own_client = client is None
        if client is None:
            assert url is not None
            client = aioredis.Redis.from_url(
                url,
                socket_connect_timeout=2.0,
                # Longer than a follower's blocking read; a Redis that stops answering is an
                # outage after this long, never a hang.
                socket_timeout=block + 5.0,
                socket_keepalive=True,
                health_check_interval=30,
                # A command whose connection broke is retried briefly on a new one (a Redis
                # restart, a failover); a longer outage is the caller's EventLogUnavailable.
                retry=Retry(ExponentialBackoff(cap=0.25, base=0.02), 2),
            )
        self._r = client
        self._appender = Appender(client, client.register_script(lua.SOURCES))
        self._read_script = client.register_script(lua.READ)
        self._tail_script = client.register_script(lua.TAIL)
        self._mark = client.register_script(lua.MARK_ENDED)
        self._truncate = client.register_script(lua.TRUNCATE)
        self._expire = client.register_script(lua.EXPIRE)
        self._notifier = Notifier()
        self._sources = Sources()
        self._tails: dict[str, Tail] = {}
        self._followers: dict[str, asyncio.Task[None]] = {}
        self._blocking: dict[str, int] = {}  # Redis client ID of each follower's connection
        # Identical Redis reads in flight are shared (a burst of watchers opening at once).
        self._inflight: dict[
            tuple[str, int, int], asyncio.Future[tuple[int, int, str | None, list[Item], int]]
        ] = {}
        self._stats = {
            "redis_reads": 0,  # read commands sent to Redis by watchers (catch-up)
            "redis_follow_reads": 0,  # blocking reads and polls of the followers
            "redis_follow_entries": 0,  # stream entries the followers' reads brought
            "redis_writes": 0,
            "tail_reads": 0,  # reads served from a followed tail in memory
            "follower_starts": 0,
            "redis_errors": 0,
        }
        self._closed = False

    # -- keys and plumbing ----------------------------------------------------------------

    def _keys(self, exec_id: str) -> tuple[str, str, str]:
        p = self.prefix
        return f"{p}:log:{exec_id}", f"{p}:meta:{exec_id}", f"{p}:keys:{exec_id}"

    def _src_key(self, exec_id: str) -> str:
        return f"{self.prefix}:src:{exec_id}"

    @property
    def _ended_key(self) -> str:
        return f"{self.prefix}:ended"

    def _is_closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise EventLogError("the event log is closed")

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        self._check_open()
        try:
            return await fn()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            self._stats["redis_errors"] += 1
            raise EventLogUnavailableError(f"Redis is unavailable: {exc}") from exc
        except RedisError as exc:
            self._stats["redis_errors"] += 1
            raise EventLogError(f"Redis failed: {exc}") from exc

    def stats(self) -> dict[str, int]:
        """Counters: Redis reads by watchers and by followers, tail hits, followers."""
        return {**self._stats, "followers": len(self._followers)}

    # -- writes ---------------------------------------------------------------------------

    async def append(self, exec_id: str, events: Sequence[NewEvent]) -> AppendResult:
        """Append ``events`` atomically; already stored keys are skipped."""
        if not events:
            res = await self.read(exec_id, None, 1)
            return AppendResult(0, 0, res.last_cursor)
        log, meta, keys = self._keys(exec_id)
        src = self._src_key(exec_id)
        self._stats["redis_writes"] += 1
        followed = self._tails.get(exec_id)
        token = followed.own_started() if followed is not None else None
        try:
            stored, last, ended, own = await self._call(
                lambda: self._appender.append(
                    exec_id, log, meta, keys, src, events, as_logged=followed is not None
                )
            )
            maxn = self.retention.max_events or 0
            if stored and maxn and last > maxn:
                through = last - maxn
                await self._call(lambda: self._truncate(keys=[log, keys, meta], args=[through]))
            tail = self._tails.get(exec_id)
            first = last - stored + 1
            if tail is not None and stored == len(events) and tail.continues(first):
                # Every event was stored, in order, right after what this replica's tail
                # holds (the transaction is atomic): its watchers get them now, without the
                # follower's read back and decoding (it skips them, or reads on after them).
                tail.add_own(own or logged(first, events), settled=not ended)
                self._notifier.notify(exec_id)
        finally:
            if followed is not None and token is not None:
                followed.own_done(token)
        return AppendResult(
            stored=stored,
            duplicates=len(events) - stored,
            last_cursor=format_cursor(last) if last else None,
        )

    async def mark_ended(self, exec_id: str, status: str) -> None:
        """Mark the log ended; the first status wins across every replica (atomic)."""
        log, meta, _ = self._keys(exec_id)
        ttl = "1" if self.retention.ended_ttl is not None else "0"
        self._stats["redis_writes"] += 1
        await self._call(
            lambda: self._mark(
                keys=[log, meta, self._ended_key], args=[status, time.time(), exec_id, ttl]
            )
        )

    async def truncate(self, exec_id: str, through: str) -> int:
        """Drop events up to and including ``through``."""
        seq = _parse(through)
        log, meta, keys = self._keys(exec_id)
        self._stats["redis_writes"] += 1
        dropped = int(await self._call(lambda: self._truncate(keys=[log, keys, meta], args=[seq])))
        if dropped < 0:
            raise CursorInvalidError(
                f"cursor {through!r} is beyond the end of this execution's event log"
            )
        return dropped

    async def enforce_retention(self, now: float | None = None) -> int:
        """Drop the events of executions that ended more than ``ended_ttl`` seconds ago."""
        cutoff = self.retention.ended_cutoff(now)
        if cutoff is None:
            return 0
        dropped = 0
        while True:
            due: list[Any] = list(await self._call(lambda: self._zrange_due(cutoff)))
            for raw in due:
                dropped += max(0, await self._expire_one(bytes(raw).decode()))
            if len(due) < _EXPIRE_PAGE:
                return dropped

    async def _zrange_due(self, cutoff: float) -> Any:
        return await self._r.zrangebyscore(self._ended_key, "-inf", cutoff, 0, _EXPIRE_PAGE)

    async def _expire_one(self, exec_id: str) -> int:
        log, meta, keys = self._keys(exec_id)
        n = await self._call(
            lambda: self._expire(keys=[log, keys, meta, self._ended_key], args=[exec_id])
        )
        return int(n)

    # -- reads ----------------------------------------------------------------------------

    def _serving_tail(self, exec_id: str, after_seq: int) -> Tail | None:
        """This replica's followed tail of ``exec_id`` if it can serve a reader at ``after_seq``."""
        self._check_open()
        tail = self._tails.get(exec_id)
        if tail is None or not tail.covers(after_seq):
            return None
        self._stats["tail_reads"] += 1
        return tail

    async def read(self, exec_id: str, after: str | None, limit: int) -> ReadResult:
        """Up to ``limit`` events after ``after``, with a gap when some were dropped."""
        after_seq = _parse(after)
        tail = self._serving_tail(exec_id, after_seq)
        if tail is not None:
            return tail.read(after_seq, limit)
        last, base, ended, items, _ = await self._read_redis(exec_id, after_seq, max(1, limit))
        parse_cursor(after, last)  # beyond the end: refused
        return ReadResult(
            events=[e for _, e in items if not isinstance(e, str)],
            gap=gap_for(after, after_seq, base),
            ended=ended,
            last_cursor=format_cursor(last) if last else None,
        )

    async def read_frames(self, exec_id: str, after: str | None, limit: int) -> FrameBatch:
        """Up to ``limit`` events after ``after`` as concatenated frames."""
        after_seq = _parse(after)
        tail = self._serving_tail(exec_id, after_seq)
        if tail is not None:
            return tail.read_frames(after_seq, limit)
        last, base, ended, items, from_seq = await self._read_redis(
            exec_id, after_seq, max(1, limit)
        )
        parse_cursor(after, last)  # beyond the end: refused
        frames = [e.frame for _, e in items if not isinstance(e, str)]
        count = len(frames)
        return FrameBatch(
            frames=b"".join(frames),
            count=count,
            # Retained event numbers are contiguous, so the last one is implied by the count.
            cursor=format_cursor(from_seq + count) if count else None,
            gap=gap_for(after, after_seq, base),
            ended=ended,
        )

    async def _read_redis(
        self, exec_id: str, after_seq: int, limit: int
    ) -> tuple[int, int, str | None, list[Item], int]:
        """The ``READ`` script's answer, decoded: last, base, ended, entries, from."""
        key = (exec_id, after_seq, limit)
        shared = self._inflight.get(key)
        if shared is None:
            shared = asyncio.ensure_future(self._read_script_decoded(exec_id, after_seq, limit))
            # Its callers may all be gone (disconnected) by the time it fails: mark it seen.
            shared.add_done_callback(_consume)
            self._inflight[key] = shared
            shared.add_done_callback(lambda f: self._inflight.pop(key, None))
        return await asyncio.shield(shared)

    async def _read_script_decoded(
        self, exec_id: str, after_seq: int, limit: int
    ) -> tuple[int, int, str | None, list[Item], int]:
        log, meta, _ = self._keys(exec_id)
        self._stats["redis_reads"] += 1
        keys = [log, meta, self._src_key(exec_id)]
        raw = await self._call(lambda: self._read_script(keys=keys, args=[after_seq, limit]))
        last, base, ended, entries, from_seq, sources = raw
        self._sources.learn(exec_id, sources)
        items = decode(exec_id, self._sources, entries)
        return int(last), int(base), ended.decode() or None, items, int(from_seq)

    # -- waiting and following ------------------------------------------------------------

    async def wait(self, exec_id: str, after: str | None, timeout: float) -> bool:
        """Sleep until there is something after ``after``, the log ends, or the timeout.

        Also returns True when this replica's follower of the execution loses Redis, so the
        caller's next read (which then goes to Redis) reports the outage instead of sleeping
        on; while the follower is reconnecting it sleeps as usual.
        """
        self._check_open()
        after_seq = int(after) if after is not None and after.isdigit() else 0
        tail = self._follow(exec_id)
        outages = tail.outages
        deadline = time.monotonic() + max(0.0, timeout)
        tail.waiters += 1
        try:
            while True:
                token = self._notifier.token(exec_id)
                if tail.outages != outages:
                    return True  # the follower just lost Redis: let the caller find out
                if tail.synced and (tail.ended is not None or tail.hi > after_seq):
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not await Notifier.sleep_on(token, remaining):
                    return False
                self._check_open()
        finally:
            tail.waiters -= 1
            tail.last_used = time.monotonic()

    def _follow(self, exec_id: str) -> Tail:
        tail = self._tails.get(exec_id)
        if tail is None:
            tail = self._tails[exec_id] = Tail(exec_id, self.tail_size)
        tail.last_used = time.monotonic()
        task = self._followers.get(exec_id)
        if task is None or task.done():
            self._stats["follower_starts"] += 1
            self._followers[exec_id] = asyncio.ensure_future(self._follower(tail))
        return tail

    async def _follower(self, tail: Tail) -> None:
        exec_id = tail.exec_id
        log, meta, _ = self._keys(exec_id)
        src = self._src_key(exec_id)
        backoff = Backoff(0.05, 2.0)
        me = asyncio.current_task()
        # The blocking read gets a connection of its own, known by its Redis client ID, so
        # close() can end it at once with CLIENT UNBLOCK: redis-py lets a cancellation land
        # only after a blocking command returns (up to ``block`` seconds later).
        blocking: aioredis.Redis | None = None
        own_only = False  # the last read brought only entries the tail held already
        try:
            while not self._closed:
                if me is not None and me.cancelling():
                    return
                if tail.waiters == 0 and time.monotonic() - tail.last_used > self.follow_grace:
                    return
                try:
                    if not tail.synced:
                        self._stats["redis_follow_reads"] += 1
                        last, ended, entries, sources = await self._tail_script(
                            keys=[log, meta, src], args=[self.tail_size]
                        )
                        self._sources.learn(exec_id, sources)
                        items = decode(exec_id, self._sources, entries)
                        tail.reset(int(last), ended.decode() or None, items)
                        self._notifier.notify(exec_id)
                    if blocking is None:
                        blocking = self._r.client()
                        # The reply as Redis sends it (lists), not redis-py's dict per entry:
                        # decode_fields reads the fields by position.
                        blocking.set_response_callback("XREAD", _raw_reply)
                        self._blocking[exec_id] = int(await blocking.client_id())
                    if self._is_closed():
                        return  # close() ran while this follower was getting ready
                    self._stats["redis_follow_reads"] += 1
                    reply: Any = await blocking.xread(
                        {log: tail.next_id()},
                        # After a read that brought only this replica's own appends, the next
                        # one is most likely another own append, which the tail will hold by
                        # the time it is read back: one entry is enough to wake the follower,
                        # the rest it skips (Tail.next_id). Anything else: a full read.
                        count=1 if own_only else max(1000, self.tail_size),
                        block=max(1, int(self.block * 1000)),
                    )
                    if reply:
                        # One stream asked: RESP2 lists [[key, entries]], RESP3 maps them.
                        entries = (
                            next(iter(reply.values())) if isinstance(reply, dict) else reply[0][1]
                        )
                        newest = entries[-1][0]
                        self._stats["redis_follow_entries"] += len(entries)
                        if tail.appending and tail.unheld(entries):
                            # Redis answers this read before the append that woke it: let
                            # that append put its events into the tail first.
                            await tail.own_appends_done(self.block)
                        entries = tail.unheld(entries)  # this replica's own appends are held
                        own_only = not entries
                        await self._learn_sources(exec_id, source_numbers(entries))
                        tail.absorb(decode_fields(exec_id, self._sources, entries))
                        tail.stream_id = newest
                        self._notifier.notify(exec_id)
                    elif tail.ended is None:
                        # Idle: the end entry may have been trimmed away by retention before
                        # this follower read it, so ask the meta hash too.
                        self._stats["redis_follow_reads"] += 1
                        status: Any = await self._r.hget(meta, "ended")
                        if status:
                            tail.ended = bytes(status).decode()
                            self._notifier.notify(exec_id)
                    backoff.reset()
                except (RedisError, OSError) as exc:
                    self._stats["redis_errors"] += 1
                    if not tail.down:
                        logger.warning(
                            "kitaru: lost Redis while following %s (%s); reconnecting",
                            exec_id,
                            exc,
                        )
                    if not tail.down:
                        tail.outages += 1
                    tail.down = True
                    tail.synced = False
                    self._notifier.notify(exec_id)
                    if blocking is not None:
                        self._blocking.pop(exec_id, None)
                        with contextlib.suppress(Exception):
                            await blocking.aclose()
                        blocking = None
                    await asyncio.sleep(backoff.next())
        finally:
            self._blocking.pop(exec_id, None)
            if blocking is not None:
                with contextlib.suppress(Exception):
                    await blocking.aclose()
            if self._tails.get(exec_id) is tail:
                del self._tails[exec_id]
            task = self._followers.get(exec_id)
            if task is not None and task is asyncio.current_task():
                del self._followers[exec_id]
            self._notifier.notify(exec_id)

    async def _learn_sources(self, exec_id: str, numbers: list[bytes]) -> None:
        """Fetch the sources among ``numbers`` this replica does not know yet (one call)."""
        missing = self._sources.missing(exec_id, numbers)
        if missing:
            self._stats["redis_follow_reads"] += 1
            found: list[Any] = await self._r.hmget(self._src_key(exec_id), missing)
            flat: list[bytes] = []
            for number, source in zip(missing, found, strict=True):
                flat += [number, source or _UNKNOWN_SOURCE]
            self._sources.learn(exec_id, flat)

    # -- lifecycle ------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop the followers, close the Redis connections and wake every waiter."""
        if self._closed:
            return
        self._closed = True
        followers = list(self._followers.values())
        for task in followers:
            task.cancel()
        if self._blocking:
            # Ends the followers' blocking reads now rather than at their timeout.
            ids = list(self._blocking.values())
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await asyncio.gather(*(self._r.client_unblock(i) for i in ids))
        if followers:
            await asyncio.wait(followers, timeout=1.0)
        self._notifier.notify_all()
        if self._own_client:
            with contextlib.suppress(Exception):
                await self._r.aclose()
        if followers:
            await asyncio.wait(followers, timeout=1.0)


def _raw_reply(response: Any, **_: Any) -> Any:
    return response


def _consume(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()


def _parse(cursor: str | None) -> int:
    """The event number of ``cursor`` (0 for ``None``); only the format is checked here."""
    return parse_cursor(cursor, 2**63 - 1)
