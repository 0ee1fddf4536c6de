"""The fold cache behind ``GET /api/v1/executions/{exec_id}/snapshot`` (the folded live state).

The route (in :mod:`kitaru.server._routes_events`) answers
:meth:`kitaru._snapshot.ExecutionSnapshot.to_dict`: one lane per checkpoint execution, the newest
custom events, and the ``cursor`` the fold reached. A client renders it and follows the stream
with ``since=<cursor>``; folding that tail into the snapshot gives the fold of a full replay
(``tests/web/test_web_snapshot_property.py`` checks it).

The server keeps the folds of recently asked executions (a small LRU), so asking again only
reads the events after the cached cursor instead of replaying the whole log: the web view and
``kitaru events`` ask once per page load or watch, a dashboard may ask often. One lock per
cached execution keeps two concurrent requests from folding the same events twice.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field

import orjson

from kitaru._snapshot import ExecutionSnapshot, SnapshotFold
from kitaru.backends import CursorInvalidError, EventLog, LoggedEvent, ReadResult
from kitaru.events._models import ExecutionEvent

__all__ = ["SnapshotCache"]

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
