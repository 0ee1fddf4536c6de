"""Runtime log capture: what a checkpoint's code logs and prints, kept per checkpoint execution.

Two taps, installed once per process when the first capturing runtime starts a checkpoint:

* a hook on ``logging``'s record factory: every record a logger creates is also captured. No
  handler is added and no level, formatter or handler is changed, so the user's own handlers
  see every record unchanged;
* a tee around ``sys.stdout`` and ``sys.stderr``: every write goes to the original stream first,
  then complete lines are captured.

Each tap attributes a line by the ``contextvars`` checkpoint scope of the writing thread or
task, never by a global "current checkpoint", so fanned-out checkpoints running on threads each
keep their own lines. Lines are bounded per checkpoint execution (lines and bytes, see
:class:`CaptureSettings`); past the bound they are counted, and one ``NOTICE`` line saying how
many were dropped ends the checkpoint execution's log.

Captured lines are handed to a background shipper thread, which appends them to the store
every :data:`SHIP_INTERVAL` seconds (so ``kitaru executions logs --follow`` sees them within
about that delay). A failing store costs the flow nothing: lines wait (bounded) and are retried.
See ``docs/runtime-logs-and-metadata.md``.
"""

from __future__ import annotations

import collections
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from kitaru import _config
from kitaru import environment_variables as ev
from kitaru.runtime._observer import ObserverGroup, RuntimeObserver
from kitaru.runtime._scope import _current_checkpoint
from kitaru.store._logs import LogLine

if TYPE_CHECKING:
    from kitaru.runtime._runtime import Runtime
    from kitaru.runtime._scope import CheckpointScope, FlowRun

__all__ = ["SHIP_INTERVAL", "CaptureSettings", "LogCapture"]

logger = logging.getLogger("kitaru")

SHIP_INTERVAL = 0.2
"""Seconds between the shipper's appends to the store."""

DEFAULT_MAX_LINES = 1000
DEFAULT_MAX_BYTES = 256 * 1024
MAX_LINE_CHARS = 8192
"""Longer lines are cut to this many characters (with a mark)."""
_MAX_PENDING = 50_000  # lines waiting for the store before new ones are dropped
_FLOW_END_FLUSH = 5.0  # seconds a flow's end waits for its lines to reach the store


def _flag(raw: str) -> bool:
    value = raw.lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("expected a positive integer")
    return value


@dataclass(frozen=True, slots=True)
class CaptureSettings:
    """How runtime logs are captured (argument, then environment variable, then default).

    Attributes:
        enabled: Capture at all (``KITARU_CAPTURE_LOGS``, default on).
        max_lines: Lines kept per checkpoint execution (``KITARU_LOG_MAX_LINES``, 1000).
        max_bytes: Bytes of text kept per checkpoint execution (``KITARU_LOG_MAX_BYTES``, 256 KiB).
    """

    enabled: bool = True
    max_lines: int = DEFAULT_MAX_LINES
    max_bytes: int = DEFAULT_MAX_BYTES

    @classmethod
    def resolve(
        cls,
        enabled: bool | None = None,
        max_lines: int | None = None,
        max_bytes: int | None = None,
    ) -> CaptureSettings:
        """Settings from arguments, then the environment, then the defaults."""
        return cls(
            enabled=_config.resolve(enabled, ev.KITARU_CAPTURE_LOGS, _flag, True),
            max_lines=_config.resolve(
                max_lines, ev.KITARU_LOG_MAX_LINES, _positive_int, DEFAULT_MAX_LINES
            ),
            max_bytes=_config.resolve(
                max_bytes, ev.KITARU_LOG_MAX_BYTES, _positive_int, DEFAULT_MAX_BYTES
            ),
        )


