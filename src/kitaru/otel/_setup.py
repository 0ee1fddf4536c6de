"""Which tracer provider kitaru uses, and the OTLP provider it builds when there is none.

Order (first match wins):

1. ``configure(tracer_provider=...)``: that provider, as it is.
2. ``configure(endpoint=...)``: kitaru builds an OTLP provider for that endpoint.
3. An application's own provider set globally before the first flow runs: used as it is, never
   replaced, reconfigured or shut down by kitaru.
4. OTLP export asked for by the standard variables (``OTEL_EXPORTER_OTLP_ENDPOINT``,
   ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``OTEL_TRACES_EXPORTER=otlp``, and not
   ``OTEL_SDK_DISABLED=true``): kitaru builds
   ``BatchSpanProcessor(OTLPSpanExporter())`` and, when no global provider is set, makes it the
   global one, so the application's instrumented calls inside checkpoints go to the same place.
5. Nothing: no exporter is created and (without ``configure()``) the bridge is not installed.

The exporter is built without arguments except a short default timeout, so every other standard
variable (headers, certificates, compression, ``OTEL_BSP_*``, ``OTEL_TRACES_SAMPLER``,
``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``) is read by OpenTelemetry itself. One
exception: the ratio samplers of ``OTEL_TRACES_SAMPLER`` are built as
:class:`~kitaru.otel.TraceIdRatioSampler`, because the SDK's version decides on bits that are
fixed in a trace ID taken from a UUID (see there).

Why the short timeouts: export happens on the batch processor's thread, never on a flow's, but
the SDK's defaults (10 s per export, 30 s at shutdown) would hold a process at exit that long
when the collector is down. kitaru's provider exports with a 1 s timeout (unless
``OTEL_EXPORTER_OTLP_(TRACES_)TIMEOUT`` says otherwise) and its shutdown at exit waits at most
``KITARU_OTEL_SHUTDOWN_TIMEOUT`` (1 s) before letting the process go, and less once the
collector failed an export or hung on one for 0.5 s: those spans would not arrive anyway.

Log records and metrics follow the same order with their own variables (``OTEL_LOGS_EXPORTER``,
``OTEL_EXPORTER_OTLP_LOGS_ENDPOINT``, ``OTEL_METRICS_EXPORTER``, ...): their providers are set
up in ``_log_setup.py`` and ``_metric_setup.py``, and shut down here, within the same bound.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry._logs import LoggerProvider
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler
from opentelemetry.trace import NoOpTracerProvider, ProxyTracerProvider, TracerProvider

from kitaru import environment_variables as ev
from kitaru._checks import parse_positive_number, positive_number
from kitaru._config import resolve
from kitaru.exceptions import KitaruUsageError
from kitaru.otel import _env, _log_setup, _metric_setup, _registry
from kitaru.otel._bridge import KitaruOtelObserver
from kitaru.otel._sdk_tracer import KitaruIdGenerator, TraceIdRatioSampler
from kitaru.runtime._runtime import current_runtime

__all__ = [
    "DEFAULT_EXPORT_TIMEOUT",
    "DEFAULT_SERVICE_NAME",
    "DEFAULT_SHUTDOWN_TIMEOUT",
    "auto_observer",
    "build_provider",
    "configure",
    "configured_observer",
    "owned_provider",
    "shutdown",
]

logger = logging.getLogger("kitaru.otel")

DEFAULT_EXPORT_TIMEOUT = 1.0
DEFAULT_SHUTDOWN_TIMEOUT = 1.0
DEFAULT_SERVICE_NAME = "kitaru"
# An export running longer than this counts as hung (a local collector answers in
# milliseconds; raise OTEL_EXPORTER_OTLP_TIMEOUT and this matters less for a remote one).
_STUCK_SECONDS = 0.5
_HEALTH_POLL_SECONDS = 0.05

_SUPPRESS_KEY = otel_context._SUPPRESS_INSTRUMENTATION_KEY

_lock = threading.RLock()
_configured: KitaruOtelObserver | None = None
_auto: KitaruOtelObserver | None = None
_provider: SdkTracerProvider | None = None
_atexit_registered = False
_exporters: dict[int, _TrackedExporter] = {}


def _real(provider: TracerProvider) -> bool:
    return not isinstance(provider, (ProxyTracerProvider, NoOpTracerProvider))


def _traces_url(endpoint: str) -> str:
    # configure(endpoint=...) means what OTEL_EXPORTER_OTLP_ENDPOINT means: a base URL.
    base = endpoint.rstrip("/")
    return base if base.endswith("/v1/traces") else base + "/v1/traces"


def _exporter(endpoint: str | None, protocol: _env.Protocol, timeout: float | None) -> SpanExporter:
    kwargs: dict[str, Any] = {}
    if timeout is not None:
        kwargs["timeout"] = timeout
    elif not _env.timeout_from_env():
        kwargs["timeout"] = DEFAULT_EXPORT_TIMEOUT
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        if endpoint:
            kwargs["endpoint"] = endpoint
        return GrpcExporter(**kwargs)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpExporter,
    )

    if endpoint:
        kwargs["endpoint"] = _traces_url(endpoint)
    return HttpExporter(**kwargs)


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


class _QuietExporterLogs(logging.Filter):
    """Keeps the OTLP exporters' own retry and failure lines (and tracebacks) out of the logs.

    kitaru's exporter wrapper says instead, in one warning per outage, that the collector
    cannot be reached (see "Turning it on" in ``docs/opentelemetry.md``).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.CRITICAL


