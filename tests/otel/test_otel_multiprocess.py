"""A flow whose checkpoints run in several processes is still one trace with one root."""

from __future__ import annotations

import multiprocessing
import os

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from otlp_sink import OtlpSink

import kitaru
from kitaru import checkpoint, flow
from kitaru.otel import KitaruOtelObserver, flow_span_id_for_execution
from kitaru.testing import capture_events

fork = multiprocessing.get_context("fork")


@checkpoint
def where(tag: str) -> tuple[str, int]:
    kitaru.progress(f"running {tag}")
    return tag, os.getpid()


def _child(queue) -> None:
    # Runs in the forked child, inside the flow's context: a checkpoint of the same execution.
    queue.put(where("child"))


@flow
def spread() -> list[tuple[str, int]]:
    results = [where("parent")]
    queue = fork.SimpleQueue()
    proc = fork.Process(target=_child, args=(queue,))
    proc.start()
    proc.join(30)
    assert proc.exitcode == 0
    results.append(queue.get())
    results.append(where("parent-again"))
    return results


@pytest.fixture
def sink():
    s = OtlpSink()
    yield s
    s.close()


def test_checkpoints_in_a_forked_child_join_the_flow_trace(sink, tmp_path):
    # A batching exporter, as in production: the child ends with os._exit and no exit
    # handlers, so the bridge must have flushed the child's span itself.
    provider = TracerProvider()
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=sink.url + "/v1/traces", timeout=5))
    )
    bridge = KitaruOtelObserver(tracer_provider=provider)
    with capture_events(tmp_path / "h", observers=(bridge,)):
        handle = spread.run()
        results = handle.wait(60)
    provider.shutdown()
    pids = {tag: pid for tag, pid in results}
    assert pids["child"] != pids["parent"] == pids["parent-again"] == os.getpid()

    spans = sink.spans()
    trace_id = handle.exec_id.replace("-", "")
    assert {s.trace_id.hex() for s in spans} == {trace_id}
    roots = [s for s in spans if not s.parent_span_id]
    assert [r.name for r in roots] == ["kitaru.flow spread"]
    assert roots[0].span_id.hex() == flow_span_id_for_execution(handle.exec_id)
    children = [s for s in spans if s.parent_span_id]
    assert sorted(s.name for s in children) == ["kitaru.checkpoint where"] * 3
    assert {s.parent_span_id.hex() for s in children} == {roots[0].span_id.hex()}
    # Three checkpoint executions, each its own span. (Step names are allocated per process,
    # so they are not compared here.)
    ids = {
        next(a.value.string_value for a in s.attributes if a.key == "kitaru.checkpoint.id")
        for s in children
    }
    assert len(ids) == 3
    assert len({s.span_id for s in spans}) == 4
