"""kitaru: durable flows whose checkpoints publish live events and OpenTelemetry traces.

The core public API::

    import kitaru
    from kitaru import checkpoint, flow, KitaruClient, ExecutionEvent

    kitaru.progress(...)            # a progress update from a running checkpoint
    kitaru.log(score=0.9)           # metadata on the running checkpoint execution's record
    kitaru.record_usage("m", input_tokens=10)  # token usage and cost of a model call
    kitaru.events.publish(...)      # a custom live event
    kitaru.events.flush(...)        # drain the process-local publisher

Subpackages with more surface are imported by path: ``kitaru.events``, ``kitaru.store``,
``kitaru.runtime``, ``kitaru.client``, ``kitaru.testing``, ``kitaru.otel``, ``kitaru.server``.
"""

from kitaru import _compose, events
from kitaru._public import publish_names
from kitaru._version import __version__
from kitaru.client._client import Executions, KitaruClient
from kitaru.events._api import progress
from kitaru.events._models import ExecutionEvent
from kitaru.exceptions import (
    KitaruBackendError,
    KitaruCancelledError,
    KitaruContextError,
    KitaruError,
    KitaruFeatureNotAvailableError,
    KitaruOutputError,
    KitaruStateError,
    KitaruUsageError,
)
from kitaru.runtime._annotations import log, record_usage
from kitaru.runtime._checkpoint import Checkpoint, checkpoint
from kitaru.runtime._flow import Flow, FlowHandle, flow
from kitaru.store._records import AttemptRecord, CheckpointRecord, ExecutionRecord

# The composition root builds the default runtime (docs/architecture.md).
_compose.install()


__all__ = [
    "AttemptRecord",
    "Checkpoint",
    "CheckpointRecord",
    "ExecutionEvent",
    "ExecutionRecord",
    "Executions",
    "Flow",
    "FlowHandle",
    "KitaruBackendError",
    "KitaruCancelledError",
    "KitaruClient",
    "KitaruContextError",
    "KitaruError",
    "KitaruFeatureNotAvailableError",
    "KitaruOutputError",
    "KitaruStateError",
    "KitaruUsageError",
    "__version__",
    "checkpoint",
    "events",
    "flow",
    "log",
    "progress",
    "record_usage",
]

publish_names(__name__, globals(), __all__)
