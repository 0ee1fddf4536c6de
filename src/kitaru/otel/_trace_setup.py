"""The OTLP tracer provider kitaru builds: sampler, resource, ID generator and watched exporter.

The exporter is built without arguments except a short default timeout, so every other standard
variable (headers, certificates, compression, ``OTEL_BSP_*``, ``OTEL_TRACES_SAMPLER``,
``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``) is read by OpenTelemetry itself. One
exception: the ratio samplers of ``OTEL_TRACES_SAMPLER`` are built as
:class:`~kitaru.otel.TraceIdRatioSampler`, because the SDK's version decides on bits that are
fixed in a trace ID taken from a UUID (see there). When kitaru uses this provider is decided in
``_setup.py``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler

from kitaru.exceptions import KitaruUsageError
from kitaru.otel import _env, _otlp
from kitaru.otel._sdk_tracer import KitaruIdGenerator, TraceIdRatioSampler

__all__ = ["TrackedSpanExporter", "build_provider", "exporter_of", "forget_exporter"]

logger = logging.getLogger("kitaru.otel")

# The watched exporter of each provider build_provider() made, by the provider's id().
_exporters: dict[int, TrackedSpanExporter] = {}


def _sampler() -> Sampler | None:
    """The ratio samplers of ``OTEL_TRACES_SAMPLER``, deciding on the random bits.

    ``None``: every other sampler is left to the SDK, which reads the same variables.
    """
    name = os.environ.get(_env.OTEL_TRACES_SAMPLER, "").strip().lower()
    if name not in ("traceidratio", "parentbased_traceidratio"):
        return None
    raw = os.environ.get(_env.OTEL_TRACES_SAMPLER_ARG, "").strip()
    try:
        rate = float(raw) if raw else 1.0
        if not 0.0 <= rate <= 1.0:
            raise ValueError(rate)
    except ValueError:
        raise KitaruUsageError(
            f"{_env.OTEL_TRACES_SAMPLER_ARG} must be a number from 0 to 1 for {name}, got {raw!r}"
        ) from None
    ratio = TraceIdRatioSampler(rate)
    return ParentBased(ratio) if name.startswith("parentbased_") else ratio


class TrackedSpanExporter(SpanExporter, _otlp.ExportWatch):
    """Passes exports on and remembers whether the collector is answering.

    At exit, kitaru stops waiting for the last spans once the collector failed the last export
    or has been stuck in one for a while: those spans would not arrive anyway, and the process
    should not wait for them. A failing export never raises into the batch processor (which
    would log a traceback): the first failure of an outage logs one warning, the first success
    after it one line saying export works again.
    """

    def __init__(self, inner: SpanExporter, endpoint: str | None = None) -> None:
        _otlp.ExportWatch.__init__(self)
        self.inner = inner
        self.target = _otlp.display(endpoint)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        was_failed = self.failed
        reason = "the collector did not accept them"
        try:
            result = self.watch(lambda: self.inner.export(spans), SpanExportResult.SUCCESS)
        except Exception as exc:
            result = SpanExportResult.FAILURE
            reason = type(exc).__name__
        if self.failed and not was_failed:
            logger.warning(
                "kitaru: cannot export spans to %s (%s); spans are dropped until it answers "
                "(flows are not affected)",
                self.target,
                reason,
            )
        elif was_failed and not self.failed:
            logger.warning("kitaru: span export to %s works again", self.target)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


def build_provider(options: _otlp.ExportOptions | None = None) -> SdkTracerProvider:
    """An SDK provider exporting over OTLP through a batch processor (see module docstring).

    Args:
        options: What ``configure()`` was given (default: the standard variables decide).

    Raises:
        KitaruUsageError: The protocol is not ``http/protobuf`` or ``grpc``, or the endpoint
            (argument or ``OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT``) is not an http(s) URL.
    """
    options = options or _otlp.ExportOptions()
    chosen = _env.protocol(options.protocol)
    endpoint = options.endpoint
    if endpoint is not None:
        endpoint = _env.check_endpoint(endpoint, "endpoint")
        target: str | None = endpoint
    else:
        target = _env.endpoint_from_env()
    _otlp.quiet_exporter_logs()
    with _otlp.no_instrumentation():
        provider = SdkTracerProvider(
            sampler=_sampler(),
            resource=_otlp.resource(options.service_name),
            id_generator=KitaruIdGenerator(),
            shutdown_on_exit=False,  # kitaru's own exit handler bounds the wait
        )
        inner = _otlp.exporter("traces", endpoint, chosen, options.timeout)
        exporter = TrackedSpanExporter(inner, target)
        provider.add_span_processor(BatchSpanProcessor(exporter))
        _exporters[id(provider)] = exporter
    return provider


def exporter_of(provider: SdkTracerProvider) -> TrackedSpanExporter | None:
    """The watched exporter of a provider :func:`build_provider` made."""
    return _exporters.get(id(provider))


def forget_exporter(provider: SdkTracerProvider) -> None:
    """Forget the exporter of ``provider`` (it is shut down, or about to be)."""
    _exporters.pop(id(provider), None)
