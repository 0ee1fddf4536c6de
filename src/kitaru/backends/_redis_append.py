"""Appends to the Redis event log: one optimistic transaction per batch, no script.

The layout is described in :mod:`kitaru.backends._redis_scripts`. An append reads what it
depends on under ``WATCH`` (the log's ``last`` number and ``ended`` flag, and which of the
batch's idempotency keys are stored), then writes the new events' stream entries, their keys
and the new ``last`` in one ``MULTI``/``EXEC``. If anything else wrote the log, its meta hash
or its keys in between (another replica's append, a retried batch, the end, a truncation),
Redis refuses the ``EXEC`` and the append starts over from the reads. So, as with a script,
a batch is stored once (first copy wins), in order, with contiguous numbers; but Redis runs
the writes as plain commands, about a third of the CPU per event the same work costs inside
a Lua script (``docs/server-architecture.md``, "Event log storage"), and the batch's two
round trips cost the server less than the time Redis spent in the script.

Both round trips are written as one buffer of Redis protocol each and their replies drained
from the connection's hiredis reader in one go: redis-py's pipeline encodes and reads each
command in Python, which costs more than Redis's own work on these commands.

Source numbers (the ``s`` field and the first part of the key) are fixed once given, since
the source hash is never deleted, so a replica remembers them and asks Redis (the ``SOURCES``
script) only for sources it has not seen.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import chain, repeat
from operator import attrgetter
from typing import Any, NamedTuple

import orjson
import redis.asyncio as aioredis

from kitaru.backends._base import EventLogError, LoggedEvent, NewEvent
from kitaru.backends._redis_entries import logged

try:  # redis-py's marker for "no complete reply buffered" of its hiredis reader
    from redis._parsers.hiredis import NOT_ENOUGH_DATA as _NOT_ENOUGH
except ImportError:  # pragma: no cover - another redis-py layout: read reply by reply
    _NOT_ENOUGH = None

__all__ = ["Appended", "Appender"]

_KEPT = 50_000  # source numbers remembered, over every execution
_ATTEMPTS = 1000  # EXECs refused in a row before an append gives up (a log written nonstop)
_CHUNK = 100  # events per piece of an append's writes (see _writes)
_MULTI = b"*1\r\n$5\r\nMULTI\r\n"
_EXEC = b"*1\r\n$4\r\nEXEC\r\n"
_UNWATCH = b"*1\r\n$7\r\nUNWATCH\r\n"
# XADD <log> <seq>-0 k <key> s <source number> d <JSON>, over the log, the length of the
# entry ID and the number, the key and the source number (bulk strings), the JSON's length
# and the JSON.
_XADD = b"*9\r\n$4\r\nXADD\r\n%b$%d\r\n%d-0\r\n$1\r\nk\r\n%b$1\r\ns\r\n%b$1\r\nd\r\n$%d\r\n%b\r\n"

_BULK = b"$%d\r\n%b\r\n"  # a bulk string, over its length and its bytes
# The constant parts of _XADD between its per-event fields (see _writes).
_XADD_K, _XADD_S, _XADD_D, _CRLF = b"$1\r\nk\r\n", b"$1\r\ns\r\n", b"$1\r\nd\r\n$%d\r\n", b"\r\n"
_SOURCE = attrgetter("kind", "correlation_id", "checkpoint_id", "checkpoint_name", "step_name")
_INDEX = attrgetter("index")
_BODY = attrgetter("body")

Source = tuple[str, str, str | None, str | None, str | None]


class Appender:
    """Appends batches to one Redis database's event logs (see the module docstring).

    Args:
        client: The Redis client whose connection pool the appends use.
        sources: The registered ``SOURCES`` script.
    """

    def __init__(self, client: aioredis.Redis, sources: Any) -> None:
        self._r = client
        self._sources_script = sources
        self._numbers: dict[tuple[str, Source], tuple[str, str]] = {}

    async def append(
        self,
        exec_id: str,
        log: str,
        meta: str,
        keys: str,
        src: str,
        events: Sequence[NewEvent],
        *,
        as_logged: bool = False,
    ) -> Appended:
        """Append ``events`` (see :class:`Appended`).

        ``as_logged``: also give the events as stored (:attr:`Appended.logged`) when every
        one of them is stored; they are built while Redis runs the writes.
        """
        # Per event: its idempotency key and its source number, as protocol bulk strings,
        # made by C-level loops (map, zip; no Python statement per event): with 500-event
        # batches per-event Python was a large share of the server's work per append
        # (``benchmarks/README.md``, "Where the time goes").
        sources = list(map(_SOURCE, events))
        unique = list(dict.fromkeys(sources))
        numbers = await self._source_numbers(exec_id, src, unique)
        # Per source, the start of its events' keys as a format (a key is "<corr>:<index>").
        key_format = {
            s: corr.encode().replace(b"%", b"%%") + b":%d"
            for s, (_, corr) in zip(unique, numbers, strict=True)
        }
        src_bulk = {
            s: _bulk(number.encode()) for s, (number, _) in zip(unique, numbers, strict=True)
        }
        if len(unique) == 1:
            keys_raw = list(map(key_format[unique[0]].__mod__, map(_INDEX, events)))
            src_bulks = [src_bulk[unique[0]]] * len(events)
        else:
            formats = map(key_format.__getitem__, sources)
            keys_raw = list(map(bytes.__mod__, formats, map(_INDEX, events)))
            src_bulks = list(map(src_bulk.__getitem__, sources))
        key_bulks = list(map(_BULK.__mod__, zip(map(len, keys_raw), keys_raw, strict=True)))
        batch = _Batch(
            (_bulk(log.encode()), _bulk(meta.encode()), _bulk(keys.encode())),
            events,
            key_bulks,
            src_bulks,
            as_logged,
            len(set(key_bulks)) == len(key_bulks),
        )
        pool: Any = self._r.connection_pool  # get_connection is untyped in redis-py
        conn = await pool.get_connection()
        try:
            for _ in range(_ATTEMPTS):
                done: Appended | None = await conn.retry.call_with_retry(
                    lambda: _attempt(conn, batch), lambda _error: conn.disconnect()
                )
                if done is not None:
                    return done
            raise EventLogError(f"the event log of {exec_id} kept changing during an append")
        except BaseException:
            # Replies of a half-done exchange may still be due: never reuse the connection.
            await conn.disconnect()
            raise
        finally:
            await pool.release(conn)

    async def _source_numbers(
        self, exec_id: str, src: str, sources: list[Source]
    ) -> list[tuple[str, str]]:
        """Per source, its number and the number its events' idempotency keys start with."""
        known = self._numbers
        missing = [s for s in sources if (exec_id, s) not in known]
        if missing:
            args: list[Any] = [len(missing)]
            for source in missing:
                args += (orjson.dumps(source), source[1])
            flat: list[bytes] = await self._sources_script(keys=[src], args=args)
            if len(known) > _KEPT:
                known.clear()
            for i, source in enumerate(missing):
                known[(exec_id, source)] = (
                    bytes(flat[2 * i]).decode(),
                    bytes(flat[2 * i + 1]).decode(),
                )
        return [known[(exec_id, s)] for s in sources]


