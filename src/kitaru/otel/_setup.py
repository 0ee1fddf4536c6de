"""Which tracer provider kitaru uses, and when it builds its own: the ``configure()`` entry.

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

How the provider is built is ``_trace_setup.py``; the exporters of every signal are made the
same way in ``_otlp.py``. Why the short timeouts: export happens on the batch processor's
thread, never on a flow's, but the SDK's defaults (10 s per export, 30 s at shutdown) would hold
a process at exit that long when the collector is down. kitaru's provider exports with a 1 s
timeout (unless ``OTEL_EXPORTER_OTLP_(TRACES_)TIMEOUT`` says otherwise) and its shutdown at exit
waits at most ``KITARU_OTEL_SHUTDOWN_TIMEOUT`` (1 s) before letting the process go, and less
once the collector failed an export or hung on one for 0.5 s (``_shutdown.py``).

Log records and metrics follow the same order with their own variables (``OTEL_LOGS_EXPORTER``,
``OTEL_EXPORTER_OTLP_LOGS_ENDPOINT``, ``OTEL_METRICS_EXPORTER``, ...): their providers are set
up in ``_log_setup.py`` and ``_metric_setup.py``, and shut down here, within the same bound.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import LoggerProvider
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.trace import NoOpTracerProvider, ProxyTracerProvider, TracerProvider

from kitaru._checks import positive_number
from kitaru.exceptions import KitaruUsageError
from kitaru.otel import _env, _registry, _trace_setup
from kitaru.otel._bridge import KitaruOtelObserver
from kitaru.otel._log_setup import LOGS
from kitaru.otel._metric_setup import METRICS
from kitaru.otel._otlp import ExportOptions
from kitaru.otel._shutdown import Step, bounded, shutdown_all, shutdown_timeout
from kitaru.otel._signal_setup import SignalSetup
from kitaru.runtime._runtime import current_runtime

__all__ = [
    "auto_observer",
    "configure",
    "configured_observer",
    "owned_provider",
    "shutdown",
]

_lock = threading.RLock()
_configured: KitaruOtelObserver | None = None
_auto: KitaruOtelObserver | None = None
_provider: SdkTracerProvider | None = None
_atexit_registered = False
_SIGNALS: tuple[SignalSetup[Any, Any], ...] = (LOGS, METRICS)


def _real(provider: TracerProvider) -> bool:
    return not isinstance(provider, (ProxyTracerProvider, NoOpTracerProvider))


def _adopt(provider: SdkTracerProvider, *, set_global: bool) -> None:
    """Own ``provider``: shut the previous one down, maybe make it global, bound it at exit."""
    global _provider
    previous, _provider = _provider, provider
    if previous is not None and previous is not provider:
        bounded(previous.shutdown, shutdown_timeout(None), _trace_setup.exporter_of(previous))
        _trace_setup.forget_exporter(previous)
    # Only while nothing was set: the global provider can be set once per process.
    if set_global and isinstance(trace.get_tracer_provider(), ProxyTracerProvider):
        trace.set_tracer_provider(provider)
    _register_exit()


def _register_exit() -> None:
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(_at_exit)
        _atexit_registered = True


def _steps(tracer_provider: SdkTracerProvider | None, timeout: float) -> list[Step]:
    """How to shut down each provider kitaru owns now, with the exporter to watch meanwhile."""
    steps: list[Step] = []
    if tracer_provider is not None:
        steps.append((tracer_provider.shutdown, _trace_setup.exporter_of(tracer_provider)))
    for signal in _SIGNALS:
        provider = signal.owned_provider()
        if provider is not None:
            steps.append((partial(signal.stop, provider, timeout), signal.owned_exporter()))
    return steps


def _close(
    observers: Sequence[KitaruOtelObserver],
    tracer_provider: SdkTracerProvider | None,
    budget: float,
) -> bool:
    """Hand queued log records on (half the budget at most), then shut the providers down."""
    started = time.monotonic()
    for observer in observers:
        observer.close_logs(budget / 2)  # milliseconds unless the SDK is stuck
    remaining = max(0.05, budget - (time.monotonic() - started))
    return shutdown_all(_steps(tracer_provider, remaining), remaining)


def _at_exit() -> None:
    _close([o for o in (_configured, _auto) if o is not None], _provider, shutdown_timeout(None))


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
        _setup_logs_and_metrics(ExportOptions(), set_global=True)
        if _real(trace.get_tracer_provider()):
            _auto = KitaruOtelObserver()  # the application's provider, looked up per flow
        elif _env.otlp_requested():
            provider = _trace_setup.build_provider()
            _adopt(provider, set_global=True)
            _auto = KitaruOtelObserver(tracer_provider=provider)
        elif any(signal.owned_provider() is not None for signal in _SIGNALS):
            _auto = KitaruOtelObserver()  # log records or metrics without exported spans
        return _auto


def _setup_logs_and_metrics(options: ExportOptions, *, set_global: bool) -> None:
    """Build the OTLP logger and meter providers the options or variables ask for."""
    for signal in _SIGNALS:
        # A new endpoint replaces what kitaru built before; the variables only fill a gap.
        if not signal.wanted(options.endpoint) or (
            options.endpoint is None and signal.owned_provider() is not None
        ):
            continue
        provider, exporter = signal.build(options)
        previous = signal.adopt(provider, exporter, set_global=set_global)
        if previous is not None:
            timeout = shutdown_timeout(None)
            bounded(partial(signal.stop, previous, timeout), timeout)
        _register_exit()


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
    _env.protocol(protocol)  # checked before anything changes; each signal resolves its own
    export = ExportOptions(
        endpoint=endpoint.strip() if endpoint else None,
        protocol=protocol,
        service_name=service_name,
        timeout=export_timeout,
    )
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
            built = _trace_setup.build_provider(export)
            _adopt(built, set_global=set_global_provider)
            provider = built
        if logger_provider is None or meter_provider is None:
            _setup_logs_and_metrics(export, set_global=set_global_provider)
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
    runtime = current_runtime()
    if runtime is not None:
        for existing in runtime.observers:
            if any(existing is o for o in observers):
                runtime.remove_observer(existing)
    _registry.forget_all()
    try:
        return _close(observers, provider, shutdown_timeout(timeout))
    finally:
        if provider is not None:
            _trace_setup.forget_exporter(provider)
        for signal in _SIGNALS:
            signal.forget()
