"""The OpenAI Agents adapter with the SDK's scripted fake model (offline)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from opentelemetry import trace

import kitaru
from conftest import (
    CANARIES,
    OUTPUT,
    PROMPT,
    TOOL_ARG,
    TOOL_RESULT,
    Traced,
    assert_lifecycle,
    dumped,
    of_prefix,
    require_framework,
    watch_all,
)
from kitaru.testing import EventCapture

require_framework("agents", "openai-agents")

from agents import Agent, RunConfig, function_tool  # noqa: E402
from agents.testing import ScriptedModel, assistant_message, function_call  # noqa: E402

from kitaru.adapters.openai_agents import (  # noqa: E402
    OPENAI_AGENTS_STREAM_EVENT_KINDS,
    KitaruRunner,
    OpenAICapturePolicy,
    OpenAIRunResult,
)

PREFIX = "openai_agents.stream"
LONG_OUTPUT = OUTPUT + " " + "y" * 400
NO_TRACING = RunConfig(tracing_disabled=True)  # the SDK's own exporter would go online


def make_agent(*, tool: Any = None) -> Agent[Any]:
    @function_tool
    def lookup(q: str) -> str:
        """Look something up."""
        with trace.get_tracer("test-tool").start_as_current_span("tool.lookup"):
            return TOOL_RESULT

    model = ScriptedModel(
        [
            [function_call("lookup", {"q": TOOL_ARG}, call_id="call_1")],
            [assistant_message(LONG_OUTPUT)],
        ]
    )
    return Agent(name="Researcher", model=model, tools=[tool or lookup])


def test_kinds_and_defaults() -> None:
    assert OPENAI_AGENTS_STREAM_EVENT_KINDS == (
        "openai_agents.stream.started",
        "openai_agents.stream.event",
        "openai_agents.stream.completed",
        "openai_agents.stream.failed",
    )
    assert OpenAICapturePolicy().include_stream_text_deltas is False


def test_run_stream_sync_publishes_documented_events(kitaru_events: EventCapture) -> None:
    seen: list[str] = []
    runner = KitaruRunner(make_agent())

    @kitaru.flow
    def research(q: str) -> str:
        result = runner.run_stream_sync(
            q, run_config=NO_TRACING, on_event=lambda e: seen.append(e.type)
        )
        assert isinstance(result, OpenAIRunResult)
        return result.final_output  # type: ignore[no-any-return]

    assert research(PROMPT) == LONG_OUTPUT
    events = of_prefix(kitaru_events.events, PREFIX)
    assert_lifecycle(events, PREFIX, terminal="completed")
    datas = [e.payload["data"] for e in events]
    assert {d["adapter"] for d in datas} == {"openai_agents"}
    assert {d["agent_name"] for d in datas} == {"Researcher"}
    items = datas[1:-1]
    # Every SDK event is described (raw deltas coalesced), plus the hook's tool_result.
    described = [d["category"] for d in items if d["category"] != "tool_result"]
    assert [c for c in described if c != "raw_response_event"] == [
        c for c in seen if c != "raw_response_event"
    ]
    assert described.count("raw_response_event") <= seen.count("raw_response_event")
    results = [d for d in items if d["category"] == "tool_result"]
    assert [(d["tool_name"], d["outcome"]) for d in results] == [("lookup", "ok")]
    assert items[0] == {
        **items[0],
        "category": "agent_updated_stream_event",
        "new_agent_name": "Researcher",
        "display": "Agent updated: Researcher",
    }
    raw = [d for d in items if d["category"] == "raw_response_event"]
    assert all(d["display"] == d["event_type"] for d in raw)
    assert "response.output_text.delta" in [d["event_type"] for d in raw]
    called = next(d for d in items if d.get("name") == "tool_called")
    assert called["item_type"] == "tool_call_item"
    assert called["item_name"] == "lookup" and called["call_id"] == "call_1"
    assert called["display"] == "Tool called: lookup"
    output = next(d for d in items if d.get("name") == "tool_output")
    assert output["display"] == "Tool output received: call_1"
    message = next(d for d in items if d.get("name") == "message_output_created")
    assert message["display"] == "Message output created"
    assert datas[-1]["event_count"] == len(items)
    text = dumped(kitaru_events.events)
    for canary in CANARIES:
        assert canary not in text


def test_async_run_stream_and_durable_result(kitaru_events: EventCapture) -> None:
    runner = KitaruRunner(make_agent())

    @kitaru.flow
    async def research(q: str) -> list[Any]:
        result = await runner.run_stream(q, run_config=NO_TRACING)
        return result.to_input_list()

    items = asyncio.run(research(PROMPT))
    assert items[0] == {"content": PROMPT, "role": "user"}
    events = of_prefix(kitaru_events.events, PREFIX)
    assert_lifecycle(events, PREFIX, terminal="completed")
    assert events[0].payload["kitaru"]["checkpoint_type"] == "openai_agents_run"


def test_text_delta_opt_in_is_clipped(kitaru_events: EventCapture) -> None:
    runner = KitaruRunner(
        make_agent(), capture=OpenAICapturePolicy(include_stream_text_deltas=True)
    )

    @kitaru.flow
    def research(q: str) -> str:
        return runner.run_stream_sync(q, run_config=NO_TRACING).final_output  # type: ignore[no-any-return]

    assert research(PROMPT) == LONG_OUTPUT
    events = of_prefix(kitaru_events.events, PREFIX)
    deltas = [e.payload["data"] for e in events if "text_delta" in e.payload["data"]]
    assert deltas
    assert deltas[0]["text_delta"].startswith(OUTPUT)
    assert len(deltas[0]["text_delta"]) == 240 and deltas[0]["text_delta"].endswith("...")
    text = dumped(kitaru_events.events)
    for canary in (PROMPT, TOOL_ARG, TOOL_RESULT):
        assert canary not in text


def test_run_failure_publishes_failed_with_type_only(kitaru_events: EventCapture) -> None:
    @function_tool
    def lookup(q: str) -> str:
        """Look something up."""
        return TOOL_RESULT

    agent = Agent(name="Researcher", model=ScriptedModel([]), tools=[lookup])
    runner = KitaruRunner(agent)

    @kitaru.flow
    def research(q: str) -> str:
        return runner.run_stream_sync(q, run_config=NO_TRACING).final_output  # type: ignore[no-any-return]

    with pytest.raises(Exception) as info:
        research(PROMPT)
    events = of_prefix(kitaru_events.events, PREFIX)
    assert_lifecycle(events, PREFIX, terminal="failed")
    failed = events[-1].payload["data"]
    assert failed["error_type"] == type(info.value).__name__
    assert failed["message"] == type(info.value).__name__
    assert PROMPT not in dumped(kitaru_events.events)


def test_on_event_failure_fails_the_stream(kitaru_events: EventCapture) -> None:
    runner = KitaruRunner(make_agent())

    def explode(event: Any) -> None:
        raise KeyError(PROMPT)

    @kitaru.flow
    def research(q: str) -> str:
        return runner.run_stream_sync(q, run_config=NO_TRACING, on_event=explode).final_output  # type: ignore[no-any-return]

    with pytest.raises(KeyError):
        research("q")
    events = of_prefix(kitaru_events.events, PREFIX)
    assert_lifecycle(events, PREFIX, terminal="failed")
    assert events[-1].payload["data"]["error_type"] == "KeyError"


@pytest.mark.usefixtures("publish_raises")
def test_publish_failure_leaves_result_unchanged(kitaru_events: EventCapture) -> None:
    runner = KitaruRunner(make_agent())

    @kitaru.flow
    def research(q: str) -> str:
        return runner.run_stream_sync(q, run_config=NO_TRACING).final_output  # type: ignore[no-any-return]

    assert research("q") == LONG_OUTPUT


def test_failing_transport_leaves_result_unchanged(failing_capture: EventCapture) -> None:
    runner = KitaruRunner(make_agent())

    @kitaru.flow
    def research(q: str) -> str:
        return runner.run_stream_sync(q, run_config=NO_TRACING).final_output  # type: ignore[no-any-return]

    assert research("q") == LONG_OUTPUT


def test_cache_identity_includes_the_text_delta_flag(kitaru_events: EventCapture) -> None:
    plain = KitaruRunner(make_agent(), cache=True, name="cached")
    opted = KitaruRunner(
        make_agent(),
        cache=True,
        name="cached",
        capture=OpenAICapturePolicy(include_stream_text_deltas=True),
    )

    @kitaru.flow
    def research(which: str) -> str:
        runner = plain if which == "plain" else opted
        return runner.run_stream_sync("same", run_config=NO_TRACING).final_output  # type: ignore[no-any-return]

    assert research("plain") == LONG_OUTPUT
    kitaru_events.clear()
    assert research("plain") == LONG_OUTPUT
    assert of_prefix(kitaru_events.events, PREFIX) == [], "a cache hit runs nothing"
    assert research("opted") == LONG_OUTPUT
    assert of_prefix(kitaru_events.events, PREFIX), "the opted-in call is a different identity"


def test_spans_inside_the_run_nest_under_the_checkpoint(traced: Traced) -> None:
    # The Agents SDK traces with its own (non-OTel) system; what must hold is that the OTel
    # context of the adapter checkpoint reaches the code the SDK runs (tools, model clients).
    runner = KitaruRunner(make_agent())

    @kitaru.flow
    def research(q: str) -> str:
        return runner.run_stream_sync(q, run_config=NO_TRACING).final_output  # type: ignore[no-any-return]

    trace.set_tracer_provider(traced.provider)
    assert research("q") == LONG_OUTPUT
    ckpt = traced.checkpoint_span("openai_agents_run")
    tool_spans = [s for s in traced.spans() if s.name == "tool.lookup"]
    assert len(tool_spans) == 1
    # checkpoint -> invoke_agent Researcher -> the tool's own span
    agent_span = next(s for s in traced.spans() if s.name == "invoke_agent Researcher")
    assert agent_span.parent.span_id == ckpt.context.span_id
    assert tool_spans[0].parent.span_id == agent_span.context.span_id
    assert tool_spans[0].context.trace_id == ckpt.context.trace_id


@kitaru.flow
def served_openai_flow(q: str) -> str:
    return KitaruRunner(make_agent()).run_stream_sync(q, run_config=NO_TRACING).final_output  # type: ignore[no-any-return]


@pytest.mark.server
def test_events_reach_a_real_server_watcher(live_server: Any) -> None:
    handle = served_openai_flow.run("q")
    assert handle.wait(30) == LONG_OUTPUT
    events = watch_all(handle.exec_id, PREFIX)
    assert_lifecycle(events, PREFIX, terminal="completed")
    assert any(e.payload["data"].get("name") == "tool_called" for e in events)
