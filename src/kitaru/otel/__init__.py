"""OpenTelemetry for kitaru: one trace per flow execution, one span per checkpoint execution.

::

    import kitaru.otel

    kitaru.otel.configure()                     # or just set OTEL_EXPORTER_OTLP_ENDPOINT
    trace_id = kitaru.otel.trace_id_for_execution(handle.exec_id)

* The trace ID is a pure function of the execution ID (a UUID execution ID is its own trace
  ID), and the flow span's ID is one too, so any process can find or join the trace.
* Every live event carries ``payload["kitaru"]["trace_id"]`` and ``["span_id"]`` of its
  checkpoint execution's span.
* Spans say what kind of thing happened: never checkpoint inputs or outputs, and a failure's
  exception type only, unless you opt in with ``record_exception_messages=True``.

The public names are loaded on first use, so importing this package (which the runtime does
for every runtime it builds) costs nothing until OpenTelemetry is actually used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from kitaru._public import publish_names

if TYPE_CHECKING:
    from kitaru.otel._bridge import KitaruOtelObserver
    from kitaru.otel._ids import flow_span_id_for_execution, trace_id_for_execution
    from kitaru.otel._registry import span_context_for_correlation_id, span_context_for_event
    from kitaru.otel._sdk_tracer import TraceIdRatioSampler
    from kitaru.otel._setup import configure, shutdown

__all__ = [
    "KitaruOtelObserver",
    "TraceIdRatioSampler",
    "configure",
    "flow_span_id_for_execution",
    "shutdown",
    "span_context_for_correlation_id",
    "span_context_for_event",
    "trace_id_for_execution",
]

_WHERE = {
    "KitaruOtelObserver": "kitaru.otel._bridge",
    "TraceIdRatioSampler": "kitaru.otel._sdk_tracer",
    "configure": "kitaru.otel._setup",
    "flow_span_id_for_execution": "kitaru.otel._ids",
    "shutdown": "kitaru.otel._setup",
    "span_context_for_correlation_id": "kitaru.otel._registry",
    "span_context_for_event": "kitaru.otel._registry",
    "trace_id_for_execution": "kitaru.otel._ids",
}

_INSTALL_HINT = (
    "kitaru.otel needs the OpenTelemetry packages: "
    "pip install opentelemetry-api opentelemetry-sdk opentelemetry-exporter-otlp"
)


def __getattr__(name: str) -> Any:
    module_name = _WHERE.get(name)
    if module_name is None:
        raise AttributeError(f"module 'kitaru.otel' has no attribute {name!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if exc.name and exc.name.startswith("opentelemetry"):
            raise ImportError(_INSTALL_HINT) from exc
        raise
    value = getattr(module, name)
    publish_names(__name__, {name: value}, [name])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
