"""End to end: the four agent adapters' scripted runs as GenAI spans in a real Jaeger.

Each framework's offline run (two tool calls, one failing, then an approval or interrupt) is
exported over OTLP; the trace is read back from Jaeger: checkpoint -> ``invoke_agent`` ->
``chat`` / ``execute_tool`` with the GenAI attributes, the failed tool's span in ERROR, one
trace per execution, and none of the four canary strings anywhere in it.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.util._once import Once

import kitaru
import kitaru.otel
from kitaru import flow

_HERE = Path(__file__).resolve().parent
_ADAPTERS = _HERE.parent / "adapters"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# The adapter tests' scripted runs and helpers (their directory holds conftest and fakes).
sys.path.insert(0, str(_ADAPTERS))
jaeger_tests = _load("kitaru_e2e_jaeger_helpers", _HERE / "test_otel_jaeger.py")
adapters_conftest = _load("conftest_adapters_e2e", _ADAPTERS / "conftest.py")
CANARIES = adapters_conftest.CANARIES
PROMPT = adapters_conftest.PROMPT

for module in ("pydantic_ai", "agents", "langgraph", "claude_agent_sdk"):
    adapters_conftest.require_framework(module, module)

# Those modules import their helpers as ``conftest``: lend them the adapters' one meanwhile.
_e2e_conftest = sys.modules.get("conftest")
sys.modules["conftest"] = adapters_conftest
try:
    pai = _load("truth_pai_e2e", _ADAPTERS / "test_truth_pydantic_ai.py")
    oai = _load("truth_oai_e2e", _ADAPTERS / "test_truth_openai_agents.py")
    lg = _load("truth_lg_e2e", _ADAPTERS / "test_truth_langgraph.py")
    cl = _load("truth_cl_e2e", _ADAPTERS / "test_truth_claude_agent_sdk.py")
finally:
    if _e2e_conftest is not None:
        sys.modules["conftest"] = _e2e_conftest

from _claude_fake import FakeClaudeTransport  # noqa: E402

from kitaru.adapters.claude_agent_sdk import KitaruClaudeRunner  # noqa: E402
from kitaru.adapters.langgraph import KitaruGraphRunner  # noqa: E402
from kitaru.adapters.openai_agents import KitaruRunner  # noqa: E402
from kitaru.adapters.pydantic_ai import KitaruAgent  # noqa: E402


@flow
def pydantic_flow(q: str) -> str:
    return type(KitaruAgent(pai.make_agent()).run_sync(q).output).__name__


@flow
async def openai_flow(q: str) -> bool:
    return (await KitaruRunner(oai.make_agent()).run(q)).interrupted


@flow
def langgraph_flow(q: str) -> bool:
    from langchain_core.messages import HumanMessage

    runner = KitaruGraphRunner(lg.make_graph())
    out = runner.invoke({"messages": [HumanMessage(content=q)]}, lg.CONFIG)
    return "__interrupt__" in out


@flow
def claude_flow(q: str) -> str | None:
    runner = KitaruClaudeRunner(transport_factory=lambda: FakeClaudeTransport(cl.first_frames()))
    return runner.run_sync(q).session_id


@pytest.fixture(autouse=True)
def clean_otel() -> Any:
    def reset() -> None:
        kitaru.otel.shutdown(timeout=5.0)
        trace._TRACER_PROVIDER_SET_ONCE = Once()  # type: ignore[attr-defined]
        trace._TRACER_PROVIDER = None  # type: ignore[attr-defined]

    reset()
    yield
    reset()


CASES = {
    # framework: (flow, checkpoint type, provider, failing tool, ok tool)
    "pydantic_ai": (pydantic_flow, "pydantic_ai_agent", None, "broken", "lookup"),
    "openai_agents": (openai_flow, "openai_agents_run", "openai", "broken", "lookup"),
    "langgraph": (langgraph_flow, "langgraph_graph_call", "langgraph", "broken", "lookup"),
    "claude_agent_sdk": (
        claude_flow,
        "claude_agent_sdk_invocation",
        "anthropic",
        "Bash",
        "Read",
    ),
}


@pytest.fixture
def traces_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # Jaeger takes traces only: configure(endpoint=...) would also send log records and metrics
    # there, and shutdown() rightly reports that those could not be delivered.
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "none")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")


@pytest.mark.jaeger
@pytest.mark.parametrize("framework", list(CASES))
def test_adapter_runs_are_genai_traces_in_jaeger(
    jaeger: Any, framework: str, traces_only: None
) -> None:
    run_flow, checkpoint_type, provider, failing, ok = CASES[framework]
    kitaru.otel.configure(endpoint=str(jaeger.otlp_http_endpoint), protocol="http/protobuf")
    handle = run_flow.run(PROMPT)
    handle.wait(60)
    assert kitaru.otel.shutdown(timeout=10.0)
    trace_id = handle.exec_id.replace("-", "")
    spans, raw = jaeger_tests.fetch_trace(jaeger, trace_id, expect=6)

    # One trace per execution, every span in it, no orphans.
    assert {s.trace_id for s in spans} == {kitaru.otel.trace_id_for_execution(handle.exec_id)}
    ids = {s.span_id for s in spans}
    assert all(s.parent_id in ids for s in spans if s.parent_id), "orphan spans"
    by_id = {s.span_id: s for s in spans}

    (ckpt,) = [s for s in spans if s.attributes.get("kitaru.checkpoint.type") == checkpoint_type]
    agents = [s for s in spans if s.name.startswith("invoke_agent ")]
    assert agents, [s.name for s in spans]
    agent = agents[0]
    assert agent.parent_id == ckpt.span_id
    assert agent.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert agent.attributes.get("gen_ai.agent.name")

    def under_agent(span: Any) -> bool:
        parent = by_id.get(span.parent_id)
        while parent is not None:
            if parent.span_id == agent.span_id:
                return True
            parent = by_id.get(parent.parent_id)
        return False

    chats = [s for s in spans if s.attributes.get("gen_ai.operation.name") == "chat"]
    assert chats and all(under_agent(s) for s in chats)
    assert any(s.attributes.get("gen_ai.usage.input_tokens", 0) > 0 for s in chats)
    assert all("gen_ai.usage.output_tokens" in s.attributes for s in chats)
    tools = {
        s.attributes.get("gen_ai.tool.name"): s
        for s in spans
        if s.attributes.get("gen_ai.operation.name") == "execute_tool"
    }
    assert failing in tools and ok in tools, sorted(map(str, tools))
    assert all(under_agent(s) for s in tools.values())
    assert tools[failing].status == "ERROR"
    assert tools[ok].status != "ERROR"
    assert tools[ok].attributes.get("gen_ai.tool.call.id")
    if provider is not None:
        assert agent.attributes["gen_ai.provider.name"] == provider
    if framework == "openai_agents":
        # The SDK's own trace, bridged: its agent span and its function spans, in this trace.
        sdk_types = {s.attributes.get("openai_agents.span.type") for s in spans}
        assert {"agent", "function"} <= sdk_types, sdk_types
        assert tools[failing].attributes["openai_agents.span.type"] == "function"
    for canary in CANARIES:
        assert canary not in raw, canary


def _agent_panel_queries(metrics: str = "traces_span_metrics_") -> list[tuple[str, str]]:
    """(title, PromQL) of the dashboard's agent panels drawn from ``metrics``, Grafana's
    interval and variables resolved."""
    import json
    import re

    dashboard = _HERE.parents[1] / "collector-config/grafana/dashboards/kitaru-checkpoints.json"
    out = []
    for panel in json.loads(dashboard.read_text())["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            if "gen_ai_" in expr and metrics in expr:
                expr = re.sub(r"\$\{?(flow|checkpoint)\}?", ".*", expr)
                out.append((panel["title"], expr.replace("$__rate_interval", "1m")))
    return out


def _run_all_frameworks() -> None:
    for run_flow, *_ in CASES.values():
        run_flow.run(PROMPT).wait(60)
    provider = trace.get_tracer_provider()
    flush = getattr(provider, "force_flush", None)
    if flush is not None:
        flush(10_000)


@pytest.mark.jaeger
@pytest.mark.collector
@pytest.mark.prometheus
def test_agent_panels_return_data(otelcol: Any, prometheus: Any) -> None:
    queries = _agent_panel_queries()
    assert len(queries) == 3, queries
    kitaru.otel.configure(endpoint=str(otelcol.otlp_http_endpoint), protocol="http/protobuf")
    _run_all_frameworks()
    # A second round once Prometheus has scraped the first, so every rate() sees an increase.
    jaeger_tests_procs = _load("kitaru_e2e_procs_helpers", _HERE / "_procs.py")
    jaeger_tests_procs.wait_until(
        lambda: prometheus.query(
            'traces_span_metrics_calls_total{gen_ai_operation_name="execute_tool"}'
        ),
        timeout=30,
        interval=0.3,
        what="agent span metrics in Prometheus",
    )
    _run_all_frameworks()
    pending = dict(queries)

    def all_have_data() -> bool:
        for title, expr in list(pending.items()):
            values = [float(r["value"][1]) for r in prometheus.query(expr)]
            if any(v > 0 and v == v for v in values):
                del pending[title]
        return not pending

    try:
        jaeger_tests_procs.wait_until(
            all_have_data, timeout=40, interval=0.5, what="agent panel queries to return data"
        )
    except AssertionError as exc:
        details = "\n".join(f"  {t}: {e} -> {prometheus.query(e)}" for t, e in pending.items())
        raise AssertionError(f"{exc}\nqueries without data:\n{details}") from None
    models = {r["metric"].get("gen_ai_request_model") for r in prometheus.query(queries[0][1])}
    assert {"scripted-1", "claude-test"} <= models, models
    ratio = prometheus.query(queries[1][1])
    failing = {r["metric"].get("gen_ai_tool_name") for r in ratio if float(r["value"][1]) > 0}
    assert {"broken", "Bash"} <= failing, ratio


def _wait_for_data(prometheus: Any, queries: list[tuple[str, str]], what: str) -> None:
    procs = _load("kitaru_e2e_procs_helpers", _HERE / "_procs.py")
    pending = dict(queries)

    def all_have_data() -> bool:
        for title, expr in list(pending.items()):
            values = [float(r["value"][1]) for r in prometheus.query(expr)]
            if any(v > 0 and v == v for v in values):
                del pending[title]
        return not pending

    try:
        procs.wait_until(all_have_data, timeout=40, interval=0.5, what=what)
    except AssertionError as exc:
        details = "\n".join(f"  {t}: {e} -> {prometheus.query(e)}" for t, e in pending.items())
        raise AssertionError(f"{exc}\nqueries without data:\n{details}") from None


@pytest.mark.jaeger
@pytest.mark.collector
@pytest.mark.prometheus
def test_token_and_cost_panels_return_data(
    otelcol: Any, prometheus: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tokens per model (gen_ai.client.token.usage) and tokens and cost per checkpoint name
    # (kitaru.usage.*) come from kitaru's SDK metrics, not from span metrics.
    queries = [(t, e) for t, e in _agent_panel_queries("") if "traces_span_metrics_" not in e]
    titles = [t for t, _ in queries]
    assert titles == [
        "Agent tokens / s (by model)",
        "Tokens / s per checkpoint name (by model)",
        "Cost per hour per checkpoint name (by model)",
    ], titles
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "500")
    kitaru.otel.configure(endpoint=str(otelcol.otlp_http_endpoint), protocol="http/protobuf")
    _run_all_frameworks()
    procs = _load("kitaru_e2e_procs_helpers", _HERE / "_procs.py")
    procs.wait_until(
        lambda: prometheus.query('kitaru_usage_tokens_total{gen_ai_request_model="claude-test"}'),
        timeout=30,
        interval=0.3,
        what="kitaru's token counters in Prometheus",
    )
    # Every panel query returns series for the scripted runs. Their rates can still read 0 when
    # a single export landed between two scrapes, so the amounts are checked on the counters.
    procs.wait_until(
        lambda: all(prometheus.query(expr) for _, expr in queries),
        timeout=40,
        interval=0.5,
        what="token and cost panel queries to return series",
    )
    per_model = prometheus.query(queries[0][1])
    models = {r["metric"].get("gen_ai_request_model") for r in per_model}
    assert {"scripted-1", "claude-test"} <= models, per_model
    assert {r["metric"].get("gen_ai_token_type") for r in per_model} == {"input", "output"}
    per_checkpoint = {
        (r["metric"].get("kitaru_checkpoint_name"), r["metric"].get("gen_ai_request_model"))
        for r in prometheus.query("kitaru_usage_tokens_total")
        if float(r["value"][1]) > 0
    }
    assert ("claude_claude_invocation", "claude-test") in per_checkpoint, per_checkpoint
    costs = {
        (r["metric"].get("kitaru_checkpoint_name"), r["metric"].get("gen_ai_request_model"))
        for r in prometheus.query("kitaru_usage_cost_usd_total")
        if float(r["value"][1]) > 0
    }
    # Only Claude reports a cost; the other frameworks' checkpoints have tokens and no cost.
    assert ("claude_claude_invocation", "claude-test") in costs, costs
    # The scripted Claude run reports 24 input and 12 output tokens and 0.0123 USD per run.
    totals = prometheus.query(
        'sum by (gen_ai_token_type) (kitaru_usage_tokens_total{gen_ai_request_model="claude-test"})'
    )
    by_type = {r["metric"]["gen_ai_token_type"]: float(r["value"][1]) for r in totals}
    assert by_type["input"] % 24 == 0 and by_type["output"] == by_type["input"] / 2, by_type
