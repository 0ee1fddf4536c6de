"""The observability tooling in collector-config/ works with the real binaries.

(a) the collector configuration validates, in every privacy mode and with the Tempo overlay,
    and the builder manifest holds exactly the components the configuration uses;
(b) a trace sent over OTLP/HTTP to the collector reaches Jaeger (privacy step applied) and
    shows up in the collector's span metrics;
(c) every PromQL query of the Grafana dashboard returns data from a real Prometheus
    scraping the collector, and exemplars link the metrics to the traces;
(d) tail sampling keeps failed and slow runs and drops the rest at 0 %, the ``drop`` privacy
    mode removes event data, and the Tempo overlay exports over OTLP/HTTP.

Needs scripts/tools/build-tools.sh to have run; otherwise skips (fails when CI=true).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

try:
    from . import _procs
    from .conftest import OTELCOL_TEST_SALT
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _procs  # type: ignore[no-redef]

    from conftest import OTELCOL_TEST_SALT  # type: ignore[no-redef]

pytestmark = pytest.mark.collector

CONFIG_DIR = _procs.CONFIG_DIR
DASHBOARD = CONFIG_DIR / "grafana" / "dashboards" / "kitaru-checkpoints.json"


# -------------------------------------------------------------------- sending kitaru-shaped traces


@dataclass
class Checkpoint:
    name: str
    status: str = "returned"  # returned | failed | cached | replayed
    duration_ms: float = 20.0
    attempt: int = 1
    events: Sequence[tuple[str, str, dict[str, Any]]] = ()  # (kind, message, data)
    extra_events: Sequence[tuple[str, dict[str, Any]]] = ()  # raw span events (name, attributes)


@dataclass
class SentFlow:
    execution_id: uuid.UUID
    flow_name: str
    span_names: list[str] = field(default_factory=list)

    @property
    def trace_id(self) -> str:
        return self.execution_id.hex


def _execution_id_generator(execution_id: uuid.UUID) -> Any:
    """Trace ID = the execution UUID's 128 bits (the contract's mapping), random span IDs."""
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    class ExecutionIdGenerator(RandomIdGenerator):
        def generate_trace_id(self) -> int:
            return execution_id.int

        def is_trace_id_random(self) -> bool:  # a UUID4 is random, but not W3C-random-flag random
            return False

    return ExecutionIdGenerator()


def send_flow(
    traces_url: str,
    flow_name: str,
    checkpoints: Sequence[Checkpoint],
    *,
    flow_failed: bool = False,
    flow_extra_ms: float = 5.0,
) -> SentFlow:
    """Sends one flow execution as kitaru's OTel bridge shapes it, over OTLP/HTTP."""
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import Status, StatusCode

    execution_id = uuid.uuid4()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "kitaru-e2e"}),
        id_generator=_execution_id_generator(execution_id),
    )
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=traces_url, timeout=5))
    )
    tracer = provider.get_tracer("kitaru")
    sent = SentFlow(execution_id, flow_name)

    total_ms = sum(c.duration_ms for c in checkpoints) + flow_extra_ms
    now = time.time_ns()
    start = now - int(total_ms * 1e6)
    flow_name_span = f"kitaru.flow {flow_name}"
    root = tracer.start_span(
        flow_name_span,
        start_time=start,
        attributes={"kitaru.execution.id": str(execution_id), "kitaru.flow.name": flow_name},
    )
    ctx = trace.set_span_in_context(root)
    cursor = start + int(flow_extra_ms * 1e6 / 2)
    for index, cp in enumerate(checkpoints):
        correlation = f"kitaru.checkpoint:{cp.name}:{uuid.uuid4().hex}"
        span = tracer.start_span(
            f"kitaru.checkpoint {cp.name}",
            context=ctx,
            start_time=cursor,
            attributes={
                "kitaru.execution.id": str(execution_id),
                "kitaru.flow.name": flow_name,
                "kitaru.checkpoint.name": cp.name,
                "kitaru.checkpoint.id": f"{cp.name}-{index}",
                "kitaru.checkpoint.status": cp.status,
                "kitaru.checkpoint.attempt": cp.attempt,
                "kitaru.correlation_id": correlation,
                "kitaru.cache_hit": cp.status == "cached",
                "kitaru.replayed": cp.status == "replayed",
            },
        )
        for event_index, (kind, message, data) in enumerate(cp.events, start=1):
            attributes: dict[str, Any] = {
                "kitaru.event.index": event_index,
                "kitaru.event.message": message,
            }
            attributes.update({f"kitaru.event.data.{k}": v for k, v in data.items()})
            span.add_event(kind, attributes, timestamp=cursor + event_index * 1000)
        for name, attributes in cp.extra_events:
            span.add_event(name, attributes, timestamp=cursor + 500)
        if cp.status == "failed":
            span.set_status(Status(StatusCode.ERROR, "ValueError"))
        cursor += int(cp.duration_ms * 1e6)
        span.end(end_time=cursor)
        sent.span_names.append(f"kitaru.checkpoint {cp.name}")
    if flow_failed:
        root.set_status(Status(StatusCode.ERROR, "ValueError"))
    root.end(end_time=now)
    sent.span_names.append(flow_name_span)
    assert provider.force_flush(10_000), "the OTLP/HTTP exporter did not flush"
    provider.shutdown()
    return sent


