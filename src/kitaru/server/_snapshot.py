"""``GET /api/v1/executions/{exec_id}/snapshot``: the folded live state, for late joiners.

The answer is :meth:`kitaru._snapshot.ExecutionSnapshot.to_dict`: one lane per checkpoint
execution, the newest custom events, and the ``cursor`` the fold reached. A client renders it
and follows the stream with ``since=<cursor>``; folding that tail into the snapshot gives the
fold of a full replay (``tests/web/test_web_snapshot_property.py`` checks it).

The server keeps the folds of recently asked executions (a small LRU), so asking again only
reads the events after the cached cursor instead of replaying the whole log: the web view and
``kitaru events`` ask once per page load or watch, a dashboard may ask often. One lock per
cached execution keeps two concurrent requests from folding the same events twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import OrderedDict
from dataclasses import dataclass, field

import orjson
from fastapi import APIRouter

from kitaru import _wire
from kitaru._ids import trace_id_for
from kitaru._snapshot import ExecutionSnapshot, SnapshotFold
from kitaru.backends import CursorInvalidError, EventLog, LoggedEvent, ReadResult
from kitaru.events._models import ExecutionEvent
from kitaru.server._errors import ApiError, JsonResponse
from kitaru.server._state import ServerState
from kitaru.server._web import WebConfig, is_trace_id

__all__ = ["SnapshotCache", "add_snapshot_routes"]

_CACHE_SIZE = 64


def _event(ev: LoggedEvent) -> ExecutionEvent:
    return ExecutionEvent.from_wire(orjson.loads(ev.data), ev.cursor)


def _fold_batch(fold: SnapshotFold, res: ReadResult) -> None:
    if res.gap is not None:
        fold.skip(res.gap.lost, res.gap.until)
    for ev in res.events:
        fold.apply(_event(ev))


@dataclass
class _Entry:
    fold: SnapshotFold
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class SnapshotCache:
    """Recently computed folds, brought up to date on each request.

    Args:
        log: The server's event log.
        read_batch: Events read per log call.
        size: How many executions' folds are kept.
    """

    def __init__(self, log: EventLog, read_batch: int, size: int = _CACHE_SIZE) -> None:
        self.log = log
        self.read_batch = read_batch
        self.size = size
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def _entry(self, exec_id: str) -> _Entry:
        entry = self._entries.get(exec_id)
        if entry is None:
            entry = _Entry(SnapshotFold(exec_id))
            self._entries[exec_id] = entry
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(exec_id)
        return entry

    async def snapshot(self, exec_id: str) -> ExecutionSnapshot:
        """The snapshot of the log's current end (``ended`` set when the log has ended).

        Parsing and folding run on a worker thread, a batch at a time, so a long log does not
        hold up the event loop (and every open stream with it). The snapshot is taken under the
        entry's lock: another request may be folding into the same entry on its thread.
        """
        entry = self._entry(exec_id)
        async with entry.lock:
            while True:
                try:
                    res = await self.log.read(exec_id, entry.fold.cursor, self.read_batch)
                except CursorInvalidError:
                    # Only a log replaced under a running server gets here: start over.
                    entry.fold = SnapshotFold(exec_id)
                    res = await self.log.read(exec_id, None, self.read_batch)
                await asyncio.to_thread(_fold_batch, entry.fold, res)
                if len(res.events) < self.read_batch:
                    return entry.fold.snapshot(ended=res.ended is not None)


def add_snapshot_routes(api: APIRouter, state: ServerState, web: WebConfig) -> None:
    """Add the snapshot route to ``api`` (the authenticated ``/api/v1`` router)."""
    cache = SnapshotCache(state.log, state.settings.read_batch) if state.log is not None else None

    @api.get(_wire.path_snapshot("{exec_id}"), tags=["events"])
    async def snapshot(exec_id: str) -> JsonResponse:
        """The folded live state of one execution and the cursor to follow its stream from.

        Lanes (one per checkpoint execution: name, status, latest message and percent, event
        count, trace and span IDs), the newest custom events, and ``cursor``: render this,
        then open the stream with ``since=<cursor>``.
        """
        if cache is None:
            raise ApiError(
                501,
                _wire.ERROR_STREAMING_DISABLED,
                "live events are disabled on this server (it was started with --no-streaming)",
            )
        record = await state.execution(exec_id)
        if record.is_terminal and state.log is not None:
            # As the stream does: also covers executions that ended while the server was down.
            await state.log.mark_ended(exec_id, record.status)
        snap = await cache.snapshot(exec_id)
        # A lane's trace ID comes from a producer: used only when it is a real trace ID.
        lane_trace = next(
            (lane.trace_id for lane in snap.lanes if is_trace_id(lane.trace_id)), None
        )
        trace_id = lane_trace or trace_id_for(exec_id)
        lanes = snap.lanes
        if record.is_terminal:
            # Lanes that never ended take the execution's verdict (docs/outcomes.md).
            lanes = tuple(lane.settle(record.status, record.ended_at) for lane in lanes)
        snap = dataclasses.replace(
            snap,
            lanes=lanes,
            status=record.status,
            flow_name=record.flow_name,
            created_at=record.created_at,
            ended_at=record.ended_at,
            trace_id=trace_id,
            trace_url=web.trace_url(trace_id),
        )
        return JsonResponse(snap.to_dict())
