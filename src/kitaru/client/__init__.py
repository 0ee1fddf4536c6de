"""The client: ``KitaruClient`` reads, replays and watches executions.

:class:`EventWatcher` / :class:`AsyncEventWatcher` are what
``KitaruClient().executions.events()`` / ``aevents()`` return (tuned by :class:`WatchOptions`);
:class:`ExecutionSnapshot` is what ``executions.snapshot()`` returns.
"""

from kitaru._public import publish_names
from kitaru._snapshot import ExecutionSnapshot
from kitaru.client._client import Executions, KitaruClient
from kitaru.client._errors import StreamDisconnectedError, StreamGapError
from kitaru.client._watch_options import WatchOptions
from kitaru.client._watcher import AsyncEventWatcher, EventWatcher

__all__ = [
    "AsyncEventWatcher",
    "EventWatcher",
    "ExecutionSnapshot",
    "Executions",
    "KitaruClient",
    "StreamDisconnectedError",
    "StreamGapError",
    "WatchOptions",
]

publish_names(__name__, globals(), __all__)