def span_by_name(spans: Sequence[dict[str, Any]], name: str) -> dict[str, Any]:
    for span in spans:
        if span["name"] == name:
            return span
    raise AssertionError(f"no span {name!r} in {[s['name'] for s in spans]}")


def event_by_name(span: dict[str, Any], name: str) -> dict[str, Any]:
    for event in span.get("events", []):
        if event["name"] == name:
            return {**event, "attrs": _procs.attributes_dict(event.get("attributes", []))}
    raise AssertionError(f"no event {name!r} on span {span['name']!r}")


def sha256_hex(salt: str, value: str) -> str:
    return "sha256:" + hashlib.sha256((salt + value).encode()).hexdigest()


# ------------------------------------------------------------------------------- (a) configuration


def _run(
    argv: Sequence[str | Path], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=_procs.REPO_ROOT,
        env={**os.environ, **(env or {})},
        check=False,
    )


@pytest.mark.parametrize("privacy", ["hash", "drop", "keep"])
def test_otelcol_config_validates(privacy: str) -> None:
    otelcol = _procs.require_tool("otelcol")
    result = _run(
        [otelcol, "validate", "--config", "collector-config/otelcol.yaml"],
        env={"KITARU_OTELCOL_PRIVACY": privacy},
    )
    assert result.returncode == 0, f"otelcol validate failed:\n{result.stdout}\n{result.stderr}"


def test_otelcol_config_with_tempo_overlay_validates() -> None:
    otelcol = _procs.require_tool("otelcol")
    result = _run(
        [
            otelcol,
            "validate",
            "--config",
            "collector-config/otelcol.yaml",
            "--config",
            "collector-config/otelcol.tempo.yaml",
        ]
    )
    assert result.returncode == 0, f"otelcol validate failed:\n{result.stdout}\n{result.stderr}"


def test_unknown_privacy_mode_is_rejected() -> None:
    otelcol = _procs.require_tool("otelcol")
    result = _run(
        [otelcol, "validate", "--config", "collector-config/otelcol.yaml"],
        env={"KITARU_OTELCOL_PRIVACY": "nonsense"},
    )
    assert result.returncode != 0
    # The traces or the logs pipeline (whichever the collector checks first) names it.
    assert re.search(r"transform/(logs_)?privacy_nonsense", result.stdout + result.stderr)


def test_jaeger_config_validates() -> None:
    jaeger = _procs.require_tool("jaeger")
    result = _run([jaeger, "validate", "--config", "collector-config/jaeger.yaml"])
    assert result.returncode == 0, f"jaeger validate failed:\n{result.stdout}\n{result.stderr}"


