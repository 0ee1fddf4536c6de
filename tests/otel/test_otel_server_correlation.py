"""Live events watched through a real server carry the IDs of the spans of their checkpoints."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from spantree import from_sdk

import kitaru
import kitaru.otel
from kitaru import KitaruClient, checkpoint, flow
from kitaru.runtime._runtime import reset_runtime


@checkpoint
def announce(n: int) -> int:
    kitaru.progress("counting", n=n)
    return n


@checkpoint(retries=1)
def wobbly() -> str:
    tries["n"] = tries.get("n", 0) + 1
    if tries["n"] == 1:
        raise TimeoutError("slow upstream")
    return "ok"


tries: dict[str, int] = {}


@flow
def watched() -> list[int]:
    wobbly()
    return announce.map([1, 2])


@pytest.fixture
def server_mode(tmp_path, monkeypatch):
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    from kitaru.server import serve_in_thread

    srv = serve_in_thread(db=tmp_path / "server.db", token=None)
    monkeypatch.setenv("KITARU_SERVER_URL", srv.url)
    reset_runtime()
    yield srv
    reset_runtime()
    srv.stop()


def test_watched_events_carry_the_span_ids(server_mode):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    kitaru.otel.configure(tracer_provider=provider)
    tries.clear()
    handle = watched.run()
    assert handle.wait(30) == [1, 2]
    events = list(KitaruClient().executions.events(handle.exec_id, reconnect=False))
    spans = from_sdk(exporter.get_finished_spans())
    by_cid = {s.attributes["kitaru.correlation_id"]: s for s in spans if s.parent_id}
    assert len(by_cid) == 4  # two attempts of wobbly, two fan-out items
    lanes = {e.correlation_id for e in events}
    assert lanes == set(by_cid)
    for event in events:
        span = by_cid[event.correlation_id]
        assert (event.trace_id, event.span_id) == (span.trace_id, span.span_id)
        assert event.trace_id == kitaru.otel.trace_id_for_execution(handle.exec_id)
    failed = [e for e in events if e.kind == "kitaru.checkpoint.failed"]
    assert len(failed) == 1
    assert by_cid[failed[0].correlation_id].status == "ERROR"