class Appended(NamedTuple):
    """What an append did."""

    stored: int
    """How many events it stored (the others were stored before)."""
    last: int
    """The newest event number after it."""
    ended: bool
    """The log had been marked ended before it (an end entry may sit below ``last``)."""
    logged: list[LoggedEvent] | None = None
    """With ``as_logged``, when every event was stored: the events as a read returns them."""


class _Batch(NamedTuple):
    names: tuple[bytes, bytes, bytes]  # log, meta and keys, as bulk strings
    events: Sequence[NewEvent]
    keys: list[bytes]  # per event, its idempotency key as a bulk string
    sources: list[bytes]  # per event, its source number as a bulk string
    as_logged: bool
    distinct: bool  # no idempotency key is repeated inside the batch


def _bulk(value: bytes) -> bytes:
    return _BULK % (len(value), value)


async def _attempt(conn: Any, batch: _Batch) -> Appended | None:
    """One read-then-write exchange; None when Redis refused the ``EXEC``."""
    log, meta, keys = batch.names
    await conn.send_packed_command(
        b"*4\r\n$5\r\nWATCH\r\n%b%b%b" % (log, meta, keys)
        + b"*4\r\n$5\r\nHMGET\r\n%b$4\r\nlast\r\n$5\r\nended\r\n" % meta
        + b"*%d\r\n$5\r\nHMGET\r\n%b" % (len(batch.keys) + 2, keys)
        + b"".join(batch.keys)
    )
    _, (last_raw, ended_raw), have = await _replies(conn, 3)
    last = int(last_raw or 0)
    ended = ended_raw is not None
    if batch.distinct and have.count(None) == len(have):
        stored = len(batch.events)  # the common case: every event is new
        writes = _writes(log, keys, meta, last, batch.events, batch.keys, batch.sources)
    else:
        stored, writes = _some_writes(log, keys, meta, last, batch, have)
    if not stored:
        await conn.send_packed_command(_UNWATCH)
        await _replies(conn, 1)
        return Appended(0, last, ended)
    last += stored
    for piece in writes:
        # No health check inside the transaction: its PING would be queued in it.
        await conn.send_packed_command(piece, check_health=False)
    # Made while Redis works (the server would otherwise make them after its answer).
    every = stored == len(batch.events)
    done = logged(last - stored + 1, batch.events) if batch.as_logged and every else None
    # MULTI, one QUEUED per XADD and HSET, then EXEC's own reply.
    result = (await _replies(conn, stored + _chunks(stored) + 3))[-1]
    if result is None:
        return None  # the EXEC was refused: something changed since the reads
    for reply in result:
        if isinstance(reply, Exception):
            raise reply
    return Appended(stored, last, ended, done)


