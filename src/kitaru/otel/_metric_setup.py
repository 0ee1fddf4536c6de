"""The OTLP meter provider kitaru builds when the standard variables ask for metrics.

For people who send OTLP straight to a backend, with no span-metrics connector in between:
with ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._METRICS_ENDPOINT``, or
``OTEL_METRICS_EXPORTER=otlp``) set, kitaru builds a ``MeterProvider`` whose periodic reader
exports over OTLP (interval: ``OTEL_METRIC_EXPORT_INTERVAL``, default 60 s) and makes it the
global one when none is set. ``OTEL_METRICS_EXPORTER=none`` turns it off. An application's own
meter provider is never replaced: pass it as ``configure(meter_provider=...)`` to have kitaru's
instruments on it. See ``docs/opentelemetry.md`` ("Metrics").
"""

from __future__ import annotations

import threading
import time
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics
from opentelemetry.metrics._internal import NoOpMeterProvider, _ProxyMeterProvider
from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource

from kitaru.otel import _env

__all__ = [
    "TrackedMetricExporter",
    "adopt_meter_provider",
    "build_meter_provider",
    "forget_meter_provider",
    "owned_meter_exporter",
    "owned_meter_provider",
]

# Shorter than the span and log exporters' 1 s: metrics are cumulative, so an export that
# times out loses nothing the next one does not carry, and a periodic export that happens to
# be in flight at exit (a hung collector) holds the process for at most this long.
DEFAULT_EXPORT_TIMEOUT = 0.5
_STUCK_SECONDS = 0.5
_SUPPRESS_KEY = otel_context._SUPPRESS_INSTRUMENTATION_KEY

_lock = threading.Lock()
_provider: SdkMeterProvider | None = None
_exporter: TrackedMetricExporter | None = None


class TrackedMetricExporter(MetricExporter):
    """Passes exports on and remembers whether the collector is answering (as for spans)."""

    def __init__(self, inner: MetricExporter) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self.inner = inner
        self.failed = False
        self._since: float | None = None

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        self._since = time.monotonic()
        try:
            result = self.inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        except Exception:
            self.failed = True
            raise
        finally:
            self._since = None
        self.failed = result is not MetricExportResult.SUCCESS
        return result

    def healthy(self) -> bool:
        """False once an export failed, or while one has been running for over 0.5 s."""
        since = self._since
        stuck = since is not None and time.monotonic() - since > _STUCK_SECONDS
        return not (self.failed or stuck)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)


def _metrics_url(endpoint: str) -> str:
    base = endpoint.rstrip("/")
    return base if base.endswith("/v1/metrics") else base + "/v1/metrics"


def _exporter_for(
    endpoint: str | None, protocol: _env.Protocol, timeout: float | None
) -> MetricExporter:
    kwargs: dict[str, Any] = {}
    if timeout is not None:
        kwargs["timeout"] = timeout
    elif not _env.timeout_from_env("metrics"):
        kwargs["timeout"] = DEFAULT_EXPORT_TIMEOUT
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter as GrpcExporter,
        )

        if endpoint:
            kwargs["endpoint"] = endpoint
        return GrpcExporter(**kwargs)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter as HttpExporter,
    )

    if endpoint:
        kwargs["endpoint"] = _metrics_url(endpoint)
    return HttpExporter(**kwargs)


def real(provider: object) -> bool:
    """True for a provider somebody set (not the API's placeholder or no-op one)."""
    return not isinstance(provider, (_ProxyMeterProvider, NoOpMeterProvider))


def build_meter_provider(
    *,
    resource: Resource,
    endpoint: str | None = None,
    protocol: str | None = None,
    export_timeout: float | None = None,
) -> tuple[SdkMeterProvider, TrackedMetricExporter]:
    """An SDK meter provider exporting over OTLP from a periodic reader.

    Raises:
        KitaruUsageError: The protocol is not ``http/protobuf`` or ``grpc``.
    """
    chosen = _env.protocol(protocol, "metrics")
    token = otel_context.attach(otel_context.set_value(_SUPPRESS_KEY, True))
    try:
        exporter = TrackedMetricExporter(_exporter_for(endpoint, chosen, export_timeout))
        reader = PeriodicExportingMetricReader(exporter)  # reads OTEL_METRIC_EXPORT_INTERVAL
        provider = SdkMeterProvider(
            metric_readers=[reader], resource=resource, shutdown_on_exit=False
        )
    finally:
        otel_context.detach(token)
    return provider, exporter


def adopt_meter_provider(
    provider: SdkMeterProvider, exporter: TrackedMetricExporter, *, set_global: bool
) -> SdkMeterProvider | None:
    """Own ``provider`` (maybe make it global); returns the one owned before, to shut down."""
    global _provider, _exporter
    with _lock:
        previous, _provider, _exporter = _provider, provider, exporter
    if set_global and not real(metrics.get_meter_provider()):
        metrics.set_meter_provider(provider)
    return previous if previous is not provider else None


def owned_meter_provider() -> SdkMeterProvider | None:
    """The meter provider kitaru built itself, if any."""
    return _provider


def owned_meter_exporter() -> TrackedMetricExporter | None:
    """The exporter of the meter provider kitaru built, if any."""
    return _exporter


def forget_meter_provider() -> SdkMeterProvider | None:
    """Stop owning the provider kitaru built; returns it (for the caller to shut down)."""
    global _provider, _exporter
    with _lock:
        provider, _provider, _exporter = _provider, None, None
    return provider
