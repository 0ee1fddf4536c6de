"""Token and cost metrics: per checkpoint name and model from ``kitaru.record_usage``, and the
GenAI ``gen_ai.client.token.usage`` histogram from the adapters' chat spans."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

import kitaru
from kitaru import checkpoint, flow
from kitaru.adapters._genai import GenAISpans
from kitaru.otel import KitaruOtelObserver, _metric_setup
from kitaru.testing import capture_events

BODIES: list[str] = []


@checkpoint(cache=True)
def plan(topic: str) -> str:
    BODIES.append("plan")
    kitaru.record_usage("model-a", input_tokens=100, output_tokens=20, cost_usd=0.5)
    kitaru.record_usage("model-a", input_tokens=1, output_tokens=2, cost_usd=0.25)
    return topic


@checkpoint
def write(topic: str) -> str:
    BODIES.append("write")
    kitaru.record_usage("model-a", input_tokens=10, output_tokens=5)
    kitaru.record_usage("model-b", input_tokens=7, output_tokens=3, cost_usd=0.125)
    return topic


@flow
def usage_flow(topic: str) -> str:
    return write(plan(topic))


def _points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    assert data is not None
    return [
        point
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


def test_tokens_and_cost_per_checkpoint_name_and_model(tmp_path: Path) -> None:
    reader = InMemoryMetricReader()
    bridge = KitaruOtelObserver(
        tracer_provider=TracerProvider(), meter_provider=MeterProvider(metric_readers=[reader])
    )
    BODIES.clear()
    with capture_events(tmp_path / "home", observers=(bridge,)):
        usage_flow("t")
        usage_flow("t")  # plan is a cache hit: its reused tokens cost nothing and count nothing
        tokens = {
            (
                p.attributes["kitaru.checkpoint.name"],
                p.attributes["gen_ai.request.model"],
                p.attributes["gen_ai.token.type"],
            ): p.value
            for p in _points(reader, "kitaru.usage.tokens")
        }
        cost = {
            (p.attributes["kitaru.checkpoint.name"], p.attributes["gen_ai.request.model"]): p.value
            for p in _points(reader, "kitaru.usage.cost_usd")
        }
    assert BODIES == ["plan", "write", "write"]
    assert tokens == {
        ("plan", "model-a", "input"): 101,
        ("plan", "model-a", "output"): 22,
        ("write", "model-a", "input"): 20,
        ("write", "model-a", "output"): 10,
        ("write", "model-b", "input"): 14,
        ("write", "model-b", "output"): 6,
    }
    assert cost == {("plan", "model-a"): pytest.approx(0.75), ("write", "model-b"): 0.25}


def test_chat_spans_record_gen_ai_client_token_usage(monkeypatch: pytest.MonkeyPatch) -> None:
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    monkeypatch.setattr(_metric_setup, "owned_meter_provider", lambda: meters)
    spans = GenAISpans(provider="anthropic", agent_name="helper")
    with spans.agent():
        spans.chat("claude-x", input_tokens=300, output_tokens=40)
        spans.chat("claude-x", input_tokens=5, output_tokens=2)
    silent = GenAISpans(provider="pydantic_ai", agent_name="own", enabled=False)
    silent.chat("other", input_tokens=9, output_tokens=9)  # the framework records its own
    points = _points(reader, "gen_ai.client.token.usage")
    seen = {
        (p.attributes["gen_ai.token.type"], p.attributes["gen_ai.response.model"]): (p.sum, p.count)
        for p in points
    }
    assert seen == {("input", "claude-x"): (305, 2), ("output", "claude-x"): (42, 2)}
    for p in points:
        assert p.attributes["gen_ai.provider.name"] == "anthropic"
        assert p.attributes["gen_ai.operation.name"] == "chat"
        assert p.attributes["gen_ai.request.model"] == "claude-x"
