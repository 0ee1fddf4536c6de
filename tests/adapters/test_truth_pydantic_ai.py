"""PydanticAI runs that tell the truth: tool outcomes, approvals, usage, cache keys, volume."""

from __future__ import annotations

from typing import Any

import pytest

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
)
from kitaru.exceptions import KitaruUsageError
from kitaru.testing import EventCapture

require_framework("pydantic_ai", "pydantic-ai")

from pydantic_ai import Agent, DeferredToolRequests, DeferredToolResults  # noqa: E402
from pydantic_ai.exceptions import ToolFailed  # noqa: E402
from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart  # noqa: E402
from pydantic_ai.models.function import AgentInfo, FunctionModel  # noqa: E402
from pydantic_ai.models.test import TestModel  # noqa: E402
from pydantic_ai.usage import RequestUsage  # noqa: E402

from kitaru.adapters.pydantic_ai import KitaruAgent  # noqa: E402

PREFIX = "pydantic_ai.stream"

# The scripted model's usage, per response.
USAGE = [(11, 7, 3), (13, 5, 0), (17, 2, 0)]


def script(messages: list[Any], info: AgentInfo) -> ModelResponse:
    turn = sum(1 for m in messages if m.kind == "response")
    inp, out, cached = USAGE[turn]
    usage = RequestUsage(input_tokens=inp, output_tokens=out, cache_read_tokens=cached)
    if turn == 0:
        parts: list[Any] = [
            ToolCallPart("lookup", {"q": TOOL_ARG}, tool_call_id="call_ok"),
            ToolCallPart("broken", {"q": TOOL_ARG}, tool_call_id="call_bad"),
        ]
    elif turn == 1:
        parts = [ToolCallPart("deploy", {}, tool_call_id="call_approve")]
    else:
        parts = [TextPart(OUTPUT)]
    return ModelResponse(parts=parts, usage=usage, model_name="scripted-1")


def make_agent() -> Agent[None, Any]:
    agent: Agent[None, Any] = Agent(
        FunctionModel(script, model_name="scripted-1"),
        output_type=[str, DeferredToolRequests],
        name="ops",
    )

    @agent.tool_plain
    def lookup(q: str) -> str:
        return TOOL_RESULT

    @agent.tool_plain
    def broken(q: str) -> str:
        raise ToolFailed(f"could not use {q}")

    @agent.tool_plain(requires_approval=True)
    def deploy() -> str:
        return TOOL_RESULT

    return agent


def _tool_events(events: list[Any]) -> list[tuple[str, str, str | None]]:
    return sorted(
        (d["category"], d["tool_name"], d.get("outcome"))
        for d in (e.payload["data"] for e in events)
        if d["category"].startswith("function_tool")
    )


def test_failed_tool_then_approval_then_resume(kitaru_events: EventCapture) -> None:
    durable = KitaruAgent(make_agent())

    @kitaru.flow
    def ops(q: str) -> str:
        first = durable.run_sync(q)
        pending = first.output
        assert isinstance(pending, DeferredToolRequests)
        approvals = {call.tool_call_id: True for call in pending.approvals}
        second = durable.run_sync(
            message_history=first.all_messages(),
            deferred_tool_results=DeferredToolResults(approvals=approvals),
        )
        return second.output  # type: ignore[no-any-return]

    assert ops(PROMPT) == OUTPUT
    lanes: dict[str, list[Any]] = {}  # in publishing order: first run, then the resumed one
    for event in kitaru_events.events:
        if event.kind.startswith(PREFIX):
            lanes.setdefault(event.correlation_id, []).append(event)
    first, second = (of_prefix(lane, PREFIX) for lane in lanes.values())
    assert_lifecycle(first, PREFIX, terminal="completed")
    assert_lifecycle(second, PREFIX, terminal="completed")

    # First run: model, two tools (one failed), model asking for approval -> interrupted.
    cats = [e.payload["data"]["category"] for e in first]
    assert cats[0] == "lifecycle" and cats[1] == "model_response" and cats[-2] == "model_response"
    assert _tool_events(first) == [
        ("function_tool_call", "broken", None),
        ("function_tool_call", "lookup", None),
        ("function_tool_result", "broken", "error"),
        ("function_tool_result", "lookup", "ok"),
    ]
    for event in first:
        data = event.payload["data"]
        if data["category"] == "function_tool_result":
            assert set(data) >= {"tool_name", "tool_call_id", "outcome", "duration_s"}
            assert data["duration_s"] >= 0
    end = first[-1].payload["data"]
    assert end["status"] == "interrupted"
    assert end["interruption_count"] == 1
    assert end["interruption_ids"] == ["call_approve"]
    assert end["interruption_kinds"] == ["approval"]
    assert end["usage"] == [
        {
            "model": "scripted-1",
            "requests": 2,
            "input_tokens": 11 + 13,
            "output_tokens": 7 + 5,
            "cache_read_tokens": 3,
        }
    ]
    assert (end["input_tokens"], end["output_tokens"], end["cache_read_tokens"]) == (24, 12, 3)

    # Resumed run: the approved tool runs, the model answers, the run completes.
    assert ("function_tool_result", "deploy", "ok") in _tool_events(second)
    done = second[-1].payload["data"]
    assert done["status"] == "completed"
    assert done["usage"][0]["input_tokens"] == 17 and done["usage"][0]["output_tokens"] == 2
    for canary in CANARIES:
        assert canary not in dumped(kitaru_events.events)


