"""Shutting down the providers kitaru built, within a bound, on a daemon thread.

The SDK's defaults (10 s per export, 30 s at shutdown) would hold a process at exit that long
when the collector is down. kitaru's shutdown waits at most ``KITARU_OTEL_SHUTDOWN_TIMEOUT``
(1 s) before letting the process go, and less once the collector failed an export or hung on
one for 0.5 s: what is still queued would not arrive anyway (``docs/opentelemetry.md``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from kitaru import environment_variables as ev
from kitaru._checks import parse_positive_number
from kitaru._config import resolve
from kitaru.otel._otlp import Watched

__all__ = ["DEFAULT_SHUTDOWN_TIMEOUT", "Step", "bounded", "shutdown_all", "shutdown_timeout"]

logger = logging.getLogger("kitaru.otel")

DEFAULT_SHUTDOWN_TIMEOUT = 1.0
_HEALTH_POLL_SECONDS = 0.05

Step = tuple[Callable[[], object], Watched | None]
"""One provider's shutdown, and the watched exporter that says whether waiting is worth it."""


def shutdown_timeout(arg: float | None) -> float:
    """The bound: ``arg``, else ``KITARU_OTEL_SHUTDOWN_TIMEOUT``, else 1 s."""
    return resolve(
        arg, ev.KITARU_OTEL_SHUTDOWN_TIMEOUT, parse_positive_number, DEFAULT_SHUTDOWN_TIMEOUT
    )


def bounded(fn: Callable[[], object], timeout: float, exporter: Watched | None = None) -> bool:
    """Run ``fn`` on a daemon thread and wait at most ``timeout`` seconds for it.

    With ``exporter``, stop waiting as soon as it shows the collector is down or hung: the
    spans still queued would not arrive anyway.
    """
    done = threading.Event()

    def run() -> None:
        try:
            fn()
        except Exception:
            logger.debug("kitaru: OpenTelemetry shutdown failed", exc_info=True)
        finally:
            done.set()

    try:
        threading.Thread(target=run, name="kitaru-otel-shutdown", daemon=True).start()
    except RuntimeError:  # no new threads late in interpreter shutdown
        run()
        return True
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return done.is_set()
        if done.wait(min(remaining, _HEALTH_POLL_SECONDS)):
            return True
        if exporter is not None and not exporter.healthy():
            return False


def shutdown_all(steps: Sequence[Step], timeout: float) -> bool:
    """Shut the providers kitaru built down together, within one ``timeout``.

    Waits no longer once any of their exporters shows the collector is down or hung.
    """
    if not steps:
        return True
    watched = [exporter for _, exporter in steps if exporter is not None]

    def run_all() -> None:
        for step, _ in steps:
            try:
                step()
            except Exception:
                logger.debug("kitaru: OpenTelemetry shutdown failed", exc_info=True)

    return bounded(run_all, timeout, _AnyUnhealthy(watched) if watched else None)


class _AnyUnhealthy:
    """Healthy while every watched exporter is."""

    def __init__(self, exporters: Sequence[Watched]) -> None:
        self.exporters = exporters

    def healthy(self) -> bool:
        return all(e.healthy() for e in self.exporters)
