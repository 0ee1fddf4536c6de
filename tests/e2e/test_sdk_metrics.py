"""End to end: kitaru's own SDK metrics (no spans sent, so no span metrics) through the real
Collector into the real Prometheus, and the dashboard's checkpoint panels drawn from them."""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry._logs import _internal as logs_api
from opentelemetry.metrics import _internal as metrics_api
from opentelemetry.util._once import Once

import kitaru.otel
from kitaru import checkpoint, flow
from kitaru.runtime._runtime import reset_runtime

try:
    from . import _procs
    from .test_collector_tooling import dashboard_queries
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _procs  # type: ignore[no-redef]
    from test_collector_tooling import dashboard_queries  # type: ignore[no-redef]

pytestmark = [pytest.mark.collector, pytest.mark.jaeger, pytest.mark.prometheus]

FLOW = "sdk_metrics_only"
# Panels the SDK metrics can feed (cache hits, replays and flow spans need span metrics).
SDK_PANELS = (
    "Checkpoint runs / s (by status)",
    "Failed checkpoint runs / s",
    "Checkpoint error ratio",
    "p95 checkpoint duration",
)


@checkpoint
def ok_step(x: int) -> int:
    return x + 1


@checkpoint
def bad_step(x: int) -> int:
    raise ValueError("no")


@flow(name=FLOW)
def metrics_flow(x: int) -> int:
    y = ok_step(x)
    with contextlib.suppress(ValueError):
        bad_step(y)
    return y


@pytest.fixture(autouse=True)
def clean_otel() -> Iterator[None]:
    def reset() -> None:
        kitaru.otel.shutdown(timeout=5.0)
        trace._TRACER_PROVIDER_SET_ONCE = Once()  # type: ignore[attr-defined]
        trace._TRACER_PROVIDER = None  # type: ignore[attr-defined]
        logs_api._LOGGER_PROVIDER_SET_ONCE = Once()
        logs_api._LOGGER_PROVIDER = None
        metrics_api._METER_PROVIDER_SET_ONCE = Once()
        metrics_api._METER_PROVIDER = None
        reset_runtime()

    reset()
    yield
    reset()


def _values(result: list[dict[str, Any]]) -> list[float]:
    return [float(r["value"][1]) for r in result if math.isfinite(float(r["value"][1]))]


def test_dashboard_checkpoint_panels_work_from_sdk_metrics(
    monkeypatch: pytest.MonkeyPatch, otelcol: _procs.Otelcol, prometheus: _procs.Prometheus
) -> None:
    for key in list(os.environ):
        if key.startswith("OTEL_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otelcol.otlp_http_endpoint)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")  # no spans: no span metrics
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "none")
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "500")
    reset_runtime()

    assert metrics_flow(1) == 2
    _procs.wait_until(
        lambda: prometheus.query(
            f'kitaru_checkpoint_duration_seconds_count{{kitaru_flow_name="{FLOW}"}}'
        ),
        timeout=30,
        interval=0.5,
        what="SDK metrics in Prometheus",
    )
    assert not prometheus.query(f'traces_span_metrics_calls_total{{kitaru_flow_name="{FLOW}"}}')
    for _ in range(3):  # more runs after the first scrape: rate() sees an increase
        assert metrics_flow(1) == 2

    def only_this_flow(expr: str) -> str:
        return re.sub(r'kitaru_flow_name=~"\.\*"', f'kitaru_flow_name="{FLOW}"', expr)

    queries = {
        title: only_this_flow(expr)
        for title, expr in dashboard_queries()
        if any(title.startswith(f"panel {name!r}") for name in SDK_PANELS)
    }
    assert len(queries) == len(SDK_PANELS)
    pending = dict(queries)

    def all_have_data() -> bool:
        for title, expr in list(pending.items()):
            if any(v > 0 for v in _values(prometheus.query(expr))):
                del pending[title]
        return not pending

    try:
        _procs.wait_until(all_have_data, timeout=40, interval=0.5, what="SDK-fed panels")
    except AssertionError as exc:
        details = "\n".join(f"  {t}: {e} -> {prometheus.query(e)}" for t, e in pending.items())
        raise AssertionError(f"{exc}\nqueries without data:\n{details}") from None
    events = prometheus.query('kitaru_events_total{kitaru_event_category="lifecycle"}')
    assert any(v > 0 for v in _values(events))
