"""The process-wide runtime: the store, the live-event publisher and the observers.

Built lazily on first use by the runtime factory, which the composition root
(:mod:`kitaru._compose`) installs when ``kitaru`` is imported: with ``KITARU_SERVER_URL`` set it
talks to that server (server mode); otherwise it uses the embedded SQLite store under
``KITARU_HOME`` and skips live-event publishing (local database mode). This module knows
neither: it only holds the runtime (see ``docs/architecture.md``).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kitaru import _config
from kitaru.events import _context as event_context
from kitaru.events._publisher import Publisher
from kitaru.events._transport import NoopTransport, Transport
from kitaru.exceptions import KitaruStateError
from kitaru.runtime._logcapture import CaptureSettings, LogCapture
from kitaru.runtime._observer import ObserverGroup, RuntimeObserver

if TYPE_CHECKING:
    from kitaru.events._models import EventRecord
    from kitaru.runtime._scope import CheckpointScope, FlowRun
    from kitaru.store._base import Store

__all__ = [
    "CANCEL_REQUESTED",
    "Runtime",
    "cancel_in_process",
    "current_runtime",
    "get_runtime",
    "reset_runtime",
    "set_runtime",
    "set_runtime_factory",
]

CANCEL_REQUESTED = "cancel requested"
"""Cancel reason of a run stopped through the store (handle, client or CLI)."""

logger = logging.getLogger("kitaru")


class Runtime:
    """Everything a running flow needs from its process.

    Args:
        store: Where durable records go.
        transport: Where live events go (``None``: live events are skipped).
        mode: ``"local"`` or ``"server"``.
        server_url: The server's base URL in server mode.
        api_token: The token sent to the server.
        queue_size: Bound of the live-event queue.
        heartbeat_interval: Seconds between execution heartbeats (``None``: none are sent).
            A heartbeat's answer also says whether someone asked to cancel the execution.
        error_detail: What failed attempts keep in the record: ``full`` or ``type``.
            Default: ``KITARU_ERROR_DETAIL``, then ``full``.
        capture_logs: Capture what checkpoints log and print (default: ``KITARU_CAPTURE_LOGS``,
            on); see ``docs/runtime-logs-and-metadata.md``.
    """

    def __init__(
        self,
        store: Store,
        transport: Transport | None = None,
        *,
        mode: str = "local",
        server_url: str | None = None,
        api_token: str | None = None,
        queue_size: int | None = None,
        heartbeat_interval: float | None = None,
        capture_logs: bool | None = None,
        error_detail: str | None = None,
    ) -> None:
        self.store = store
        self.error_detail = _config.error_detail(error_detail)
        self.mode = mode
        self.server_url = server_url
        self.api_token = api_token
        self.transport = transport
        self.publisher = Publisher(
            transport or NoopTransport(), max_queue=_config.queue_size(queue_size)
        )
        self.publishing = transport is not None
        self.flush_timeout = _config.flush_timeout()
        self._observers = ObserverGroup()
        self.observer_group = self._observers
        """The :class:`ObserverGroup` behind :attr:`observers` (checkpoints and the log capture
        notify it directly)."""
        self._hb_lock = threading.Lock()
        self._heartbeat_interval = heartbeat_interval
        self._active: dict[str, FlowRun | None] = {}
        self._hb_thread: threading.Thread | None = None
        self._hb_stop = threading.Event()
        self._closed = False
        capture = CaptureSettings.resolve(capture_logs)
        self.log_capture = LogCapture(self, capture) if capture.enabled else None
        if self.log_capture is not None:
            self.add_observer(self.log_capture)

    # -- observers ------------------------------------------------------------------------

    @property
    def observers(self) -> tuple[RuntimeObserver, ...]:
        """The observers, in the order they were added."""
        return self._observers.observers

    def add_observer(self, observer: RuntimeObserver) -> None:
        """Follow every flow and checkpoint of this runtime with ``observer``."""
        self._observers.add(observer)

    def remove_observer(self, observer: RuntimeObserver) -> None:
        """Stop notifying ``observer``."""
        self._observers.remove(observer)

    def notify(self, hook: str, *args: Any) -> None:
        """Call the :class:`RuntimeObserver` method ``hook`` on every observer; never raises.

        An observer that raises is logged once at WARNING with its name, and every failure is
        counted (:meth:`observer_failures`).
        """
        self._observers.notify(hook, *args)

    def observer_failures(self) -> dict[str, int]:
        """How often each observer raised, by its class's module and qualified name."""
        return self._observers.failures()

    def dispatch(self, record: EventRecord, scope: CheckpointScope) -> None:
        """Give one event to the observers, then queue it for the transport."""
        group = self._observers
        for obs in group.event_observers:  # notify() inlined: this runs once per progress() call
            try:
                obs.on_event(record, scope)
            except Exception as exc:
                group.failed(obs, "on_event", exc)
        if self.publishing:
            self.publisher.submit(record)

    # -- heartbeats -----------------------------------------------------------------------

    def execution_started(self, exec_id: str, run: FlowRun | None = None) -> None:
        """Start sending heartbeats for ``exec_id``; ``run`` learns of cancel requests."""
        with self._hb_lock:
            self._active[exec_id] = run
            if self._heartbeat_interval is None:
                return
            if self._hb_thread is None or not self._hb_thread.is_alive():
                self._hb_stop.clear()
                self._hb_thread = threading.Thread(
                    target=self._heartbeat_loop, name="kitaru-heartbeat", daemon=True
                )
                self._hb_thread.start()

    def execution_finished(self, exec_id: str) -> None:
        """Stop sending heartbeats for ``exec_id``."""
        with self._hb_lock:
            self._active.pop(exec_id, None)

    def cancel(self, exec_id: str, reason: str = CANCEL_REQUESTED) -> bool:
        """Cancel ``exec_id`` if it runs in this process; True when it does."""
        with self._hb_lock:
            run = self._active.get(exec_id)
        if run is None:
            return False
        run.cancel(reason)
        return True

    def _heartbeat_loop(self) -> None:
        interval = self._heartbeat_interval or 2.0
        while not self._hb_stop.wait(interval):
            with self._hb_lock:
                active = list(self._active.items())
            for exec_id, run in active:
                try:
                    cancel = self.store.heartbeat(exec_id)
                except Exception:
                    logger.debug("kitaru: heartbeat for %s failed", exec_id, exc_info=True)
                    continue
                if cancel and run is not None:
                    run.cancel(CANCEL_REQUESTED)

    # -- shutdown -------------------------------------------------------------------------

    def shutdown(self, timeout: float | None = None) -> None:
        """Flush within a bound, stop background threads, close the store. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._hb_stop.set()
        self.publisher.shutdown(timeout if timeout is not None else self.flush_timeout * 4)
        self.notify("shutdown")
        try:
            self.store.close()
        except Exception:
            logger.debug("kitaru: store close failed", exc_info=True)


RuntimeFactory = Callable[[], Runtime]
"""Builds the process's runtime from configuration (installed by the composition root)."""

