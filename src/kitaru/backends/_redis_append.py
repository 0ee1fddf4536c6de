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

from collections.abc import Sequence
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
_MULTI = b"*1\r\n$5\r\nMULTI\r\n"
_EXEC = b"*1\r\n$4\r\nEXEC\r\n"
_UNWATCH = b"*1\r\n$7\r\nUNWATCH\r\n"
# XADD <log> <seq>-0 k <key> s <source number> d <JSON>, over the log, the length of the
# entry ID and the number, the key and the source number (bulk strings), the JSON's length
# and the JSON.
_XADD = b"*9\r\n$4\r\nXADD\r\n%b$%d\r\n%d-0\r\n$1\r\nk\r\n%b$1\r\ns\r\n%b$1\r\nd\r\n$%d\r\n%b\r\n"

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
        # Per event: its idempotency key and its source number, as protocol bulk strings.
        positions: dict[Source, int] = {}
        of: list[int] = []
        for ev in events:
            source = (
                ev.kind,
                ev.correlation_id,
                ev.checkpoint_id,
                ev.checkpoint_name,
                ev.step_name,
            )
            pos = positions.get(source)
            if pos is None:
                pos = positions[source] = len(positions)
            of.append(pos)
        numbers = await self._source_numbers(exec_id, src, list(positions))
        prefixes = [corr + ":" for _, corr in numbers]
        key_bulks = []
        for ev, pos in zip(events, of, strict=True):
            key = prefixes[pos] + str(ev.index)
            key_bulks.append(f"${len(key)}\r\n{key}\r\n".encode())
        src_bulks = [_bulk(number.encode()) for number, _ in numbers]
        batch = _Batch(
            (_bulk(log.encode()), _bulk(meta.encode()), _bulk(keys.encode())),
            events,
            key_bulks,
            [src_bulks[pos] for pos in of],
            as_logged,
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


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(value), value)


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
    parts = [_MULTI]
    pairs: list[bytes] = []
    seen: set[bytes] = set()
    for ev, key, source, stored_as in zip(
        batch.events, batch.keys, batch.sources, have, strict=True
    ):
        if stored_as is None and key not in seen:
            seen.add(key)
            last += 1
            body = ev.body
            parts.append(_XADD % (log, len(str(last)) + 2, last, key, source, len(body), body))
            pairs += (key, _bulk(b"%d" % last))
    if not pairs:
        await conn.send_packed_command(_UNWATCH)
        await _replies(conn, 1)
        return Appended(0, last, ended)
    parts.append(b"*%d\r\n$4\r\nHSET\r\n%b" % (len(pairs) + 2, keys))
    parts += pairs
    parts.append(b"*4\r\n$4\r\nHSET\r\n%b$4\r\nlast\r\n%b" % (meta, _bulk(b"%d" % last)))
    parts.append(_EXEC)
    await conn.send_packed_command(b"".join(parts))
    stored = len(seen)
    # Made while Redis works (the server would otherwise make them after its answer).
    every = stored == len(batch.events)
    done = logged(last - stored + 1, batch.events) if batch.as_logged and every else None
    # MULTI, one QUEUED per XADD and HSET, then EXEC's own reply.
    result = (await _replies(conn, stored + 4))[-1]
    if result is None:
        return None  # the EXEC was refused: something changed since the reads
    for reply in result:
        if isinstance(reply, Exception):
            raise reply
    return Appended(stored, last, ended, done)


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
