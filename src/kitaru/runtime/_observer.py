"""Runtime observers: how the OpenTelemetry bridge (and anything like it) follows a run.

Observers are called synchronously on the thread running the flow or checkpoint, like an
OpenTelemetry ``SpanProcessor``: they must be quick, must not block, and should not raise (a
raising observer is logged and skipped; it never changes a checkpoint's result).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kitaru.events._models import EventRecord
    from kitaru.runtime._scope import CheckpointScope, FlowRun
    from kitaru.store._records import CheckpointRecord

__all__ = ["RuntimeObserver"]


class RuntimeObserver:
    """Base class with no-op hooks; override the ones you need."""

    def on_flow_start(self, run: FlowRun) -> None:
        """A flow execution starts (before its body runs)."""

    def on_flow_end(self, run: FlowRun, status: str, error: BaseException | None) -> None:
        """A flow execution ends with ``completed`` or ``failed``."""

    def on_checkpoint_start(self, scope: CheckpointScope) -> None:
        """A checkpoint execution starts, before its ``started`` event is built.

        May set ``scope.trace_id`` / ``scope.span_id``; they go into ``payload["kitaru"]``.
        """

    def on_event(self, record: EventRecord, scope: CheckpointScope) -> None:
        """A live event was published inside ``scope`` (user data is not yet JSON-safe)."""

    def on_checkpoint_end(
        self, scope: CheckpointScope, status: str, error: BaseException | None
    ) -> None:
        """A checkpoint execution ended (``returned`` or ``failed``), after its terminal event."""

    def on_checkpoint_reused(self, run: FlowRun, record: CheckpointRecord) -> None:
        """A checkpoint call reused a recorded output (``record.status``: cached or replayed)."""

    def shutdown(self) -> None:
        """The runtime is shutting down."""
