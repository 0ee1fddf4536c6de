"""Outcomes in traces: no exception text in any OTLP request, the flow span of a cancelled
execution says so, and a resume's reused calls are zero-length marked spans."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from otlp_sink import OtlpSink

import kitaru
import kitaru.otel
from kitaru import KitaruCancelledError, checkpoint, flow

CANARY = "token=sk-canary-5150"


def explode_with_canary() -> None:
    raise RuntimeError(CANARY)


@checkpoint
def leaky() -> int:
    kitaru.progress("about to fail")
    explode_with_canary()
    return 1


@flow
def canary_flow() -> int:
    return leaky()


def test_canary_in_no_otlp_request_while_the_record_has_it() -> None:
    sink = OtlpSink()
    try:
        kitaru.otel.configure(endpoint=sink.url)
        handle = canary_flow.run()
        with pytest.raises(RuntimeError):
            handle.wait(10)
        assert kitaru.otel.shutdown(timeout=10.0)
        raw = sink.raw()
        names = sorted(s.name for s in sink.spans())
        assert names == ["kitaru.checkpoint leaky", "kitaru.flow canary_flow"]
        assert b"RuntimeError" in raw  # the type travels, as the rules say
        assert CANARY.encode() not in raw
        cp = kitaru.KitaruClient().executions.get(handle.exec_id).checkpoint("leaky")
        assert cp.error_message == CANARY
    finally:
        sink.close()


GATE = threading.Event()
REACHED = threading.Event()
RUNS: list[str] = []


@checkpoint
def prepare() -> int:
    RUNS.append("prepare")
    return 2


@checkpoint
def slow(x: int) -> int:
    RUNS.append("slow")
    REACHED.set()
    while not GATE.is_set():
        kitaru.progress("waiting")  # a cancellation point
        GATE.wait(0.02)
    return x * 3


@flow
def two_steps() -> int:
    return slow(prepare())


def test_cancelled_flow_span_and_zero_length_reused_spans_on_resume(traced: Any) -> None:
    GATE.clear()
    REACHED.clear()
    RUNS.clear()
    handle = two_steps.run()
    assert REACHED.wait(10)
    handle.cancel()
    with pytest.raises(KitaruCancelledError):
        handle.wait(10)
    spans = traced.spans()
    (flow_span,) = [s for s in spans if s.name == "kitaru.flow two_steps"]
    assert flow_span.attributes["kitaru.flow.status"] == "cancelled"
    assert flow_span.end > 0
    (slow_span,) = [s for s in spans if s.name == "kitaru.checkpoint slow"]
    assert slow_span.status == "ERROR" and "KitaruCancelledError" in (slow_span.description or "")

    GATE.set()
    RUNS.clear()
    traced.exporter.clear()
    resumed = two_steps.resume(handle.exec_id)
    assert resumed.wait(10) == 6
    assert RUNS == ["slow"]
    spans = traced.spans()
    (reused,) = [s for s in spans if s.name == "kitaru.checkpoint prepare"]
    assert reused.start == reused.end
    assert reused.attributes["kitaru.replayed"] is True
    assert reused.attributes["kitaru.original_execution.id"] == handle.exec_id
    (ran,) = [s for s in spans if s.name == "kitaru.checkpoint slow"]
    assert ran.end > ran.start
