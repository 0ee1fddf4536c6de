"""Which logger provider kitaru's log records go to, and the OTLP one it builds when there is none.

The same order as for traces (see ``_setup.py`` and ``docs/opentelemetry.md``):

1. ``configure(logger_provider=...)``: that provider, as it is.
2. ``configure(endpoint=...)``: kitaru builds an OTLP provider for that endpoint, unless
   ``OTEL_LOGS_EXPORTER=none``.
3. An application's own provider set globally (``opentelemetry._logs.set_logger_provider``):
   used as it is, never replaced, reconfigured or shut down by kitaru.
4. OTLP log export asked for by the standard variables (``OTEL_EXPORTER_OTLP_ENDPOINT``,
   ``OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`` or ``OTEL_LOGS_EXPORTER=otlp``, and not
   ``OTEL_SDK_DISABLED=true``): kitaru builds ``BatchLogRecordProcessor(OTLPLogExporter())``
   and makes it the global provider when none is set.
5. Nothing: no log records.

Like the span exporter, the log exporter gets a 1 s timeout unless
``OTEL_EXPORTER_OTLP_(LOGS_)TIMEOUT`` says otherwise, and is watched: at exit, kitaru stops
waiting as soon as the collector failed an export or hung in one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry._logs import LoggerProvider, get_logger_provider, set_logger_provider
from opentelemetry._logs._internal import NoOpLoggerProvider, ProxyLoggerProvider
from opentelemetry.sdk._logs import LoggerProvider as SdkLoggerProvider
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.resources import Resource

from kitaru.otel import _env

__all__ = [
    "TrackedLogExporter",
    "adopt_logger_provider",
    "application_logger_provider",
    "build_logger_provider",
    "forget_logger_provider",
    "owned_log_exporter",
    "owned_logger_provider",
]

_STUCK_SECONDS = 0.5
_SUPPRESS_KEY = otel_context._SUPPRESS_INSTRUMENTATION_KEY
DEFAULT_EXPORT_TIMEOUT = 1.0

_lock = threading.Lock()
_provider: SdkLoggerProvider | None = None
_exporter: TrackedLogExporter | None = None


class TrackedLogExporter(LogRecordExporter):
    """Passes exports on and remembers whether the collector is answering (as for spans)."""

    def __init__(self, inner: LogRecordExporter) -> None:
        self.inner = inner
        self.failed = False
        self._since: float | None = None

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        self._since = time.monotonic()
        try:
            result = self.inner.export(batch)
        except Exception:
            self.failed = True
            raise
        finally:
            self._since = None
        self.failed = result is not LogRecordExportResult.SUCCESS
        return result

    def healthy(self) -> bool:
        """False once an export failed, or while one has been running for over 0.5 s."""
        since = self._since
        stuck = since is not None and time.monotonic() - since > _STUCK_SECONDS
        return not (self.failed or stuck)

    def shutdown(self) -> None:
        self.inner.shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


def _logs_url(endpoint: str) -> str:
    base = endpoint.rstrip("/")
    return base if base.endswith("/v1/logs") else base + "/v1/logs"


def _exporter_for(
    endpoint: str | None, protocol: _env.Protocol, timeout: float | None
) -> LogRecordExporter:
    kwargs: dict[str, Any] = {}
    if timeout is not None:
        kwargs["timeout"] = timeout
    elif not _env.timeout_from_env("logs"):
        kwargs["timeout"] = DEFAULT_EXPORT_TIMEOUT
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import (
            OTLPLogExporter as GrpcExporter,
        )

        if endpoint:
            kwargs["endpoint"] = endpoint
        return GrpcExporter(**kwargs)
    from opentelemetry.exporter.otlp.proto.http._log_exporter import (
        OTLPLogExporter as HttpExporter,
    )

    if endpoint:
        kwargs["endpoint"] = _logs_url(endpoint)
    return HttpExporter(**kwargs)


def real(provider: object) -> bool:
    """True for a provider somebody set (not the API's placeholder or no-op one)."""
    return not isinstance(provider, (ProxyLoggerProvider, NoOpLoggerProvider))


def application_logger_provider() -> LoggerProvider | None:
    """The global logger provider, if the application (or kitaru) set one."""
    provider = get_logger_provider()
    return provider if real(provider) else None


def build_logger_provider(
    *,
    resource: Resource,
    endpoint: str | None = None,
    protocol: str | None = None,
    export_timeout: float | None = None,
) -> tuple[SdkLoggerProvider, TrackedLogExporter]:
    """An SDK logger provider exporting over OTLP through a batch processor.

    Raises:
        KitaruUsageError: The protocol is not ``http/protobuf`` or ``grpc``.
    """
    chosen = _env.protocol(protocol, "logs")
    token = otel_context.attach(otel_context.set_value(_SUPPRESS_KEY, True))
    try:
        provider = SdkLoggerProvider(resource=resource, shutdown_on_exit=False)
        exporter = TrackedLogExporter(_exporter_for(endpoint, chosen, export_timeout))
        provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    finally:
        otel_context.detach(token)
    return provider, exporter


def adopt_logger_provider(
    provider: SdkLoggerProvider, exporter: TrackedLogExporter, *, set_global: bool
) -> SdkLoggerProvider | None:
    """Own ``provider`` (maybe make it global); returns the one owned before, to shut down."""
    global _provider, _exporter
    with _lock:
        previous, _provider, _exporter = _provider, provider, exporter
    if set_global and not real(get_logger_provider()):
        set_logger_provider(provider)
    return previous if previous is not provider else None


def owned_logger_provider() -> SdkLoggerProvider | None:
    """The logger provider kitaru built itself, if any."""
    return _provider


def owned_log_exporter() -> TrackedLogExporter | None:
    """The exporter of the logger provider kitaru built, if any."""
    return _exporter


def forget_logger_provider() -> SdkLoggerProvider | None:
    """Stop owning the provider kitaru built; returns it (for the caller to shut down)."""
    global _provider, _exporter
    with _lock:
        provider, _provider, _exporter = _provider, None, None
    return provider