# The log and metric exporters send to the same collector: its outage is reported once, by the
# span exporter's wrapper, rather than three times in the SDK's words.
_EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http._log_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
)
_QUIET = _QuietExporterLogs()


def _quiet_exporter_logs() -> None:
    for name in _EXPORTER_LOGGERS:
        target = logging.getLogger(name)
        if _QUIET not in target.filters:
            target.addFilter(_QUIET)


def _display(endpoint: str | None) -> str:
    """The endpoint for a log line: scheme, host and port only (no credentials, no query)."""
    if not endpoint:
        return "the default OTLP endpoint"
    try:
        parts = urlsplit(endpoint)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "the configured OTLP endpoint"
    return f"{parts.scheme}://{host}{port}"


class _TrackedExporter(SpanExporter):
    """Passes exports on and remembers whether the collector is answering.

    At exit, kitaru stops waiting for the last spans once the collector failed the last export
    or has been stuck in one for a while: those spans would not arrive anyway, and the process
    should not wait for them. A failing export never raises into the batch processor (which
    would log a traceback): the first failure of an outage logs one warning, the first success
    after it one line saying export works again.
    """

    def __init__(self, inner: SpanExporter, endpoint: str | None = None) -> None:
        self.inner = inner
        self.failed = False
        self.target = _display(endpoint)
        self._since: float | None = None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self._since = time.monotonic()
        reason = "the collector did not accept them"
        try:
            result = self.inner.export(spans)
        except Exception as exc:
            result = SpanExportResult.FAILURE
            reason = type(exc).__name__
        finally:
            self._since = None
        ok = result is SpanExportResult.SUCCESS
        if not ok and not self.failed:
            logger.warning(
                "kitaru: cannot export spans to %s (%s); spans are dropped until it answers "
                "(flows are not affected)",
                self.target,
                reason,
            )
        elif ok and self.failed:
            logger.warning("kitaru: span export to %s works again", self.target)
        self.failed = not ok
        return result

    def healthy(self) -> bool:
        since = self._since
        stuck = since is not None and time.monotonic() - since > _STUCK_SECONDS
        return not (self.failed or stuck)

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


def _resource(service_name: str | None) -> Resource:
    resource = Resource.create()  # reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
    if service_name:
        return resource.merge(Resource({SERVICE_NAME: service_name}))
    current = str(resource.attributes.get(SERVICE_NAME, ""))
    if not current or current.startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return resource


def build_provider(
    *,
    endpoint: str | None = None,
    protocol: str | None = None,
    service_name: str | None = None,
    export_timeout: float | None = None,
) -> SdkTracerProvider:
    """An SDK provider exporting over OTLP through a batch processor (see module docstring).

    Raises:
        KitaruUsageError: The protocol is not ``http/protobuf`` or ``grpc``, or the endpoint
            (argument or ``OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT``) is not an http(s) URL.
    """
    chosen = _env.protocol(protocol)
    if endpoint is not None:
        endpoint = _env.check_endpoint(endpoint, "endpoint")
        target: str | None = endpoint
    else:
        target = _env.endpoint_from_env()
    _quiet_exporter_logs()
    # Building exporters may touch instrumented libraries; none of that is worth a span.
    token = otel_context.attach(otel_context.set_value(_SUPPRESS_KEY, True))
    try:
        provider = SdkTracerProvider(
            sampler=_sampler(),
            resource=_resource(service_name),
            id_generator=KitaruIdGenerator(),
            shutdown_on_exit=False,  # kitaru's own exit handler bounds the wait
        )
        exporter = _TrackedExporter(_exporter(endpoint, chosen, export_timeout), target)
        provider.add_span_processor(BatchSpanProcessor(exporter))
        _exporters[id(provider)] = exporter
    finally:
        otel_context.detach(token)
    return provider


