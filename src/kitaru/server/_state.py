"""What one running server holds: settings, store, event log, and its background tasks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol, TypeVar

from kitaru import _wire
from kitaru.backends import EventLog, EventLogError
from kitaru.server._errors import ApiError
from kitaru.server._fanout import FanOut
from kitaru.server._metrics import ServerMetrics
from kitaru.server._settings import ServerSettings
from kitaru.store._base import Store
from kitaru.store._records import ExecutionRecord

__all__ = ["ServerState", "ServerStore", "unknown_execution"]

logger = logging.getLogger("kitaru.server")

T = TypeVar("T")

_KNOWN_CACHE = 100_000
_RETENTION_EVERY = 60.0


def unknown_execution(exec_id: str) -> ApiError:
    """The 404 ``execution_unknown`` error for ``exec_id``."""
    return ApiError(404, _wire.ERROR_EXECUTION_UNKNOWN, f"no execution with ID {exec_id!r}")


class ServerStore(Store, Protocol):
    """The store a server needs: a :class:`~kitaru.store.Store` that can list running work."""

    def running_executions(self) -> list[ExecutionRecord]:
        """Every execution still marked running."""
        ...


class ServerState:
    """Shared by every request of one app.

    Store calls run on worker threads (the store is synchronous); event-log calls are async.
    """

    def __init__(self, settings: ServerSettings, store: ServerStore, log: EventLog | None) -> None:
        self.settings = settings
        self.store = store
        self.log = log
        self.started_at = time.time()
        # Names this process among several replicas (GET /api/v1/info).
        self.instance = f"{socket.gethostname()}:{os.getpid()}"
        # Executions known to exist: ingest checks this first, so the hot path rarely needs a
        # store lookup. Executions are never deleted, so an entry never goes stale.
        self._known: OrderedDict[str, None] = OrderedDict()
        # Wall-clock time of the last record write per running execution (beyond the stored
        # heartbeat), for lost-producer detection.
        self._last_seen: dict[str, float] = {}
        self._flushed_at = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self._closing: asyncio.Event | None = None
        self.metrics = ServerMetrics(settings.db)
        # One follower per watched execution writes new frames to every caught-up watcher
        # (server/_fanout.py, docs/server-architecture.md "Fan-out").
        self.fanout = (
            FanOut(log, settings.read_batch, settings.ping_interval) if log is not None else None
        )

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def closing(self) -> asyncio.Event:
        """Set when the server begins shutting down: open streams close at once."""
        if self._closing is None:
            self._closing = asyncio.Event()
        return self._closing

    async def start(self) -> None:
        """Start the background tasks (called from the app's lifespan)."""
        self.started_at = time.time()
        self._closing = None  # a fresh shutdown signal, bound to this server's event loop
        self._tasks.append(asyncio.create_task(self._lost_loop(), name="kitaru-lost"))
        if self.log is not None and self.settings.retain_ended is not None:
            self._tasks.append(asyncio.create_task(self._retention_loop(), name="kitaru-retention"))

    def begin_shutdown(self) -> None:
        """Ask every open stream to close (idempotent; call on the server's event loop)."""
        self.closing.set()

    async def stop(self) -> None:
        """Stop background tasks and release the store and event log."""
        self.begin_shutdown()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self.fanout is not None:
            await self.fanout.close()
        if self.log is not None:
            with contextlib.suppress(Exception):
                await self.log.close()
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.store.close)

    # -- store access ---------------------------------------------------------------------

    async def call(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        """Run a blocking store call on a worker thread."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def execution(self, exec_id: str) -> ExecutionRecord:
        """The execution, or a 404 ``execution_unknown`` error."""
        record = await self.call(self.store.get_execution, exec_id)
        if record is None:
            raise unknown_execution(exec_id)
        self.remember(exec_id)
        return record

    async def require_known(self, exec_id: str) -> None:
        """404 unless the execution exists (cached after the first lookup)."""
        if exec_id in self._known:
            return
        await self.execution(exec_id)

    def remember(self, exec_id: str) -> None:
        """Note that ``exec_id`` exists."""
        known = self._known
        known[exec_id] = None
        if len(known) > _KNOWN_CACHE:
            known.popitem(last=False)

    def seen(self, exec_id: str) -> None:
        """Note a record write from the execution's producer (it is alive)."""
        self._last_seen[exec_id] = time.time()

    async def ended(self, exec_id: str, status: str) -> None:
        """Mark the execution's stream ended (after its record became terminal)."""
        self._last_seen.pop(exec_id, None)
        if self.log is None:
            return
        try:
            await self.log.mark_ended(exec_id, status)
        except EventLogError:
            # The record is terminal either way; streams also check the record when they open.
            logger.warning("kitaru server: could not mark the stream of %s ended", exec_id)

    # -- background -----------------------------------------------------------------------

    async def check_lost(self, now: float | None = None) -> list[str]:
        """Mark running executions silent for longer than ``lost_after`` as ``lost``."""
        now = time.time() if now is None else now
        limit = self.settings.lost_after
        running = await self.call(self.store.running_executions)
        lost: list[str] = []
        for rec in running:
            # Only the server's clock counts (docs/server-architecture.md, "Liveness"): the
            # stored heartbeat is written with the server's time (also at create), never the
            # producer's created_at, which a skewed or hostile clock could put in the future.
            # The server's own start counts as a heartbeat: producers that were retrying
            # while the server was down get a full lost_after to reach it again.
            last = max(
                rec.heartbeat_at or 0.0,
                self._last_seen.get(rec.exec_id, 0.0),
                self.started_at,
            )
            if now - last <= limit:
                continue
            await self.call(self.store.finish_execution, rec.exec_id, "lost")
            final = await self.call(self.store.get_execution, rec.exec_id)
            if final is not None and final.is_terminal:
                logger.warning(
                    "kitaru server: execution %s sent nothing for %.0f s; marked %s",
                    rec.exec_id,
                    now - last,
                    final.status,
                )
                await self.ended(rec.exec_id, final.status)
                lost.append(rec.exec_id)
        self.metrics.lost(len(lost))
        return lost

    async def flush_seen(self) -> int:
        """Store the signs of life this process saw as heartbeats; how many executions.

        Other replicas judge lost producers by the stored heartbeat only: a producer whose
        events and records all reach this replica must not look silent to them (docs/deployment.md).
        Runs every ``lost_after / 4`` at most, so it costs one write per active execution
        per period, not one per request.
        """
        since, self._flushed_at = self._flushed_at, time.time()
        fresh = [exec_id for exec_id, at in self._last_seen.items() if at >= since]
        if fresh:
            await self.call(_heartbeats, self.store, fresh)  # one worker-thread hop for all
        return len(fresh)

    async def _lost_loop(self) -> None:
        every = min(max(self.settings.lost_after / 4, 0.05), 5.0)
        while True:
            await asyncio.sleep(every)
            try:
                await self.flush_seen()
                await self.check_lost()
            except Exception:
                logger.exception("kitaru server: lost-producer check failed")

    async def _retention_loop(self) -> None:
        assert self.log is not None
        every = min(_RETENTION_EVERY, max(1.0, (self.settings.retain_ended or 0) / 2))
        while True:
            await asyncio.sleep(every)
            try:
                dropped = await self.log.enforce_retention()
                if dropped:
                    logger.info("kitaru server: retention dropped %d events", dropped)
            except Exception:
                logger.exception("kitaru server: retention failed")


def _heartbeats(store: Store, exec_ids: list[str]) -> None:
    """Store a heartbeat for each of ``exec_ids`` (on a worker thread)."""
    for exec_id in exec_ids:
        store.heartbeat(exec_id)
