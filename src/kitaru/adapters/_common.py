"""What every adapter shares: lazy framework imports, live-event lanes, adapter checkpoints.

The shared contract of adapter live events (ADAPTERS.md §1):

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
import contextvars
import importlib
import logging
import re
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any, TypeVar

from kitaru import events
from kitaru.exceptions import KitaruFeatureNotAvailableError
from kitaru.runtime._checkpoint import Checkpoint

__all__ = [
    "DISPLAY_MAX_CHARS",
    "MESSAGE_MAX_CHARS",
    "TEXT_DELTA_MAX_CHARS",
    "LiveStream",
    "MissingExtraError",
    "adapter_checkpoint",
    "call_extras",
    "clip_text",
    "current_extras",
    "display_text",
    "failure_message",
    "normalize_name",
    "require_module",
    "run_coroutine_sync",
]

logger = logging.getLogger("kitaru.adapters")

T = TypeVar("T")

DISPLAY_MAX_CHARS = 240
"""Longest ``display`` of an adapter event (whitespace collapsed, ``...`` when clipped)."""

MESSAGE_MAX_CHARS = 500
"""Longest ``message`` of a failed adapter event (from ``safe_live_message``)."""

TEXT_DELTA_MAX_CHARS = 240
"""Longest opted-in ``text_delta`` of an adapter event (``...`` when clipped)."""

_ELLIPSIS = "..."
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


def clip_text(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in ``...`` when it was cut."""
    if len(text) <= limit:
        return text
    if limit <= len(_ELLIPSIS):
        return _ELLIPSIS[:limit]
    return text[: limit - len(_ELLIPSIS)] + _ELLIPSIS


def display_text(text: object, limit: int = DISPLAY_MAX_CHARS) -> str:
    """A one-line label: whitespace collapsed, clipped to ``limit`` with a trailing ``...``."""
    return clip_text(_WS.sub(" ", str(text)).strip(), limit)


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
    ) -> None:
        self.prefix = prefix
        self.label = label
        self.enabled = enabled
        self.item_kind = item_kind or f"{prefix}.event"
        self.base: dict[str, Any] = {"adapter": adapter, **(base or {})}
        self.event_count = 0
        self.started = False
        self.finished = False
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
        self._publish(
            self.failed_kind,
            {
                "category": "lifecycle",
                "display": f"{self.label} stream failed: {text}",
                "error_type": error_type,
                "message": text,
                "event_count": count,
                **fields,
            },
            flush=True,
        )


# -- adapter checkpoints ------------------------------------------------------------------

_extras: contextvars.ContextVar[Any] = contextvars.ContextVar("kitaru_adapter_extras", default=None)


def adapter_checkpoint(
    func: Callable[..., Any],
    *,
    name: str,
    type: str,
    cache: bool = False,
    retries: int = 0,
) -> Checkpoint[Any, Any]:
    """An adapter-owned checkpoint: a real :class:`~kitaru.Checkpoint` (durable, replay, cache).

    Its arguments are the call's durable identity (they form the cache key with ``cache=True``);
    whatever must not be part of it (callbacks, dependencies, live SDK objects) travels in
    :func:`call_extras`.
    """
    return Checkpoint(func, name=name, type=type, cache=cache, retries=retries)


@contextlib.contextmanager
def call_extras(value: Any) -> Iterator[None]:
    """Make ``value`` the non-durable extras of the adapter checkpoint called in this block."""
    token = _extras.set(value)
    try:
        yield
    finally:
        _extras.reset(token)


def current_extras() -> Any:
    """The extras set by :func:`call_extras` around the running adapter checkpoint call."""
    return _extras.get()


def run_coroutine_sync(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run the coroutine ``factory()`` makes to its end from synchronous code.

    With no event loop running in this thread it uses :func:`asyncio.run`; inside a running
    loop (a notebook, an async framework) it runs on a helper thread with a copy of this
    context, so checkpoint scope and OpenTelemetry context carry over.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    ctx = contextvars.copy_context()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kitaru-adapter") as pool:
        return pool.submit(ctx.run, lambda: asyncio.run(factory())).result()
