"""Shared helpers of the adapter tests: canaries, event filters, OTel and server fixtures."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once

from _support import require, require_server_deps
from kitaru import ExecutionEvent
from kitaru.testing import EventCapture, capture_events

sys.path.insert(0, str(Path(__file__).parent))

# Canary secrets: one per place a secret can hide in an agent run.
PROMPT = "CANARY-PROMPT-7f3a"
TOOL_ARG = "CANARY-TOOLARG-91bc"
TOOL_RESULT = "CANARY-TOOLRESULT-c02d"
OUTPUT = "CANARY-OUTPUT-e5f1"
CANARIES = (PROMPT, TOOL_ARG, TOOL_RESULT, OUTPUT)


def require_framework(module: str, extra: str) -> None:
    """Skip without the framework; fail in CI (CI=true), where the extras are installed."""
    require(module, importlib.util.find_spec(module) is not None, f"pip install 'kitaru[{extra}]'")


def of_prefix(events: list[ExecutionEvent], prefix: str) -> list[ExecutionEvent]:
    """The events whose kind starts with ``prefix``, in index order per lane."""
    return sorted(
        (e for e in events if e.kind.startswith(prefix)), key=lambda e: (e.correlation_id, e.index)
    )


def dumped(events: list[ExecutionEvent]) -> str:
    """Every event, kind and payload, as one string to search for canaries."""
    return "\n".join(json.dumps([e.kind, e.payload], default=str) for e in events)


def assert_lifecycle(events: list[ExecutionEvent], prefix: str, *, terminal: str) -> None:
    """started first, exactly one terminal last, item events between, indexes increasing."""
    kinds = [e.kind for e in events]
    assert kinds[0] == f"{prefix}.started", kinds
    assert kinds[-1] == f"{prefix}.{terminal}", kinds
    terminals = [k for k in kinds if k in (f"{prefix}.completed", f"{prefix}.failed")]
    assert terminals == [f"{prefix}.{terminal}"], kinds
    indexes = [e.index for e in events]
    assert indexes == sorted(indexes) and len(set(indexes)) == len(indexes)
    assert len({e.correlation_id for e in events}) == 1
    for event in events:
        data = event.payload["data"]
        assert isinstance(data["category"], str) and data["category"]
        assert isinstance(data["display"], str) and len(data["display"]) <= 240


class RaisingTransport:
    """A transport whose every send fails (the publisher retries; nothing is delivered)."""

    def __init__(self) -> None:
        self.calls = 0

    def send(self, batch: Any) -> None:
        self.calls += 1
        raise ConnectionError("backend down")

    def shutdown(self) -> None:
        pass


@pytest.fixture
def failing_capture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EventCapture]:
    """A capture whose transport raises on every send (a backend that is down)."""
    monkeypatch.setenv("KITARU_FLUSH_TIMEOUT", "0.2")
    with capture_events(tmp_path / "failing-home") as capture:
        transport = RaisingTransport()
        capture.runtime.publisher._transport = transport  # type: ignore[attr-defined]
        yield capture
        assert transport.calls >= 1, "the failing transport was used"


@pytest.fixture
def publish_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    """``kitaru.events.publish`` raising anything (what adapters call) must not break a run."""
    import kitaru.events

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("publish exploded")

    monkeypatch.setattr(kitaru.events, "publish", boom)


# -- OpenTelemetry ------------------------------------------------------------------------


def _reset_trace_globals() -> None:
    trace._TRACER_PROVIDER_SET_ONCE = Once()  # type: ignore[attr-defined]
    trace._TRACER_PROVIDER = None  # type: ignore[attr-defined]


@dataclass
class Traced:
    provider: TracerProvider
    exporter: InMemorySpanExporter
    capture: EventCapture

    def spans(self) -> list[Any]:
        return list(self.exporter.get_finished_spans())

    def checkpoint_span(self, checkpoint_type: str) -> Any:
        found = [
            s
            for s in self.spans()
            if (s.attributes or {}).get("kitaru.checkpoint.type") == checkpoint_type
        ]
        assert len(found) == 1, [s.name for s in self.spans()]
        return found[0]

    def children_of(self, span: Any) -> list[Any]:
        sid = span.context.span_id
        return [s for s in self.spans() if s.parent is not None and s.parent.span_id == sid]

    def descendants_of(self, span: Any) -> list[Any]:
        out, todo = [], [span]
        while todo:
            kids = self.children_of(todo.pop())
            out.extend(kids)
            todo.extend(kids)
        return out


@pytest.fixture
def traced(tmp_path: Path) -> Iterator[Traced]:
    """A capture whose runtime has kitaru's OTel bridge on an in-memory provider."""
    from kitaru.otel import KitaruOtelObserver

    _reset_trace_globals()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    bridge = KitaruOtelObserver(tracer_provider=provider)
    with capture_events(tmp_path / "traced-home", observers=(bridge,)) as capture:
        yield Traced(provider, exporter, capture)
    provider.shutdown()
    _reset_trace_globals()


# -- a real server ------------------------------------------------------------------------


@pytest.fixture
def live_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A real kitaru server on 127.0.0.1; the process runtime talks to it (server mode)."""
    require_server_deps()
    from kitaru.runtime import reset_runtime
    from kitaru.server import serve_in_thread

    srv = serve_in_thread(db=tmp_path / "server.db", token=None, ping_interval=0.2)
    monkeypatch.setenv("KITARU_SERVER_URL", srv.url)
    reset_runtime()
    try:
        yield srv
    finally:
        reset_runtime()
        srv.stop()


def watch_all(exec_id: str, prefix: str) -> list[ExecutionEvent]:
    """Every live event of a finished execution whose kind starts with ``prefix``, via SSE."""
    from kitaru import KitaruClient

    events = list(KitaruClient().executions.events(exec_id))
    return [e for e in events if e.kind.startswith(prefix)]


RunFlow = Callable[..., Any]
