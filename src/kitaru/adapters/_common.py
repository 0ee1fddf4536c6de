"""What every adapter shares: lazy framework imports, text helpers, live-event lanes.

The shared contract of adapter live events (docs/adapters.md, "Lifecycle"):

* adapters publish through :func:`kitaru.events.publish`, so their fields arrive under
  ``payload["data"]`` and kitaru's metadata under ``payload["kitaru"]``;
* every publish is best-effort: any exception is swallowed and logged at debug level, so a
  disabled backend, a raising transport or a call outside a checkpoint never changes the agent
  run;
* one stream is ``<prefix>.started`` (no flush), then item events, then exactly one terminal
  ``<prefix>.completed`` or ``<prefix>.failed`` (both flushed);
* a failed event carries the exception's class name and, as its message, either the exception's
  ``safe_live_message`` attribute or the class name again, never ``str(exc)``;
* an item that cannot be described still gets a fallback event naming only its class (never its
  ``repr``), and the framework's stream keeps draining.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar

from kitaru import environment_variables as ev
from kitaru import events
from kitaru.events._jsonsafe import clip_text
from kitaru.exceptions import KitaruFeatureNotAvailableError, KitaruUsageError

__all__ = [
    "DELTA_INTERVAL_ENV",
    "DISPLAY_MAX_CHARS",
    "ID_MAX_CHARS",
    "MESSAGE_MAX_CHARS",
    "TEXT_DELTA_MAX_CHARS",
    "AdapterPolicy",
    "LiveStream",
    "MissingExtraError",
    "ToolClock",
    "clip_text",
    "display_text",
    "failure_message",
    "ident",
    "maybe_await",
    "normalize_name",
    "require_module",
    "resolve_delta_interval",
    "terminal_status",
    "text_delta_fields",
    "text_or_none",
]

logger = logging.getLogger("kitaru.adapters")

DISPLAY_MAX_CHARS = 240
"""Longest ``display`` of an adapter event (whitespace collapsed, ``...`` when clipped)."""

MESSAGE_MAX_CHARS = 500
"""Longest ``message`` of a failed adapter event (from ``safe_live_message``)."""

TEXT_DELTA_MAX_CHARS = 240
"""Longest opted-in ``text_delta`` of an adapter event (``...`` when clipped)."""

ID_MAX_CHARS = 200
"""Longest name or ID (tool name, call ID, model) an adapter event carries."""

DELTA_INTERVAL_ENV = ev.KITARU_ADAPTER_DELTA_INTERVAL
"""Environment variable: seconds between two delta events of one message (default 0.25)."""

_DEFAULT_DELTA_INTERVAL = 0.25

_WS = re.compile(r"\s+")
_NAME_JUNK = re.compile(r"[^0-9A-Za-z_]+")


class MissingExtraError(KitaruFeatureNotAvailableError, ImportError):
    """An adapter's framework is not installed; the message names the extra to install.

    It is both a :class:`~kitaru.KitaruFeatureNotAvailableError` and an :class:`ImportError`, so
    either ``except`` clause catches it.
    """


def require_module(module: str, *, extra: str, feature: str) -> ModuleType:
    """Import ``module`` for ``feature``, or raise :class:`MissingExtraError` naming ``extra``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{feature} needs the optional dependency {module!r}, which is not installed: "
            f"pip install 'kitaru[{extra}]'"
        ) from exc


# -- text ---------------------------------------------------------------------------------


def display_text(text: object, limit: int = DISPLAY_MAX_CHARS) -> str:
    """A one-line label: whitespace collapsed, clipped to ``limit`` with a trailing ``...``."""
    return clip_text(_WS.sub(" ", str(text)).strip(), limit)


def text_or_none(value: object) -> str | None:
    """``value`` when it is a non-empty string, else ``None`` (framework fields are untyped)."""
    return value if isinstance(value, str) and value else None


def ident(value: object) -> str | None:
    """A name or ID for an event field: a non-empty string clipped to :data:`ID_MAX_CHARS`."""
    text = text_or_none(value)
    return None if text is None else clip_text(text, ID_MAX_CHARS)


def text_delta_fields(text: str, fallback: str) -> dict[str, str]:
    """An opted-in delta's text: ``text_delta`` (clipped) and the ``display`` showing it."""
    return {
        "text_delta": clip_text(text, TEXT_DELTA_MAX_CHARS),
        "display": display_text(text) or fallback,
    }


