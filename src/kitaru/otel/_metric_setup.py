"""The OTLP meter provider kitaru builds when the standard variables ask for metrics.

For people who send OTLP straight to a backend, with no span-metrics connector in between:
with ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._METRICS_ENDPOINT``, or
``OTEL_METRICS_EXPORTER=otlp``) set, kitaru builds a ``MeterProvider`` whose periodic reader
exports over OTLP (interval: ``OTEL_METRIC_EXPORT_INTERVAL``, default 60 s) and makes it the
global one when none is set. ``OTEL_METRICS_EXPORTER=none`` turns it off. An application's own
meter provider is never replaced: pass it as ``configure(meter_provider=...)`` to have kitaru's
instruments on it. See ``docs/opentelemetry.md`` ("Metrics"). The building and owning is
shared with log records (``_signal_setup.py``).
"""

from __future__ import annotations

from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import MeterProvider
from opentelemetry.metrics._internal import NoOpMeterProvider, _ProxyMeterProvider
from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource

from kitaru.otel import _otlp
from kitaru.otel._signal_setup import SignalSetup

__all__ = ["METRICS", "TrackedMetricExporter", "owned_meter_provider"]

# Shorter than the span and log exporters' 1 s: metrics are cumulative, so an export that
# times out loses nothing the next one does not carry, and a periodic export that happens to
# be in flight at exit (a hung collector) holds the process for at most this long.
DEFAULT_EXPORT_TIMEOUT = 0.5


class TrackedMetricExporter(MetricExporter, _otlp.ExportWatch):
    """Passes exports on and remembers whether the collector is answering (as for spans)."""

    def __init__(self, inner: MetricExporter) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        _otlp.ExportWatch.__init__(self)
        self.inner = inner

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        return self.watch(
            lambda: self.inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs),
            MetricExportResult.SUCCESS,
        )

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)


class _MetricSetup(SignalSetup[SdkMeterProvider, TrackedMetricExporter]):
    signal = "metrics"
    default_timeout = DEFAULT_EXPORT_TIMEOUT

    def assemble(
        self, resource: Resource, inner: MetricExporter
    ) -> tuple[SdkMeterProvider, TrackedMetricExporter]:
        exporter = TrackedMetricExporter(inner)
        reader = PeriodicExportingMetricReader(exporter)  # reads OTEL_METRIC_EXPORT_INTERVAL
        return SdkMeterProvider(
            metric_readers=[reader], resource=resource, shutdown_on_exit=False
        ), exporter

    def stop(self, provider: SdkMeterProvider, timeout: float) -> None:
        provider.shutdown(timeout_millis=timeout * 1000)

    def application_provider(self) -> MeterProvider | None:
        # kitaru's instruments still get a provider of kitaru's own when the application set
        # one: it is only not made global then (pass yours as configure(meter_provider=...)).
        found = metrics.get_meter_provider()
        if isinstance(found, (_ProxyMeterProvider, NoOpMeterProvider)):
            return None
        return found

    def make_global(self, provider: SdkMeterProvider) -> None:
        metrics.set_meter_provider(provider)


METRICS = _MetricSetup()
"""The meter provider kitaru builds and owns."""


def owned_meter_provider() -> SdkMeterProvider | None:
    """The meter provider kitaru built itself, if any."""
    return METRICS.owned_provider()
