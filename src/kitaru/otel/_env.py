"""Reading the standard ``OTEL_*`` variables, only as far as kitaru must decide something.

Everything else (endpoints, headers, certificates, compression, sampler, resource, batching) is
read by the OpenTelemetry SDK and exporters themselves, so the standard variables just work.
No OpenTelemetry import here: this runs on every runtime build, configured or not.
"""

from __future__ import annotations

import os
from typing import Literal
from urllib.parse import urlsplit

from kitaru.exceptions import KitaruUsageError

__all__ = [
    "PROTOCOLS",
    "Protocol",
    "Signal",
    "check_endpoint",
    "endpoint_from_env",
    "exporter_off",
    "logs_requested",
    "metrics_requested",
    "otlp_requested",
    "protocol",
    "sdk_disabled",
    "signal_requested",
    "timeout_from_env",
]

Signal = Literal["traces", "logs", "metrics"]

Protocol = Literal["http/protobuf", "grpc"]
PROTOCOLS: tuple[Protocol, ...] = ("http/protobuf", "grpc")

OTEL_SDK_DISABLED = "OTEL_SDK_DISABLED"
OTEL_TRACES_EXPORTER = "OTEL_TRACES_EXPORTER"
OTEL_EXPORTER_OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
OTEL_EXPORTER_OTLP_PROTOCOL = "OTEL_EXPORTER_OTLP_PROTOCOL"
OTEL_EXPORTER_OTLP_TRACES_PROTOCOL = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
OTEL_EXPORTER_OTLP_TIMEOUT = "OTEL_EXPORTER_OTLP_TIMEOUT"
OTEL_EXPORTER_OTLP_TRACES_TIMEOUT = "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"
OTEL_LOGS_EXPORTER = "OTEL_LOGS_EXPORTER"
OTEL_METRICS_EXPORTER = "OTEL_METRICS_EXPORTER"
OTEL_TRACES_SAMPLER = "OTEL_TRACES_SAMPLER"
OTEL_TRACES_SAMPLER_ARG = "OTEL_TRACES_SAMPLER_ARG"


def _get(name: str) -> str:
    return os.environ.get(name, "").strip()


def sdk_disabled() -> bool:
    """``OTEL_SDK_DISABLED=true``: no spans at all."""
    return _get(OTEL_SDK_DISABLED).lower() == "true"


def _exporters(signal: Signal) -> list[str]:
    raw = _get(f"OTEL_{signal.upper()}_EXPORTER")
    return [e.strip().lower() for e in raw.split(",") if e.strip()]


def signal_requested(signal: Signal) -> bool:
    """True when the environment asks for OTLP export of ``signal``.

    ``OTEL_<SIGNAL>_EXPORTER``, when set, decides (``otlp`` among its values); otherwise an
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT`` does. An unset
    environment exports nothing: the SDK's default exporter is not assumed.
    """
    if sdk_disabled():
        return False
    exporters = _exporters(signal)
    if exporters:
        return "otlp" in exporters
    return bool(
        _get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT") or _get(OTEL_EXPORTER_OTLP_ENDPOINT)
    )


def exporter_off(signal: Signal) -> bool:
    """True when the user turned ``signal`` off (``OTEL_<SIGNAL>_EXPORTER=none``, or the SDK)."""
    return sdk_disabled() or _exporters(signal) == ["none"]


def otlp_requested() -> bool:
    """True when the environment asks for OTLP trace export (see :func:`signal_requested`)."""
    return signal_requested("traces")


def logs_requested() -> bool:
    """True when the environment asks for OTLP log export (see :func:`signal_requested`)."""
    return signal_requested("logs")


def metrics_requested() -> bool:
    """True when the environment asks for OTLP metric export (see :func:`signal_requested`)."""
    return signal_requested("metrics")


def protocol(arg: str | None = None, signal: Signal = "traces") -> Protocol:
    """The OTLP protocol: argument, ``..._<SIGNAL>_PROTOCOL``, ``..._PROTOCOL``, ``http/protobuf``.

    Raises:
        KitaruUsageError: The protocol is not one the Python exporters support.
    """
    source = "protocol"
    raw = arg
    if raw is None:
        signal_name = f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL"
        for name in (signal_name, OTEL_EXPORTER_OTLP_PROTOCOL):
            if _get(name):
                raw, source = _get(name), name
                break
    if raw is None:
        return "http/protobuf"
    value = raw.strip().lower()
    if value == "http/protobuf":
        return "http/protobuf"
    if value == "grpc":
        return "grpc"
    raise KitaruUsageError(
        f"{source} must be one of {', '.join(PROTOCOLS)}, got {raw!r}"
        + (" (the Python OTLP exporters do not send http/json)" if value == "http/json" else "")
    )


def timeout_from_env(signal: Signal = "traces") -> bool:
    """True when ``OTEL_EXPORTER_OTLP_(<SIGNAL>_)TIMEOUT`` is set (the exporter then reads it)."""
    return bool(
        _get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_TIMEOUT") or _get(OTEL_EXPORTER_OTLP_TIMEOUT)
    )


def check_endpoint(value: str, source: str) -> str:
    """An OTLP endpoint as given, or a :class:`~kitaru.KitaruUsageError` naming ``source``.

    The endpoint must be an ``http://`` or ``https://`` URL with a host (for gRPC too): a
    value such as ``127.0.0.1:4318`` would otherwise be accepted here and fail at the first
    export with a message about connection adapters.
    """
    text = value.strip()
    try:
        parts = urlsplit(text)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        parts, port_ok = None, False
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        hint = ""
        if parts is not None and parts.scheme not in ("http", "https") and "//" not in text:
            hint = f" (did you mean http://{text}?)"
        raise KitaruUsageError(
            f"{source} must be an http:// or https:// URL with a host, got {value!r}{hint}"
        )
    return text


def endpoint_from_env() -> str | None:
    """The traces endpoint the OTLP exporter will read, checked; ``None`` when unset.

    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` wins over ``OTEL_EXPORTER_OTLP_ENDPOINT``; both are
    checked when set, so a mistyped one is reported even when the other wins.

    Raises:
        KitaruUsageError: A set variable is not an http(s) URL with a host.
    """
    found: str | None = None
    for name in (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT):
        if _get(name):
            checked = check_endpoint(_get(name), name)
            found = found or checked
    return found