def test_cache_key_holds_what_changes_the_answer(kitaru_events: EventCapture) -> None:
    calls: list[str] = []

    def counted(messages: list[Any], info: AgentInfo) -> ModelResponse:
        calls.append("x")
        return TestModelLike.answer(info)

    durable = KitaruAgent(Agent(FunctionModel(counted), name="c"), cache=True)

    @kitaru.flow
    def ask() -> list[Any]:
        return [
            durable.run_sync("same prompt", output_type=int).output,
            durable.run_sync("same prompt", output_type=int).output,  # cached
            durable.run_sync("same prompt", output_type=str).output,
            durable.run_sync("same prompt", output_type=str, instructions="be brief").output,
            durable.run_sync("same prompt", output_type=str, model=TestModel()).output,
        ]

    out = ask()
    assert out[0] == 0 and out[1] == 0
    assert isinstance(out[2], str) and out[2] != 0
    assert len(calls) == 3, calls  # the TestModel run does not call ``counted``


class TestModelLike:
    @staticmethod
    def answer(info: AgentInfo) -> ModelResponse:
        if info.output_tools:
            tool = info.output_tools[0]
            return ModelResponse(parts=[ToolCallPart(tool.name, {"response": 0})])
        return ModelResponse(parts=[TextPart("text answer")])


def test_cache_refuses_an_input_it_cannot_key(kitaru_events: EventCapture) -> None:
    durable = KitaruAgent(Agent(TestModel(), name="c"), cache=True)

    @kitaru.flow
    def ask() -> Any:
        return durable.run_sync("q", model_settings={"extra_body": object()}).output

    with pytest.raises(KitaruUsageError, match="cannot key"):
        ask()


def test_long_streamed_answer_is_coalesced_and_the_span_keeps_tool_events(
    traced: Traced, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opentelemetry import trace
    from pydantic_ai.models.function import DeltaToolCall

    monkeypatch.setattr(trace, "_TRACER_PROVIDER", traced.provider)
    tokens = [f"tok{i} " for i in range(500)]

    async def stream(messages: list[Any], info: AgentInfo) -> Any:
        if not any(m.kind == "response" for m in messages):
            yield {0: DeltaToolCall("lookup", '{"q": "a"}', tool_call_id="c1")}
            return
        for token in tokens:
            yield token

    agent: Agent[None, str] = Agent(FunctionModel(stream_function=stream), name="long")

    @agent.tool_plain
    def lookup(q: str) -> str:
        return TOOL_RESULT

    durable = KitaruAgent(agent)

    class Collect:
        async def __call__(self, ctx: Any, events: Any) -> None:
            async for _ in events:
                pass

    @kitaru.flow
    def ask() -> str:
        return durable.run_sync("q", event_stream_handler=Collect()).output  # type: ignore[no-any-return]

    assert ask() == "".join(tokens)
    events = of_prefix(traced.capture.events, PREFIX)
    deltas = [
        e
        for e in events
        if "delta_count" in e.payload["data"] and e.payload["data"]["category"] != "lifecycle"
    ]
    assert 1 <= len(deltas) <= 5, len(deltas)
    assert sum(e.payload["data"]["delta_count"] for e in deltas) >= 499
    end = events[-1].payload["data"]
    assert end["delta_count"] >= 499
    span = traced.checkpoint_span("pydantic_ai_agent")
    names = [ev.name for ev in span.events]
    non_delta = [e for e in events if e not in deltas]
    assert len(non_delta) <= 64
    assert sum(1 for n in names if n == f"{PREFIX}.started") == 1
    assert sum(1 for n in names if n == f"{PREFIX}.completed") == 1
    tool_events = [
        ev
        for ev in span.events
        if str(ev.attributes.get("kitaru.event.data.category", "")).startswith("function_tool")
    ]
    assert len(tool_events) == 2
    spans = {s.name for s in traced.spans()}
    assert "invoke_agent long" in spans and "execute_tool lookup" in spans
