"""End to end: a running checkpoint's progress in a real log store before its span ends.

kitaru (OTLP over HTTP or gRPC, by the standard variables) -> the real Collector (its logs
pipeline with the privacy step) -> the real VictoriaLogs, queried over its LogsQL HTTP API by
the trace ID computed from the execution ID, while the checkpoint is still running; then the
finished trace in the real Jaeger, whose checkpoint span has the span ID the records carry.
"""

from __future__ import annotations

import base64
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry._logs import _internal as logs_api
from opentelemetry._logs import set_logger_provider
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.metrics import _internal as metrics_api
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.util._once import Once

import kitaru
import kitaru.otel
from kitaru import checkpoint, flow
from kitaru.runtime._runtime import reset_runtime

try:
    from . import _procs
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _procs  # type: ignore[no-redef]

pytestmark = [
    pytest.mark.collector,
    pytest.mark.jaeger,
    pytest.mark.victorialogs,
    pytest.mark.timeout(180),
]

CANARY_IN = "canary-in-3d9e1f"
CANARY_OUT = "canary-out-3d9e1f"
CANARY_EXC = "canary-exc-3d9e1f"
RUN_SECONDS = 5.0
EVERY_SECONDS = 0.2
STEPS = int(RUN_SECONDS / EVERY_SECONDS)  # 25 progress events

state: dict[str, Any] = {}


@checkpoint(retries=1)
def long_step(secret: str) -> str:
    state["attempts"] = state.get("attempts", 0) + 1
    if state["attempts"] == 1:
        raise RuntimeError(f"first attempt refused {CANARY_EXC}")
    state["running"] = True
    try:
        for i in range(1, STEPS + 1):
            kitaru.progress(f"working: step {i} of {STEPS}", step=i, percent=i / STEPS)
            time.sleep(EVERY_SECONDS)
    finally:
        state["running"] = False
    return CANARY_OUT


@flow
def live_logs_flow(secret: str) -> str:
    return long_step(secret)


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

    state.clear()
    reset()
    yield
    reset()


def _hex(value: str) -> str:
    if len(value) in (16, 32) and all(c in "0123456789abcdef" for c in value.lower()):
        return value.lower()
    return base64.b64decode(value).hex()


def _set_env(monkeypatch: pytest.MonkeyPatch, otelcol: _procs.Otelcol, protocol: str) -> None:
    for key in list(os.environ):
        if key.startswith("OTEL_"):
            monkeypatch.delenv(key)
    if protocol == "grpc":
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://{otelcol.otlp_grpc_endpoint}")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
    else:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otelcol.otlp_http_endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    monkeypatch.setenv("OTEL_BLRP_SCHEDULE_DELAY", "100")  # the SDK's log batch: 0.1 s
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "1000")


def _run_while_watching(victorialogs: _procs.VictoriaLogs) -> tuple[str, list[dict[str, Any]]]:
    """Runs the flow on a thread; returns its trace ID and the records seen while it ran."""
    handle_box: dict[str, Any] = {}

    def run() -> None:
        handle = live_logs_flow.run(CANARY_IN)
        handle_box["handle"] = handle
        handle_box["result"] = handle.wait(60)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    _procs.wait_until(lambda: "handle" in handle_box, timeout=30, what="the flow to start")
    trace_id = kitaru.otel.trace_id_for_execution(handle_box["handle"].exec_id)

    first = f"working: step 1 of {STEPS}"

    def early_records() -> list[dict[str, Any]] | None:
        rows = victorialogs.query(f'trace_id:"{trace_id}"')
        found = any(r.get("_msg") == first for r in rows)
        return rows if found and state.get("running") else None

    # The early progress records, found while the checkpoint is still publishing.
    seen = _procs.wait_until(
        early_records, timeout=RUN_SECONDS, interval=0.2, what="early progress in VictoriaLogs"
    )
    still_running = bool(state.get("running"))
    runner.join(60)
    assert handle_box.get("result") == CANARY_OUT
    assert still_running, "the records were only found after the checkpoint ended"
    # Found at most RUN_SECONDS into a checkpoint that publishes for RUN_SECONDS: early.
    assert any(r.get("event_name") == "kitaru.checkpoint.progress" for r in seen)
    return trace_id, seen