def test_builder_manifest_has_exactly_the_components_in_use() -> None:
    import yaml

    otelcol = _procs.require_tool("otelcol")
    result = _run([otelcol, "components"])
    assert result.returncode == 0, result.stderr
    built = yaml.safe_load(result.stdout)
    kinds = ("receivers", "processors", "exporters", "connectors", "extensions")
    built_types = {(kind, c["name"]) for kind in kinds for c in (built.get(kind) or [])}

    used: set[tuple[str, str]] = set()
    for name in ("otelcol.yaml", "otelcol.tempo.yaml"):
        config = yaml.safe_load((CONFIG_DIR / name).read_text())
        for kind in kinds:
            for component_id in config.get(kind) or {}:
                used.add((kind, component_id.split("/", 1)[0]))
    assert used == built_types, (
        f"builder.yaml builds {sorted(built_types)}, the configuration uses {sorted(used)}"
    )

    # One release for every component module.
    manifest = (CONFIG_DIR / "builder.yaml").read_text()
    versions = set(
        re.findall(
            r"gomod: \S+/(?:receiver|processor|exporter|connector|extension)/\S+ (v\S+)", manifest
        )
    )
    assert len(versions) == 1, f"component modules at several releases: {versions}"


# -------------------------------------------------------------- (b) trace to Jaeger + span metrics


@pytest.mark.jaeger
def test_trace_reaches_jaeger_and_span_metrics(
    otelcol: _procs.Otelcol, jaeger: _procs.Jaeger
) -> None:
    sent = send_flow(
        otelcol.otlp_http_traces_url,
        "e2e_tooling",
        [
            Checkpoint(
                "fetch",
                events=[
                    ("progress", "halfway", {"url": "https://example.invalid/doc", "percent": 0.5})
                ],
                extra_events=[
                    (
                        "exception",
                        {"exception.type": "ValueError", "exception.message": "secret text"},
                    )
                ],
            ),
            Checkpoint("parse", status="failed"),
        ],
        flow_failed=True,
    )

    # The execution ID (as 32 hex) is the trace ID to paste into Jaeger.
    spans = jaeger.wait_for_trace(sent.trace_id, min_spans=len(sent.span_names), timeout=20)
    assert sorted(s["name"] for s in spans) == sorted(sent.span_names)

    root = span_by_name(spans, "kitaru.flow e2e_tooling")
    fetch = span_by_name(spans, "kitaru.checkpoint fetch")
    parse = span_by_name(spans, "kitaru.checkpoint parse")
    assert fetch["parentSpanId"] == root["spanId"] and parse["parentSpanId"] == root["spanId"]
    attrs = _procs.attributes_dict(fetch["attributes"])
    assert attrs["kitaru.checkpoint.name"] == "fetch"
    assert attrs["kitaru.execution.id"] == str(sent.execution_id)
    assert attrs["kitaru.cache_hit"] is False
    assert parse.get("status", {}).get("code") in (2, "STATUS_CODE_ERROR")

    # Privacy step (mode hash): data values hashed with the salt, keys, index and message kept.
    progress = event_by_name(fetch, "progress")["attrs"]
    assert progress["kitaru.event.index"] == 1
    assert progress["kitaru.event.message"] == "halfway"
    assert progress["kitaru.event.data.url"] == sha256_hex(
        OTELCOL_TEST_SALT, "https://example.invalid/doc"
    )
    assert progress["kitaru.event.data.percent"] == sha256_hex(OTELCOL_TEST_SALT, "0.5")
    exception = event_by_name(fetch, "exception")["attrs"]
    assert exception == {"exception.type": "ValueError"}, "exception.message must be removed"

    # Span metrics, labelled by checkpoint name and status.
    def metrics_have_checkpoints() -> str | None:
        text = otelcol.scrape()
        wanted = [
            re.compile(
                r'^traces_span_metrics_calls_total\{[^}]*kitaru_checkpoint_name="fetch"[^}]*\} ',
                re.M,
            ),
            re.compile(
                r'^traces_span_metrics_calls_total\{[^}]*kitaru_checkpoint_name="parse"'
                r'[^}]*kitaru_checkpoint_status="failed"'
                r'[^}]*status_code="STATUS_CODE_ERROR"[^}]*\} ',
                re.M,
            ),
            re.compile(
                r'^traces_span_metrics_duration_milliseconds_bucket\{[^}]*kitaru_checkpoint_name="fetch"',
                re.M,
            ),
        ]
        return text if all(p.search(text) for p in wanted) else None

    _procs.wait_until(
        metrics_have_checkpoints, timeout=15, interval=0.3, what="span metrics for fetch/parse"
    )


# ------------------------------------------------------------- (c) dashboard queries in Prometheus


SERVER_ROW = "kitaru server"