def _adopt(provider: SdkTracerProvider, *, set_global: bool) -> None:
    """Own ``provider``: shut the previous one down, maybe make it global, bound it at exit."""
    global _provider, _atexit_registered
    previous, _provider = _provider, provider
    if previous is not None and previous is not provider:
        _bounded(previous.shutdown, _shutdown_timeout(None), _exporters.get(id(previous)))
        _exporters.pop(id(previous), None)
    # Only while nothing was set: the global provider can be set once per process.
    if set_global and isinstance(trace.get_tracer_provider(), ProxyTracerProvider):
        trace.set_tracer_provider(provider)
    if not _atexit_registered:
        atexit.register(_at_exit)
        _atexit_registered = True


def _shutdown_timeout(arg: float | None) -> float:
    return resolve(
        arg, ev.KITARU_OTEL_SHUTDOWN_TIMEOUT, parse_positive_number, DEFAULT_SHUTDOWN_TIMEOUT
    )


def _bounded(fn: Callable[[], object], timeout: float, exporter: Any = None) -> bool:
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


def _close_logs(observers: Sequence[KitaruOtelObserver], timeout: float) -> None:
    """Hand queued log records to their provider (milliseconds unless the SDK is stuck)."""
    for observer in observers:
        observer.close_logs(timeout)


def _shutdown_all(
    tracer_provider: SdkTracerProvider | None,
    logger_provider: Any,
    meter_provider: Any,
    timeout: float,
) -> bool:
    """Shut the providers kitaru built down together, within one ``timeout``.

    Waits no longer once any of their exporters shows the collector is down or hung.
    """
    tracked: list[Any] = []
    steps: list[Callable[[], object]] = []
    if tracer_provider is not None:
        tracked.append(_exporters.get(id(tracer_provider)))
        steps.append(tracer_provider.shutdown)
    if logger_provider is not None:
        tracked.append(_log_setup.owned_log_exporter())
        steps.append(logger_provider.shutdown)
    if meter_provider is not None:
        tracked.append(_metric_setup.owned_meter_exporter())
        steps.append(lambda: meter_provider.shutdown(timeout_millis=timeout * 1000))
    if not steps:
        return True
    watched = [t for t in tracked if t is not None]

    def run_all() -> None:
        for step in steps:
            try:
                step()
            except Exception:
                logger.debug("kitaru: OpenTelemetry shutdown failed", exc_info=True)

    return _bounded(run_all, timeout, _AnyUnhealthy(watched) if watched else None)


class _AnyUnhealthy:
    """Healthy while every watched exporter is."""

    def __init__(self, exporters: Sequence[Any]) -> None:
        self.exporters = exporters

    def healthy(self) -> bool:
        return all(e.healthy() for e in self.exporters)


def _at_exit() -> None:
    timeout = _shutdown_timeout(None)
    started = time.monotonic()
    _close_logs([o for o in (_configured, _auto) if o is not None], timeout / 2)
    remaining = max(0.05, timeout - (time.monotonic() - started))
    _shutdown_all(
        _provider,
        _log_setup.owned_logger_provider(),
        _metric_setup.owned_meter_provider(),
        remaining,
    )


def owned_provider() -> SdkTracerProvider | None:
    """The provider kitaru built itself, if any."""
    return _provider


def configured_observer() -> KitaruOtelObserver | None:
    """The bridge made by :func:`configure`, if it was called."""
    return _configured


def auto_observer() -> KitaruOtelObserver | None:
    """The bridge for a runtime built from configuration, or ``None`` when OTel is not set up."""
    global _auto
    with _lock:
        if _configured is not None:
            return _configured
        if _auto is not None:
            return _auto
        if _env.sdk_disabled():
            return None
        _setup_logs_and_metrics(None, None, None, None, set_global=True)
        if _real(trace.get_tracer_provider()):
            _auto = KitaruOtelObserver()  # the application's provider, looked up per flow
        elif _env.otlp_requested():
            provider = build_provider()
            _adopt(provider, set_global=True)
            _auto = KitaruOtelObserver(tracer_provider=provider)
        elif _log_setup.owned_logger_provider() or _metric_setup.owned_meter_provider():
            _auto = KitaruOtelObserver()  # log records or metrics without exported spans
        return _auto


