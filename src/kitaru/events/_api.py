"""``kitaru.progress``, ``kitaru.events.publish`` and ``kitaru.events.flush``.

Misuse is loud, transport is quiet (``docs/architecture.md``, "Failure policy"): these
functions raise only :class:`~kitaru.exceptions.KitaruUsageError` for bad arguments and
:class:`~kitaru.exceptions.KitaruContextError` outside a checkpoint; argument checks run first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Real
from typing import Any

from kitaru.events._context import PublishingScope, current_scope, process_publisher
from kitaru.events._kinds import CHECKPOINT_PROGRESS_KIND, LIFECYCLE_KINDS, RESERVED_KINDS
from kitaru.exceptions import KitaruContextError, KitaruUsageError

__all__ = ["flush", "progress", "publish"]


def _check_message(message: object, *, required: bool) -> None:
    if message is None and not required:
        return
    if not isinstance(message, str):
        raise KitaruUsageError(f"message must be a str, got {type(message).__name__}")
    if required and not message.strip():
        raise KitaruUsageError("message must be a non-blank str, got a blank string")


def _check_correlation_id(correlation_id: object) -> str | None:
    if correlation_id is None:
        return None
    if not isinstance(correlation_id, str) or not correlation_id.strip():
        raise KitaruUsageError(f"correlation_id must be a non-blank str, got {correlation_id!r}")
    return correlation_id.strip()


def _check_index(index: object) -> int | None:
    if index is None:
        return None
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise KitaruUsageError(f"index must be a non-negative int, got {index!r}")
    return index


def _check_flush(flush_arg: object) -> None:
    if not isinstance(flush_arg, bool):
        raise KitaruUsageError(f"flush must be True or False, got {flush_arg!r}")


def _check_percent(percent: object) -> float | None:
    if percent is None:
        return None
    if type(percent) is float or type(percent) is int:  # the common case, without the ABC check
        if 0.0 <= percent <= 1.0:  # NaN fails this comparison
            return float(percent)
        raise KitaruUsageError(f"percent must be a number from 0 to 1, got {percent!r}")
    if isinstance(percent, bool) or not isinstance(percent, Real):
        raise KitaruUsageError(
            f"percent must be a number from 0 to 1, got {type(percent).__name__}"
        )
    value = float(percent)
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise KitaruUsageError(f"percent must be a number from 0 to 1, got {percent!r}")
    return value


def _scope(api: str) -> PublishingScope:
    scope = current_scope.get()
    if scope is None:
        raise KitaruContextError(
            f"{api} must be called while a @checkpoint function body is running"
        )
    # A cancellation point (docs/outcomes.md): a cancelled run stops here.
    scope.check_cancelled()
    return scope


def publish(
    kind: str,
    payload: Mapping[str, Any] | None = None,
    *,
    message: str | None = None,
    correlation_id: str | None = None,
    index: int | None = None,
    flush: bool = False,
) -> None:
    """Publish a custom live event from the running checkpoint.

    The event's payload is ``{"kitaru": {...}, "message": message?, "data": payload?}``;
    ``payload["kitaru"]`` is kitaru's metadata and is never taken from user data.

    Args:
        kind: Your event type, for example ``"training.batch.completed"``. It cannot contain
            newlines and cannot be a control name (``cursor``, ``end``, ``gap``, ``error``,
            ``system``) or one of kitaru's lifecycle kinds.
        payload: Your data (a mapping), placed under the payload's ``data`` key and made
            JSON-safe.
        message: A human-readable message.
        correlation_id: Publish under this correlation ID instead of the checkpoint
            execution's (the index still comes from the checkpoint execution's counter).
        index: An explicit index, at least the next free one; the counter continues after it.
        flush: Wait (briefly, bounded) until the event has been handed to the backend.

    Raises:
        KitaruUsageError: An argument is invalid (checked before the scope).
        KitaruContextError: Called outside a running ``@checkpoint`` body.
        KitaruCancelledError: The execution was cancelled (this call is a cancellation
            point).
    """
    if payload is not None and not isinstance(payload, Mapping):
        raise KitaruUsageError(f"payload must be a Mapping or None, got {type(payload).__name__}")
    _check_message(message, required=False)
    if not isinstance(kind, str):
        raise KitaruUsageError(f"kind must be a str, got {type(kind).__name__}")
    if "\n" in kind or "\r" in kind:
        raise KitaruUsageError(f"kind must not contain newlines, got {kind!r}")
    name = kind.strip()
    if not name:
        raise KitaruUsageError("kind must be a non-blank str, got a blank string")
    if name in RESERVED_KINDS:
        raise KitaruUsageError(
            f"kind {name!r} is reserved for the stream protocol's control frames "
            f"({', '.join(sorted(RESERVED_KINDS))})"
        )
    if name in LIFECYCLE_KINDS:
        raise KitaruUsageError(f"kind {name!r} is published by kitaru itself and is reserved")
    cid = _check_correlation_id(correlation_id)
    idx = _check_index(index)
    _check_flush(flush)
    scope = _scope("kitaru.events.publish()")
    body: dict[str, Any] = {}
    if message is not None:
        body["message"] = message
    if payload is not None:
        body["data"] = dict(payload)
    scope.emit(name, body, correlation_id=cid, index=idx)
    if flush:
        scope.flush_events()


def progress(
    message: str,
    *,
    percent: float | None = None,
    correlation_id: str | None = None,
    flush: bool = False,
    **fields: Any,
) -> None:
    """Publish a human-readable progress update from the running checkpoint.

    Args:
        message: What is happening now (a non-blank string).
        percent: How far along, a number from 0 to 1 (stored as a float under ``data``).
        correlation_id: Publish under this correlation ID instead of the checkpoint
            execution's.
        flush: Wait, as for :func:`publish`.
        **fields: Extra fields, placed under the payload's ``data`` key.

    Raises:
        KitaruUsageError: An argument is invalid (checked before the scope).
        KitaruContextError: Called outside a running ``@checkpoint`` body.
        KitaruCancelledError: As for :func:`publish`: this call is a cancellation point too.
    """
    # This runs on the calling thread for every progress() call, so the common cases are checked
    # inline and the helpers (which raise the errors) run only for what these do not settle;
    # each Python call and allocation saved here is a measurable share of the call
    # (benchmarks/README.md, "progress() on the calling thread").
    if type(message) is not str or not message or message.isspace():
        _check_message(message, required=True)
    if percent is None:
        value = None
    elif type(percent) is float and 0.0 <= percent <= 1.0:  # NaN fails the comparison
        value = percent
    else:
        value = _check_percent(percent)
    cid = None if correlation_id is None else _check_correlation_id(correlation_id)
    flag: object = flush  # typed as the caller may pass it: anything but a bool is an error
    if flag is not True and flag is not False:
        _check_flush(flag)
    scope = current_scope.get()
    if scope is None:
        scope = _scope("kitaru.progress()")  # raises KitaruContextError
    body: dict[str, Any] = {"message": message}
    if value is not None:
        # ``fields`` is this call's own keyword dict: nobody else holds it, so it becomes the
        # event's ``data`` as it is (the same keys in the same order as a copy would have).
        fields["percent"] = value
    if fields:
        body["data"] = fields
    # A cancellation point (docs/outcomes.md), checked by the scope before it takes the index.
    scope.emit(CHECKPOINT_PROGRESS_KIND, body, correlation_id=cid, cancellation_point=True)
    if flush:
        scope.flush_events()


def flush(timeout: float = 2.0) -> bool:
    """Ask the process-local publisher to hand every queued live event to the backend.

    Needs no checkpoint scope and never raises.

    Args:
        timeout: Seconds to wait at most.

    Returns:
        True when everything queued before the call was handed on (or there is no backend);
        False on timeout or failure.
    """
    try:
        t = float(timeout)
        if not math.isfinite(t) or t < 0:
            return False
        publisher = process_publisher()
        if publisher is None:
            return True
        return publisher.flush(t)
    except Exception:
        return False
