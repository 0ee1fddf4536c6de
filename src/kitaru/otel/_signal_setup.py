"""The OTLP provider kitaru builds for log records or metrics, and owns until it is replaced.

Log records and metrics are set up the same way (``docs/opentelemetry.md``, "Log records" and
"Metrics"): kitaru builds an SDK provider around one watched OTLP exporter, owns it (a later
``configure(endpoint=...)`` replaces it, ``kitaru.otel.shutdown()`` shuts it down), and makes it
the global provider only while none is set, so an application's own provider is never replaced.
:class:`SignalSetup` is that life cycle; ``_log_setup.py`` and ``_metric_setup.py`` subclass it
with what differs (the SDK classes, the default timeout, how the provider shuts down).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Generic, TypeVar

from opentelemetry.sdk.resources import Resource

from kitaru.otel import _env, _otlp

__all__ = ["SignalSetup"]

P = TypeVar("P")
E = TypeVar("E")


class SignalSetup(ABC, Generic[P, E]):
    """Building, owning and forgetting the provider kitaru makes for one signal."""

    signal: ClassVar[_env.Signal]
    default_timeout: ClassVar[float] = _otlp.DEFAULT_EXPORT_TIMEOUT
    """Seconds per export unless the argument or ``OTEL_EXPORTER_OTLP_(<SIGNAL>_)TIMEOUT`` says."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._provider: P | None = None
        self._exporter: E | None = None

    @abstractmethod
    def assemble(self, resource: Resource, inner: Any) -> tuple[P, E]:
        """Wrap the SDK's OTLP exporter ``inner`` in a watched one; build the provider on it."""

    @abstractmethod
    def application_provider(self) -> Any:
        """The API's global provider of the signal, if somebody set one (else ``None``)."""

    @abstractmethod
    def make_global(self, provider: P) -> None:
        """Make ``provider`` the API's global provider of the signal."""

    @abstractmethod
    def stop(self, provider: P, timeout: float) -> None:
        """Shut ``provider`` down, waiting at most about ``timeout`` seconds where it can."""

    def wanted(self, endpoint: str | None) -> bool:
        """With ``endpoint``: unless ``OTEL_<SIGNAL>_EXPORTER=none``; else as the variables say."""
        if endpoint is not None:
            return not _env.exporter_off(self.signal)
        return _env.signal_requested(self.signal)

    def build(self, options: _otlp.ExportOptions) -> tuple[P, E]:
        """A new SDK provider exporting over OTLP (not yet owned) and its watched exporter.

        Raises:
            KitaruUsageError: The protocol is not ``http/protobuf`` or ``grpc``.
        """
        chosen = _env.protocol(options.protocol, self.signal)
        resource = _otlp.resource(options.service_name)
        with _otlp.no_instrumentation():
            inner = _otlp.exporter(
                self.signal,
                options.endpoint,
                chosen,
                options.timeout,
                default_timeout=self.default_timeout,
            )
            return self.assemble(resource, inner)

    def adopt(self, provider: P, exporter: E, *, set_global: bool) -> P | None:
        """Own ``provider`` (maybe make it global); returns the one owned before, to shut down."""
        with self._lock:
            previous, self._provider, self._exporter = self._provider, provider, exporter
        if set_global and self.application_provider() is None:
            self.make_global(provider)
        return previous if previous is not provider else None

    def owned_provider(self) -> P | None:
        """The provider kitaru built itself, if any."""
        return self._provider

    def owned_exporter(self) -> E | None:
        """The watched exporter of the provider kitaru built, if any."""
        return self._exporter

    def forget(self) -> P | None:
        """Stop owning the provider kitaru built; returns it (for the caller to shut down)."""
        with self._lock:
            provider, self._provider, self._exporter = self._provider, None, None
        return provider