class _ScopeLog:
    """Capture state of one checkpoint execution."""

    __slots__ = ("bytes", "dropped", "identity", "lines", "lock", "partial", "scope")

    def __init__(self, scope: CheckpointScope) -> None:
        self.scope = scope
        # The fields every line of this checkpoint execution shares, in :class:`LogLine`'s
        # order (exec_id, checkpoint_id, correlation_id, checkpoint, step_name, attempt):
        # read once here rather than for every captured line.
        self.identity = (
            scope.exec_id,
            scope.checkpoint_id,
            scope.correlation_id,
            scope.name,
            scope.step_name,
            scope.attempt,
        )
        self.lock = threading.Lock()
        self.lines = 0
        self.bytes = 0
        self.dropped = 0
        self.partial: dict[str, str] = {}


class LogCapture(RuntimeObserver):
    """Captures runtime log lines of one runtime's checkpoints and ships them to its store.

    Args:
        runtime: The runtime whose store receives the lines.
        settings: Bounds; default :meth:`CaptureSettings.resolve`.
    """

    def __init__(self, runtime: Runtime, settings: CaptureSettings | None = None) -> None:
        self.runtime = runtime
        self.settings = settings or CaptureSettings.resolve()
        self._group: ObserverGroup = runtime.observer_group
        # Running checkpoint executions by correlation ID: the scope itself until its first
        # line, then its _ScopeLog (most checkpoints log nothing; they never need one).
        self._scopes: dict[str, CheckpointScope | _ScopeLog] = {}
        self._scopes_lock = threading.Lock()
        self._pending: collections.deque[LogLine] = collections.deque()
        self._overflow = 0
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self._inflight = 0
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        # One append at a time (the shipper thread, or a flush): lines reach the store in the
        # order they were queued, so each checkpoint execution's lines get increasing cursors.
        self._ship_lock = threading.Lock()
        self._stopped = False
        self._warned = False

    # -- observer hooks ---------------------------------------------------------------------

    def on_checkpoint_start(self, scope: CheckpointScope) -> None:
        _install()
        self._scopes[scope.correlation_id] = scope

    def on_checkpoint_end(
        self, scope: CheckpointScope, status: str, error: BaseException | None
    ) -> None:
        with self._scopes_lock:  # not while _state() makes this execution's _ScopeLog
            state = self._scopes.pop(scope.correlation_id, None)
        if not isinstance(state, _ScopeLog):
            return  # nothing was captured: no partial line, nothing dropped
        with state.lock:
            partial, state.partial = state.partial, {}
        for stream, text in partial.items():
            if text:
                self._add(state, stream, stream.upper(), text, None, None, time.time())
        if state.dropped:
            self._add(
                state,
                "kitaru",
                "NOTICE",
                f"[kitaru] log truncated: {state.dropped} more line(s) of this checkpoint "
                f"execution were not kept (bound: {self.settings.max_lines} lines, "
                f"{self.settings.max_bytes} bytes)",
                None,
                None,
                time.time(),
                bounded=False,
            )
        if self._pending:  # ship this execution's lines now (nothing pending: no wake-up)
            self._wake.set()

    def on_flow_end(self, run: FlowRun, status: str, error: BaseException | None) -> None:
        # Before the execution turns terminal, so a follower sees every line before its end.
        self.flush(_FLOW_END_FLUSH)
        if run.metadata or run.usage:
            save = getattr(self.runtime.store, "save_execution_metadata", None)
            if save is not None:
                try:
                    save(run.exec_id, dict(run.metadata), [u.to_dict() for u in run.usage.values()])
                except Exception:
                    logger.warning(
                        "kitaru: could not store the metadata of execution %s",
                        run.exec_id,
                        exc_info=True,
                    )

    def shutdown(self) -> None:
        self.flush(_FLOW_END_FLUSH)
        self._stopped = True
        self._wake.set()

    # -- capture ----------------------------------------------------------------------------

    def _state(self, scope: CheckpointScope) -> _ScopeLog | None:
        """The capture state of ``scope`` while it runs (made at its first line), else ``None``."""
        state = self._scopes.get(scope.correlation_id)
        if state is None or isinstance(state, _ScopeLog):
            return state
        with self._scopes_lock:
            state = self._scopes.get(scope.correlation_id)
            if state is None or isinstance(state, _ScopeLog):
                return state
            made = self._scopes[scope.correlation_id] = _ScopeLog(state)
            return made

    def capture_record(self, scope: CheckpointScope, record: logging.LogRecord) -> None:
        """Capture one ``logging`` record of ``scope``."""
        state = self._state(scope)
        if state is None:
            return
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        if record.exc_info and record.exc_info[0] is not None:
            message += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if record.stack_info:
            message += "\n" + record.stack_info
        self._add(
            state,
            "log",
            record.levelname,
            message,
            record.name,
            f"{record.pathname}:{record.lineno}",
            record.created,
        )

    def capture_text(self, scope: CheckpointScope, stream: str, text: str) -> None:
        """Capture text written to ``stream`` (``stdout``/``stderr``); complete lines only."""
        state = self._state(scope)
        if state is None:
            return
        with state.lock:
            buffered = state.partial.get(stream, "") + text
            *complete, rest = buffered.split("\n")
            if len(rest) > MAX_LINE_CHARS:
                # A very long write without a line break: keep memory bounded, cut it here.
                complete.append(rest)
                rest = ""
            state.partial[stream] = rest
        now = time.time()
        for line in complete:
            self._add(state, stream, stream.upper(), line, None, None, now)

    def _add(
        self,
        state: _ScopeLog,
        stream: str,
        level: str,
        message: str,
        logger_name: str | None,
        source: str | None,
        ts: float,
        *,
        bounded: bool = True,
    ) -> None:
        """Keep one line of ``state``'s checkpoint execution, within its bounds if ``bounded``.

        Unbounded: kitaru's own end-of-log notice, which says how many lines the bounds cost.
        """
        if bounded:
            if len(message) > MAX_LINE_CHARS:
                message = message[:MAX_LINE_CHARS] + " [kitaru: line cut]"
            size = len(message.encode("utf-8", "replace"))
            with state.lock:
                if (
                    state.lines >= self.settings.max_lines
                    or state.bytes + size > self.settings.max_bytes
                ):
                    state.dropped += 1
                    return
                state.bytes += size
        with state.lock:
            index = state.lines
            state.lines += 1
            line = LogLine(*state.identity, index, ts, stream, level, message, logger_name, source)
            # Appended under the scope's lock: one checkpoint execution's lines queue in order.
            queued = len(self._pending) < _MAX_PENDING
            if queued:
                self._pending.append(line)
            else:
                self._overflow += 1
        if queued:
            self._ensure_thread()
        # Observers implementing on_log_line (the OpenTelemetry bridge exports the line as a
        # log record); none: one tuple read. Whatever they log or print meanwhile is not
        # captured again: the guard is up (it already is when the line comes from a tap; for
        # the end-of-checkpoint lines, whose scope no longer captures anyway, it is raised here).
        group = self._group
        if group.line_observers:
            busy = getattr(_guard, "busy", False)
            _guard.busy = True
            try:
                group.notify_log_line(state.scope, line)
            finally:
                _guard.busy = busy

    # -- shipping ---------------------------------------------------------------------------

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._thread_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._ship_loop, name="kitaru-log-shipper", daemon=True
                )
                self._thread.start()

    def _ship_loop(self) -> None:
        while not self._stopped:
            self._wake.wait(SHIP_INTERVAL)
            self._wake.clear()
            self._ship_once()

    def _ship_once(self) -> bool:
        """Append what is pending; False when the store failed (the lines stay pending)."""
        with self._ship_lock:
            return self._ship_locked()

    def _ship_locked(self) -> bool:
        batch: list[LogLine] = []
        with self._idle:
            while self._pending and len(batch) < 2000:
                batch.append(self._pending.popleft())
            self._inflight += len(batch)
        ok = True
        if batch:
            try:
                append = getattr(self.runtime.store, "append_logs", None)
                if append is not None:
                    append(batch)
            except Exception as exc:
                ok = False
                with self._idle:
                    self._pending.extendleft(reversed(batch))
                if not self._warned:
                    self._warned = True
                    logger.warning(
                        "kitaru: could not store captured log lines (%s); retrying",
                        type(exc).__name__,
                    )
            else:
                self._warned = False
        with self._idle:
            self._inflight -= len(batch)
            if not self._pending and not self._inflight:
                self._idle.notify_all()
        if self._overflow:
            dropped, self._overflow = self._overflow, 0
            logger.warning("kitaru: dropped %d captured log line(s): queue full", dropped)
        return ok

    def flush(self, timeout: float) -> bool:
        """Hand every pending line to the store within ``timeout`` seconds; True when done."""
        deadline = time.monotonic() + timeout
        while True:
            with self._idle:
                if not self._pending and not self._inflight:
                    return True
            if time.monotonic() >= deadline:
                return False
            if not self._ship_once():
                return False  # the store is failing: the shipper keeps retrying later
            with self._idle:
                if self._inflight and time.monotonic() < deadline:
                    self._idle.wait(min(0.05, max(0.0, deadline - time.monotonic())))


