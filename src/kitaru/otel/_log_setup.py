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
waiting as soon as the collector failed an export or hung in one. The building and owning is
shared with metrics (``_signal_setup.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

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

from kitaru.otel import _otlp
from kitaru.otel._signal_setup import SignalSetup

__all__ = [
    "LOGS",
    "TrackedLogExporter",
    "application_logger_provider",
    "owned_logger_provider",
]


class TrackedLogExporter(LogRecordExporter, _otlp.ExportWatch):
    """Passes exports on and remembers whether the collector is answering (as for spans)."""

    def __init__(self, inner: LogRecordExporter) -> None:
        _otlp.ExportWatch.__init__(self)
        self.inner = inner

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        return self.watch(lambda: self.inner.export(batch), LogRecordExportResult.SUCCESS)

    def shutdown(self) -> None:
        self.inner.shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


class _LogSetup(SignalSetup[SdkLoggerProvider, TrackedLogExporter]):
    signal = "logs"

    def assemble(
        self, resource: Resource, inner: LogRecordExporter
    ) -> tuple[SdkLoggerProvider, TrackedLogExporter]:
        provider = SdkLoggerProvider(resource=resource, shutdown_on_exit=False)
        exporter = TrackedLogExporter(inner)
        provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
        return provider, exporter

    def application_provider(self) -> LoggerProvider | None:
        found = get_logger_provider()
        placeholder = isinstance(found, (ProxyLoggerProvider, NoOpLoggerProvider))
        return None if placeholder else found

    def make_global(self, provider: SdkLoggerProvider) -> None:
        set_logger_provider(provider)

    def wanted(self, endpoint: str | None) -> bool:
        # Without an endpoint, live events go to the application's own provider when it set one.
        if endpoint is None and self.application_provider() is not None:
            return False
        return super().wanted(endpoint)

    def stop(self, provider: SdkLoggerProvider, timeout: float) -> None:
        provider.shutdown()  # bounded by the caller's wait and the exporter's timeout


LOGS = _LogSetup()
"""The logger provider kitaru builds and owns."""


def owned_logger_provider() -> SdkLoggerProvider | None:
    """The logger provider kitaru built itself, if any."""
    return LOGS.owned_provider()


def application_logger_provider() -> LoggerProvider | None:
    """The global logger provider, if the application (or kitaru) set one."""
    return LOGS.application_provider()
