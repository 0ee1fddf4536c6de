"""Make user data JSON-safe without ever exposing a value's ``repr()``: the one walker.

Rules (``docs/live-events.md``, "JSON-safety of user data"): JSON-native values pass
through; datetimes, UUIDs, enums, dataclasses, pydantic models, sets and tuples get their JSON
forms; anything else becomes the one marker
``{"python_type": <class name>, "serialization_error": <reason>}`` at its position; a reference
cycle replaces the whole top-level field with such a marker.

Every producer of user data in a live event uses this walker: the publisher (no bounds) and
the adapters' opted-in payloads (with :class:`Bounds`: clipped strings, a few items per
container, shallow nesting, credential-like keys redacted).

Most payloads are already JSON-native (``progress(step=3, loss=0.25)``): :func:`json_safe_mapping`
checks that with a type-only pass, which costs a fraction of building a converted copy, and
then hands the mapping on as it is.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import enum
import math
import re
import uuid
from collections.abc import Mapping
from decimal import Decimal
from pathlib import PurePath
from typing import Any

__all__ = [
    "NOT_SERIALIZABLE",
    "Bounds",
    "is_json_native",
    "json_safe",
    "json_safe_mapping",
    "marker",
]

_MAX_DEPTH = 64
_ELLIPSIS = "..."

NOT_SERIALIZABLE = "not JSON serializable"
"""The marker's reason for a value of a type that has no JSON form."""

OMITTED_KEYS = "_kitaru_omitted_keys"
OMITTED_ITEMS = "_kitaru_omitted_items"
REDACTED = "[redacted]"


@dataclasses.dataclass(frozen=True, slots=True)
class Bounds:
    """Limits of a bounded walk (the adapters' opted-in payloads).

    Attributes:
        max_string: Longest string (longer ones are cut, ending in ``...``); keys too.
        max_items: Most keys of a mapping (``_kitaru_omitted_keys`` counts the rest) and items
            of a list (a trailing ``{"_kitaru_omitted_items": n}``).
        max_depth: Deepest nesting; deeper values become markers.
        redact: Keys whose values are replaced by ``"[redacted]"``.
        unsupported: The marker's reason for a value with no JSON form.
    """

    max_string: int
    max_items: int = 20
    max_depth: int = 4
    redact: re.Pattern[str] | None = None
    unsupported: str = NOT_SERIALIZABLE


class _CycleError(Exception):
    pass


def marker(value: object, reason: str) -> dict[str, str]:
    """The stand-in for a value that cannot be sent: its class name and why, never its text."""
    return {"python_type": type(value).__name__, "serialization_error": reason}


_NATIVE_SCALARS = frozenset((str, int, bool, type(None)))


def is_json_native(value: object, depth: int = 0) -> bool:
    """True when ``value`` is JSON as it is, checked by type only (nothing is built).

    That is: exact dicts with str keys, lists, str, int, bool, None and finite floats, no
    subclasses, no deeper than the walker's limit (so a cycle cannot pass).
    """
    # Runs for every published payload: scalars and floats are judged inline in the loops
    # (a float ``x`` is finite exactly when ``x - x == 0.0``: inf and NaN give NaN).
    kind = type(value)
    if kind in _NATIVE_SCALARS:
        return True
    if kind is float:
        return bool(value - value == 0.0)  # type: ignore[operator]
    if depth >= _MAX_DEPTH:
        return False
    if kind is dict:
        for key, item in value.items():  # type: ignore[attr-defined]
            if type(key) is not str:
                return False
            kind = type(item)
            if kind in _NATIVE_SCALARS:
                continue
            if kind is float:
                if item - item == 0.0:
                    continue
                return False
            if not is_json_native(item, depth + 1):
                return False
        return True
    if kind is list:
        for item in value:  # type: ignore[attr-defined]
            kind = type(item)
            if kind in _NATIVE_SCALARS:
                continue
            if kind is float:
                if item - item == 0.0:
                    continue
                return False
            if not is_json_native(item, depth + 1):
                return False
        return True
    return False


def json_safe_mapping(data: Mapping[Any, Any], bounds: Bounds | None = None) -> dict[str, Any]:
    """Return a JSON-safe form of ``data``, converted key by key.

    Without ``bounds``, a mapping that is already JSON-native (:func:`is_json_native`) is
    returned as it is (no copy): the caller encodes it at once.
    """
    if bounds is None and type(data) is dict and is_json_native(data):
        return data
    out: dict[str, Any] = {}
    for i, (key, value) in enumerate(data.items()):
        if bounds is not None and i >= bounds.max_items:
            out[OMITTED_KEYS] = len(data) - bounds.max_items
            break
        name = _key(key, bounds)
        if _redacted(key, bounds):
            out[name] = REDACTED
            continue
        try:
            out[name] = _convert(value, set(), 1 if bounds is not None else 0, bounds)
        except _CycleError:
            out[name] = marker(value, "reference cycle")
    return out


