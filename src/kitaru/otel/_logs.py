"""Live events as OpenTelemetry log records, emitted while the checkpoint runs.

A span is exported when it ends; a log record that carries the span's trace and span IDs is
exported at once, and log stores that join logs to traces (VictoriaLogs, Loki with Tempo,
Elastic, ...) show it under the trace while the checkpoint is still running. See
``docs/opentelemetry.md`` ("Log records") for what a record holds.

Cost on the publishing thread: ``progress()`` must stay cheaper than one ``Logger.info``, and
the SDK's ``Logger.emit`` alone costs more than that (it builds a record, bounds its
attributes and hands it to a processor). So the calling thread only appends a small tuple to
a bounded queue; a daemon thread, one per :class:`LogEmitter`, builds the attributes and
calls ``emit`` a few milliseconds later with the event's own timestamp. A full queue drops the
newest records and counts them; nothing ever waits for the network.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from opentelemetry._logs import Logger, LoggerProvider, SeverityNumber

from kitaru.events._kinds import CHECKPOINT_FAILED_KIND
from kitaru.otel import _attributes as attr
from kitaru.otel._events import event_attributes

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.util.types import AttributeValue

    from kitaru.events._models import EventRecord
    from kitaru.otel._settings import BridgeSettings
    from kitaru.runtime._scope import CheckpointScope

__all__ = [
    "DEFAULT_MAX_QUEUE",
    "LogEmitter",
    "emit_checkpoint_log",
    "record_fields",
]

logger = logging.getLogger("kitaru.otel")

DEFAULT_MAX_QUEUE = 4096
"""Most log records waiting for the emitter thread; newer ones are dropped and counted."""

_IDLE_WAIT_SECONDS = 0.5
# After a wake-up the emitter waits this long before draining, so it takes the interpreter
# lock once per burst of events rather than once per event: a thread woken for every
# progress() call would interrupt the flow's thread that often. Records still leave within
# tens of milliseconds (the SDK's batch processor then adds its own schedule delay).
_COALESCE_SECONDS = 0.05

_SEVERITY_TEXT = {
    SeverityNumber.TRACE: "TRACE",
    SeverityNumber.DEBUG: "DEBUG",
    SeverityNumber.INFO: "INFO",
    SeverityNumber.WARN: "WARN",
    SeverityNumber.ERROR: "ERROR",
    SeverityNumber.FATAL: "FATAL",
}

# One queued record: (context with the checkpoint span, the checkpoint's fixed attributes,
# the live event or None, event name, severity, body, extra attributes, timestamp in ns).
_Item = tuple[
    "Context",
    "Mapping[str, AttributeValue]",
    "EventRecord | None",
    "str | None",
    SeverityNumber,
    "str | None",
    "Mapping[str, AttributeValue] | None",
    int,
]


def record_fields(
    record: EventRecord, scope_correlation_id: str, settings: BridgeSettings
) -> tuple[SeverityNumber, str, dict[str, AttributeValue]]:
    """Severity, body and attributes of the log record for one live event.

    The span events' rules: the message and primitive data fields only while
    ``event_attributes`` is on, and of a failure its exception type only (the lifecycle
    event's fixed message, never the exception's text).
    """
    attrs = event_attributes(record, scope_correlation_id, settings)
    message = attrs.pop(attr.EVENT_MESSAGE, None)
    body = message if isinstance(message, str) else record.kind
    severity = SeverityNumber.INFO
    if record.kind == CHECKPOINT_FAILED_KIND:
        severity = SeverityNumber.ERROR
        error_type = record.body.get("error_type")
        if isinstance(error_type, str):
            attrs[attr.ERROR_TYPE] = error_type[: settings.max_value_length]
    status = record.body.get("status") if record.lifecycle else None
    if isinstance(status, str):
        attrs[attr.CHECKPOINT_STATUS] = status
    return severity, body, attrs


class LogEmitter:
    """Hands log records to an OpenTelemetry ``Logger`` from a daemon thread.

    Args:
        provider: The logger provider, used as it is (never configured or shut down here).
        settings: The bridge's privacy switches and bounds.
        max_queue: Most records waiting; newer ones are dropped and counted in
            :attr:`dropped`.
    """

    def __init__(
        self,
        provider: LoggerProvider,
        settings: BridgeSettings,
        *,
        version: str = "",
        max_queue: int = DEFAULT_MAX_QUEUE,
    ) -> None:
        self.provider = provider
        self.settings = settings
        self.logger: Logger = provider.get_logger(attr.TRACER_NAME, version)
        self.max_queue = max_queue
        self.dropped = 0
        self.emitted = 0
        self._queue: collections.deque[_Item] = collections.deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = -1
        self._closed = False
        self._busy = False  # the thread is handing records to the SDK
        self._urgent = False  # a drain is waiting: skip the coalescing pause

    # -- producer side (the publishing thread) --------------------------------------------

    def submit(
        self,
        context: Context,
        fixed: Mapping[str, AttributeValue],
        record: EventRecord | None,
        event_name: str | None = None,
        severity: SeverityNumber = SeverityNumber.INFO,
        body: str | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
        timestamp_ns: int = 0,
    ) -> None:
        """Queue one record (a live event, or the given fields); never blocks."""
        if self._pid != _PID:
            self._start()
        queue = self._queue
        if len(queue) >= self.max_queue or self._closed:
            self.dropped += 1
            return
        queue.append((context, fixed, record, event_name, severity, body, attributes, timestamp_ns))
        wake = self._wake
        if not wake.is_set():  # one wake-up per batch: Event.set() takes a lock
            wake.set()

    # -- the emitter thread ---------------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._pid == _PID:
                return
            # After a fork the parent's thread is gone (and what it had queued is the
            # parent's to send): start this process's own, empty.
            if self._pid != -1:
                self._queue.clear()
            self._pid = _PID
            self._wake = threading.Event()
            thread = threading.Thread(target=self._run, name="kitaru-otel-logs", daemon=True)
            self._thread = thread
            try:
                thread.start()
            except RuntimeError:  # interpreter shutting down: no new threads
                self._pid = -1

    def _run(self) -> None:
        queue = self._queue
        wake = self._wake
        while True:
            wake.clear()  # before draining: a record queued from here on wakes us again
            self._busy = True
            while queue:
                try:
                    item = queue.popleft()
                except IndexError:
                    break
                self._emit(item)
            self._busy = False
            if self._closed:
                return
            if wake.wait(_IDLE_WAIT_SECONDS) and not (self._closed or self._urgent):
                time.sleep(_COALESCE_SECONDS)

    def _emit(self, item: _Item) -> None:
        context, fixed, record, event_name, severity, body, extra, ts = item
        try:
            if record is not None:
                severity, body, attrs = record_fields(record, record.correlation_id, self.settings)
                event_name = record.kind
                ts = int(record.ts * 1e9)
                attributes: dict[str, AttributeValue] = {**fixed, **attrs}
            else:
                attributes = {**fixed, **(extra or {})}
            self.logger.emit(
                timestamp=ts or time.time_ns(),
                context=context,
                severity_number=severity,
                severity_text=_SEVERITY_TEXT.get(severity, severity.name),
                body=body,
                attributes=attributes,
                event_name=event_name,
            )
            self.emitted += 1
        except Exception:
            logger.debug("kitaru: emitting a log record failed", exc_info=True)

    # -- lifecycle --------------------------------------------------------------------------

    def drain(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds until every queued record was handed to the SDK."""
        deadline = time.monotonic() + timeout
        self._urgent = True
        try:
            while self._queue or self._busy:
                thread = self._thread
                if self._pid != _PID or thread is None or not thread.is_alive():
                    return not self._queue
                self._wake.set()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                time.sleep(min(remaining, 0.005))
            return True
        finally:
            self._urgent = False

    def close(self, timeout: float) -> bool:
        """Hand over what is queued (within ``timeout``) and stop the thread."""
        drained = self.drain(timeout)
        self._closed = True
        self._wake.set()
        return drained

    def force_flush(self, timeout: float) -> bool:
        """Drain the queue, then ask the provider to export (within ``timeout`` overall)."""
        start = time.monotonic()
        if not self.drain(timeout):
            return False
        flush = getattr(self.provider, "force_flush", None)
        if flush is None:
            return True
        remaining = max(0.0, timeout - (time.monotonic() - start))
        try:
            return bool(flush(int(remaining * 1000)))
        except Exception:
            logger.debug("kitaru: flushing log records failed", exc_info=True)
            return False