# -- the process-wide taps ---------------------------------------------------------------------

_install_lock = threading.Lock()
_guard = threading.local()


def _capture_for(scope: CheckpointScope) -> LogCapture | None:
    cap = getattr(scope.run.runtime, "log_capture", None)
    return cap if isinstance(cap, LogCapture) else None


def _make_factory(previous: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        # The common case (no checkpoint running in this context) costs one lookup.
        scope = _current_checkpoint.get()
        if scope is not None and not getattr(_guard, "busy", False):
            cap = _capture_for(scope)
            if cap is not None:
                _guard.busy = True
                try:
                    cap.capture_record(scope, record)
                except Exception:
                    pass  # capture never breaks the caller's logging
                finally:
                    _guard.busy = False
        return record

    factory._kitaru_capture = True  # type: ignore[attr-defined]
    return factory


class _Tee:
    """Wraps ``sys.stdout``/``sys.stderr``: writes pass through, lines of a checkpoint are kept."""

    def __init__(self, inner: IO[str], stream: str) -> None:
        self._kitaru_inner = inner
        self._kitaru_stream = stream

    def write(self, text: str) -> int:
        n = self._kitaru_inner.write(text)
        scope = _current_checkpoint.get()
        if (
            scope is not None
            and text
            and not getattr(_guard, "busy", False)
            # A logging handler writing a record to the terminal: the record itself was
            # captured already, as a ``log`` line.
            and sys._getframe(1).f_globals.get("__name__") != "logging"
        ):
            cap = _capture_for(scope)
            if cap is not None:
                _guard.busy = True
                try:
                    cap.capture_text(scope, self._kitaru_stream, text)
                except Exception:
                    pass
                finally:
                    _guard.busy = False
        return n

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kitaru_inner, name)


def _install() -> None:
    """Hook ``logging``'s record factory, and tee stdout/stderr, unless already done.

    The record factory sees every record a logger creates (after the logger's level check,
    before any handler): no handler is added, so the user's handlers, ``propagate`` settings
    and Python's last-resort stderr output behave exactly as without kitaru.
    """
    if (
        getattr(logging.getLogRecordFactory(), "_kitaru_capture", False)
        and isinstance(sys.stdout, _Tee)
        and isinstance(sys.stderr, _Tee)
    ):
        return
    with _install_lock:
        current = logging.getLogRecordFactory()
        if not getattr(current, "_kitaru_capture", False):
            logging.setLogRecordFactory(_make_factory(current))
        # Streams are wrapped again when someone (a test runner, a library) replaced them.
        if not isinstance(sys.stdout, _Tee) and sys.stdout is not None:
            sys.stdout = _Tee(sys.stdout, "stdout")
        if not isinstance(sys.stderr, _Tee) and sys.stderr is not None:
            sys.stderr = _Tee(sys.stderr, "stderr")
