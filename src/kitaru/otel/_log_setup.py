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


def _assemble(
    resource: Resource, inner: LogRecordExporter
) -> tuple[SdkLoggerProvider, TrackedLogExporter]:
    provider = SdkLoggerProvider(resource=resource, shutdown_on_exit=False)
    exporter = TrackedLogExporter(inner)
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    return provider, exporter


def _stop(provider: SdkLoggerProvider, timeout: float) -> None:
    provider.shutdown()  # bounded by the caller's wait and the exporter's timeout


LOGS: SignalSetup[SdkLoggerProvider, TrackedLogExporter] = SignalSetup(
    "logs",
    assemble=_assemble,
    default_timeout=_otlp.DEFAULT_EXPORT_TIMEOUT,
    placeholder=lambda p: isinstance(p, (ProxyLoggerProvider, NoOpLoggerProvider)),
    get_global=get_logger_provider,
    set_global=set_logger_provider,
    stop=_stop,
    defer_to_application=True,
)
"""The logger provider kitaru builds and owns."""


def owned_logger_provider() -> SdkLoggerProvider | None:
    """The logger provider kitaru built itself, if any."""
    return LOGS.owned_provider()


def application_logger_provider() -> LoggerProvider | None:
    """The global logger provider, if the application (or kitaru) set one."""
    provider: LoggerProvider | None = LOGS.application_provider()
    return provider
