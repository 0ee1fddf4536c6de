"""The Claude Agent SDK adapter, driving the real SDK over a fake Claude Code transport."""

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

require_framework("claude_agent_sdk", "claude-agent-sdk")

from _claude_fake import FakeClaudeTransport, script  # noqa: E402
from claude_agent_sdk import ClaudeAgentOptions  # noqa: E402

from kitaru.adapters.claude_agent_sdk import (  # noqa: E402
    CLAUDE_STREAM_EVENT_KINDS,
    CLAUDE_STREAM_TERMINAL_EVENT_KINDS,
    ClaudeCapturePolicy,
    ClaudeResultMessageError,
    ClaudeRunResult,
    KitaruClaudeRunner,
)

PREFIX = "claude_agent_sdk.stream"
LONG_TEXT = OUTPUT + " " + "z" * 400


def runner_for(frames: list[dict[str, Any]], **kw: Any) -> KitaruClaudeRunner:
    return KitaruClaudeRunner(transport_factory=lambda: FakeClaudeTransport(frames), **kw)


def canary_script(**kw: Any) -> list[dict[str, Any]]:
    return script(
        tool_input=TOOL_ARG, tool_result=TOOL_RESULT, text=LONG_TEXT, result_text=OUTPUT, **kw
    )


def test_kinds() -> None:
    assert CLAUDE_STREAM_EVENT_KINDS == (
        "claude_agent_sdk.stream.started",
        "claude_agent_sdk.stream.event",
        "claude_agent_sdk.stream.completed",
        "claude_agent_sdk.stream.failed",
    )
    assert CLAUDE_STREAM_TERMINAL_EVENT_KINDS[0].endswith(".completed")


def test_run_stream_sync_publishes_documented_events(kitaru_events: EventCapture) -> None:
    options = ClaudeAgentOptions(max_turns=3)
    runner = runner_for(canary_script(), options=options, name="analyst")
    seen: list[str] = []

    @kitaru.flow
    def analyze(q: str) -> str:
        result = runner.run_stream_sync(q, on_message=lambda m: seen.append(type(m).__name__))
        assert isinstance(result, ClaudeRunResult)
        return result.result  # type: ignore[return-value]

    assert analyze(PROMPT) == OUTPUT
    assert options.include_partial_messages is False, "the caller's options are not modified"
    events = of_prefix(kitaru_events.events, PREFIX)
    assert_lifecycle(events, PREFIX, terminal="completed")
    datas = [e.payload["data"] for e in events]
    for data in datas:
        assert data["adapter"] == "claude_agent_sdk"
        assert data["runner_name"] == "analyst"
        assert data["scope"] == "invocation"
    # Every SDK message is described; the tracker adds tool_call and tool_result events.
    items = [d for d in datas[1:-1] if d["category"] not in ("tool_call", "tool_result")]
    tools = [d for d in datas[1:-1] if d["category"] in ("tool_call", "tool_result")]
    assert [(d["category"], d["tool_name"], d.get("outcome")) for d in tools] == [
        ("tool_call", "Read", None),
        ("tool_result", "Read", "ok"),
    ]
    assert len(items) == len(seen)
    assert [d["category"] for d in items] == [
        "system_message",
        "message_start",
        "tool_call_started",
        "tool_input_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "assistant_message",
        "user_message",
        "message_start",
        "content_block_start",
        "text_delta",
        "content_block_stop",
        "message_stop",
        "assistant_message",
        "rate_limit",
        "result_message",
    ]
    started = items[2]
    assert started["tool_name"] == "Read" and started["tool_id"] == "toolu_1"
    assert started["content_block_type"] == "tool_use" and started["content_block_index"] == 0
    assert items[3]["tool_name"] == "Read" and items[3]["tool_id"] == "toolu_1"
    assert "partial_json" not in items[3]
    assert items[11]["display"] == "Claude text delta" and "text_delta" not in items[11]
    assert items[7]["model"] == "claude-test" and items[7]["content_block_count"] == 1
    assert items[8]["has_tool_use_result"] is True
    assert items[15]["status"] == "allowed" and items[15]["utilization"] == 0.5
    result = items[16]
    assert result["status"] == "completed" and result["has_result"] is True
    assert result["session_id"] == "sess-1" and result["num_turns"] == 2
    assert "result" not in result
    text = dumped(kitaru_events.events)
    for canary in CANARIES:
        assert canary not in text


def test_tool_state_is_cleared_when_its_block_stops(kitaru_events: EventCapture) -> None:
    frames = canary_script()
    # A stray input delta for block 0 after the tool block stopped is not attributed to it.
    stray = {
        "type": "stream_event",
        "uuid": "stray",
        "session_id": "sess-1",
        "event": {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": "{}"},
        },
    }
    frames.insert(5, stray)
    runner = runner_for(frames)

    @kitaru.flow
    def analyze() -> str:
        return runner.run_stream_sync("q").result  # type: ignore[return-value]

    analyze()
    deltas = [
        e.payload["data"]
        for e in of_prefix(kitaru_events.events, PREFIX)
        if e.payload["data"]["category"] == "tool_input_delta"
    ]
    assert deltas[0]["tool_name"] == "Read"
    assert deltas[1]["tool_name"] is None


