"""How checkpoint outputs and flow inputs are stored.

Values that survive a JSON round trip unchanged are stored as JSON (readable in the database);
anything else is pickled. A value that can be stored neither way is refused with
:class:`~kitaru.exceptions.KitaruOutputError` naming what it belonged to and its type.
"""

from __future__ import annotations

import base64
import hashlib
import pickle
from dataclasses import dataclass
from typing import Any

import orjson

from kitaru.exceptions import KitaruOutputError

__all__ = ["StoredValue", "dump_value", "fingerprint", "load_value"]


@dataclass(frozen=True, slots=True)
class StoredValue:
    """A stored value: ``format`` is ``json`` or ``pickle``; ``data`` is text."""

    format: str
    data: str


def _json_exact(value: Any, depth: int = 0) -> bool:
    if depth > 100:
        return False
    if value is None or type(value) in (str, bool, int):
        return True
    if type(value) is float:
        return value == value and value not in (float("inf"), float("-inf"))
    if type(value) is list:
        return all(_json_exact(v, depth + 1) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _json_exact(v, depth + 1) for k, v in value.items())
    return False


def dump_value(value: Any, *, what: str) -> StoredValue:
    """Serialize ``value``; ``what`` names its owner in the error (e.g. "checkpoint 'x' output")."""
    if _json_exact(value):
        return StoredValue("json", orjson.dumps(value).decode())
    try:
        raw = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise KitaruOutputError(
            f"{what} cannot be stored: a value of type {type(value).__module__}."
            f"{type(value).__qualname__} is neither JSON nor picklable ({type(exc).__name__}). "
            "Return plain data (dicts, lists, strings, numbers, dataclasses) instead."
        ) from exc
    return StoredValue("pickle", base64.b64encode(raw).decode("ascii"))


def load_value(stored: StoredValue) -> Any:
    """Turn a :class:`StoredValue` back into a Python value."""
    if stored.format == "json":
        return orjson.loads(stored.data)
    if stored.format == "pickle":
        return pickle.loads(base64.b64decode(stored.data))
    raise KitaruOutputError(f"unknown stored value format {stored.format!r}")


def fingerprint(*parts: str | StoredValue) -> str:
    """A stable hex digest of names and stored values (the cache key of a checkpoint call)."""
    h = hashlib.sha256()
    for part in parts:
        text = part if isinstance(part, str) else f"{part.format}:{part.data}"
        h.update(text.encode())
        h.update(b"\x00")
    return h.hexdigest()
