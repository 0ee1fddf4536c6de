"""End to end: kitaru's spans in a real Jaeger, over OTLP/HTTP and gRPC, and via the Collector.

The trace is looked up the way a user would: ``GET /api/v3/traces/<trace id>`` with the trace
ID computed from the execution ID.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.util._once import Once

import kitaru
import kitaru.otel
from kitaru import KitaruClient, checkpoint, flow
from kitaru.runtime._runtime import reset_runtime


def _load_spantree() -> Any:
    path = Path(__file__).resolve().parents[1] / "otel" / "spantree.py"
    spec = importlib.util.spec_from_file_location("kitaru_tests_spantree", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


spantree = _load_spantree()

SECRET = "e2e-secret-5b1c"
tries: dict[str, int] = {}


@checkpoint
def fetch(url: str) -> str:
    kitaru.progress("Fetching", percent=0.5, url=url)
    return f"page:{url}"


@checkpoint(retries=1)
def parse(page: str) -> str:
    tries[page] = tries.get(page, 0) + 1
    if tries[page] == 1:
        raise RuntimeError(f"parser crashed, token={SECRET}")
    return page.upper()


@checkpoint
def store(doc: str) -> int:
    kitaru.events.publish("doc.stored", {"size": len(doc)}, message="stored")
    return len(doc)


@flow
def e2e_pipeline(url: str) -> int:
    return store(parse(fetch(url)))


def expected_tree(url: str, *, hashed: bool = False) -> list[str]:
    size = len(f"PAGE:{url}")

    def value(v: object) -> str:
        # Through the collector's default privacy step, event data values are hashed.
        return "<hashed>" if hashed else str(v)

    return [
        "kitaru.flow e2e_pipeline [UNSET] kitaru.flow.status=completed",
        "  kitaru.checkpoint fetch [UNSET] kitaru.checkpoint.step=fetch "
        "kitaru.checkpoint.attempt=1 kitaru.checkpoint.status=returned",
        f"    * kitaru.checkpoint.progress {{kitaru.event.data.percent={value(0.5)}, "
        f"kitaru.event.data.url={value(url)}, kitaru.event.index=1, "
        "kitaru.event.message=Fetching}",
        "  kitaru.checkpoint parse [ERROR:RuntimeError] kitaru.checkpoint.step=parse "
        "kitaru.checkpoint.attempt=1 kitaru.checkpoint.status=failed error.type=RuntimeError",
        "  kitaru.checkpoint parse [UNSET] kitaru.checkpoint.step=parse "
        "kitaru.checkpoint.attempt=2 kitaru.checkpoint.status=returned",
        "  kitaru.checkpoint store [UNSET] kitaru.checkpoint.step=store "
        "kitaru.checkpoint.attempt=1 kitaru.checkpoint.status=returned",
        f"    * doc.stored {{kitaru.event.data.size={value(size)}, kitaru.event.index=1, "
        "kitaru.event.message=stored}",
    ]


# -- plumbing ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def traces_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # These tests export straight to Jaeger, which takes traces only: configure(endpoint=...)
    # would also send log records and metrics there (see tests/e2e/test_live_logs_*.py).
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "none")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")


@pytest.fixture(autouse=True)
def clean_otel() -> Any:
    def reset() -> None:
        kitaru.otel.shutdown(timeout=5.0)
        trace._TRACER_PROVIDER_SET_ONCE = Once()  # type: ignore[attr-defined]
        trace._TRACER_PROVIDER = None  # type: ignore[attr-defined]

    reset()
    yield
    reset()


def _endpoint(component: Any, protocol: str) -> str:
    """The OTLP endpoint of the ``jaeger`` or ``otelcol`` fixture, as a URL."""
    if protocol == "grpc":
        return f"http://{component.otlp_grpc_endpoint}"  # host:port, insecure
    return str(component.otlp_http_endpoint)


def _value(v: dict[str, Any]) -> Any:
    if "stringValue" in v:
        return v["stringValue"]
    if "boolValue" in v:
        return v["boolValue"]
    if "intValue" in v:
        return int(v["intValue"])
    if "doubleValue" in v:
        return float(v["doubleValue"])
    return json.dumps(v, sort_keys=True)


def _attrs(items: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {a["key"]: _value(a.get("value", {})) for a in items or []}


_STATUS = {
    0: "UNSET",
    1: "OK",
    2: "ERROR",
    "STATUS_CODE_UNSET": "UNSET",
    "STATUS_CODE_OK": "OK",
    "STATUS_CODE_ERROR": "ERROR",
}


def _hex(value: str) -> str:
    if len(value) in (16, 32) and all(c in "0123456789abcdef" for c in value.lower()):
        return value.lower()
    import base64

    return base64.b64decode(value).hex()


def spans_from_jaeger(payload: dict[str, Any]) -> list[Any]:
    out = []
    for rs in payload.get("result", {}).get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for sp in ss.get("spans", []):
                status = sp.get("status") or {}
                parent = sp.get("parentSpanId") or None
                out.append(
                    spantree.S(
                        name=sp["name"],
                        trace_id=_hex(sp["traceId"]),
                        span_id=_hex(sp["spanId"]),
                        parent_id=_hex(parent) if parent else None,
                        status=_STATUS.get(status.get("code", 0), str(status.get("code"))),
                        description=status.get("message") or None,
                        attributes=_attrs(sp.get("attributes")),
                        events=[
                            (e["name"], _attrs(e.get("attributes"))) for e in sp.get("events", [])
                        ],
                        links=[
                            (_hex(ln["traceId"]), _hex(ln["spanId"]), _attrs(ln.get("attributes")))
                            for ln in sp.get("links", [])
                        ],
                        start=int(sp.get("startTimeUnixNano", 0)),
                        end=int(sp.get("endTimeUnixNano", 0)),
                    )
                )
    return out


def fetch_trace(
    jaeger: Any, trace_id: str, expect: int, wait: float = 60.0
) -> tuple[list[Any], str]:
    """Poll Jaeger until the trace has ``expect`` spans (or ``wait`` passed); spans and raw JSON."""
    url = f"{jaeger.query_url}/api/v3/traces/{trace_id}"
    deadline = time.monotonic() + wait
    spans: list[Any] = []
    raw = ""
    while True:
        response = httpx.get(url, timeout=5.0)
        if response.status_code == 200:
            raw = response.text
            spans = spans_from_jaeger(response.json())
            if len(spans) >= expect:
                return spans, raw
        if time.monotonic() > deadline:
            return spans, raw
        time.sleep(0.25)


def _hash_data_values(spans: list[Any]) -> None:
    for span in spans:
        for _, attrs in span.events:
            for key, value in list(attrs.items()):
                if key.startswith("kitaru.event.data."):
                    assert str(value).startswith("sha256:"), (key, value)
                    attrs[key] = "<hashed>"


def _check_one_run(spans: list[Any], exec_id: str, url: str, *, hashed: bool = False) -> None:
    trace_id = kitaru.otel.trace_id_for_execution(exec_id)
    assert {s.trace_id for s in spans} == {trace_id}
    roots = [s for s in spans if s.parent_id is None]
    assert len(roots) == 1
    assert roots[0].span_id == kitaru.otel.flow_span_id_for_execution(exec_id)
    ids = {s.span_id for s in spans}
    assert all(s.parent_id in ids for s in spans if s.parent_id), "orphan spans"
    if hashed:
        _hash_data_values(spans)
    assert spantree.render(spans) == expected_tree(url, hashed=hashed)


# -- tests ---------------------------------------------------------------------------------


@pytest.mark.jaeger
@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_jaeger_has_the_exact_span_tree(jaeger: Any, protocol: str) -> None:
    kitaru.otel.configure(endpoint=_endpoint(jaeger, protocol), protocol=protocol)
    url = f"{protocol}.example"
    tries.clear()
    handle = e2e_pipeline.run(url)
    assert handle.wait(30) == len(f"PAGE:{url}")
    assert kitaru.otel.shutdown(timeout=10.0)
    trace_id = handle.exec_id.replace("-", "")  # the execution ID pasted into Jaeger
    spans, raw = fetch_trace(jaeger, trace_id, expect=5)
    _check_one_run(spans, handle.exec_id, url)
    assert SECRET not in raw
    assert "parser crashed" not in raw


@pytest.mark.jaeger
@pytest.mark.collector
def test_through_the_collector_to_jaeger(otelcol: Any, jaeger: Any) -> None:
    # The failed attempt makes this a failed-status trace, which tail sampling always keeps.
    kitaru.otel.configure(endpoint=_endpoint(otelcol, "http/protobuf"))
    url = "collector.example"
    tries.clear()
    handle = e2e_pipeline.run(url)
    handle.wait(30)
    assert kitaru.otel.shutdown(timeout=10.0)
    spans, raw = fetch_trace(jaeger, handle.exec_id.replace("-", ""), expect=5, wait=90.0)
    hashed = any(
        str(v).startswith("sha256:")
        for s in spans
        for _, attrs in s.events
        for k, v in attrs.items()
        if k.startswith("kitaru.event.data.")
    )
    _check_one_run(spans, handle.exec_id, url, hashed=hashed)
    assert SECRET not in raw


@pytest.mark.jaeger
@pytest.mark.server
def test_watched_live_events_carry_the_ids_jaeger_returns(
    jaeger: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("uvicorn")
    from kitaru.server import serve_in_thread

    srv = serve_in_thread(db=tmp_path / "server.db", token=None)
    try:
        monkeypatch.setenv("KITARU_SERVER_URL", srv.url)
        reset_runtime()
        kitaru.otel.configure(endpoint=_endpoint(jaeger, "http/protobuf"))
        url = "watched.example"
        tries.clear()
        handle = e2e_pipeline.run(url)
        handle.wait(30)
        events = list(KitaruClient().executions.events(handle.exec_id, reconnect=False))
        assert kitaru.otel.shutdown(timeout=10.0)
        spans, _ = fetch_trace(jaeger, handle.exec_id.replace("-", ""), expect=5)
        by_cid = {s.attributes.get("kitaru.correlation_id"): s for s in spans if s.parent_id}
        assert len(events) == 10
        for event in events:
            span = by_cid[event.correlation_id]
            assert (event.trace_id, event.span_id) == (span.trace_id, span.span_id)
    finally:
        reset_runtime()
        srv.stop()
