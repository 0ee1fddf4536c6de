"""The running flow and the running checkpoint execution, carried in ``contextvars``.

Threads and tasks that inherit the checkpoint's context (``contextvars.copy_context()``, asyncio
tasks) share its scope, and so its one index counter.
"""

from __future__ import annotations

import contextvars
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from time import time as _now
from typing import TYPE_CHECKING, Any, cast

from kitaru import _config
from kitaru._ids import new_correlation_id, trace_id_for
from kitaru.events._context import current_scope
from kitaru.events._models import EventRecord
from kitaru.exceptions import KitaruCancelledError, KitaruUsageError
from kitaru.runtime._process import current_pid

_new_record = object.__new__

if TYPE_CHECKING:
    from kitaru.runtime._replay import ReplayPlan
    from kitaru.runtime._runtime import Runtime
    from kitaru.store._records import CheckpointRecord
    from kitaru.store._usage import UsageRecord

__all__ = [
    "INTERRUPTED",
    "CheckpointScope",
    "FlowRun",
    "current_checkpoint",
    "current_flow",
]

INTERRUPTED = "interrupted"
"""Cancel reason of a run stopped by Ctrl-C in its own process."""

_current_flow: contextvars.ContextVar[FlowRun | None] = contextvars.ContextVar(
    "kitaru_flow", default=None
)
# One variable with the events layer's: progress() and publish() read it there (the runtime sets
# it to CheckpointScope objects only, hence the narrower type here).
_current_checkpoint = cast("contextvars.ContextVar[CheckpointScope | None]", current_scope)


def current_flow() -> FlowRun | None:
    """The flow execution running in this context, if any."""
    return _current_flow.get()


def current_checkpoint() -> CheckpointScope | None:
    """The checkpoint execution running in this context, if any."""
    return _current_checkpoint.get()


class FlowRun:
    """One running flow execution in this process."""

    def __init__(
        self,
        *,
        runtime: Runtime,
        exec_id: str,
        flow_name: str,
        original_exec_id: str | None = None,
        replay: ReplayPlan | None = None,
    ) -> None:
        self.runtime = runtime
        self.exec_id = exec_id
        self.flow_name = flow_name
        self.trace_id = trace_id_for(exec_id)
        self.original_exec_id = original_exec_id
        self.replay = replay
        self.started_at = time.time()
        self.otel: Any = None  # state owned by the OpenTelemetry bridge
        self.cancel_reason: str | None = None
        """Why the run was cancelled, once it was (read at every cancellation point)."""
        self.final_status: str | None = None
        self._lock = threading.Lock()
        self._pid = current_pid()
        self._step_counts: dict[str, int] = {}
        self._seq = 0
        self._executor: ThreadPoolExecutor | None = None
        # What kitaru.log() and kitaru.record_usage() attached in the flow body.
        self.metadata: dict[str, Any] = {}
        self.usage: dict[str, UsageRecord] = {}

    def cancel(self, reason: str) -> None:
        """Ask the run to stop at its next cancellation point (the first reason stays)."""
        if self.cancel_reason is None:
            self.cancel_reason = reason

    def raise_if_cancelled(self) -> None:
        """A cancellation point: raise :class:`~kitaru.KitaruCancelledError` once cancelled.

        The points are listed in ``docs/outcomes.md``.
        """
        reason = self.cancel_reason
        if reason is not None:
            raise KitaruCancelledError(f"execution {self.exec_id} was cancelled ({reason})")

    def allocate_step(self, name: str) -> tuple[str, int]:
        """A unique step name (``name``, ``name_2``, ...) and start order for a checkpoint call.

        Step names are counted per process; a call made in another process than the flow's
        (a forked worker) gets an ``@<pid>`` suffix so it never takes a name the flow's own
        process hands out later.
        """
        pid = current_pid()
        with self._lock:
            count = self._step_counts.get(name, 0) + 1
            self._step_counts[name] = count
            seq = self._seq
            self._seq += 1
        step = name if count == 1 else f"{name}_{count}"
        if pid != self._pid:
            step = f"{step}@{pid}"
        return step, seq

    def executor(self) -> ThreadPoolExecutor:
        """The bounded pool behind ``.submit()`` (created on first use)."""
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=_config.max_workers(), thread_name_prefix="kitaru-submit"
                )
            return self._executor

    def close(self) -> None:
        """Wait for submitted work and release the pool."""
        with self._lock:
            pool, self._executor = self._executor, None
        if pool is not None:
            pool.shutdown(wait=True)


