"""Call-time validation of the watcher's arguments and options (``docs/live-events.md``).

Everything here runs before any network request, so a bad argument is a
:class:`~kitaru.KitaruUsageError` naming the parameter and the value, never a stream error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from kitaru._checks import check_execution_id, positive_number
from kitaru.exceptions import KitaruUsageError

__all__ = [
    "RequestArguments",
    "WatchOptions",
    "WatchRequest",
    "check_exec_id",
    "parse_options",
    "validate_request",
]


def check_exec_id(exec_id: object) -> str:
    """Validate an exact execution ID argument before any request (rules: ``kitaru._checks``).

    Raises:
        KitaruUsageError: With the message the server answers for the same value.
    """
    return check_execution_id(exec_id)


_ON_GAP = ("raise", "continue")


@dataclass(frozen=True, slots=True)
class WatchOptions:
    """Tuning of a live-event watcher, passed as keyword arguments to ``events()``/``aevents()``.

    Attributes:
        on_gap: ``"raise"`` (default): a ``gap`` frame (events lost past the server's retention)
            raises :class:`~kitaru.client.StreamGapError`. ``"continue"``: log it and go on.
        heartbeat_timeout: Seconds without a single byte from the server (events or heartbeat
            comments, sent about every 10 s) after which the connection counts as stalled and is
            reopened. Default: 30 (three missed heartbeats).
        max_outage: Seconds the watcher keeps trying to reach the server after losing it
            before it gives up with :class:`~kitaru.client.StreamDisconnectedError`. Default: 60.
        timeout: Seconds to connect and for each non-streaming request. Default: 10.
        backoff_initial: First reconnect delay in seconds. Default: the server's ``retry:``
            hint, else 0.5. Delays double up to ``backoff_max``, each with random jitter.
        backoff_max: Largest reconnect delay in seconds. Default: 5.
        transport: An ``httpx`` transport used instead of the network (tests, custom TLS).
    """

    on_gap: str = "raise"
    heartbeat_timeout: float = 30.0
    max_outage: float = 60.0
    timeout: float = 10.0
    backoff_initial: float | None = None
    backoff_max: float = 5.0
    transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None


@dataclass(frozen=True, slots=True)
class WatchRequest:
    """The validated arguments of one watch."""

    exec_id: str
    kinds: tuple[str, ...] | None
    checkpoint: str | None
    correlation_ids: tuple[str, ...] | None
    since: str | None
    reconnect: bool


def parse_options(options: Mapping[str, Any]) -> WatchOptions:
    """Validate the ``**options`` of ``events()``; unknown names are usage errors."""
    known = set(WatchOptions.__slots__)
    unknown = sorted(set(options) - known)
    if unknown:
        raise KitaruUsageError(
            f"unknown watcher option(s) {', '.join(map(repr, unknown))}; "
            f"expected some of {', '.join(sorted(known))}"
        )
    values: dict[str, Any] = {}
    if "on_gap" in options:
        on_gap = options["on_gap"]
        if on_gap not in _ON_GAP:
            raise KitaruUsageError(f"on_gap must be 'raise' or 'continue', got {on_gap!r}")
        values["on_gap"] = on_gap
    for name in ("heartbeat_timeout", "max_outage", "timeout", "backoff_max"):
        if name in options:
            values[name] = positive_number(name, options[name])
    if options.get("backoff_initial") is not None:
        values["backoff_initial"] = positive_number("backoff_initial", options["backoff_initial"])
    transport = options.get("transport")
    if transport is not None:
        if not isinstance(transport, httpx.BaseTransport | httpx.AsyncBaseTransport):
            raise KitaruUsageError(
                f"transport must be an httpx transport, got {type(transport).__name__}"
            )
        values["transport"] = transport
    return WatchOptions(**values)


def _string_list(name: str, value: object, *, allow_newlines: bool = True) -> tuple[str, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
        raise KitaruUsageError(
            f"{name} must be a list of str, got {value!r}"
            + (" (wrap a single value in a list)" if isinstance(value, str) else "")
        )
    if not value:
        raise KitaruUsageError(f"{name} must not be empty; pass None for no {name} filter")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise KitaruUsageError(f"{name} must contain only non-blank str, got {item!r}")
        if not allow_newlines and ("\n" in item or "\r" in item):
            raise KitaruUsageError(f"{name} must not contain newlines, got {item!r}")
        out.append(item.strip())
    return tuple(dict.fromkeys(out))


RequestArguments = tuple[object, object, object, object, object, object]
"""The arguments of ``events()`` as given, in its order: ``exec_id``, ``kinds``, ``checkpoint``,
``correlation_ids``, ``since``, ``reconnect`` (what :func:`validate_request` checks)."""


def validate_request(
    exec_id: object,
    kinds: object,
    checkpoint: object,
    correlation_ids: object,
    since: object,
    reconnect: object,
) -> WatchRequest:
    """Check the arguments of ``events()``, in order; raises :class:`~kitaru.KitaruUsageError`."""
    exact = check_exec_id(exec_id)
    kind_list = None if kinds is None else _string_list("kinds", kinds, allow_newlines=False)
    corr = (
        None
        if correlation_ids is None
        else _string_list("correlation_ids", correlation_ids, allow_newlines=False)
    )
    if checkpoint is not None and (not isinstance(checkpoint, str) or not checkpoint.strip()):
        raise KitaruUsageError(f"checkpoint must be a non-blank str, got {checkpoint!r}")
    if since is not None:
        if not isinstance(since, str) or not since.strip():
            raise KitaruUsageError(f"since must be a non-blank cursor string, got {since!r}")
        if since != since.strip() or any(ord(c) < 32 or c == "\x7f" for c in since):
            raise KitaruUsageError(
                f"since must be a cursor from an earlier event, without whitespace or control "
                f"characters, got {since!r}"
            )
    if not isinstance(reconnect, bool):
        raise KitaruUsageError(f"reconnect must be True or False, got {reconnect!r}")
    return WatchRequest(
        exec_id=exact,
        kinds=kind_list,
        checkpoint=checkpoint.strip() if isinstance(checkpoint, str) else None,
        correlation_ids=corr,
        since=since,
        reconnect=reconnect,
    )
