"""The failure reason kept in the durable record: type, message and a bounded traceback.

The record is the private place for an exception's text (``docs/outcomes.md``); live events,
spans and log records carry the type and a generic sentence only. ``KITARU_ERROR_DETAIL=type``
keeps the type alone, for deployments that must never store exception text.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass

__all__ = [
    "MAX_MESSAGE_CHARS",
    "MAX_TRACEBACK_CHARS",
    "TRUNCATION_MARK",
    "FailureDetail",
    "describe_failure",
]

MAX_MESSAGE_CHARS = 8 * 1024
"""Most characters of an exception message kept in the record."""

MAX_TRACEBACK_CHARS = 64 * 1024
"""Most characters of a formatted traceback kept in the record."""

TRUNCATION_MARK = "\n... [kitaru: truncated {dropped} characters] ...\n"
"""Put where text was cut out, so a reader sees that something is missing."""


@dataclass(frozen=True, slots=True)
class FailureDetail:
    """What the record keeps of one exception."""

    error_type: str
    message: str | None = None
    traceback: str | None = None


def _bound(text: str, limit: int, *, keep_tail: bool) -> str:
    """``text`` cut to about ``limit`` characters with a visible mark where it was cut.

    A traceback keeps its head and its tail (the raising frame and the exception line are at
    the end); a message keeps its head.
    """
    if len(text) <= limit:
        return text
    dropped = len(text) - limit
    mark = TRUNCATION_MARK.format(dropped=dropped)
    if not keep_tail:
        return text[:limit] + mark
    head = limit // 4
    return text[:head] + mark + text[len(text) - (limit - head) :]


def describe_failure(error: BaseException, mode: str = "full") -> FailureDetail:
    """The record's view of ``error``; ``mode="type"`` keeps the class name only.

    Never raises: an exception whose ``str()`` fails is described by its type.
    """
    error_type = type(error).__name__
    if mode == "type":
        return FailureDetail(error_type)
    try:
        message: str | None = _bound(str(error), MAX_MESSAGE_CHARS, keep_tail=False)
    except Exception:
        message = None
    try:
        formatted = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        tb: str | None = _bound(formatted, MAX_TRACEBACK_CHARS, keep_tail=True)
    except Exception:
        tb = None
    return FailureDetail(error_type, message, tb)