class CheckpointScope:
    """One checkpoint execution (one attempt of one checkpoint call) while its body runs."""

    __slots__ = (
        "_index_lock",
        "_meta",
        "_next_index",
        "attempt",
        "checkpoint_id",
        "checkpoint_type",
        "correlation_id",
        "exec_id",
        "flow_name",
        "item",
        "metadata",
        "name",
        "otel",
        "run",
        "span_id",
        "started_at",
        "step_name",
        "trace_id",
        "usage",
    )

    def __init__(
        self, run: FlowRun, record: CheckpointRecord, attempt: int, item: int | None = None
    ) -> None:
        """Attempt ``attempt`` of the checkpoint call ``record``.

        ``item``: the call's input position inside ``.map()``/``.product()``.
        """
        self.run = run
        self.item = item
        self.exec_id = run.exec_id
        self.flow_name = run.flow_name
        name = self.name = record.name
        self.checkpoint_id = record.checkpoint_id
        self.step_name = record.step_name
        self.checkpoint_type = record.checkpoint_type
        self.attempt = attempt
        self.correlation_id = new_correlation_id(name)
        self.trace_id: str | None = run.trace_id
        self.span_id: str | None = None
        self.otel: Any = None  # state owned by the OpenTelemetry bridge
        self.started_at = time.time()
        self._index_lock = threading.Lock()
        self._next_index = 0
        self._meta: dict[str, Any] | None = None
        # What kitaru.log() and kitaru.record_usage() attached (made on first use).
        self.metadata: dict[str, Any] | None = None
        self.usage: dict[str, UsageRecord] | None = None

    @property
    def meta(self) -> dict[str, Any]:
        """``payload["kitaru"]`` of this checkpoint execution (built once, then shared)."""
        meta = self._meta
        if meta is None:
            meta = {
                "source": "kitaru",
                "checkpoint_name": self.name,
                "correlation_id": self.correlation_id,
                "execution_id": self.exec_id,
                "checkpoint_id": self.checkpoint_id,
                "checkpoint_type": self.checkpoint_type,
                "flow_name": self.flow_name,
                "step_name": self.step_name,
                "attempt": self.attempt,
            }
            if self.item is not None:
                meta["item"] = self.item  # input position inside .map()/.product()
            if self.trace_id:
                meta["trace_id"] = self.trace_id
            if self.span_id:
                meta["span_id"] = self.span_id
            self._meta = meta
        return meta

    def next_index(self, explicit: int | None = None) -> int:
        """Take the next index of this lane, or check and take an explicit one."""
        with self._index_lock:
            if explicit is None:
                index = self._next_index
                self._next_index = index + 1
                return index
            else:
                if explicit < self._next_index:
                    raise KitaruUsageError(
                        f"index={explicit} is below the next free index {self._next_index} of "
                        f"checkpoint execution {self.correlation_id!r}; indexes only increase"
                    )
                index = explicit
            self._next_index = index + 1
            return index

    def emit(
        self,
        kind: str,
        body: dict[str, Any],
        *,
        correlation_id: str | None = None,
        index: int | None = None,
        lifecycle: bool = False,
        cancellation_point: bool = False,
    ) -> None:
        """Build one event on the calling thread and hand it to observers and the publisher.

        With ``cancellation_point`` this is one (``docs/outcomes.md``): a cancelled run raises
        here, before the index is taken. This runs once per ``progress()`` call, so the common
        path makes no Python call it can do without (``benchmarks/README.md``, "progress() on
        the calling thread").
        """
        run = self.run
        if cancellation_point and run.cancel_reason is not None:
            run.raise_if_cancelled()
        runtime = run.runtime
        observers = runtime.observer_group.event_observers
        if not runtime.publishing and not observers:
            # Nobody takes events (local database mode without a bridge): the index is still
            # taken, and an explicit one checked, as if the event had been published.
            self.next_index(index)
            return
        if index is None:  # next_index() without its call, for the common case
            lock = self._index_lock
            lock.acquire()
            try:
                index = self._next_index
                self._next_index = index + 1
            finally:
                lock.release()
        else:
            index = self.next_index(index)
        # The record's slots filled in place: cheaper than its __init__ (a Python call).
        record = _new_record(EventRecord)
        record.source = self
        record.kind = kind
        record.correlation_id = correlation_id or self.correlation_id
        record.index = index
        record.body = body
        record.ts = _now()  # the publish time: taken here, on the calling thread
        record.lifecycle = lifecycle
        record.seq = 0
        if observers:
            runtime.dispatch(record, self)
        else:  # what dispatch() does when no observer takes events
            runtime.publisher.submit(record)

    def check_cancelled(self) -> None:
        """A cancellation point: raise ``KitaruCancelledError`` once the run was cancelled."""
        if self.run.cancel_reason is not None:
            self.run.raise_if_cancelled()

    def flush_events(self) -> bool:
        """Wait, within the runtime's flush bound, until the events published so far are sent."""
        runtime = self.run.runtime
        return runtime.publisher.flush(runtime.flush_timeout)
