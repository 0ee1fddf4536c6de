"""The OTLP provider kitaru builds for log records or metrics, and owns until it is replaced.

Log records and metrics are set up the same way (``docs/opentelemetry.md``, "Log records" and
"Metrics"): kitaru builds an SDK provider around one watched OTLP exporter, owns it (a later
``configure(endpoint=...)`` replaces it, ``kitaru.otel.shutdown()`` shuts it down), and makes it
the global provider only while none is set, so an application's own provider is never replaced.
:class:`SignalSetup` is that life cycle; ``_log_setup.py`` and ``_metric_setup.py`` say what
differs (the SDK classes, the default timeout, how the provider shuts down).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from opentelemetry.sdk.resources import Resource

from kitaru.otel import _env, _otlp

__all__ = ["SignalSetup"]

P = TypeVar("P")
E = TypeVar("E")


class SignalSetup(Generic[P, E]):
    """Building, owning and forgetting the provider kitaru makes for one signal.

    Args:
        signal: ``logs`` or ``metrics``.
        assemble: Wraps the SDK's OTLP exporter and builds the provider around it; returns
            the provider and the watched exporter.
        default_timeout: Seconds per export unless the argument or a variable says otherwise.
        placeholder: True for the API's proxy or no-op provider (nobody set one).
        get_global: The API's global provider of the signal.
        set_global: Sets the API's global provider of the signal.
        stop: Shuts a provider down within the given seconds.
        defer_to_application: Without an endpoint, build nothing while the application set a
            global provider of the signal (log records go to it; kitaru's metrics are recorded
            on a provider of kitaru's own, which is not made global then).
    """

    def __init__(
        self,
        signal: _env.Signal,
        *,
        assemble: Callable[[Resource, Any], tuple[P, E]],
        default_timeout: float,
        placeholder: Callable[[object], bool],
        get_global: Callable[[], object],
        set_global: Callable[[P], None],
        stop: Callable[[P, float], object],
        defer_to_application: bool = False,
    ) -> None:
        self.signal: _env.Signal = signal
        self._assemble = assemble
        self._default_timeout = default_timeout
        self._placeholder = placeholder
        self._get_global = get_global
        self._set_global = set_global
        self._stop = stop
        self.defer_to_application = defer_to_application
        self._lock = threading.Lock()
        self._provider: P | None = None
        self._exporter: E | None = None

    def real(self, provider: object) -> bool:
        """True for a provider somebody set (not the API's placeholder or no-op one)."""
        return not self._placeholder(provider)

    def application_provider(self) -> Any:
        """The global provider, if the application (or kitaru) set one."""
        provider = self._get_global()
        return provider if self.real(provider) else None

    def build(
        self,
        *,
        resource: Resource,
        endpoint: str | None = None,
        protocol: str | None = None,
        export_timeout: float | None = None,
    ) -> tuple[P, E]:
        """A new SDK provider exporting over OTLP (not yet owned).

        Raises:
            KitaruUsageError: The protocol is not ``http/protobuf`` or ``grpc``.
        """
        chosen = _env.protocol(protocol, self.signal)
        with _otlp.no_instrumentation():
            inner = _otlp.exporter(
                self.signal,
                endpoint,
                chosen,
                export_timeout,
                default_timeout=self._default_timeout,
            )
            return self._assemble(resource, inner)

    def adopt(self, provider: P, exporter: E, *, set_global: bool) -> P | None:
        """Own ``provider`` (maybe make it global); returns the one owned before, to shut down."""
        with self._lock:
            previous, self._provider, self._exporter = self._provider, provider, exporter
        if set_global and not self.real(self._get_global()):
            self._set_global(provider)
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

    def stop(self, provider: P, timeout: float) -> None:
        """Shut ``provider`` down, waiting at most about ``timeout`` seconds where it can."""
        self._stop(provider, timeout)