def test_async_run_stream_with_text_delta_opt_in(kitaru_events: EventCapture) -> None:
    runner = runner_for(
        canary_script(), capture=ClaudeCapturePolicy(include_stream_text_deltas=True)
    )

    @kitaru.flow
    async def analyze(q: str) -> str:
        return (await runner.run_stream(q)).result  # type: ignore[return-value]

    assert asyncio.run(analyze(PROMPT)) == OUTPUT
    events = of_prefix(kitaru_events.events, PREFIX)
    deltas = [e.payload["data"] for e in events if "text_delta" in e.payload["data"]]
    assert len(deltas) == 1
    assert deltas[0]["text_delta"].startswith(OUTPUT)
    assert len(deltas[0]["text_delta"]) == 240 and deltas[0]["text_delta"].endswith("...")
    text = dumped(kitaru_events.events)
    for canary in (PROMPT, TOOL_ARG, TOOL_RESULT):
        assert canary not in text


def test_error_result_fails_with_safe_message(kitaru_events: EventCapture) -> None:
    runner = runner_for(canary_script(error=True))

    @kitaru.flow
    def analyze() -> str:
        return runner.run_stream_sync("q").result  # type: ignore[return-value]

    with pytest.raises(ClaudeResultMessageError) as info:
        analyze()
    assert OUTPUT in str(info.value), "the raised exception keeps the provider text"
    events = of_prefix(kitaru_events.events, PREFIX)
    assert_lifecycle(events, PREFIX, terminal="failed")
    failed = events[-1].payload["data"]
    assert failed["error_type"] == "ClaudeResultMessageError"
    assert failed["message"] == (
        "Claude Agent SDK returned an error ResultMessage; subtype='error_during_execution'"
    )
    assert failed["claude_result_diagnostic"]["subtype"] == "error_during_execution"
    assert OUTPUT not in dumped(kitaru_events.events)


def test_missing_result_message_fails(kitaru_events: EventCapture) -> None:
    runner = runner_for(canary_script(with_result=False))

    @kitaru.flow
    def analyze() -> str:
        return runner.run_stream_sync("q").result  # type: ignore[return-value]

    with pytest.raises(RuntimeError, match="without a ResultMessage"):
        analyze()
    events = of_prefix(kitaru_events.events, PREFIX)
    assert_lifecycle(events, PREFIX, terminal="failed")
    assert events[-1].payload["data"]["error_type"] == "RuntimeError"


@pytest.mark.usefixtures("publish_raises")
def test_publish_failure_leaves_result_unchanged(kitaru_events: EventCapture) -> None:
    runner = runner_for(canary_script())

    @kitaru.flow
    def analyze() -> str:
        return runner.run_stream_sync("q").result  # type: ignore[return-value]

    assert analyze() == OUTPUT


def test_failing_transport_leaves_result_unchanged(failing_capture: EventCapture) -> None:
    runner = runner_for(canary_script())

    @kitaru.flow
    def analyze() -> str:
        return runner.run_stream_sync("q").result  # type: ignore[return-value]

    assert analyze() == OUTPUT


def test_cache_key_differs_with_the_text_delta_flag(kitaru_events: EventCapture) -> None:
    transports: list[FakeClaudeTransport] = []

    def factory() -> FakeClaudeTransport:
        transports.append(FakeClaudeTransport(canary_script()))
        return transports[-1]

    plain = KitaruClaudeRunner(transport_factory=factory, cache=True)
    opted = KitaruClaudeRunner(
        transport_factory=factory,
        cache=True,
        capture=ClaudeCapturePolicy(include_stream_text_deltas=True),
    )

    @kitaru.flow
    def analyze(which: str) -> str:
        runner = plain if which == "plain" else opted
        return runner.run_stream_sync("same").result  # type: ignore[return-value]

    analyze("plain")
    analyze("plain")
    assert len(transports) == 1, "the second identical call was a cache hit"
    analyze("opted")
    assert len(transports) == 2, "with the flag the stream surface has another cache key"


def test_spans_inside_the_invocation_nest_under_the_checkpoint(traced: Traced) -> None:
    # The SDK has no OTel spans of its own; its callbacks (here the message callback, like
    # hooks and tools) run in the adapter checkpoint's OTel context.
    trace.set_tracer_provider(traced.provider)
    runner = runner_for(canary_script())

    def on_message(message: Any) -> None:
        with trace.get_tracer("test").start_as_current_span("on_message"):
            pass

    @kitaru.flow
    def analyze() -> str:
        return runner.run_stream_sync("q", on_message=on_message).result  # type: ignore[return-value]

    analyze()
    ckpt = traced.checkpoint_span("claude_agent_sdk_invocation")
    agent = next(s for s in traced.spans() if s.name.startswith("invoke_agent "))
    assert agent.parent.span_id == ckpt.context.span_id
    inner = [s for s in traced.spans() if s.name == "on_message"]
    assert inner and all(s.parent.span_id == agent.context.span_id for s in inner)


@kitaru.flow
def served_claude_flow(q: str) -> str:
    return runner_for(script()).run_stream_sync(q).result  # type: ignore[return-value]


@pytest.mark.server
def test_events_reach_a_real_server_watcher(live_server: Any) -> None:
    handle = served_claude_flow.run("q")
    assert handle.wait(30) == "SECRET-OUT"
    events = watch_all(handle.exec_id, PREFIX)
    assert_lifecycle(events, PREFIX, terminal="completed")