def _chunks(n: int) -> int:
    """How many pieces the writes of ``n`` events are sent in (see :func:`_writes`)."""
    return -(-n // _CHUNK)


def _writes(
    log: bytes,
    keys: bytes,
    meta: bytes,
    last: int,
    events: Sequence[NewEvent],
    key_bulks: Sequence[bytes],
    src_bulks: Sequence[bytes],
) -> Iterator[bytes]:
    """The transaction storing every one of ``events`` numbered from ``last + 1``, in pieces.

    ``MULTI``; per piece of ``_CHUNK`` events their ``XADD``s and one ``HSET`` of their keys;
    ``HSET last``; ``EXEC``. Each piece is made when the previous one has been handed to the
    socket, so Redis parses and queues one piece while the server makes the next (the writes
    of a 500-event batch are about 300 KB). Each is joined from its parts by C-level loops
    (no Python statement per event).
    """
    n = len(events)
    for start in range(0, n, _CHUNK):
        part = slice(start, start + _CHUNK)
        seqs = range(last + 1 + start, last + 1 + min(n, start + _CHUNK))
        ids = list(map(b"%d-0".__mod__, seqs))
        nums = list(map(b"%d".__mod__, seqs))
        bodies = list(map(_BODY, events[part]))
        part_keys = key_bulks[part]
        xadds = zip(
            repeat(b"*9\r\n$4\r\nXADD\r\n" + log),
            map(_BULK.__mod__, zip(map(len, ids), ids, strict=True)),
            repeat(_XADD_K),
            part_keys,
            repeat(_XADD_S),
            src_bulks[part],
            map(_XADD_D.__mod__, map(len, bodies)),
            bodies,
            repeat(_CRLF),
            strict=False,  # repeat() is endless; the others have one item per event
        )
        pairs = zip(
            part_keys, map(_BULK.__mod__, zip(map(len, nums), nums, strict=True)), strict=True
        )
        end: tuple[bytes, ...] = ()
        if start + _CHUNK >= n:
            end = (b"*4\r\n$4\r\nHSET\r\n%b$4\r\nlast\r\n%b" % (meta, _bulk(nums[-1])), _EXEC)
        yield b"".join(
            chain(
                (_MULTI,) if start == 0 else (),
                chain.from_iterable(xadds),
                (b"*%d\r\n$4\r\nHSET\r\n%b" % (2 * len(ids) + 2, keys),),
                chain.from_iterable(pairs),
                end,
            )
        )


def _some_writes(
    log: bytes, keys: bytes, meta: bytes, last: int, batch: _Batch, have: list[Any]
) -> tuple[int, Iterator[bytes]]:
    """How many events to store, and the transaction storing them.

    Those are the first copy of each key not stored yet (a retried batch, or one repeating a
    key), numbered from ``last + 1``.
    """
    new: list[NewEvent] = []
    new_keys: list[bytes] = []
    new_sources: list[bytes] = []
    seen: set[bytes] = set()
    for ev, key, source, stored_as in zip(
        batch.events, batch.keys, batch.sources, have, strict=True
    ):
        if stored_as is None and key not in seen:
            seen.add(key)
            new.append(ev)
            new_keys.append(key)
            new_sources.append(source)
    return len(new), _writes(log, keys, meta, last, new, new_keys, new_sources)


async def _replies(conn: Any, n: int) -> list[Any]:
    """The next ``n`` replies on ``conn``; an error reply is raised.

    The first of each socket read goes through redis-py (its timeout, its error handling);
    the replies already buffered behind it are taken from its hiredis reader directly.
    """
    out: list[Any] = []
    reader = getattr(getattr(conn, "_parser", None), "_reader", None)
    if _NOT_ENOUGH is None:
        reader = None
    while len(out) < n:
        out.append(await conn.read_response())
        while reader is not None and len(out) < n:
            reply = reader.gets()
            if reply is _NOT_ENOUGH:
                break
            if isinstance(reply, Exception):
                raise reply
            out.append(reply)
    return out
