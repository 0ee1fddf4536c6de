"""Argument checks shared by the client, the CLI and the server (one place for each rule).

The client refuses a bad argument before it sends any request, and the server refuses the same
value with the same message, because both call the functions here. Each check comes in two
forms where both are needed:

* ``*_problem(value)`` returns ``None`` or the sentence that says what is wrong (the server
  wraps it in a 400, the client in :class:`~kitaru.exceptions.KitaruUsageError`);
* ``check_*`` / ``positive_*`` raise :class:`~kitaru.exceptions.KitaruUsageError` naming the
  argument; ``parse_positive_*`` parse text (environment variables, command-line options) and
  raise :class:`ValueError`, which the caller turns into its own error.

See ``docs/protocol.md`` ("Execution IDs") for the execution ID rules.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

from kitaru.exceptions import KitaruUsageError

__all__ = [
    "MAX_EXEC_ID_LENGTH",
    "check_execution_id",
    "check_token",
    "execution_id_problem",
    "parse_bool",
    "parse_positive_int",
    "parse_positive_number",
    "positive_int",
    "positive_number",
]

MAX_EXEC_ID_LENGTH = 256
"""The longest execution ID accepted, in characters."""

_N = TypeVar("_N", int, float)

_DOT_SEGMENTS = frozenset({".", ".."})


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def execution_id_problem(value: object) -> str | None:
    """``None`` when ``value`` is a valid execution ID, else what is wrong with it.

    An execution ID is a string of 1-256 characters with no whitespace, no control
    characters and no ``/``, and is not ``.`` or ``..``: it is one segment of a URL path,
    which an HTTP client or proxy would otherwise normalise away or split.
    """
    if (
        isinstance(value, str)
        and 0 < len(value) <= MAX_EXEC_ID_LENGTH
        and value not in _DOT_SEGMENTS
        and "/" not in value
        and value.isprintable()
        and not any(c.isspace() for c in value)
    ):
        return None
    got = f"a {type(value).__name__}" if not isinstance(value, str) else _short(value)
    return (
        f"exec_id (an execution ID) must be a string of 1-{MAX_EXEC_ID_LENGTH} characters without "
        f"whitespace, control characters or '/', and not '.' or '..'; got {got}"
    )


def check_execution_id(value: object) -> str:
    """``value`` when it is a valid execution ID.

    Raises:
        KitaruUsageError: It is not (the message is the one the server answers with).
    """
    problem = execution_id_problem(value)
    if problem is not None:
        raise KitaruUsageError(problem)
    assert isinstance(value, str)
    return value


def check_token(name: str, value: object) -> str | None:
    """``value`` when it is ``None`` or a usable bearer token.

    A token is compared exactly, while an ``Authorization`` header loses its surrounding
    whitespace on the way: a token that is blank, or has whitespace or control characters,
    could never be presented, and would lock every client out.

    Raises:
        KitaruUsageError: Naming ``name`` (the token itself is never repeated).
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise KitaruUsageError(f"{name} must be a string or None, got {type(value).__name__}")
    if not value.strip():
        raise KitaruUsageError(f"{name} is blank (only whitespace): no client could send it")
    if not value.isprintable() or any(c.isspace() for c in value):
        raise KitaruUsageError(
            f"{name} contains whitespace or control characters: no client could send it as it is"
        )
    return value


def parse_bool(text: str) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (any case) as a bool.

    Raises:
        ValueError: Anything else.
    """
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected one of 1, true, yes, on, 0, false, no, off; got {text!r}")


def positive_number(
    name: str, value: object, *, allow_zero: bool = False, unit: str = "seconds"
) -> float:
    """``value`` as a float when it is a finite number > 0 (or >= 0 with ``allow_zero``).

    Raises:
        KitaruUsageError: Naming ``name`` and the value it got.
    """
    ok = (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and (value >= 0 if allow_zero else value > 0)
    )
    if not ok:
        expected = "a non-negative" if allow_zero else "a positive"
        suffix = f" of {unit}" if unit else ""
        raise KitaruUsageError(f"{name} must be {expected} number{suffix}, got {value!r}")
    assert isinstance(value, int | float)
    return float(value)


def positive_int(name: str, value: object) -> int:
    """``value`` when it is an int of at least 1 (``bool`` is not an int here).

    Raises:
        KitaruUsageError: Naming ``name`` and the value it got.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise KitaruUsageError(f"{name} must be a positive integer, got {value!r}")
    return value


def parse_positive_int(text: str) -> int:
    """Text as an integer of at least 1.

    Raises:
        ValueError: ``expected a positive integer, got ...``.
    """
    return _parse_positive(text, int, "integer")


def parse_positive_number(text: str) -> float:
    """Text as a finite number greater than 0.

    Raises:
        ValueError: ``expected a positive number, got ...``.
    """
    return _parse_positive(text, float, "number")


def _parse_positive(text: str, convert: Callable[[str], _N], noun: str) -> _N:
    try:
        value: _N | None = convert(text)
    except (TypeError, ValueError):
        value = None
    # An int is always finite (and may be too large for math.isfinite).
    if value is None or not (value > 0 and (isinstance(value, int) or math.isfinite(value))):
        raise ValueError(f"expected a positive {noun}, got {text!r}")
    return value