_lock = threading.RLock()
_runtime: Runtime | None = None
_runtime_pid = 0
_factory: RuntimeFactory | None = None


def set_runtime_factory(factory: RuntimeFactory) -> None:
    """Make ``factory`` build the runtime that :func:`get_runtime` returns from now on.

    ``import kitaru`` installs the default one (:func:`kitaru._compose.build_default_runtime`);
    a runtime already built stays until :func:`reset_runtime`.
    """
    global _factory
    with _lock:
        _factory = factory


def _build() -> Runtime:
    factory = _factory
    if factory is None:  # only when kitaru.runtime is used without `import kitaru` having run
        raise KitaruStateError(
            "no runtime factory is installed: import kitaru (which installs the default one) "
            "or call kitaru.runtime.set_runtime_factory()"
        )
    return factory()


def get_runtime() -> Runtime:
    """The process's runtime, built from configuration on first use (and again after fork)."""
    global _runtime, _runtime_pid
    rt = _runtime
    if rt is not None and _runtime_pid == os.getpid():
        return rt
    with _lock:
        if _runtime is None or _runtime_pid != os.getpid():
            _runtime = _build()
            _runtime_pid = os.getpid()
        return _runtime


def current_runtime() -> Runtime | None:
    """The runtime this process already uses, or ``None``.

    Unlike :func:`get_runtime`, this never builds one (so never opens a store).
    """
    rt = _runtime
    return rt if rt is not None and _runtime_pid == os.getpid() else None


def set_runtime(runtime: Runtime | None) -> Runtime | None:
    """Replace the process's runtime (``None``: rebuild from configuration on next use).

    Returns the previous runtime, which is not shut down.
    """
    global _runtime, _runtime_pid
    with _lock:
        previous = _runtime
        _runtime = runtime
        _runtime_pid = os.getpid()
        return previous


def cancel_in_process(exec_id: str, reason: str = CANCEL_REQUESTED) -> bool:
    """Cancel ``exec_id`` when it runs in this process's runtime (never builds one)."""
    rt = current_runtime()
    return rt is not None and rt.cancel(exec_id, reason)


def reset_runtime() -> None:
    """Shut the current runtime down; the next use builds a fresh one from configuration."""
    previous = set_runtime(None)
    if previous is not None:
        previous.shutdown()


def _current_publisher() -> Publisher | None:
    rt = current_runtime()
    return rt.publisher if rt is not None and rt.publishing else None


# kitaru.events.flush() and stats() reach the publisher through this lookup: the events layer
# sits below the runtime and cannot import it.
event_context.set_publisher_lookup(_current_publisher)


@atexit.register
def _shutdown_at_exit() -> None:
    rt = current_runtime()
    if rt is not None:
        rt.shutdown()