def dashboard_queries(section: str = "checkpoints") -> list[tuple[str, str]]:
    """(title, PromQL) of every panel target (and, for ``checkpoints``, template variable) of
    one section of the dashboard, Grafana variables resolved.

    ``checkpoints``: the panels above the row titled ``kitaru server`` (span metrics, or
    kitaru's SDK metrics); ``server``: the panels of that row (the server's /metrics).
    """
    dashboard = json.loads(DASHBOARD.read_text())
    out: list[tuple[str, str]] = []
    current = "checkpoints"
    for panel in dashboard["panels"]:
        if panel.get("type") == "row":
            current = "server" if panel.get("title") == SERVER_ROW else "other"
            continue
        if current != section:
            continue
        for target in panel.get("targets", []):
            out.append((f"panel {panel['title']!r} {target['refId']}", target["expr"]))
    variables = dashboard.get("templating", {}).get("list", []) if section == "checkpoints" else []
    for var in variables:
        query = (
            var["query"]["query"] if isinstance(var.get("query"), dict) else var.get("query", "")
        )
        match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query.strip())
        assert match, f"template variable {var['name']}: unexpected query {query!r}"
        out.append((f"variable {var['name']!r}", f"count by ({match.group(2)}) ({match.group(1)})"))
    resolved = []
    for title, expr in out:
        expr = (
            expr.replace("$__rate_interval", "1m")
            .replace("$__interval", "15s")
            .replace("$__range", "5m")
        )
        expr = re.sub(r"\$\{?(flow|checkpoint)\}?", ".*", expr)
        assert "$" not in expr, f"{title}: unresolved variable in {expr!r}"
        resolved.append((title, expr))
    return resolved


MIXED_CHECKPOINTS = [
    Checkpoint("load", status="returned", duration_ms=30),
    Checkpoint("embed", status="cached", duration_ms=2),
    Checkpoint("summarize", status="replayed", duration_ms=3),
]
FAILING_CHECKPOINTS = [
    Checkpoint("load", status="returned", duration_ms=25),
    Checkpoint("publish", status="failed", duration_ms=40),
]


def _send_dashboard_round(otelcol: _procs.Otelcol) -> list[SentFlow]:
    return [
        send_flow(otelcol.otlp_http_traces_url, "dash_ok", MIXED_CHECKPOINTS),
        send_flow(
            otelcol.otlp_http_traces_url, "dash_failing", FAILING_CHECKPOINTS, flow_failed=True
        ),
    ]


def _finite_values(result: list[dict[str, Any]]) -> list[float]:
    values = [float(r["value"][1]) for r in result]
    return [v for v in values if math.isfinite(v)]


@pytest.mark.prometheus
def test_dashboard_queries_return_data(
    otelcol: _procs.Otelcol, prometheus: _procs.Prometheus
) -> None:
    # The agent panels (gen_ai_* labels) are checked with real adapter runs in
    # test_adapters_jaeger.py; the synthetic flows here have no agent spans.
    queries = [(t, e) for t, e in dashboard_queries() if "gen_ai_" not in e]
    assert len(queries) >= 9
    # Every panel query must use metric names the collector really produces.
    for title, expr in queries:
        assert re.search(
            r"traces_span_metrics_(calls_total|duration_milliseconds_(bucket|sum|count))\b", expr
        ), title

    sent = _send_dashboard_round(otelcol)
    # Round 2 only after Prometheus has scraped round 1, so every rate() sees an increase.
    _procs.wait_until(
        lambda: (
            prometheus.query(
                "traces_span_metrics_calls_total"
                '{kitaru_flow_name="dash_failing", kitaru_checkpoint_name="publish"}'
            )
            and prometheus.query(
                'traces_span_metrics_calls_total{kitaru_checkpoint_status="replayed"}'
            )
        ),
        timeout=20,
        interval=0.3,
        what="round 1 span metrics in Prometheus",
    )
    sent += _send_dashboard_round(otelcol)

    pending = dict(queries)

    def all_queries_have_data() -> bool:
        for title, expr in list(pending.items()):
            result = prometheus.query(expr)
            values = _finite_values(result)
            if values and any(v > 0 for v in values):
                del pending[title]
        return not pending

    try:
        _procs.wait_until(
            all_queries_have_data, timeout=25, interval=0.5, what="dashboard queries to return data"
        )
    except AssertionError as exc:
        details = "\n".join(f"  {t}: {e}\n    -> {prometheus.query(e)}" for t, e in pending.items())
        raise AssertionError(f"{exc}\nqueries without data:\n{details}") from None

    # Exemplars on the duration histogram point at traces that were sent.
    sent_ids = {f.trace_id for f in sent}
    now = time.time()

    def exemplar_trace_ids() -> set[str] | None:
        data = prometheus.query_exemplars(
            'traces_span_metrics_duration_milliseconds_bucket{kitaru_flow_name=~"dash_.*"}',
            now - 300,
            time.time() + 5,
        )
        ids = {
            ex["labels"].get("trace_id", "")
            for series in data
            for ex in series.get("exemplars", [])
        }
        return ids & sent_ids or None

    _procs.wait_until(
        exemplar_trace_ids, timeout=10, interval=0.5, what="exemplars with trace_id of sent traces"
    )


