"""Event kind constants and the names reserved for the wire protocol."""

from __future__ import annotations

__all__ = [
    "CHECKPOINT_FAILED_KIND",
    "CHECKPOINT_PROGRESS_KIND",
    "CHECKPOINT_RETURNED_KIND",
    "CHECKPOINT_STARTED_KIND",
    "LIFECYCLE_KINDS",
    "RESERVED_KINDS",
    "TERMINAL_KINDS",
]

CHECKPOINT_STARTED_KIND = "kitaru.checkpoint.started"
"""Published when a checkpoint body starts running (index 0 of its lane)."""

CHECKPOINT_PROGRESS_KIND = "kitaru.checkpoint.progress"
"""Published by :func:`kitaru.progress`."""

CHECKPOINT_RETURNED_KIND = "kitaru.checkpoint.returned"
"""Published when a checkpoint body returns (before its output is stored)."""

CHECKPOINT_FAILED_KIND = "kitaru.checkpoint.failed"
"""Published when a checkpoint body raises (with the exception type, never its text)."""

LIFECYCLE_KINDS = frozenset(
    {CHECKPOINT_STARTED_KIND, CHECKPOINT_RETURNED_KIND, CHECKPOINT_FAILED_KIND}
)
"""Kinds kitaru publishes on its own; users cannot publish them."""

TERMINAL_KINDS = frozenset({CHECKPOINT_RETURNED_KIND, CHECKPOINT_FAILED_KIND})
"""Kinds that end a checkpoint execution's lane."""

RESERVED_KINDS = frozenset({"cursor", "end", "gap", "error", "system"})
"""Control frame names of the SSE protocol; never valid as an event kind."""

FAILED_MESSAGE = "Checkpoint function raised an exception."
"""The one generic message of every failed lifecycle event (the exception text is never sent)."""