def _setup_logs_and_metrics(
    endpoint: str | None,
    protocol: str | None,
    service_name: str | None,
    export_timeout: float | None,
    *,
    set_global: bool,
) -> None:
    """Build the OTLP logger and meter providers the arguments or variables ask for.

    A logger provider only when the application has none; with ``endpoint`` both unless
    their ``OTEL_<SIGNAL>_EXPORTER`` is ``none``; without it, as the variables say.
    """
    wants_logs = (
        not _env.exporter_off("logs")
        if endpoint is not None
        else _env.logs_requested() and _log_setup.application_logger_provider() is None
    )
    # A new endpoint replaces what kitaru built before; the variables only fill a gap.
    if wants_logs and (endpoint is not None or _log_setup.owned_logger_provider() is None):
        logs, log_exporter = _log_setup.build_logger_provider(
            resource=_resource(service_name),
            endpoint=endpoint,
            protocol=protocol,
            export_timeout=export_timeout,
        )
        previous_logs = _log_setup.adopt_logger_provider(logs, log_exporter, set_global=set_global)
        if previous_logs is not None:
            _bounded(previous_logs.shutdown, _shutdown_timeout(None))
        _register_exit()
    wants_metrics = (
        not _env.exporter_off("metrics") if endpoint is not None else _env.metrics_requested()
    )
    if wants_metrics and (endpoint is not None or _metric_setup.owned_meter_provider() is None):
        meters, meter_exporter = _metric_setup.build_meter_provider(
            resource=_resource(service_name),
            endpoint=endpoint,
            protocol=protocol,
            export_timeout=export_timeout,
        )
        previous_meters = _metric_setup.adopt_meter_provider(
            meters, meter_exporter, set_global=set_global
        )
        if previous_meters is not None:
            timeout = _shutdown_timeout(None)
            _bounded(lambda: previous_meters.shutdown(timeout_millis=timeout * 1000), timeout)
        _register_exit()


def _register_exit() -> None:
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(_at_exit)
        _atexit_registered = True