def _check_store(
    victorialogs: _procs.VictoriaLogs, jaeger: _procs.Jaeger, trace_id: str
) -> list[dict[str, Any]]:
    def complete() -> list[dict[str, Any]] | None:
        rows = victorialogs.query(f'trace_id:"{trace_id}"')
        names = [r.get("event_name") for r in rows]
        done = names.count("kitaru.checkpoint.progress") == STEPS and (
            "kitaru.checkpoint.returned" in names
        )
        return rows if done else None

    rows = _procs.wait_until(complete, timeout=30, interval=0.3, what="every record")
    spans = jaeger.wait_for_trace(trace_id, min_spans=3, timeout=60)
    attempts = {
        int(_procs.attributes_dict(s.get("attributes", []))["kitaru.checkpoint.attempt"]): _hex(
            s["spanId"]
        )
        for s in spans
        if s["name"] == "kitaru.checkpoint long_step"
    }
    assert set(attempts) == {1, 2}
    by_span: dict[str, set[str]] = {}
    for row in rows:
        by_span.setdefault(row["span_id"], set()).add(str(row.get("event_name")))
    # Every record carries the span ID its attempt's finished span has in Jaeger.
    assert set(by_span) == set(attempts.values())
    assert "kitaru.checkpoint.failed" in by_span[attempts[1]]
    assert "kitaru.checkpoint.progress" in by_span[attempts[2]]
    failed = next(r for r in rows if r.get("event_name") == "kitaru.checkpoint.failed")
    assert failed["severity_text"] == "ERROR"
    assert failed["error.type"] == "RuntimeError"
    progress = next(r for r in rows if r.get("event_name") == "kitaru.checkpoint.progress")
    assert progress["_msg"].startswith("working: step ")
    assert progress["kitaru.event.data.step"].startswith("sha256:")  # the Collector's step
    # No canary from inputs, outputs or the exception, anywhere in the store.
    everything = repr(victorialogs.query("_time:1h", limit=100_000))
    for canary in (CANARY_IN, CANARY_OUT, CANARY_EXC):
        assert canary not in everything
        assert canary not in repr(rows)
    return rows


@pytest.mark.parametrize(
    "protocol", [pytest.param("http/protobuf", marks=pytest.mark.browser), "grpc"]
)
def test_progress_is_in_victorialogs_while_the_checkpoint_runs(
    protocol: str,
    monkeypatch: pytest.MonkeyPatch,
    otelcol_logs: _procs.Otelcol,
    victorialogs: _procs.VictoriaLogs,
    jaeger: _procs.Jaeger,
) -> None:
    _set_env(monkeypatch, otelcol_logs, protocol)
    trace_id, seen = _run_while_watching(victorialogs)
    assert all(r["trace_id"] == trace_id for r in seen)
    rows = _check_store(victorialogs, jaeger, trace_id)
    assert {r.get("service.name") for r in rows} == {"kitaru"}
    if protocol == "http/protobuf":
        _screenshot_ui(victorialogs, trace_id)


def test_the_applications_logger_provider_is_used_and_left_running(
    monkeypatch: pytest.MonkeyPatch,
    otelcol_logs: _procs.Otelcol,
    victorialogs: _procs.VictoriaLogs,
    jaeger: _procs.Jaeger,
) -> None:
    _set_env(monkeypatch, otelcol_logs, "http/protobuf")
    app_provider = LoggerProvider(resource=Resource({SERVICE_NAME: "app-own-logs"}))
    app_provider.add_log_record_processor(
        BatchLogRecordProcessor(
            OTLPLogExporter(endpoint=otelcol_logs.otlp_http_endpoint + "/v1/logs"),
            schedule_delay_millis=100,
        )
    )
    set_logger_provider(app_provider)
    try:
        trace_id, _ = _run_while_watching(victorialogs)
        rows = _check_store(victorialogs, jaeger, trace_id)
        # kitaru's records went through the application's provider (its resource)...
        assert {r.get("service.name") for r in rows} == {"app-own-logs"}
        assert kitaru.otel.shutdown(timeout=5.0)
        # ...which kitaru neither replaced nor shut down: the application keeps logging.
        assert logs_api.get_logger_provider() is app_provider
        app_provider.get_logger("app").emit(body="app-still-logging-3d9e1f")
        _procs.wait_until(
            lambda: victorialogs.query('"app-still-logging-3d9e1f"'),
            timeout=15,
            what="the application's own record",
        )
    finally:
        app_provider.shutdown()


def _screenshot_ui(victorialogs: _procs.VictoriaLogs, trace_id: str) -> None:
    """VictoriaLogs' own web UI, asked for the trace ID, shows the records."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "web"))
    try:
        from _webkit import ARTIFACTS, launch, require_browser
    finally:
        sys.path.pop(0)
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        profile = Path(victorialogs.process.log_path).parent / "chromium-profile"
        context = launch(pw, profile)
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.goto(victorialogs.ui_url(f'trace_id:"{trace_id}"'))
            page.get_by_text(f"working: step 1 of {STEPS}", exact=False).first.wait_for(
                timeout=45_000
            )
            page.get_by_text("kitaru.checkpoint.returned", exact=False).first.wait_for(
                timeout=45_000
            )
            ARTIFACTS.mkdir(exist_ok=True)
            path = ARTIFACTS / "victorialogs-live-progress.png"
            page.screenshot(path=str(path), full_page=True, animations="disabled")
            assert path.stat().st_size > 10_000
        finally:
            context.close()
