"""Live events as OpenTelemetry log records: emitted while the checkpoint runs, with its span's
IDs, under the span events' privacy rules; an application's LoggerProvider used as it is."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry._logs import SeverityNumber, get_logger_provider, set_logger_provider
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from otlp_sink import OtlpSink

import kitaru
import kitaru.otel
from kitaru import checkpoint, flow
from kitaru.events._kinds import FAILED_MESSAGE
from kitaru.otel import KitaruOtelObserver
from kitaru.otel._logs import emit_checkpoint_log
from kitaru.runtime._runtime import reset_runtime
from kitaru.runtime._scope import current_checkpoint
from kitaru.testing import capture_events

CANARY_IN = "canary-input-91f2"
CANARY_OUT = "canary-output-91f2"
CANARY_EXC = "canary-exception-91f2"

tries: dict[str, int] = {}


@checkpoint(retries=1)
def work(secret: str) -> str:
    tries["n"] = tries.get("n", 0) + 1
    kitaru.progress("step one", percent=0.25, nested={"x": secret})
    kitaru.events.publish("doc.saved", {"size": 3}, message="saved")
    if tries["n"] == 1:
        raise ValueError(f"refused {CANARY_EXC}")
    return CANARY_OUT


@flow
def work_flow(secret: str) -> str:
    return work(secret)


class Logs:
    def __init__(self) -> None:
        self.exporter = InMemoryLogRecordExporter()
        self.provider = LoggerProvider()
        self.provider.add_log_record_processor(SimpleLogRecordProcessor(self.exporter))

    def records(self) -> list[Any]:
        return [d.log_record for d in self.exporter.get_finished_logs()]


@pytest.fixture
def spans() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def _run(tmp_path: Any, bridge: KitaruOtelObserver) -> None:
    tries.clear()
    with capture_events(tmp_path / "home", observers=(bridge,)):
        assert work_flow(CANARY_IN) == CANARY_OUT
    assert bridge.force_flush(5.0)


def test_every_live_event_becomes_a_log_record_with_its_span_ids(tmp_path, spans):
    tracer_provider, span_exporter = spans
    logs = Logs()
    bridge = KitaruOtelObserver(tracer_provider=tracer_provider, logger_provider=logs.provider)
    _run(tmp_path, bridge)

    checkpoint_spans = sorted(
        (s for s in span_exporter.get_finished_spans() if s.name == "kitaru.checkpoint work"),
        key=lambda s: s.attributes["kitaru.checkpoint.attempt"],
    )
    assert len(checkpoint_spans) == 2
    records = logs.records()
    by_span: dict[int, list[Any]] = {}
    for record in records:
        by_span.setdefault(record.span_id, []).append(record)
    assert set(by_span) == {s.context.span_id for s in checkpoint_spans}

    failed_span, returned_span = checkpoint_spans
    first_attempt = by_span[failed_span.context.span_id]
    first = [(r.event_name, r.severity_number, r.body) for r in first_attempt]
    assert first == [
        ("kitaru.checkpoint.started", SeverityNumber.INFO, "kitaru.checkpoint.started"),
        ("kitaru.checkpoint.progress", SeverityNumber.INFO, "step one"),
        ("doc.saved", SeverityNumber.INFO, "saved"),
        ("kitaru.checkpoint.failed", SeverityNumber.ERROR, FAILED_MESSAGE),
    ]
    second = [r.event_name for r in by_span[returned_span.context.span_id]]
    assert second[-1] == "kitaru.checkpoint.returned"
    for record in records:
        assert record.trace_id == failed_span.context.trace_id
        assert (
            record.attributes["kitaru.execution.id"]
            == failed_span.attributes["kitaru.execution.id"]
        )
        assert record.attributes["kitaru.checkpoint.name"] == "work"
    progress = next(r for r in records if r.event_name == "kitaru.checkpoint.progress")
    assert progress.attributes["kitaru.event.data.percent"] == 0.25
    assert progress.attributes["kitaru.event.data_dropped"] == 1  # the nested dict
    assert progress.severity_text == "INFO"
    failed = next(r for r in records if r.event_name == "kitaru.checkpoint.failed")
    assert failed.attributes["error.type"] == "ValueError"
    assert failed.severity_text == "ERROR"
    # Never inputs, outputs or exception text.
    for record in records:
        text = repr((record.body, dict(record.attributes or {})))
        for canary in (CANARY_IN, CANARY_OUT, CANARY_EXC):
            assert canary not in text


def test_event_attributes_off_keeps_only_kinds(tmp_path, spans):
    logs = Logs()
    bridge = KitaruOtelObserver(
        tracer_provider=spans[0], logger_provider=logs.provider, event_attributes=False
    )
    _run(tmp_path, bridge)
    records = logs.records()
    progress = next(r for r in records if r.event_name == "kitaru.checkpoint.progress")
    assert progress.body == "kitaru.checkpoint.progress"
    assert not any(k.startswith("kitaru.event.data") for k in progress.attributes)
    assert "saved" not in {r.body for r in records}


def test_log_records_switch_off(tmp_path, spans, monkeypatch):
    logs = Logs()
    bridge = KitaruOtelObserver(
        tracer_provider=spans[0], logger_provider=logs.provider, log_records=False
    )
    _run(tmp_path, bridge)
    assert logs.records() == []
    assert len(spans[1].get_finished_spans()) == 3  # spans as usual

    monkeypatch.setenv("KITARU_OTEL_LOG_RECORDS", "false")
    bridge = KitaruOtelObserver(tracer_provider=spans[0], logger_provider=logs.provider)
    _run(tmp_path, bridge)
    assert logs.records() == []


def test_records_are_emitted_while_the_checkpoint_runs(tmp_path, spans):
    tracer_provider, span_exporter = spans
    logs = Logs()
    bridge = KitaruOtelObserver(tracer_provider=tracer_provider, logger_provider=logs.provider)
    release = threading.Event()
    seen: list[list[str]] = []

    @checkpoint
    def slow() -> None:
        kitaru.progress("early")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(r.body == "early" for r in logs.records()):
            time.sleep(0.01)
        seen.append([str(r.body) for r in logs.records()])
        seen.append([s.name for s in span_exporter.get_finished_spans()])
        release.set()

    @flow
    def slow_flow() -> None:
        slow()

    with capture_events(tmp_path / "home", observers=(bridge,)):
        slow_flow()
    assert release.is_set()
    assert "early" in seen[0]  # exported before the checkpoint ended...
    assert seen[1] == []  # ...while its span was not exported yet


def test_the_applications_logger_provider_is_used_and_never_shut_down(tmp_path, monkeypatch):
    logs = Logs()
    set_logger_provider(logs.provider)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")  # would build one
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    bridge = kitaru.otel.configure(tracer_provider=TracerProvider())
    assert bridge.log_emitter is not None
    assert bridge.log_emitter.provider is logs.provider
    reset_runtime()
    tries.clear()
    assert work_flow(CANARY_IN) == CANARY_OUT
    assert kitaru.otel.shutdown(timeout=5.0)
    assert get_logger_provider() is logs.provider
    assert any(r.event_name == "kitaru.checkpoint.progress" for r in logs.records())
    # Still open: the application's own records keep flowing after kitaru shut down.
    logs.provider.get_logger("app").emit(body="after kitaru")
    assert logs.records()[-1].body == "after kitaru"


def test_logs_turned_off_by_the_standard_variable(tmp_path, monkeypatch):
    logs = Logs()
    set_logger_provider(logs.provider)
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "none")
    bridge = KitaruOtelObserver(tracer_provider=TracerProvider())
    _run(tmp_path, bridge)
    assert logs.records() == []


def test_emit_checkpoint_log_carries_the_span_ids(tmp_path, spans):
    tracer_provider, span_exporter = spans
    logs = Logs()
    bridge = KitaruOtelObserver(tracer_provider=tracer_provider, logger_provider=logs.provider)

    @checkpoint
    def noisy() -> None:
        scope = current_checkpoint()
        assert scope is not None
        emit_checkpoint_log(
            scope, "a captured line", severity=SeverityNumber.WARN, attributes={"k": 1}
        )

    @flow
    def noisy_flow() -> None:
        noisy()

    with capture_events(tmp_path / "home", observers=(bridge,)):
        noisy_flow()
    assert bridge.force_flush(5.0)
    (span,) = [s for s in span_exporter.get_finished_spans() if s.name.endswith("noisy")]
    (line,) = [r for r in logs.records() if r.body == "a captured line"]
    assert (line.trace_id, line.span_id) == (span.context.trace_id, span.context.span_id)
    assert line.severity_text == "WARN"
    assert line.attributes["k"] == 1
    assert line.attributes["kitaru.checkpoint.name"] == "noisy"


def test_a_full_queue_drops_and_counts_without_blocking(tmp_path, spans):
    logs = Logs()
    gate = threading.Event()
    original = logs.exporter.export

    def slow_export(batch: Any) -> Any:
        gate.wait(5)
        return original(batch)

    logs.exporter.export = slow_export  # type: ignore[method-assign]
    bridge = KitaruOtelObserver(tracer_provider=spans[0], logger_provider=logs.provider)

    @checkpoint
    def burst() -> float:
        start = time.perf_counter()
        for i in range(6000):
            kitaru.progress("tick", i=i)
        return time.perf_counter() - start

    @flow
    def burst_flow() -> float:
        return burst()

    with capture_events(tmp_path / "home", observers=(bridge,)):
        elapsed = burst_flow()
        emitter = bridge.log_emitter
        assert emitter is not None
        assert emitter.dropped > 0  # the exporter is stuck: the queue filled up
        gate.set()
    assert elapsed < 5  # the stuck exporter never held the publishing thread


# -- OTLP by the standard variables ---------------------------------------------------------


@pytest.fixture
def sink() -> Iterator[OtlpSink]:
    s = OtlpSink()
    yield s
    s.close()


def test_standard_variables_export_log_records_over_otlp_http(sink, monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", sink.url)
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    reset_runtime()
    tries.clear()
    assert work_flow(CANARY_IN) == CANARY_OUT
    assert kitaru.otel.shutdown(timeout=5.0)
    assert "/v1/logs" in sink.paths
    assert "/v1/metrics" not in sink.paths
    names = [r.event_name for r in sink.log_records()]
    assert names.count("kitaru.checkpoint.progress") == 2
    assert CANARY_IN.encode() not in sink.raw()
    spans = {s.span_id for s in sink.spans() if s.name == "kitaru.checkpoint work"}
    assert {r.span_id for r in sink.log_records()} == spans


def test_logs_endpoint_alone_turns_log_records_on(sink, monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", sink.url + "/v1/logs")
    reset_runtime()
    tries.clear()
    assert work_flow(CANARY_IN) == CANARY_OUT
    assert kitaru.otel.shutdown(timeout=5.0)
    assert set(sink.paths) == {"/v1/logs"}
    assert any(r.event_name == "kitaru.checkpoint.returned" for r in sink.log_records())


# -- metrics ------------------------------------------------------------------------------


def _points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    out: dict[str, list[Any]] = {}
    assert data is not None
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                out.setdefault(metric.name, []).extend(metric.data.data_points)
    return out


def test_checkpoint_metrics_from_the_sdk_meter(tmp_path, spans):
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    bridge = KitaruOtelObserver(tracer_provider=spans[0], meter_provider=meters)
    tries.clear()
    with capture_events(tmp_path / "home", observers=(bridge,)):
        assert work_flow(CANARY_IN) == CANARY_OUT
        points = _points(reader)  # while the runtime (and its publisher) is there
    durations = {
        (p.attributes["kitaru.checkpoint.name"], p.attributes["kitaru.checkpoint.status"]): p.count
        for p in points["kitaru.checkpoint.duration"]
    }
    assert durations == {("work", "failed"): 1, ("work", "returned"): 1}
    events = {p.attributes["kitaru.event.category"]: p.value for p in points["kitaru.events"]}
    assert events == {"lifecycle": 4, "progress": 2, "custom": 2}
    drops = {p.attributes["kitaru.drop.reason"]: p.value for p in points["kitaru.events.dropped"]}
    assert drops["span_event_cap"] == 0 and drops["overflow"] == 0


def test_span_event_cap_drops_are_counted(tmp_path, spans):
    reader = InMemoryMetricReader()
    bridge = KitaruOtelObserver(
        tracer_provider=spans[0],
        meter_provider=MeterProvider(metric_readers=[reader]),
        max_span_events=4,
    )

    @checkpoint
    def chatty() -> None:
        for i in range(10):
            kitaru.progress("tick", i=i)

    @flow
    def chatty_flow() -> None:
        chatty()

    with capture_events(tmp_path / "home", observers=(bridge,)):
        chatty_flow()
    drops = {
        p.attributes["kitaru.drop.reason"]: p.value
        for p in _points(reader)["kitaru.events.dropped"]
    }
    assert drops["span_event_cap"] == 6  # 10 events, 3 first + the latest kept


def test_configure_again_moves_log_records_to_the_new_endpoint(monkeypatch):
    first, second = OtlpSink(), OtlpSink()
    try:
        kitaru.otel.configure(endpoint=first.url)
        kitaru.otel.configure(endpoint=second.url)
        tries.clear()
        assert work_flow(CANARY_IN) == CANARY_OUT
        assert kitaru.otel.shutdown(timeout=5.0)
        assert "/v1/logs" not in first.paths
        assert any(r.event_name == "kitaru.checkpoint.returned" for r in second.log_records())
    finally:
        first.close()
        second.close()