def json_safe(value: object, bounds: Bounds | None = None, *, depth: int = 0) -> Any:
    """Return a JSON-safe form of one value (a cycle anywhere gives one marker).

    Args:
        value: Any value.
        bounds: Limits of a bounded walk; ``None``: only the JSON rules apply.
        depth: The nesting depth ``value`` already sits at (counts against the bounds).
    """
    try:
        return _convert(value, set(), depth, bounds)
    except _CycleError:
        return marker(value, "reference cycle")


def clip_text(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in ``...`` when it was cut."""
    if len(text) <= limit:
        return text
    if limit <= len(_ELLIPSIS):
        return _ELLIPSIS[:limit]
    return text[: limit - len(_ELLIPSIS)] + _ELLIPSIS


def _redacted(key: object, bounds: Bounds | None) -> bool:
    return (
        bounds is not None
        and bounds.redact is not None
        and isinstance(key, str)
        and bounds.redact.search(key) is not None
    )


def _key(key: object, bounds: Bounds | None) -> str:
    if isinstance(key, str):
        name = str.__str__(key)  # a subclass's own __str__ is never called
    else:
        if isinstance(key, enum.Enum):
            key = key.value
        if isinstance(key, (int, float, bool, uuid.UUID, str)) or key is None:
            name = str(key)
        else:
            # An unusual key type: its class name is all we reveal.
            name = f"<{type(key).__name__}>"
    return clip_text(name, bounds.max_string) if bounds is not None else name


def _convert(value: Any, path: set[int], depth: int, bounds: Bounds | None) -> Any:
    limit = _MAX_DEPTH if bounds is None else bounds.max_depth
    if isinstance(value, enum.Enum):
        if depth >= limit:
            return marker(value, "nested too deeply")
        return _convert(value.value, path, depth + 1, bounds)
    kind = type(value)
    if value is None or kind is bool or kind is int:
        return value
    if kind is str:
        return value if bounds is None else clip_text(value, bounds.max_string)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return str(value) if bounds is None else clip_text(str(value), bounds.max_string)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else marker(value, "non-finite float")
    if depth >= limit:
        return marker(value, "nested too deeply")
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (uuid.UUID, PurePath)):
        return str(value)
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else marker(value, "non-finite decimal")
    if isinstance(value, Mapping):
        return _container(value, path, lambda: _mapping(value, path, depth, bounds))
    if isinstance(value, (list, tuple)):
        return _container(value, path, lambda: _sequence(value, path, depth, bounds))
    if isinstance(value, (set, frozenset)):
        return _container(value, path, lambda: _set(value, path, depth, bounds))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
        return _container(value, path, lambda: _mapping(fields, path, depth, bounds))
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):  # pydantic models, LangChain messages
        try:
            dumped = dump(mode="json")
        except Exception:
            return marker(value, "model_dump failed")
        if id(value) in path:
            raise _CycleError
        return _convert(dumped, path, depth + 1, bounds)
    return marker(value, NOT_SERIALIZABLE if bounds is None else bounds.unsupported)


def _container(value: object, path: set[int], build: Any) -> Any:
    ident = id(value)
    if ident in path:
        raise _CycleError
    path.add(ident)
    try:
        return build()
    finally:
        path.discard(ident)


def _mapping(
    value: Mapping[Any, Any], path: set[int], depth: int, bounds: Bounds | None
) -> dict[str, Any]:
    if bounds is None:
        return {_key(k, None): _convert(v, path, depth + 1, None) for k, v in value.items()}
    out: dict[str, Any] = {}
    for i, (key, item) in enumerate(value.items()):
        if i >= bounds.max_items:
            out[OMITTED_KEYS] = len(value) - bounds.max_items
            break
        name = _key(key, bounds)
        out[name] = REDACTED if _redacted(key, bounds) else _convert(item, path, depth + 1, bounds)
    return out


def _sequence(
    value: list[Any] | tuple[Any, ...], path: set[int], depth: int, bounds: Bounds | None
) -> list[Any]:
    if bounds is None:
        return [_convert(v, path, depth + 1, None) for v in value]
    items = [_convert(v, path, depth + 1, bounds) for v in value[: bounds.max_items]]
    if len(value) > bounds.max_items:
        items.append({OMITTED_ITEMS: len(value) - bounds.max_items})
    return items


def _set(
    value: set[Any] | frozenset[Any], path: set[int], depth: int, bounds: Bounds | None
) -> list[Any]:
    items = [_convert(v, path, depth + 1, bounds) for v in value]
    with contextlib.suppress(TypeError):
        items = sorted(items)
    if bounds is not None and len(items) > bounds.max_items:
        omitted = len(items) - bounds.max_items
        items = [*items[: bounds.max_items], {OMITTED_ITEMS: omitted}]
    return items
