"""The bridge's options (declared once, checked) and when it looks for a logger provider."""

from __future__ import annotations

import dataclasses

import pytest
from opentelemetry._logs import set_logger_provider
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider

import kitaru
from kitaru import checkpoint, flow
from kitaru.exceptions import KitaruUsageError
from kitaru.otel import KitaruOtelObserver
from kitaru.otel._settings import BridgeOptions, BridgeSettings
from kitaru.testing import capture_events


def test_every_setting_is_an_option_of_the_bridge() -> None:
    fields = {f.name for f in dataclasses.fields(BridgeSettings)}
    assert set(BridgeOptions.__annotations__) == fields
    bridge = KitaruOtelObserver(max_span_events=3, caller_span="parent", log_records=False)
    assert bridge.settings.max_span_events == 3
    assert bridge.settings.caller_span == "parent"
    assert bridge.settings.log_records is False


def test_an_unknown_or_invalid_option_is_refused() -> None:
    with pytest.raises(TypeError, match="max_events"):
        KitaruOtelObserver(max_events=3)  # type: ignore[call-arg]
    with pytest.raises(KitaruUsageError, match="runtime_logs"):
        KitaruOtelObserver(runtime_logs="yes")  # type: ignore[arg-type]


def test_a_logger_provider_set_while_a_flow_runs_is_used_from_the_next_flow(tmp_path) -> None:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))

    @checkpoint
    def step(n: int) -> None:
        kitaru.progress(f"step {n}")

    @flow
    def steps(install: bool) -> None:
        step(1)
        if install:
            set_logger_provider(provider)
        step(2)

    bridge = KitaruOtelObserver(tracer_provider=TracerProvider())
    with capture_events(tmp_path / "home", observers=(bridge,)):
        steps(True)
        assert bridge.force_flush(5.0)
        assert exporter.get_finished_logs() == ()  # looked for when the flow started: none
        steps(False)
    assert bridge.force_flush(5.0)
    bodies = [d.log_record.body for d in exporter.get_finished_logs()]
    assert "step 1" in bodies and "step 2" in bodies
    provider.shutdown()
