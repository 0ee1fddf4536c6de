"""Joining a freshly built runtime: called by the runtime for every runtime it builds.

Cheap when OpenTelemetry is not in use: unless ``kitaru.otel.configure()`` was called, an
application has imported OpenTelemetry, or the environment asks for OTLP export (traces, logs
or metrics), this returns
without importing OpenTelemetry at all.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from kitaru.otel import _env

if TYPE_CHECKING:
    from kitaru.runtime._runtime import Runtime

__all__ = ["install_default"]


def install_default(runtime: Runtime) -> None:
    """Add the OpenTelemetry bridge to ``runtime`` when OpenTelemetry is set up."""
    if (
        "kitaru.otel._setup" not in sys.modules  # configure() was never called
        and "opentelemetry.trace" not in sys.modules  # nobody set a provider
        and "opentelemetry._logs" not in sys.modules
        and not _env.otlp_requested()
        and not _env.logs_requested()
        and not _env.metrics_requested()
    ):
        return
    from kitaru.otel._setup import auto_observer

    observer = auto_observer()
    if observer is not None:
        runtime.add_observer(observer)
