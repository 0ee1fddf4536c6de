"""The OTLP exporters kitaru builds, made the same way for spans, log records and metrics.

One place decides, for every signal: the endpoint (``configure(endpoint=...)`` is a base URL,
like ``OTEL_EXPORTER_OTLP_ENDPOINT``; over HTTP the signal's path is appended), the timeout
(kitaru's short default unless the argument or ``OTEL_EXPORTER_OTLP_(<SIGNAL>_)TIMEOUT`` says
otherwise) and the exporter class of the chosen protocol. Everything else (headers,
certificates, compression) is left to the exporter, which reads the standard variables.

Only the chosen protocol's exporter module is imported, when the first exporter is built: each
is an optional package (``docs/architecture.md``, "Imports inside functions").

Every exporter kitaru builds is wrapped in a watched one (:class:`ExportWatch`) that remembers
whether the collector answers, so that shutting down stops waiting once it does not (see
``_shutdown.py``).
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource

from kitaru.otel import _env

__all__ = [
    "DEFAULT_EXPORT_TIMEOUT",
    "DEFAULT_SERVICE_NAME",
    "ExportOptions",
    "ExportWatch",
    "Watched",
    "display",
    "exporter",
    "no_instrumentation",
    "quiet_exporter_logs",
    "resource",
]

DEFAULT_EXPORT_TIMEOUT = 1.0
"""Seconds per export request of the span and log exporters kitaru builds."""

DEFAULT_SERVICE_NAME = "kitaru"

# An export running longer than this counts as hung (a local collector answers in
# milliseconds; raise OTEL_EXPORTER_OTLP_TIMEOUT and this matters less for a remote one).
_STUCK_SECONDS = 0.5

_SUPPRESS_KEY = otel_context._SUPPRESS_INSTRUMENTATION_KEY

# The exporter class per signal and protocol: (module, class name).
_EXPORTERS: dict[tuple[_env.Signal, _env.Protocol], tuple[str, str]] = {
    ("traces", "http/protobuf"): (
        "opentelemetry.exporter.otlp.proto.http.trace_exporter",
        "OTLPSpanExporter",
    ),
    ("traces", "grpc"): (
        "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
        "OTLPSpanExporter",
    ),
    ("logs", "http/protobuf"): (
        "opentelemetry.exporter.otlp.proto.http._log_exporter",
        "OTLPLogExporter",
    ),
    ("logs", "grpc"): ("opentelemetry.exporter.otlp.proto.grpc._log_exporter", "OTLPLogExporter"),
    ("metrics", "http/protobuf"): (
        "opentelemetry.exporter.otlp.proto.http.metric_exporter",
        "OTLPMetricExporter",
    ),
    ("metrics", "grpc"): (
        "opentelemetry.exporter.otlp.proto.grpc.metric_exporter",
        "OTLPMetricExporter",
    ),
}


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """What ``configure()`` says about OTLP export, the same for every signal.

    ``None`` leaves a setting to the standard ``OTEL_*`` variables (then kitaru's defaults).

    Attributes:
        endpoint: A base URL (like ``OTEL_EXPORTER_OTLP_ENDPOINT``).
        protocol: ``http/protobuf`` or ``grpc``, as given (checked per signal).
        service_name: ``service.name`` of the providers kitaru builds.
        timeout: Seconds per export request.
    """

    endpoint: str | None = None
    protocol: str | None = None
    service_name: str | None = None
    timeout: float | None = None


def resource(service_name: str | None) -> Resource:
    """The resource of every provider kitaru builds: ``service.name`` is never unknown."""
    found = Resource.create()  # reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
    if service_name:
        return found.merge(Resource({SERVICE_NAME: service_name}))
    current = str(found.attributes.get(SERVICE_NAME, ""))
    if not current or current.startswith("unknown_service"):
        found = found.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return found


def _signal_url(endpoint: str, signal: _env.Signal) -> str:
    # configure(endpoint=...) means what OTEL_EXPORTER_OTLP_ENDPOINT means: a base URL.
    path = f"/v1/{signal}"
    base = endpoint.rstrip("/")
    return base if base.endswith(path) else base + path


def exporter(
    signal: _env.Signal,
    endpoint: str | None,
    protocol: _env.Protocol,
    timeout: float | None,
    *,
    default_timeout: float = DEFAULT_EXPORT_TIMEOUT,
) -> Any:
    """A new OTLP exporter of ``signal`` (the SDK's class; not yet watched).

    Args:
        signal: ``traces``, ``logs`` or ``metrics``.
        endpoint: A base URL, or ``None`` to leave the endpoint to the standard variables.
        protocol: ``http/protobuf`` or ``grpc``.
        timeout: Seconds per export; ``None``: the standard variable if set, else
            ``default_timeout``.
        default_timeout: The timeout when neither the argument nor a variable gives one.
    """
    kwargs: dict[str, Any] = {}
    if timeout is not None:
        kwargs["timeout"] = timeout
    elif not _env.timeout_from_env(signal):
        kwargs["timeout"] = default_timeout
    if endpoint:
        kwargs["endpoint"] = endpoint if protocol == "grpc" else _signal_url(endpoint, signal)
    module_name, class_name = _EXPORTERS[(signal, protocol)]
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(**kwargs)


class Watched(Protocol):
    """An exporter (or a group of them) that says whether the collector answers."""

    def healthy(self) -> bool:
        """False once an export failed, or while one has been running for over 0.5 s."""
        ...


_R = TypeVar("_R")


class ExportWatch:
    """Remembers whether the collector answers: each watched exporter runs its exports here."""

    def __init__(self) -> None:
        self.failed = False
        self._since: float | None = None

    def watch(self, export: Callable[[], _R], success: object) -> _R:
        """Run ``export``; it failed unless it returned ``success`` (an exception propagates)."""
        self._since = time.monotonic()
        try:
            result = export()
        except Exception:
            self.failed = True
            raise
        finally:
            self._since = None
        self.failed = result is not success
        return result

    def healthy(self) -> bool:
        """False once an export failed, or while one has been running for over 0.5 s."""
        since = self._since
        stuck = since is not None and time.monotonic() - since > _STUCK_SECONDS
        return not (self.failed or stuck)


@contextmanager
def no_instrumentation() -> Iterator[None]:
    """Building exporters may touch instrumented libraries; none of that is worth a span."""
    token = otel_context.attach(otel_context.set_value(_SUPPRESS_KEY, True))
    try:
        yield
    finally:
        otel_context.detach(token)


class _QuietExporterLogs(logging.Filter):
    """Keeps the OTLP exporters' own retry and failure lines (and tracebacks) out of the logs.

    kitaru's span exporter wrapper says instead, in one warning per outage, that the collector
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


def quiet_exporter_logs() -> None:
    """Silence the OTLP exporters' own loggers below CRITICAL (see :class:`_QuietExporterLogs`)."""
    for name in _EXPORTER_LOGGERS:
        target = logging.getLogger(name)
        if _QUIET not in target.filters:
            target.addFilter(_QUIET)


def display(endpoint: str | None) -> str:
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
