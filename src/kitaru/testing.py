"""Test helpers: capture the live events your own checkpoints publish.

With pytest, use the ``kitaru_events`` fixture (registered automatically when kitaru is
installed)::

    def test_report(kitaru_events):
        report_flow("otters")
        assert kitaru_events.kinds() == [
            "kitaru.checkpoint.started",
            "kitaru.checkpoint.progress",
            "kitaru.checkpoint.progress",
            "kitaru.checkpoint.returned",
        ]

Anywhere else, use the context manager::

    with kitaru.testing.capture_events() as captured:
        report_flow("otters")
    print(captured.events)

Each capture runs on a fresh runtime (its own temporary SQLite store and an in-memory
transport) and restores the previous runtime afterwards, so no state leaks between tests. The
runtime gets the same observers the default runtime gets, so a test sees what production
sees: with OpenTelemetry set up (a global provider, ``kitaru.otel.configure()``, or the
``OTEL_*`` variables) the captured events carry ``span_id`` and spans are made. Pass
``default_observers=False`` to leave them out.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from kitaru._compose import install_default_observers
from kitaru.events._models import ExecutionEvent
from kitaru.events._transport import InMemoryTransport
from kitaru.runtime._observer import RuntimeObserver
from kitaru.runtime._runtime import Runtime, set_runtime
from kitaru.store._base import Store
from kitaru.store._sqlite import SqliteStore

__all__ = ["EventCapture", "capture_events"]


class EventCapture:
    """The live events published while a capture is active, in publish order.

    Attributes:
        runtime: The capture's runtime (add observers to it, read its store).
        transport: The in-memory transport the events are delivered to.
    """

    def __init__(self, runtime: Runtime, transport: InMemoryTransport) -> None:
        self.runtime = runtime
        self.transport = transport

    @property
    def store(self) -> Store:
        """The capture's durable store."""
        return self.runtime.store

    @property
    def events(self) -> list[ExecutionEvent]:
        """Every event published so far (the publisher is flushed first)."""
        self.runtime.publisher.flush(5.0)
        return self.transport.events()

    def kinds(self) -> list[str]:
        """The kinds of :attr:`events`, in order."""
        return [e.kind for e in self.events]

    def for_checkpoint(self, name: str) -> list[ExecutionEvent]:
        """Events of checkpoints with this name."""
        return [e for e in self.events if e.checkpoint_name == name]

    def lanes(self) -> dict[str, list[ExecutionEvent]]:
        """Events grouped by correlation ID (one lane per checkpoint execution), index order."""
        out: dict[str, list[ExecutionEvent]] = {}
        for event in self.events:
            out.setdefault(event.correlation_id, []).append(event)
        for lane in out.values():
            lane.sort(key=lambda e: e.index)
        return out

    def clear(self) -> None:
        """Forget the events captured so far."""
        self.runtime.publisher.flush(5.0)
        self.transport.clear()


@contextlib.contextmanager
def capture_events(
    home: str | os.PathLike[str] | None = None,
    *,
    observers: tuple[RuntimeObserver, ...] = (),
    queue_size: int | None = None,
    default_observers: bool = True,
) -> Iterator[EventCapture]:
    """Run the enclosed code on a fresh runtime that keeps every live event in memory.

    Args:
        home: Folder for the capture's SQLite store (default: a temporary folder, removed
            afterwards).
        observers: Runtime observers to add (for example an OpenTelemetry bridge), after the
            default ones.
        queue_size: Bound of the publisher queue.
        default_observers: Wire the observers the default runtime gets (the OpenTelemetry
            bridge, when OpenTelemetry is set up). ``False``: only ``observers``; use it when
            you pass your own bridge while OpenTelemetry is also set up globally, or two
            bridges would record every span.

    Yields:
        The :class:`EventCapture`.
    """
    with contextlib.ExitStack() as stack:
        folder = (
            Path(home)
            if home is not None
            else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kitaru-test-")))
        )
        transport = InMemoryTransport()
        runtime = Runtime(
            SqliteStore(folder / "kitaru.db"), transport, mode="local", queue_size=queue_size
        )
        if default_observers:
            install_default_observers(runtime)
        for obs in observers:
            runtime.add_observer(obs)
        previous = set_runtime(runtime)
        try:
            yield EventCapture(runtime, transport)
        finally:
            set_runtime(previous)
            runtime.shutdown()
