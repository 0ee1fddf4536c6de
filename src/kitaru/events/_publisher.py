"""The process-local live-event publisher.

The calling thread only builds an :class:`EventRecord` and appends it to a bounded queue
(a few hundred nanoseconds); the one background sender thread makes user data JSON-safe,
encodes, batches and hands events to the :class:`Transport`.

Overflow policy (``docs/live-events.md``, "The publisher"): the queue holds two deques, one
for lifecycle events and one for everything else. When full, the oldest non-lifecycle event
goes first; lifecycle events are dropped only when nothing else is left, so a lane does not
lose its terminal event to a burst of progress. Every drop is counted.

A failed send keeps its batch and is retried with capped, jittered backoff. No checkpoint waits
for its events to be sent (``docs/protocol.md``, "Ordering on the producer"): only the flow's
end flushes, bounded, before the execution is finished, so a dead backend costs a flow nothing
but the enqueue.

While a batch is being sent and more events are waiting, a helper thread takes and encodes the
next batch meanwhile. Still only one batch is in flight: the next one is handed to the
transport only after the current one succeeded, because the server numbers events in the order
batches arrive, and two batches of one execution in flight at once could arrive swapped and
reorder a correlation lane in the stream.

Batching needs no timer: everything that arrives while a request is in flight goes in the next
one, so a process never has more requests going than one at a time, and the slower the server
answers the more each request carries; an event that finds no request in flight goes at once
(``docs/live-events.md``, "The publisher").
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, fields

from kitaru._backoff import Backoff
from kitaru.events._codec import EncodedEvent, encode_record
from kitaru.events._models import EventRecord
from kitaru.events._transport import Transport, TransportDisabledError, TransportRejectedError

__all__ = ["MAX_EVENT_BYTES", "Publisher", "PublisherStats"]

logger = logging.getLogger("kitaru.events")

MAX_EVENT_BYTES = 64 * 1024
"""Largest encoded event; a larger one is dropped with one warning."""

_MAX_BATCH = 500
_BACKOFF_START = 0.05
_BACKOFF_CAP = 2.0
_IDLE_WAIT = 0.25
_LINGER = 0.05  # seconds of polling after the last event before the sender sleeps
_POLL = 0.001


@dataclass(frozen=True, slots=True)
class PublisherStats:
    """Counters of one publisher since it started.

    Attributes:
        queued: Events currently waiting in the queue.
        sent: Events the transport delivered.
        dropped_overflow: Non-lifecycle events dropped because the queue was full.
        dropped_lifecycle: Lifecycle events dropped because the queue was full of them.
        dropped_oversize: Events dropped because their JSON exceeded 64 KiB.
        dropped_unencodable: Events dropped because they could not be encoded as JSON at all
            (for example nested too deeply).
        dropped_disabled: Events discarded because the backend turned live events off.
        send_failures: Failed transport sends (each is retried).
        rejected: Events the backend refused for good (a non-retryable 4xx): neither sent
            nor retried.
    """

    queued: int
    sent: int
    dropped_overflow: int
    dropped_lifecycle: int
    dropped_oversize: int
    dropped_disabled: int
    send_failures: int
    dropped_unencodable: int = 0
    rejected: int = 0

    @property
    def dropped(self) -> int:
        """All events dropped by the publisher (``rejected`` events are counted apart)."""
        return (
            self.dropped_overflow
            + self.dropped_lifecycle
            + self.dropped_oversize
            + self.dropped_unencodable
            + self.dropped_disabled
        )


_COUNTERS = tuple(f.name for f in fields(PublisherStats) if f.name != "queued")


class Publisher:
    """Bounded queue plus one background sender; ``submit`` never blocks and never raises."""

    def __init__(self, transport: Transport, *, max_queue: int = 10_000) -> None:
        self._transport = transport
        self._max_queue = max(1, max_queue)
        self._init_state()
        _live_publishers.add(self)

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        # Orders submissions: a record's number, its place in the queue and the marker that
        # flush() waits on change together, so the marker never moves backwards and the
        # queues stay sorted by number (see docs/server-architecture.md, "Publisher").
        self._submit_lock = threading.Lock()
        self._normal: deque[EventRecord] = deque()
        self._lifecycle: deque[EventRecord] = deque()
        self._seq = itertools.count(1)
        self._last_seq = 0
        self._handled_seq = 0
        self._handled = threading.Condition(threading.Lock())
        self._wake = threading.Event()
        self._idle = False
        self._thread: threading.Thread | None = None
        self._closed = False
        self._disabled = False
        self._healthy = True
        # Every counter of PublisherStats but ``queued``, by its field name.
        self._counts: dict[str, int] = dict.fromkeys(_COUNTERS, 0)
        # The next batch, taken and encoded while the current one was being sent (with the
        # submission number of its last record), and the helper thread that encodes it.
        self._ahead: tuple[list[EncodedEvent], int] | None = None
        self._helper: _Helper | None = None

    # -- calling thread -------------------------------------------------------------------

    def submit(self, record: EventRecord) -> None:
        """Queue ``record`` for sending. Cheap, non-blocking, never raises."""
        if self._disabled or self._closed:
            return
        normal, life = self._normal, self._lifecycle
        # acquire/release rather than ``with``: the same lock held over the same statements,
        # without the context manager's two method calls (this runs once per progress() call).
        lock = self._submit_lock
        lock.acquire()
        try:
            seq = next(self._seq)
            record.seq = seq
            if len(normal) + len(life) >= self._max_queue and not self._make_room(record):
                return
            (life if record.lifecycle else normal).append(record)
            self._last_seq = seq
        finally:
            lock.release()
        if self._thread is None:
            self._start()
        if self._idle:
            self._wake.set()

    def _make_room(self, record: EventRecord) -> bool:
        """Drop per the overflow policy; False when ``record`` itself is the one dropped.

        Runs on the calling thread once per ``submit`` while the queue is full (a backend that
        is down), so it takes its lock without the context manager's calls and reads the deques
        and counters once.
        """
        normal, life, counts = self._normal, self._lifecycle, self._counts
        limit = self._max_queue
        lock = self._lock
        lock.acquire()
        try:
            while len(normal) + len(life) >= limit:
                if normal:
                    normal.popleft()
                    counts["dropped_overflow"] += 1
                elif record.lifecycle:
                    life.popleft()
                    counts["dropped_lifecycle"] += 1
                else:
                    counts["dropped_overflow"] += 1
                    return False
        finally:
            lock.release()
        return True

    @property
    def healthy(self) -> bool:
        """False while the transport's last send failed (and until one succeeds)."""
        return self._healthy and not self._disabled

    @property
    def disabled(self) -> bool:
        """True once the backend turned live events off for this process."""
        return self._disabled

    def stats(self) -> PublisherStats:
        """Current counters."""
        with self._lock:
            queued = len(self._normal) + len(self._lifecycle)
        return PublisherStats(queued=queued, **self._counts)

    def flush(self, timeout: float = 2.0, *, stop_on_failure: bool = False) -> bool:
        """Wait until everything queued before the call was handed on; False on timeout.

        Args:
            timeout: Seconds to wait at most.
            stop_on_failure: Give up (False) as soon as a send fails after the call, instead
                of waiting out the backoff: the sender is woken to retry at once, so a backend
                that is back is used immediately and one that is still down costs one attempt.
        """
        try:
            target = self._last_seq
            if self._handled_seq >= target or self._disabled:
                return True
            if self._thread is None:
                self._start()
            deadline = time.monotonic() + max(0.0, timeout)
            failures = self._counts["send_failures"]
            self._wake.set()
            with self._handled:
                while self._handled_seq < target and not self._disabled:
                    if stop_on_failure and self._counts["send_failures"] > failures:
                        return False
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._handled.wait(remaining)
            return True
        except Exception:  # flush never raises (docs/live-events.md)
            logger.debug("kitaru: flush failed", exc_info=True)
            return False

    def shutdown(self, timeout: float = 2.0) -> bool:
        """Flush within ``timeout``, stop the sender and release the transport. Idempotent."""
        if self._closed:
            return True
        ok = self.flush(timeout)
        self._closed = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=0.2)
        helper = self._helper
        if helper is not None:
            helper.stop()
        try:
            self._transport.shutdown()
        except Exception:
            logger.debug("kitaru: transport shutdown failed", exc_info=True)
        return ok

    # -- fork safety ----------------------------------------------------------------------

    def _after_fork(self) -> None:
        # Locks and the sender thread do not survive fork(); the child starts empty so it
        # never resends the parent's queue.
        self._init_state()

    # -- sender thread --------------------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            thread = threading.Thread(target=self._run, name="kitaru-publisher", daemon=True)
            self._thread = thread
        thread.start()

    def _take(self, limit: int = _MAX_BATCH) -> list[EventRecord]:
        out: list[EventRecord] = []
        with self._lock:
            normal, life = self._normal, self._lifecycle
            # Merge both deques in submission order.
            while len(out) < limit and (normal or life):
                if not life or (normal and normal[0].seq < life[0].seq):
                    out.append(normal.popleft())
                else:
                    out.append(life.popleft())
        return out

    def _run(self) -> None:
        backoff = Backoff(_BACKOFF_START, _BACKOFF_CAP)
        last_active = 0.0
        pending: list[EncodedEvent] = []
        pending_seq = 0
        # The last batch sent, released by the next send while its request is in flight
        # (see _send): freeing a batch's events is work the next request need not wait for.
        spent: list[EncodedEvent] = []
        while True:
            if not pending and self._ahead is not None:
                pending, pending_seq = self._ahead
                self._ahead = None
                last_active = time.monotonic()
                # Taken when the previous request started: what came while it was in flight
                # goes in this request too, not in one more after it.
                more = self._take(_MAX_BATCH - len(pending))
                if more:
                    pending.extend(self._encode(more))
                    pending_seq = more[-1].seq
                if not pending:
                    self._mark_handled(pending_seq)
                    continue
            if not pending:
                records = self._take()
                if not records:
                    # Nothing to send: the batch sent last is freed now, not kept (with the
                    # user data its records hold) until the next event comes.
                    spent.clear()
                    if self._closed:
                        return
                    if time.monotonic() - last_active < _LINGER:
                        # Poll briefly while publishing is active, so callers never pay for
                        # waking the sender (Event.set costs more than the enqueue itself).
                        # Waiting on the event rather than sleeping lets flush() wake the sender
                        # at once instead of paying up to a whole poll interval.
                        if self._wake.wait(_POLL):
                            self._wake.clear()
                        continue
                    self._idle = True
                    if not (self._normal or self._lifecycle) and not self._closed:
                        self._wake.wait(_IDLE_WAIT)
                    self._wake.clear()
                    self._idle = False
                    continue
                last_active = time.monotonic()
                pending = self._encode(records)
                pending_seq = records[-1].seq
                if not pending:
                    self._mark_handled(pending_seq)
                    continue
            try:
                self._send(pending, spent)
            except TransportDisabledError as exc:
                self._disable(str(exc), len(pending))
                pending = []
                self._mark_handled(pending_seq)
                return
            except TransportRejectedError as exc:
                # Refused for good: the rest of the batch was delivered, these never will be.
                rejected = min(max(0, exc.rejected), len(pending))
                self._counts["rejected"] += rejected
                self._counts["sent"] += len(pending) - rejected
                self._healthy = True
                backoff.reset()
                pending = []
                self._mark_handled(pending_seq)
                continue
            except Exception as exc:
                self._counts["send_failures"] += 1
                if self._healthy:
                    logger.warning(
                        "kitaru: live-event delivery failed (%s); retrying with backoff",
                        type(exc).__name__,
                    )
                self._healthy = False
                with self._handled:  # flush(stop_on_failure=True) waiters give up now
                    self._handled.notify_all()
                if self._closed:
                    return
                self._wake.wait(backoff.next())
                self._wake.clear()
                continue
            if not self._healthy:
                logger.info("kitaru: live-event delivery recovered")
            self._healthy = True
            backoff.reset()
            self._counts["sent"] += len(pending)
            spent, pending = pending, []
            self._mark_handled(pending_seq)

    def _send(self, batch: list[EncodedEvent], spent: list[EncodedEvent]) -> None:
        """Send ``batch``; when more is waiting, take and encode the next batch meanwhile.

        ``spent`` (the batch sent before) is emptied once this request is on its way: on the
        helper thread while the request is in flight when the helper runs, else after the
        request. Freeing 500 events and the records they hold took 0.3-0.4 ms, which the
        server spent idle between requests when it ran between one answer and the next
        request (benchmarks/README.md, "Throughput").

        The request goes out on this thread at once and the next batch is encoded on the
        helper thread: the other way round, the helper would need the interpreter lock to start
        the request while this thread holds it encoding, and the request would wait for the
        encoding (up to the interpreter's switch interval; benchmarks/README.md, "Throughput").
        The next batch is kept (in ``_ahead``) only if this send succeeded; otherwise its
        records go back to the front of the queue, where the overflow policy applies to them
        as before and the failed batch is retried first.
        """
        helper = self._helper
        if helper is None and not self._closed and (self._normal or self._lifecycle):
            helper = self._helper = _Helper()
        records: list[EventRecord] = []
        encoded: list[EncodedEvent | None] = []
        if (
            helper is None
            or self._closed
            or not (self._normal or self._lifecycle)
            or not helper.start(lambda: self._encode_ahead(records, encoded, spent))
        ):
            try:
                self._transport.send(batch)
            finally:
                spent.clear()
            return
        try:
            self._transport.send(batch)
        except BaseException:
            helper.wait()
            self._put_back(_unsent(records, encoded))
            raise
        if not helper.wait():  # the encoding broke off: what it did not reach goes back
            self._put_back(records[len(encoded) :])
            records = records[: len(encoded)]
        if records:
            self._ahead = ([enc for enc in encoded if enc is not None], records[-1].seq)

    def _encode_ahead(
        self,
        records: list[EventRecord],
        encoded: list[EncodedEvent | None],
        spent: list[EncodedEvent],
    ) -> None:
        """Free ``spent``; take the next batch into ``records``, encode it into ``encoded``.

        Runs on the helper thread. Only this thread touches the three lists until the sender's
        ``wait`` returns; an event that cannot be sent is ``None`` there (dropped and counted
        by ``_encode_one``).
        """
        spent.clear()
        records.extend(self._take())
        for rec in records:
            encoded.append(self._encode_one(rec))

    def _put_back(self, records: list[EventRecord]) -> None:
        with self._lock:
            for rec in reversed(records):
                (self._lifecycle if rec.lifecycle else self._normal).appendleft(rec)

    def _mark_handled(self, seq: int) -> None:
        with self._handled:
            self._handled_seq = max(self._handled_seq, seq)
            self._handled.notify_all()

    def _disable(self, reason: str, pending: int) -> None:
        # Warn before flipping the flag: flush() returns as soon as it sees the flag.
        logger.warning("kitaru: live events are turned off for this process: %s", reason)
        self._disabled = True
        with self._lock:
            dropped = len(self._normal) + len(self._lifecycle)
            self._normal.clear()
            self._lifecycle.clear()
        self._counts["dropped_disabled"] += dropped + pending
        with self._handled:
            self._handled.notify_all()

    def _encode(self, records: list[EventRecord]) -> list[EncodedEvent]:
        out: list[EncodedEvent] = []
        for rec in records:
            encoded = self._encode_one(rec)
            if encoded is not None:
                out.append(encoded)
        return out

    def _encode_one(self, rec: EventRecord) -> EncodedEvent | None:
        """``rec`` encoded, or ``None`` (dropped and counted) when it cannot be sent."""
        try:
            encoded = encode_record(rec)
        except Exception as exc:  # never let one bad event stop the sender
            logger.warning(
                "kitaru: dropped live event %r (index %d): cannot encode (%s)",
                rec.kind,
                rec.index,
                type(exc).__name__,
            )
            self._counts["dropped_unencodable"] += 1
            return None
        if len(encoded.json) > MAX_EVENT_BYTES:
            self._counts["dropped_oversize"] += 1
            logger.warning(
                "kitaru: dropped live event %r (index %d of %s): %d bytes of JSON is over "
                "the 64 KiB limit",
                rec.kind,
                rec.index,
                rec.correlation_id,
                len(encoded.json),
            )
            return None
        return encoded


