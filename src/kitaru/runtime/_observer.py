"""Runtime observers: how the OpenTelemetry bridge (and anything like it) follows a run.

Observers are called synchronously on the thread running the flow or checkpoint, like an
OpenTelemetry ``SpanProcessor``: they must be quick, must not block, and should not raise. A
raising observer never changes a flow's or checkpoint's result: :class:`ObserverGroup` (the
shape of the OpenTelemetry SDK's multi-span-processor) catches it, logs the first failure of
each observer at WARNING with the observer's name, and counts every failure.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kitaru.events._models import EventRecord
    from kitaru.runtime._scope import CheckpointScope, FlowRun
    from kitaru.store._logs import LogLine
    from kitaru.store._records import CheckpointRecord

__all__ = ["ObserverGroup", "RuntimeObserver"]

logger = logging.getLogger("kitaru")


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

    def on_log_line(self, scope: CheckpointScope, line: LogLine) -> None:
        """A runtime log line was captured and attributed to ``scope``.

        See ``docs/runtime-logs-and-metadata.md``. Called on the thread that logged or printed
        the line (the end-of-checkpoint lines: on the checkpoint's thread, before the
        observers' ``on_checkpoint_end``). Anything this hook itself logs or prints there is
        not captured again. Only observers that override this method are called: with none, a
        captured line costs the observers nothing.
        """

    def shutdown(self) -> None:
        """The runtime is shutting down."""


def observer_name(observer: object) -> str:
    """How logs and counters name an observer: its class's module and qualified name."""
    cls = type(observer)
    return f"{cls.__module__}.{cls.__qualname__}"


class ObserverGroup:
    """The observers of one runtime, notified in the order they were added.

    Reading :attr:`observers` takes no lock (a tuple replaced as a whole), so notifying costs
    nothing when there are none. Each hook is called only on the observers whose class
    overrides it (the others would run :class:`RuntimeObserver`'s no-op): the per-hook tuples
    are made when an observer is added or removed, not on every checkpoint.
    """

    def __init__(self) -> None:
        self.observers: tuple[RuntimeObserver, ...] = ()
        self.line_observers: tuple[RuntimeObserver, ...] = ()
        """The observers that override :meth:`RuntimeObserver.on_log_line`."""
        self.event_observers: tuple[RuntimeObserver, ...] = ()
        """The observers that override :meth:`RuntimeObserver.on_event`."""
        self._by_hook: dict[str, tuple[RuntimeObserver, ...]] = {}
        self._lock = threading.Lock()
        self._failures: Counter[str] = Counter()

    def add(self, observer: RuntimeObserver) -> None:
        """Notify ``observer`` from now on (once, however often it is added)."""
        with self._lock:
            if observer not in self.observers:
                self._set((*self.observers, observer))

    def remove(self, observer: RuntimeObserver) -> None:
        """Stop notifying ``observer``."""
        with self._lock:
            self._set(tuple(o for o in self.observers if o is not observer))

    def _set(self, observers: tuple[RuntimeObserver, ...]) -> None:
        self._by_hook = {hook: _overriding(observers, hook) for hook in _HOOKS}
        self.line_observers = self._by_hook["on_log_line"]
        self.event_observers = self._by_hook["on_event"]
        self.observers = observers

    def notify(self, hook: str, *args: Any) -> None:
        """Call ``hook`` (a :class:`RuntimeObserver` method name) on every observer.

        Never raises: a failing observer is reported by :meth:`failed` and the others still run.
        """
        observers = self._by_hook.get(hook)
        for observer in self.observers if observers is None else observers:
            try:
                getattr(observer, hook)(*args)
            except Exception as exc:
                self.failed(observer, hook, exc)

    def notify_log_line(self, scope: CheckpointScope, line: LogLine) -> None:
        """Give one captured line to the observers that implement ``on_log_line``; never raises."""
        for observer in self.line_observers:
            try:
                observer.on_log_line(scope, line)
            except Exception as exc:
                self.failed(observer, "on_log_line", exc)

    def failed(self, observer: RuntimeObserver, hook: str, exc: Exception) -> None:
        """Count a failure of ``observer``; log its first one at WARNING, later ones at DEBUG."""
        name = observer_name(observer)
        with self._lock:
            self._failures[name] += 1
            first = self._failures[name] == 1
        if first:
            # The exception's type only: its text may quote user data (docs/architecture.md).
            logger.warning(
                "kitaru: observer %s failed in %s (%s); it keeps being called, its failures "
                "are counted (Runtime.observer_failures()) and logged at DEBUG",
                name,
                hook,
                type(exc).__name__,
            )
        logger.debug("kitaru: observer %s failed in %s", name, hook, exc_info=exc)

    def failures(self) -> dict[str, int]:
        """How often each observer failed, by :func:`observer_name`."""
        with self._lock:
            return dict(self._failures)


_HOOKS = tuple(
    name for name, value in vars(RuntimeObserver).items() if callable(value) and name[:1] != "_"
)


def _overriding(observers: tuple[RuntimeObserver, ...], hook: str) -> tuple[RuntimeObserver, ...]:
    """The observers that do something in ``hook``: their class (or the instance) overrides it.

    An object that is not a :class:`RuntimeObserver` and lacks the hook stays in (calling it
    fails and is counted, as for any failing observer), except for ``on_log_line``, which was
    added later and is only called on observers that have it.
    """
    base = getattr(RuntimeObserver, hook)
    missing = base if hook == "on_log_line" else None
    return tuple(
        o
        for o in observers
        if getattr(type(o), hook, missing) is not base or hook in getattr(o, "__dict__", ())
    )
