"""Who publishes here: the running checkpoint execution and the process's publisher.

The events layer sits below the runtime (``docs/architecture.md``), so it names what it needs
from it as protocols: the runtime sets :data:`current_scope` while a checkpoint body runs, and
installs the lookup of its publisher with :func:`set_publisher_lookup`.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from kitaru.events._publisher import Publisher

__all__ = ["PublishingScope", "current_scope", "process_publisher", "set_publisher_lookup"]


class PublishingScope(Protocol):
    """What ``progress()`` and ``publish()`` need from the running checkpoint execution."""

    def emit(
        self,
        kind: str,
        body: dict[str, Any],
        *,
        correlation_id: str | None = None,
        index: int | None = None,
        lifecycle: bool = False,
        cancellation_point: bool = False,
    ) -> None:
        """Build one event on the calling thread and hand it on.

        With ``cancellation_point``, first do what :meth:`check_cancelled` does (one call
        instead of two for ``progress()``).
        """
        ...

    def flush_events(self) -> bool:
        """Wait, within the runtime's bound, until the events published so far are sent."""
        ...

    def check_cancelled(self) -> None:
        """A cancellation point: raise ``KitaruCancelledError`` once cancelled.

        See ``docs/outcomes.md``.
        """
        ...


current_scope: contextvars.ContextVar[PublishingScope | None] = contextvars.ContextVar(
    "kitaru_checkpoint", default=None
)
"""The checkpoint execution whose body runs in this context (set by the runtime)."""


def _no_publisher() -> Publisher | None:
    return None


_lookup: Callable[[], Publisher | None] = _no_publisher


def set_publisher_lookup(lookup: Callable[[], Publisher | None]) -> None:
    """Install how :func:`process_publisher` finds the process's publisher (the runtime's)."""
    global _lookup
    _lookup = lookup


def process_publisher() -> Publisher | None:
    """The publisher of the runtime this process already uses, if it publishes live events.

    Never builds a runtime: with none built there is nothing queued to flush or count.
    """
    return _lookup()
