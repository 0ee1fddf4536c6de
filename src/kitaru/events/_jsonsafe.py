"""Make user data JSON-safe without ever exposing a value's ``repr()``.

Rules (``docs/live-events.md``, "JSON-safety of user data"): JSON-native values pass
through; datetimes, UUIDs, enums, dataclasses, pydantic models, sets and tuples get their JSON
forms; anything else becomes a marker ``{"python_type": <class name>, "serialization_error":
...}`` at its position; a reference cycle replaces the whole top-level field with such a
marker.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import math
import uuid
from collections.abc import Mapping
from decimal import Decimal
from pathlib import PurePath
from typing import Any

__all__ = ["json_safe", "json_safe_mapping", "marker"]

_MAX_DEPTH = 64


class _CycleError(Exception):
    pass


def marker(value: object, reason: str) -> dict[str, str]:
    """The stand-in for a value that cannot be sent: its class name and why, never its text."""
    return {"python_type": type(value).__name__, "serialization_error": reason}


def json_safe_mapping(data: Mapping[Any, Any]) -> dict[str, Any]:
    """Return a JSON-safe copy of ``data``, converted key by key."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = key if isinstance(key, str) else _key(key)
        try:
            out[name] = _convert(value, set(), 0)
        except _CycleError:
            out[name] = marker(value, "reference cycle")
    return out


def json_safe(value: object) -> Any:
    """Return a JSON-safe form of one value (a cycle anywhere gives one marker)."""
    try:
        return _convert(value, set(), 0)
    except _CycleError:
        return marker(value, "reference cycle")


def _key(key: object) -> str:
    if isinstance(key, enum.Enum):
        key = key.value
    if isinstance(key, (int, float, bool, uuid.UUID)) or key is None:
        return str(key)
    # An unusual key type: its class name is all we reveal.
    return f"<{type(key).__name__}>"


def _convert(value: Any, path: set[int], depth: int) -> Any:
    if isinstance(value, enum.Enum):
        if depth >= _MAX_DEPTH:
            return marker(value, "nested too deeply")
        return _convert(value.value, path, depth + 1)
    if value is None or type(value) in (str, bool, int):
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else marker(value, "non-finite float")
    if depth >= _MAX_DEPTH:
        return marker(value, "nested too deeply")
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (uuid.UUID, PurePath)):
        return str(value)
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else marker(value, "non-finite decimal")
    ident = id(value)
    if isinstance(value, Mapping):
        return _container(value, path, depth, lambda: _mapping(value, path, depth))
    if isinstance(value, (list, tuple)):
        return _container(value, path, depth, lambda: [_convert(v, path, depth + 1) for v in value])
    if isinstance(value, (set, frozenset)):
        return _container(value, path, depth, lambda: _set(value, path, depth))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _container(
            value,
            path,
            depth,
            lambda: {
                f.name: _convert(getattr(value, f.name), path, depth + 1)
                for f in dataclasses.fields(value)
            },
        )
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        try:
            dumped = dump(mode="json")
        except Exception:
            return marker(value, "model_dump failed")
        if ident in path:
            raise _CycleError
        return _convert(dumped, path, depth + 1)
    return marker(value, "not JSON serializable")


def _container(value: object, path: set[int], depth: int, build: Any) -> Any:
    ident = id(value)
    if ident in path:
        raise _CycleError
    path.add(ident)
    try:
        return build()
    finally:
        path.discard(ident)


def _mapping(value: Mapping[Any, Any], path: set[int], depth: int) -> dict[str, Any]:
    return {
        (k if isinstance(k, str) else _key(k)): _convert(v, path, depth + 1)
        for k, v in value.items()
    }


def _set(value: set[Any] | frozenset[Any], path: set[int], depth: int) -> list[Any]:
    items = [_convert(v, path, depth + 1) for v in value]
    try:
        return sorted(items)
    except TypeError:
        return items