def failure_message(exc: BaseException) -> str:
    """The message a failed event may carry: ``safe_live_message`` if set, else the class name.

    ``str(exc)`` is never used: exception text often holds prompts, arguments or secrets.
    """
    safe = getattr(exc, "safe_live_message", None)
    if isinstance(safe, str) and safe.strip():
        return display_text(safe, MESSAGE_MAX_CHARS)
    return type(exc).__name__


def normalize_name(name: object, fallback: str) -> str:
    """A label safe for event fields and checkpoint names.

    Runs of other characters than letters, digits and ``_`` become one ``_``, edges are
    stripped: ``"Support Agent!!"`` -> ``"Support_Agent"``.
    """
    text = _NAME_JUNK.sub("_", name if isinstance(name, str) else "").strip("_")
    return text[:100] or fallback


# -- policies, awaitables, statuses -------------------------------------------------------


def resolve_delta_interval(value: float | None) -> float:
    """Seconds between two delta events of one message: argument > environment > 0.25.

    Raises:
        KitaruUsageError: The value (or the environment variable) is not a number >= 0.
    """
    source = "delta_interval"
    if value is None:
        raw = os.environ.get(DELTA_INTERVAL_ENV, "").strip()
        if not raw:
            return _DEFAULT_DELTA_INTERVAL
        source = DELTA_INTERVAL_ENV
        try:
            value = float(raw)
        except ValueError:
            raise KitaruUsageError(f"{DELTA_INTERVAL_ENV} must be a number, got {raw!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise KitaruUsageError(f"{source} must be a number of seconds >= 0, got {value!r}")
    return float(value)


class AdapterPolicy:
    """What every adapter's capture policy shares (each keeps its framework's field names).

    Subclasses are frozen dataclasses with an ``emit_child_events`` flag, a ``delta_interval``
    and one boolean text opt-in whose field name :attr:`TEXT_FIELD` names;
    :attr:`include_text` reads it under one name for all adapters.
    """

    __slots__ = ()

    TEXT_FIELD: ClassVar[str] = "include_text"
    BOOL_FIELDS: ClassVar[tuple[str, ...]] = ()

    emit_child_events: bool
    delta_interval: float | None

    @property
    def include_text(self) -> bool:
        """Whether live events may carry clipped model text (the adapter's text opt-in)."""
        return bool(getattr(self, self.TEXT_FIELD))

    def __post_init__(self) -> None:
        self._validate()

    def _validate(self) -> None:
        name = type(self).__name__
        for field in (self.TEXT_FIELD, "emit_child_events", *self.BOOL_FIELDS):
            value = getattr(self, field)
            if not isinstance(value, bool):
                raise KitaruUsageError(f"{name}.{field} must be True or False, got {value!r}")
        interval = getattr(self, "delta_interval", None)
        if interval is not None:
            resolve_delta_interval(interval)


async def maybe_await(value: Any) -> Any:
    """``await value`` when it is awaitable (a coroutine callback), else ``value`` itself."""
    if inspect.isawaitable(value):
        return await value
    return value


_CANCEL_NAMES = frozenset({"CancelledError", "KeyboardInterrupt", "RunCancelled"})


def terminal_status(exc: BaseException) -> str:
    """``cancelled`` for a cancelled run (asyncio, Ctrl-C, the framework's own), else ``failed``."""
    if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
        return "cancelled"
    names = {cls.__name__ for cls in type(exc).__mro__}
    return "cancelled" if names & _CANCEL_NAMES else "failed"


class ToolClock:
    """Start times, durations and outcomes of one run's tool calls, by call ID."""

    __slots__ = ("_lock", "_outcomes", "_started")

    def __init__(self) -> None:
        self._started: dict[str, float] = {}
        self._outcomes: dict[str, tuple[str, float | None]] = {}
        self._lock = threading.Lock()

    def start(self, call_id: str) -> None:
        """Note that tool call ``call_id`` started now."""
        with self._lock:
            self._started.setdefault(call_id, time.monotonic())

    def finish(self, call_id: str, outcome: str) -> float | None:
        """Note the outcome of ``call_id``; returns its duration in seconds (``None`` if unseen)."""
        with self._lock:
            begun = self._started.pop(call_id, None)
            duration = None if begun is None else round(time.monotonic() - begun, 6)
            self._outcomes[call_id] = (outcome, duration)
        return duration

    def result(self, call_id: str) -> tuple[str, float | None] | None:
        """``(outcome, duration_s)`` of a finished call, or ``None``."""
        with self._lock:
            return self._outcomes.get(call_id)


@dataclass
class _Pending:
    fields: dict[str, Any]
    kind: str | None
    text_limit: int = TEXT_DELTA_MAX_CHARS
    count: int = 0
    text: str = ""
    last_emit: float = float("-inf")


# -- live-event lanes ---------------------------------------------------------------------


class LiveStream:
    """One adapter stream's live events: started, items, exactly one completed or failed.

    Every method is best-effort and never raises (a publish failure is logged at debug level).

    Args:
        prefix: Kind prefix, e.g. ``"pydantic_ai.stream"``.
        adapter: Value of the ``adapter`` field.
        label: Human name used in displays, e.g. ``"PydanticAI"``.
        base: Fields every event of this stream carries (after ``adapter``).
        enabled: ``False`` publishes nothing (the stream is still tracked).
        item_kind: Kind of item events (default ``<prefix>.event``).
        delta_interval: Seconds between two delta events of one message (see
            :func:`resolve_delta_interval`).

    Attributes:
        status: The terminal status :meth:`track` publishes (``interrupted`` via
            :meth:`interrupt`).
        terminal: Extra fields of the terminal event, filled while the stream runs.
    """

    def __init__(
        self,
        prefix: str,
        *,
        adapter: str,
        label: str,
        base: Mapping[str, Any] | None = None,
        enabled: bool = True,
        item_kind: str | None = None,
        delta_interval: float | None = None,
    ) -> None:
        self.prefix = prefix
        self.label = label
        self.enabled = enabled
        self.item_kind = item_kind or f"{prefix}.event"
        self.base: dict[str, Any] = {"adapter": adapter, **(base or {})}
        self.event_count = 0
        self.started = False
        self.finished = False
        self.status = "completed"
        self.terminal: dict[str, Any] = {}
        self.delta_count = 0
        self.delta_interval = resolve_delta_interval(delta_interval)
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()

    # The kind names of this stream.
    @property
    def started_kind(self) -> str:
        """``<prefix>.started``."""
        return f"{self.prefix}.started"

    @property
    def completed_kind(self) -> str:
        """``<prefix>.completed``."""
        return f"{self.prefix}.completed"

    @property
    def failed_kind(self) -> str:
        """``<prefix>.failed``."""
        return f"{self.prefix}.failed"

    def _publish(self, kind: str, fields: Mapping[str, Any], *, flush: bool) -> None:
        if not self.enabled:
            return
        payload = {**self.base, **fields}
        payload["display"] = display_text(payload.get("display", ""))
        try:
            events.publish(kind, payload, flush=flush)
        except Exception:
            # Live events are best-effort: no publishing problem may reach the agent run.
            logger.debug("kitaru: adapter event %s was not published", kind, exc_info=True)

    def start(self, **fields: Any) -> None:
        """Publish ``<prefix>.started`` (once; no flush)."""
        with self._lock:
            if self.started:
                return
            self.started = True
        self._publish(
            self.started_kind,
            {"category": "lifecycle", "display": f"{self.label} stream started", **fields},
            flush=False,
        )

    def item(self, fields: Mapping[str, Any], *, kind: str | None = None) -> None:
        """Publish one item event; ``fields`` should hold ``category`` and ``display``."""
        with self._lock:
            if self.finished:
                return
            self.event_count += 1
        self._publish(kind or self.item_kind, fields, flush=False)

    def delta(
        self,
        key: str,
        fields: Mapping[str, Any],
        *,
        text: str | None = None,
        kind: str | None = None,
        text_limit: int = TEXT_DELTA_MAX_CHARS,
    ) -> None:
        """Coalesce one token or raw delta of message ``key``.

        The first delta of a message is published at once; later ones at most once per
        :attr:`delta_interval`, each event carrying ``delta_count`` (how many deltas it stands
        for) and, when ``text`` is given (the text opt-in), their joined text clipped to 240
        characters (``text_limit``) as ``text_delta``. :meth:`flush_deltas` publishes what is
        still pending.
        """
        now = time.monotonic()
        with self._lock:
            if self.finished:
                return
            self.delta_count += 1
            pending = self._pending.get(key)
            if pending is None:
                pending = self._pending[key] = _Pending(dict(fields), kind, text_limit)
            pending.fields = dict(fields)
            pending.count += 1
            if text and len(pending.text) <= pending.text_limit:
                pending.text += text
            ready = now - pending.last_emit >= self.delta_interval
            out = self._take(pending, now) if ready else None
        if out is not None:
            self.item(out[0], kind=out[1])

    def _take(self, pending: _Pending, now: float) -> tuple[dict[str, Any], str | None]:
        fields = {**pending.fields, "delta_count": pending.count}
        if pending.text:
            fields["text_delta"] = clip_text(pending.text, pending.text_limit)
            fields["display"] = display_text(pending.text, pending.text_limit) or fields.get(
                "display", ""
            )
        pending.count, pending.text, pending.last_emit = 0, "", now
        return fields, pending.kind

    def flush_deltas(self, key: str | None = None) -> None:
        """Publish the pending deltas of message ``key`` (of every message with ``None``)."""
        now = time.monotonic()
        with self._lock:
            keys = list(self._pending) if key is None else [key]
            outs = []
            for name in keys:
                pending = self._pending.pop(name, None)
                if pending is not None and pending.count:
                    outs.append(self._take(pending, now))
        for fields, kind in outs:
            self.item(fields, kind=kind)

    def interrupt(self, **fields: Any) -> None:
        """Mark the run as paused for a human or an approval.

        The terminal status becomes ``interrupted`` and ``fields`` (counts and IDs, no
        content) join the terminal event.
        """
        self.status = "interrupted"
        self.terminal.update(fields)

    @contextlib.contextmanager
    def track(self, **start_fields: Any) -> Iterator[LiveStream]:
        """Publish ``started`` now, then exactly one terminal event when the block ends.

        A block that raises publishes ``failed`` (``status`` ``cancelled`` or ``failed``, see
        :func:`terminal_status`) and re-raises; one that returns publishes ``completed`` with
        :attr:`status` and :attr:`terminal`. Works in ``async`` code too.
        """
        self.start(status="started", **start_fields)
        try:
            yield self
        except BaseException as exc:
            self.flush_deltas()
            self.fail(exc, status=terminal_status(exc), **self.terminal)
            raise
        self.flush_deltas()
        self.complete(self.status, **self.terminal)

    def observe(
        self,
        obj: object,
        normalize: Callable[[Any], Mapping[str, Any] | None],
        *,
        kind: str | None = None,
    ) -> None:
        """Describe ``obj`` with ``normalize`` and publish it; ``None`` from it publishes nothing.

        A ``normalize`` that raises publishes the normalisation-failure fallback instead.
        """
        try:
            fields = normalize(obj)
        except Exception:
            logger.debug("kitaru: could not describe a %s stream item", self.label, exc_info=True)
            fields = self.fallback_fields(obj)
        if fields is not None:
            self.item(fields, kind=kind)

    def fallback_fields(self, obj: object) -> dict[str, Any]:
        """The fields of the event for an item that could not be described (class name only)."""
        return {
            "category": "stream_event_normalization_failed",
            "display": f"{self.label} stream event",
            "event_type": type(obj).__name__,
        }

    def complete(self, status: str = "completed", **fields: Any) -> None:
        """Publish ``<prefix>.completed`` (once, flushed) unless the stream already ended."""
        with self._lock:
            if self.finished:
                return
            self.finished = True
            count = self.event_count
        self._publish(
            self.completed_kind,
            {
                "category": "lifecycle",
                "display": f"{self.label} stream completed: {status}",
                "status": status,
                "event_count": count,
                "delta_count": self.delta_count,
                **fields,
            },
            flush=True,
        )

    def fail(self, exc: BaseException, *, message: str | None = None, **fields: Any) -> None:
        """Publish ``<prefix>.failed`` (once, flushed) with the type, never the text, of ``exc``.

        Args:
            exc: The exception that ended the stream.
            message: An explicit safe message (default: :func:`failure_message`).
            **fields: Extra fields.
        """
        with self._lock:
            if self.finished:
                return
            self.finished = True
            count = self.event_count
        text = display_text(message, MESSAGE_MAX_CHARS) if message else failure_message(exc)
        error_type = fields.pop("error_type", type(exc).__name__)
        fields.setdefault("status", terminal_status(exc))
        self._publish(
            self.failed_kind,
            {
                "category": "lifecycle",
                "display": f"{self.label} stream failed: {text}",
                "error_type": error_type,
                "message": text,
                "event_count": count,
                "delta_count": self.delta_count,
                **fields,
            },
            flush=True,
        )