def emit_checkpoint_log(
    scope: CheckpointScope,
    body: str | None,
    *,
    severity: SeverityNumber = SeverityNumber.INFO,
    event_name: str | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
    timestamp_ns: int | None = None,
) -> None:
    """Emit one log record for a checkpoint execution, with its span's trace and span IDs.

    For other parts of kitaru that produce log lines of a checkpoint (not for live events:
    the bridge emits those itself). Goes to every OpenTelemetry bridge following the
    checkpoint whose log records are on; does nothing otherwise. Cheap and non-blocking: the
    record is queued and emitted from a helper thread. The caller is responsible for what
    ``body`` and ``attributes`` contain (they are sent as given).

    Args:
        scope: The running checkpoint execution.
        body: The record's body.
        severity: Its severity.
        event_name: Its event name, if it is an event.
        attributes: Extra attributes (the checkpoint's own attributes are always added).
        timestamp_ns: When it happened (default: now).
    """
    states = scope.otel
    if type(states) is not dict:
        return
    ts = timestamp_ns if timestamp_ns is not None else time.time_ns()
    for state in list(states.values()):
        emit = getattr(state, "emit_log", None)
        if emit is not None:
            emit(body, severity, event_name, attributes, ts)


# os.getpid() is a system call; the pid only changes at fork.
_PID = os.getpid()


def _after_fork() -> None:
    global _PID
    _PID = os.getpid()


os.register_at_fork(after_in_child=_after_fork)