def configure(
    *,
    tracer_provider: TracerProvider | None = None,
    endpoint: str | None = None,
    protocol: str | None = None,
    service_name: str | None = None,
    export_timeout: float | None = None,
    set_global_provider: bool = True,
    record_exception_messages: bool | None = None,
    event_attributes: bool | None = None,
    max_span_events: int | None = None,
    caller_span: str | None = None,
    logger_provider: LoggerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    log_records: bool | None = None,
    runtime_logs: bool | None = None,
) -> KitaruOtelObserver:
    """Turn flows and checkpoints into OpenTelemetry spans, exported where you say.

    Without arguments, uses the application's global provider if one is set, else exports over
    OTLP when the standard ``OTEL_*`` variables ask for it, else follows whatever global
    provider the application sets later. Calling it again replaces the earlier configuration.

    Args:
        tracer_provider: Use this provider as it is (never replaced or shut down by kitaru).
        endpoint: Export over OTLP to this base URL (like ``OTEL_EXPORTER_OTLP_ENDPOINT``,
            for example ``http://127.0.0.1:4318``; for gRPC ``http://127.0.0.1:4317``).
        protocol: ``"http/protobuf"`` (default) or ``"grpc"``; default from
            ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` / ``OTEL_EXPORTER_OTLP_PROTOCOL``.
        service_name: ``service.name`` of the provider kitaru builds (default:
            ``OTEL_SERVICE_NAME``, else ``kitaru``).
        export_timeout: Seconds per export request of the provider kitaru builds (default:
            ``OTEL_EXPORTER_OTLP_(TRACES_)TIMEOUT``, else 1).
        set_global_provider: Make the provider kitaru builds the global one when none is set
            yet, so instrumented libraries export to the same place.
        record_exception_messages: Opt in to exception messages and stack traces on spans.
        event_attributes: ``False`` keeps live events' messages and data off span events.
        max_span_events: Most span events per checkpoint span.
        caller_span: ``"link"`` (default) or ``"parent"``: how a flow span relates to a span
            active where the flow is called.
        logger_provider: Send live events as log records to this provider, as it is (never
            replaced or shut down by kitaru). Default: the application's global one, else one
            kitaru builds for ``endpoint`` or the ``OTEL_*`` variables.
        meter_provider: Record kitaru's metrics on this provider, as it is. Default: one
            kitaru builds for ``endpoint`` or the ``OTEL_*`` variables, if they ask for it.
        log_records: ``False``: no log records (default: on, or ``KITARU_OTEL_LOG_RECORDS``).
        runtime_logs: ``False``: the checkpoints' captured runtime log lines are not exported
            as log records, live events still are (default: on, or
            ``KITARU_OTEL_RUNTIME_LOGS``).

    Returns:
        The installed bridge.

    Raises:
        KitaruUsageError: An argument or a variable it depends on is invalid.
    """
    global _configured
    if tracer_provider is not None and endpoint is not None:
        raise KitaruUsageError("pass either tracer_provider or endpoint, not both")
    if endpoint is not None and (not isinstance(endpoint, str) or not endpoint.strip()):
        raise KitaruUsageError(f"endpoint must be a non-blank URL string, got {endpoint!r}")
    if export_timeout is not None:
        positive_number("export_timeout", export_timeout)
    if not isinstance(set_global_provider, bool):
        raise KitaruUsageError(
            f"set_global_provider must be True or False, got {set_global_provider!r}"
        )
    chosen_protocol = _env.protocol(protocol)
    options: dict[str, Any] = {
        "record_exception_messages": record_exception_messages,
        "event_attributes": event_attributes,
        "max_span_events": max_span_events,
        "caller_span": caller_span,
        "log_records": log_records,
        "runtime_logs": runtime_logs,
    }
    KitaruOtelObserver(**options)  # validates the options before anything changes
    with _lock:
        provider: TracerProvider | None = tracer_provider
        if provider is None and (
            endpoint is not None
            or (not _real(trace.get_tracer_provider()) and _env.otlp_requested())
        ):
            built = build_provider(
                endpoint=endpoint.strip() if endpoint else None,
                protocol=chosen_protocol,
                service_name=service_name,
                export_timeout=export_timeout,
            )
            _adopt(built, set_global=set_global_provider)
            provider = built
        if logger_provider is None or meter_provider is None:
            _setup_logs_and_metrics(
                endpoint.strip() if endpoint else None,
                protocol,
                service_name,
                export_timeout,
                set_global=set_global_provider,
            )
        observer = KitaruOtelObserver(
            tracer_provider=provider,
            logger_provider=logger_provider,
            meter_provider=meter_provider,
            **options,
        )
        _configured = observer
    _install(observer)
    return observer


def _install(observer: KitaruOtelObserver) -> None:
    # Only into a runtime that exists: configure() never builds one (that would open a store).
    # A runtime built later takes the configured bridge from auto_observer().
    runtime = current_runtime()
    if runtime is None:
        return
    for existing in runtime.observers:
        if isinstance(existing, KitaruOtelObserver) and existing is not observer:
            runtime.remove_observer(existing)
    runtime.add_observer(observer)


def shutdown(timeout: float | None = None) -> bool:
    """Stop recording spans and send what the provider kitaru built still holds.

    The bridge leaves the current runtime, the configuration is forgotten (a runtime built later
    looks at the environment again), and the provider kitaru built, if any, is shut down within
    ``timeout``. An application's own provider is left alone. Idempotent.

    Args:
        timeout: Seconds to wait at most (default: ``KITARU_OTEL_SHUTDOWN_TIMEOUT``, else 1).

    Returns:
        True when the provider finished shutting down in time (or there was none).
    """
    global _configured, _auto, _provider
    with _lock:
        observers = [o for o in (_configured, _auto) if o is not None]
        provider = _provider
        _configured = _auto = _provider = None
        logger_provider = _log_setup.owned_logger_provider()
        meter_provider = _metric_setup.owned_meter_provider()
    runtime = current_runtime()
    if runtime is not None:
        for existing in runtime.observers:
            if any(existing is o for o in observers):
                runtime.remove_observer(existing)
    _registry.forget_all()
    budget = _shutdown_timeout(timeout)
    started = time.monotonic()
    _close_logs(observers, budget / 2)
    remaining = max(0.05, budget - (time.monotonic() - started))
    try:
        return _shutdown_all(provider, logger_provider, meter_provider, remaining)
    finally:
        if provider is not None:
            _exporters.pop(id(provider), None)
        _log_setup.forget_logger_provider()
        _metric_setup.forget_meter_provider()