def _unsent(records: list[EventRecord], encoded: list[EncodedEvent | None]) -> list[EventRecord]:
    """The records taken ahead that are still to be sent (not dropped by their encoding)."""
    done = len(encoded)
    return [rec for rec, enc in zip(records, encoded, strict=False) if enc is not None] + records[
        done:
    ]


class _Helper:
    """A daemon thread that runs one job at a time for the sender thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._job: Callable[[], None] | None = None
        self._busy = False
        self._ok = True
        self._stopped = False
        threading.Thread(target=self._loop, name="kitaru-publisher-encode", daemon=True).start()

    def start(self, job: Callable[[], None]) -> bool:
        """Start running ``job``; False once stopped (the caller does without)."""
        with self._cond:
            if self._stopped:
                return False
            self._job, self._busy, self._ok = job, True, True
            self._cond.notify_all()
        return True

    def wait(self) -> bool:
        """Wait for the started job; False if it raised (logged: the sender never raises)."""
        with self._cond:
            while self._busy:
                self._cond.wait()
            return self._ok

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._job is None and not self._stopped:
                    self._cond.wait()
                if self._job is None:
                    return
                job, self._job = self._job, None
            ok = True
            try:
                job()
            except BaseException as exc:  # its kind only: no event content in log records
                logger.debug(
                    "kitaru: taking the next live-event batch failed (%s)", type(exc).__name__
                )
                ok = False
            with self._cond:
                self._ok, self._busy = ok, False
                self._cond.notify_all()


_live_publishers: weakref.WeakSet[Publisher] = weakref.WeakSet()


def _reinit_after_fork() -> None:
    for publisher in list(_live_publishers):
        publisher._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_after_fork)
