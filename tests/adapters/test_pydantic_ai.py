"""The PydanticAI adapter: durable runs, documented live events, privacy, failures, traces."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
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
    watch_all,
)
from kitaru.testing import EventCapture

require_framework("pydantic_ai", "pydantic-ai")

from pydantic_ai import Agent  # noqa: E402
from pydantic_ai.exceptions import UserError  # noqa: E402
from pydantic_ai.messages import (  # noqa: E402
    ModelMessage,
    ModelResponse,
    TextPart,
    ToolCallPart,
)
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, FunctionModel  # noqa: E402
from pydantic_ai.models.test import TestModel  # noqa: E402

from kitaru.adapters.pydantic_ai import (  # noqa: E402
    PYDANTIC_AI_STREAM_EVENT_KINDS,
    PYDANTIC_AI_STREAM_TERMINAL_EVENT_KINDS,
    CapturePolicy,
    KitaruAgent,
)

PREFIX = "pydantic_ai.stream"
LONG_OUTPUT = OUTPUT + " " + "x" * 400


def scripted_agent(
    calls: list[str] | None = None, *, output: str = LONG_OUTPUT, **kw: Any
) -> Agent:
    """A streaming FunctionModel: first a tool call carrying TOOL_ARG, then the output text."""

    async def stream(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[Any]:
        if calls is not None:
            calls.append("model")
        if len(messages) == 1:
            yield {
                0: DeltaToolCall(
                    name="lookup", json_args=f'{{"q": "{TOOL_ARG}"}}', tool_call_id="c1"
                )
            }
        else:
            yield output

    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if calls is not None:
            calls.append("model")
        if len(messages) == 1:
            return ModelResponse(parts=[ToolCallPart("lookup", {"q": TOOL_ARG}, tool_call_id="c1")])
        return ModelResponse(parts=[TextPart(output)])

    model = FunctionModel(respond, stream_function=stream)
    agent = Agent(model, name="Support Agent!!", **kw)

    @agent.tool_plain
    def lookup(q: str) -> str:
        return TOOL_RESULT

    return agent


class Collect:
    def __init__(self) -> None:
        self.events: list[Any] = []

    async def __call__(self, ctx: Any, stream: Any) -> None:
        async for event in stream:
            self.events.append(event)


def test_kind_constants() -> None:
    assert PYDANTIC_AI_STREAM_EVENT_KINDS == (
        "pydantic_ai.stream.started",
        "pydantic_ai.stream.event",
        "pydantic_ai.stream.completed",
        "pydantic_ai.stream.failed",
    )
    assert PYDANTIC_AI_STREAM_TERMINAL_EVENT_KINDS == (
        "pydantic_ai.stream.completed",
        "pydantic_ai.stream.failed",
    )
    assert CapturePolicy().save_stream_transcripts is False
    assert CapturePolicy().emit_child_events is True


def test_run_sync_with_handler_publishes_documented_events(kitaru_events: EventCapture) -> None:
    agent = Agent(TestModel(custom_output_text="done"), name="Support Agent!!")

    @agent.tool_plain
    def lookup(q: str) -> str:
        return "found"

    durable = KitaruAgent(agent)
    handler = Collect()

    @kitaru.flow
    def ask(q: str) -> str:
        return durable.run_sync(q, event_stream_handler=handler).output  # type: ignore[no-any-return]

    assert ask("hello") == "done"
    events = of_prefix(kitaru_events.events, PREFIX)
    assert_lifecycle(events, PREFIX, terminal="completed")
    datas = [e.payload["data"] for e in events]
    for data in datas:
        assert data["adapter"] == "pydantic_ai"
        assert data["agent_name"] == "Support_Agent"
        assert data["surface"] == "run_sync"
        assert data["source"] == "event_stream_handler"
    assert datas[0]["status"] == "started"
    assert datas[0]["display"] == "PydanticAI stream started"
    items = datas[1:-1]
    assert [d["category"] for d in items] == [
        "part_start",
        "part_end",
        "function_tool_call",
        "function_tool_result",
        "part_start",
        "final_result",
        "part_delta",
        "part_delta",
        "part_end",
    ]
    # The handler still saw every event, in the same order.
    assert [type(e).__name__ for e in handler.events] == [d["event_type"] for d in items]
    call = items[2]
    assert call["tool_name"] == "lookup" and call["display"] == "Function tool call: lookup"
    assert call["tool_call_id"]
    assert items[0]["part_kind"] == "tool-call" and items[0]["display"] == "Part started: tool-call"
    assert items[5]["display"] == "Final result detected"
    assert items[6]["delta_kind"] == "text" and items[6]["display"] == "Text delta"
    assert "text_delta" not in items[6]
    assert datas[-1]["status"] == "completed"
    assert datas[-1]["event_count"] == len(items)
    assert datas[-1]["display"] == "PydanticAI stream completed: completed"
    # Adapter events live in the adapter checkpoint's lane, between its lifecycle events.
    lane = kitaru_events.lanes()[events[0].correlation_id]
    assert lane[0].kind == "kitaru.checkpoint.started"
    assert lane[-1].kind == "kitaru.checkpoint.returned"
    assert lane[0].payload["kitaru"]["checkpoint_type"] == "pydantic_ai_agent"


def test_async_run_surface(kitaru_events: EventCapture) -> None:
    durable = KitaruAgent(scripted_agent())

    @kitaru.flow
    async def ask(q: str) -> str:
        result = await durable.run(q, event_stream_handler=Collect())
        return result.output  # type: ignore[no-any-return]

    assert asyncio.run(ask(PROMPT)) == LONG_OUTPUT
    events = of_prefix(kitaru_events.events, PREFIX)
    assert_lifecycle(events, PREFIX, terminal="completed")
    assert {e.payload["data"]["surface"] for e in events} == {"run"}


def test_without_streaming_hook_events_come_from_the_run_hooks(
    kitaru_events: EventCapture,
) -> None:
    # A function model without a stream function: the adapter must not turn the run into a
    # streamed one, yet it still reports the model response through PydanticAI's hooks.
    def answer(messages: Any, info: Any) -> Any:
        from pydantic_ai.messages import ModelResponse, TextPart

        return ModelResponse(parts=[TextPart("plain")])

    from pydantic_ai.models.function import FunctionModel

    durable = KitaruAgent(Agent(FunctionModel(answer), name="a"))

    @kitaru.flow
    def ask() -> str:
        return durable.run_sync("hi").output  # type: ignore[no-any-return]

    assert ask() == "plain"
    events = of_prefix(kitaru_events.events, PREFIX)
    assert_lifecycle(events, PREFIX, terminal="completed")
    assert [e.payload["data"]["category"] for e in events[1:-1]] == ["model_response"]
    assert events[0].payload["data"]["source"] == "hooks"


def test_no_canary_without_opt_in(kitaru_events: EventCapture) -> None:
    durable = KitaruAgent(scripted_agent())

    @kitaru.flow
    def ask(q: str) -> str:
        return durable.run_sync(q, event_stream_handler=Collect()).output  # type: ignore[no-any-return]

    assert ask(PROMPT) == LONG_OUTPUT
    events = kitaru_events.events
    assert of_prefix(events, PREFIX)
    text = dumped(events)
    for canary in CANARIES:
        assert canary not in text


def test_transcript_opt_in_adds_clipped_text(kitaru_events: EventCapture) -> None:
    durable = KitaruAgent(scripted_agent(), capture=CapturePolicy(save_stream_transcripts=True))

    @kitaru.flow
    def ask(q: str) -> str:
        return durable.run_sync(q, event_stream_handler=Collect()).output  # type: ignore[no-any-return]

    assert ask(PROMPT) == LONG_OUTPUT
    events = of_prefix(kitaru_events.events, PREFIX)
    deltas = [e.payload["data"]["text_delta"] for e in events if "text_delta" in e.payload["data"]]
    assert deltas, "the opted-in transcript carries text"
    joined = "".join(deltas)
    assert OUTPUT in joined
    assert all(len(d) <= 240 for d in deltas)
    assert any(d.endswith("...") and len(d) == 240 for d in deltas)
    shown = [e for e in events if "text_delta" in e.payload["data"]]
    assert all(e.payload["data"]["display"].startswith(OUTPUT[:10]) for e in shown[:1])
    # Prompts, tool arguments and tool results stay out even with the opt-in.
    text = dumped(kitaru_events.events)
    for canary in (PROMPT, TOOL_ARG, TOOL_RESULT):
        assert canary not in text


def test_emit_child_events_false_publishes_nothing_handler_sees_all(
    kitaru_events: EventCapture,
) -> None:
    durable = KitaruAgent(scripted_agent(), capture=CapturePolicy(emit_child_events=False))
    handler = Collect()

    @kitaru.flow
    def ask() -> str:
        return durable.run_sync("q", event_stream_handler=handler).output  # type: ignore[no-any-return]

    assert ask() == LONG_OUTPUT
    assert of_prefix(kitaru_events.events, PREFIX) == []
    assert len(handler.events) >= 6


class SafeError(RuntimeError):
    safe_live_message = "lookup backend unavailable"


@pytest.mark.parametrize(
    ("exc", "message"),
    [
        (ValueError(f"boom {PROMPT}"), "ValueError"),
        (SafeError(PROMPT), "lookup backend unavailable"),
    ],
)
def test_handler_failure_publishes_failed_without_exception_text(
    kitaru_events: EventCapture, exc: Exception, message: str
) -> None:
    async def handler(ctx: Any, stream: Any) -> None:
        async for _ in stream:
            raise exc

    durable = KitaruAgent(scripted_agent())

    @kitaru.flow
    def ask() -> str:
        return durable.run_sync("q", event_stream_handler=handler).output  # type: ignore[no-any-return]

    with pytest.raises(type(exc)):
        ask()
    events = of_prefix(kitaru_events.events, PREFIX)
    assert_lifecycle(events, PREFIX, terminal="failed")
    failed = events[-1].payload["data"]
    assert failed["error_type"] == type(exc).__name__
    assert failed["message"] == message
    assert failed["status"] == "failed"
    assert failed["display"] == f"PydanticAI stream failed: {message}"
    assert PROMPT not in dumped(kitaru_events.events)


@pytest.mark.usefixtures("publish_raises")
def test_publish_failure_leaves_result_unchanged(kitaru_events: EventCapture) -> None:
    durable = KitaruAgent(scripted_agent())
    handler = Collect()

    @kitaru.flow
    def ask() -> str:
        return durable.run_sync("q", event_stream_handler=handler).output  # type: ignore[no-any-return]

    assert ask() == LONG_OUTPUT
    assert len(handler.events) >= 6


def test_failing_transport_leaves_result_unchanged(failing_capture: EventCapture) -> None:
    durable = KitaruAgent(scripted_agent())

    @kitaru.flow
    def ask() -> str:
        return durable.run_sync("q", event_stream_handler=Collect()).output  # type: ignore[no-any-return]

    assert ask() == LONG_OUTPUT


def test_cache_reuses_durable_result(kitaru_events: EventCapture) -> None:
    calls: list[str] = []
    durable = KitaruAgent(scripted_agent(calls), cache=True)

    @kitaru.flow
    def ask(q: str) -> str:
        return durable.run_sync(q, event_stream_handler=Collect()).output  # type: ignore[no-any-return]

    assert ask("same") == LONG_OUTPUT
    assert calls == ["model", "model"]
    kitaru_events.clear()
    assert ask("same") == LONG_OUTPUT
    assert calls == ["model", "model"], "the cached run did not call the model again"
    assert of_prefix(kitaru_events.events, PREFIX) == []


@kitaru.checkpoint
def after_agent(text: str) -> int:
    return len(text)


_replay_calls: list[str] = []
_replay_agent = KitaruAgent(scripted_agent(_replay_calls))


@kitaru.flow
def agent_then_count(q: str) -> int:
    return after_agent(_replay_agent.run_sync(q).output)


def test_replay_reuses_the_agent_checkpoint(kitaru_events: EventCapture) -> None:
    _replay_calls.clear()
    first = agent_then_count.run("q")
    assert first.wait(30) == len(LONG_OUTPUT)
    assert len(_replay_calls) == 2
    again = agent_then_count.replay(first.exec_id, from_="after_agent")
    assert again.wait(30) == len(LONG_OUTPUT)
    assert len(_replay_calls) == 2, "replay reused the stored agent result"


def test_streaming_surfaces_need_an_explicit_checkpoint(kitaru_events: EventCapture) -> None:
    durable = KitaruAgent(scripted_agent())

    async def outside() -> None:
        async with durable.run_stream("q"):
            pass

    with pytest.raises(kitaru.KitaruContextError, match=r"explicit `@kitaru\.checkpoint`") as info:
        asyncio.run(outside())
    assert isinstance(info.value, UserError)


@pytest.mark.parametrize("surface", ["run_stream", "iter"])
def test_streaming_surfaces_publish_inside_a_checkpoint(
    kitaru_events: EventCapture, surface: str
) -> None:
    durable = KitaruAgent(scripted_agent())

    @kitaru.checkpoint
    async def answer(q: str) -> str:
        if surface == "run_stream":
            async with durable.run_stream(q) as result:
                return await result.get_output()  # type: ignore[no-any-return]
        async with durable.iter(q) as run:
            async for _ in run:
                pass
        return run.result.output  # type: ignore[no-any-return,union-attr]

    @kitaru.flow
    async def ask(q: str) -> str:
        return await answer(q)

    assert asyncio.run(ask(PROMPT)) == LONG_OUTPUT
    events = of_prefix(kitaru_events.events, PREFIX)
    assert_lifecycle(events, PREFIX, terminal="completed")
    assert {e.payload["data"]["surface"] for e in events} == {surface}
    categories = [e.payload["data"]["category"] for e in events]
    assert "function_tool_call" in categories and "part_end" in categories
    for canary in CANARIES:
        assert canary not in dumped(events)


def test_framework_spans_nest_under_the_adapter_checkpoint(traced: Traced) -> None:
    from pydantic_ai import InstrumentationSettings
    from pydantic_ai.capabilities import Instrumentation

    settings = InstrumentationSettings(tracer_provider=traced.provider, include_content=False)
    agent = scripted_agent(capabilities=[Instrumentation(settings=settings)])
    durable = KitaruAgent(agent)

    @kitaru.flow
    def ask() -> str:
        return durable.run_sync("q", event_stream_handler=Collect()).output  # type: ignore[no-any-return]

    assert ask() == LONG_OUTPUT
    ckpt = traced.checkpoint_span("pydantic_ai_agent")
    framework = [s for s in traced.spans() if not s.name.startswith("kitaru.")]
    assert framework, "PydanticAI recorded spans"
    below = traced.descendants_of(ckpt)
    assert {s.context.span_id for s in framework} <= {s.context.span_id for s in below}
    assert {s.context.trace_id for s in traced.spans()} == {ckpt.context.trace_id}
    # The live events carry the same trace and span as the checkpoint span.
    event = of_prefix(traced.capture.events, PREFIX)[0]
    assert event.payload["kitaru"]["span_id"] == format(ckpt.context.span_id, "016x")


@kitaru.flow
def served_pydantic_flow(q: str) -> str:
    agent = Agent(TestModel(custom_output_text="served"), name="served")
    return KitaruAgent(agent).run_sync(q, event_stream_handler=Collect()).output  # type: ignore[no-any-return]


@pytest.mark.server
def test_events_reach_a_real_server_watcher(live_server: Any) -> None:
    handle = served_pydantic_flow.run("q")
    assert handle.wait(30) == "served"
    events = watch_all(handle.exec_id, PREFIX)
    assert_lifecycle(events, PREFIX, terminal="completed")
    assert events[0].checkpoint_name == "served_pydantic_ai"