# ---------------------------------------------------------- (d) sampling, drop mode, Tempo overlay


class _OtlpSink(BaseHTTPRequestHandler):
    """A Tempo stand-in: takes OTLP/HTTP protobuf on /v1/traces, records trace IDs and spans."""

    received: list[tuple[str, str]]  # (trace id as 32 hex, span name)
    lock: threading.Lock

    def do_POST(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            body = gzip.decompress(body)
        if self.path != "/v1/traces":
            self.send_response(404)
            self.end_headers()
            return
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        with self.lock:
            for rs in request.resource_spans:
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        self.received.append((span.trace_id.hex(), span.name))
        payload = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def tempo_sink() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    received: list[tuple[str, str]] = []
    handler = type("Sink", (_OtlpSink,), {"received": received, "lock": threading.Lock()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="otlp-sink", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.jaeger
def test_tail_sampling_drop_mode_and_tempo_overlay(
    jaeger: _procs.Jaeger,
    e2e_log_dir: Path,
    tempo_sink: tuple[str, list[tuple[str, str]]],
) -> None:
    sink_url, sink_received = tempo_sink
    collector = _procs.start_otelcol(
        e2e_log_dir,
        name="otelcol-sampling",
        jaeger_endpoint=jaeger.otlp_grpc_endpoint,
        extra_configs=[CONFIG_DIR / "otelcol.tempo.yaml"],
        env={
            "KITARU_OTELCOL_SAMPLE_PERCENT": "0",
            "KITARU_OTELCOL_SLOW_THRESHOLD_MS": "500",
            "KITARU_OTELCOL_PRIVACY": "drop",
            "KITARU_OTELCOL_TEMPO_ENDPOINT": sink_url,
        },
    )
    try:
        url = collector.otlp_http_traces_url
        failed = send_flow(
            url,
            "sampling",
            [
                Checkpoint(
                    "step", status="failed", events=[("progress", "working", {"secret": "s3cr3t"})]
                )
            ],
            flow_failed=True,
        )
        fast_ok = send_flow(url, "sampling", [Checkpoint("step", duration_ms=5)])
        slow_ok = send_flow(url, "sampling", [Checkpoint("step", duration_ms=800)])

        failed_spans = jaeger.wait_for_trace(failed.trace_id, min_spans=2, timeout=20)
        jaeger.wait_for_trace(slow_ok.trace_id, min_spans=2, timeout=20)

        # drop mode: the data field is gone, the rest of the event stays.
        progress = event_by_name(span_by_name(failed_spans, "kitaru.checkpoint step"), "progress")[
            "attrs"
        ]
        assert progress == {"kitaru.event.index": 1, "kitaru.event.message": "working"}

        # The Tempo overlay exported the same kept traces over OTLP/HTTP.
        def sink_has_kept() -> bool:
            ids = {tid for tid, _ in list(sink_received)}
            return {failed.trace_id, slow_ok.trace_id} <= ids

        _procs.wait_until(
            sink_has_kept, timeout=15, interval=0.2, what="kept traces at the Tempo stand-in"
        )

        # The fast, successful run was decided with the others and dropped (0 % share).
        time.sleep(1.0)
        assert jaeger.get_trace(fast_ok.trace_id) is None, "a fast OK trace passed 0 % sampling"
        assert fast_ok.trace_id not in {tid for tid, _ in sink_received}
    finally:
        collector.process.stop()
