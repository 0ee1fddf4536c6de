"""Claude Agent SDK runs that tell the truth: tool outcomes, subagents, usage, deferral."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.trace import StatusCode

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
    require_framework,
)
from kitaru.exceptions import KitaruUsageError
from kitaru.testing import EventCapture

require_framework("claude_agent_sdk", "claude-agent-sdk")

from _claude_fake import CONVERSATIONS, SESSION, FakeClaudeConversation, FakeClaudeTransport  # noqa: E402
from claude_agent_sdk import ClaudeAgentOptions  # noqa: E402

from kitaru.adapters.claude_agent_sdk import KitaruClaudeRunner  # noqa: E402

PREFIX = "claude_agent_sdk.stream"


def _assistant(blocks: list[dict[str, Any]], *, parent: str | None = None) -> dict[str, Any]:
    return {
        "type": "assistant",
        "session_id": SESSION,
        "parent_tool_use_id": parent,
        "message": {
            "model": "claude-test",
            "content": blocks,
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 8, "output_tokens": 3},
        },
    }


def _result_for(call_id: str, *, error: bool, parent: str | None = None) -> dict[str, Any]:
    return {
        "type": "user",
        "session_id": SESSION,
        "parent_tool_use_id": parent,
        "message": {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": call_id,
                    "content": TOOL_RESULT,
                    "is_error": error,
                }
            ],
        },
    }


def _use(call_id: str, name: str) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": name, "input": {"q": TOOL_ARG}}


def first_frames() -> list[dict[str, Any]]:
    return [
        {"type": "system", "subtype": "init", "session_id": SESSION, "model": "claude-test"},
        _assistant([_use("toolu_ok", "Read"), _use("toolu_bad", "Bash")]),
        _result_for("toolu_ok", error=False),
        _result_for("toolu_bad", error=True),
        _assistant([_use("toolu_task", "Task")]),
        _assistant([_use("toolu_sub", "Grep")], parent="toolu_task"),
        _result_for("toolu_sub", error=False, parent="toolu_task"),
        _assistant([_use("toolu_deploy", "Deploy")]),
        {
            "type": "result",
            "subtype": "success",
            "duration_ms": 10,
            "duration_api_ms": 5,
            "is_error": False,
            "num_turns": 3,
            "session_id": SESSION,
            "result": OUTPUT,
            "total_cost_usd": 0.0123,
            "usage": {"input_tokens": 24, "output_tokens": 12},
            "modelUsage": {
                "claude-test": {
                    "inputTokens": 24,
                    "outputTokens": 12,
                    "cacheReadInputTokens": 3,
                    "cacheCreationInputTokens": 0,
                    "webSearchRequests": 0,
                    "costUSD": 0.0123,
                    "contextWindow": 1000,
                    "maxOutputTokens": 100,
                }
            },
            "deferred_tool_use": {"id": "toolu_deploy", "name": "Deploy", "input": {"q": TOOL_ARG}},
        },
    ]


def resumed_frames() -> list[dict[str, Any]]:
    return [
        _result_for("toolu_deploy", error=False),
        {
            "type": "result",
            "subtype": "success",
            "duration_ms": 10,
            "duration_api_ms": 5,
            "is_error": False,
            "num_turns": 1,
            "session_id": SESSION,
            "result": OUTPUT,
            "total_cost_usd": 0.001,
            "usage": {"input_tokens": 17, "output_tokens": 2},
        },
    ]


def _lanes(capture: EventCapture) -> list[list[Any]]:
    lanes: dict[str, list[Any]] = {}
    for event in capture.events:
        if event.kind.startswith(PREFIX):
            lanes.setdefault(event.correlation_id, []).append(event)
    return [sorted(lane, key=lambda e: e.index) for lane in lanes.values()]


def test_failed_tool_subagent_then_deferral_then_resume(kitaru_events: EventCapture) -> None:
    scripts = iter([first_frames(), resumed_frames()])
    runner = KitaruClaudeRunner(transport_factory=lambda: FakeClaudeTransport(next(scripts)))

    @kitaru.flow
    def analyze(q: str) -> Any:
        first = runner.run_sync(q)
        options = ClaudeAgentOptions(resume=first.session_id)
        return first, runner.run_sync("approved", options=options)

    first, second = analyze(PROMPT)
    assert first.session_id == SESSION and second.result == OUTPUT
    run1, run2 = _lanes(kitaru_events)
    assert_lifecycle(run1, PREFIX, terminal="completed")
    assert_lifecycle(run2, PREFIX, terminal="completed")
    tools = [
        (d["category"], d["tool_name"], d.get("outcome"), d["agent"], d.get("parent_tool_use_id"))
        for d in (e.payload["data"] for e in run1)
        if d["category"] in ("tool_call", "tool_result")
    ]
    assert tools == [
        ("tool_call", "Read", None, "main", None),
        ("tool_call", "Bash", None, "main", None),
        ("tool_result", "Read", "ok", "main", None),
        ("tool_result", "Bash", "error", "main", None),
        ("tool_call", "Task", None, "main", None),
        ("tool_call", "Grep", None, "subagent", "toolu_task"),
        ("tool_result", "Grep", "ok", "subagent", "toolu_task"),
        ("tool_call", "Deploy", None, "main", None),
    ]
    for event in run1:
        data = event.payload["data"]
        if data["category"] == "tool_result":
            assert data["duration_s"] >= 0 and data["tool_use_id"].startswith("toolu_")
    end = run1[-1].payload["data"]
    assert end["status"] == "interrupted"
    assert end["interruption_ids"] == ["toolu_deploy"]
    assert end["interruption_kinds"] == ["deferred_tool_use"]
    assert end["usage"] == [
        {
            "model": "claude-test",
            "requests": 0,
            "input_tokens": 24,
            "output_tokens": 12,
            "cache_read_tokens": 3,
            "cost_usd": 0.0123,
        }
    ]
    assert end["cost_usd"] == 0.0123
    done = run2[-1].payload["data"]
    assert done["status"] == "completed"
    assert (done["input_tokens"], done["output_tokens"], done["cost_usd"]) == (17, 2, 0.001)
    for canary in CANARIES:
        assert canary not in dumped(kitaru_events.events)


def test_async_iterable_prompt(kitaru_events: EventCapture) -> None:
    runner = KitaruClaudeRunner(transport_factory=lambda: FakeClaudeTransport(resumed_frames()))

    async def prompt() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "user", "message": {"role": "user", "content": PROMPT}}

    @kitaru.flow
    async def analyze() -> Any:
        return (await runner.run(prompt())).result

    assert asyncio.run(analyze()) == OUTPUT
    cached = KitaruClaudeRunner(cache=True)
    with pytest.raises(KitaruUsageError, match="cannot be part of a cache key"):
        cached._request("run", prompt(), stream=False)


def test_client_turns_tell_the_same_truth_as_query(traced: Traced) -> None:
    # Two turns of one ClaudeSDKClient conversation over the fake CLI: the first has a
    # failing tool, a subagent and a deferral; the second resumes it.
    from claude_agent_sdk import ClaudeSDKClient

    trace.set_tracer_provider(traced.provider)
    transport = FakeClaudeConversation([first_frames(), resumed_frames()])
    runner = KitaruClaudeRunner(name="chat")
    seen: list[str] = []

    @kitaru.flow
    async def converse(q: str) -> Any:
        async with ClaudeSDKClient(transport=transport) as client:
            first = await runner.run_turn(
                client, q, on_message=lambda m: seen.append(type(m).__name__)
            )
            second = await runner.run_turn(client, "approved")
        return first, second

    first, second = asyncio.run(converse(PROMPT))
    assert (first.session_id, first.total_cost_usd, second.result) == (SESSION, 0.0123, OUTPUT)
    sent = [m["message"]["content"] for m in transport.written if m.get("type") == "user"]
    assert sent == [PROMPT, "approved"]
    assert seen[-1] == "ResultMessage" and len(seen) == len(first.messages)
    run1, run2 = _lanes(traced.capture)
    assert_lifecycle(run1, PREFIX, terminal="completed")
    assert_lifecycle(run2, PREFIX, terminal="completed")
    outcomes = [
        (d["tool_name"], d["outcome"], d["agent"])
        for d in (e.payload["data"] for e in run1)
        if d["category"] == "tool_result"
    ]
    assert outcomes == [
        ("Read", "ok", "main"),
        ("Bash", "error", "main"),
        ("Grep", "ok", "subagent"),
    ]
    end = run1[-1].payload["data"]
    assert (end["status"], end["interruption_ids"]) == ("interrupted", ["toolu_deploy"])
    assert (end["input_tokens"], end["output_tokens"], end["cost_usd"]) == (24, 12, 0.0123)
    done = run2[-1].payload["data"]
    assert (done["status"], done["input_tokens"], done["output_tokens"]) == ("completed", 17, 2)
    # GenAI spans: checkpoint -> invoke_agent chat -> chat / execute_tool, the failed tool in ERROR.
    ckpts = [
        s
        for s in traced.spans()
        if (s.attributes or {}).get("kitaru.checkpoint.type") == "claude_agent_sdk_invocation"
    ]
    assert len(ckpts) == 2
    agent = next(s for s in traced.descendants_of(ckpts[0]) if s.name == "invoke_agent chat")
    below = {s.name: s for s in traced.children_of(agent)}
    assert "chat claude-test" in below
    assert below["execute_tool Bash"].status.status_code is StatusCode.ERROR
    assert below["execute_tool Read"].status.status_code is not StatusCode.ERROR
    for canary in CANARIES:
        assert canary not in dumped(traced.capture.events)


def test_client_turn_refuses_cache_and_non_clients() -> None:
    from claude_agent_sdk import ClaudeSDKClient

    with pytest.raises(KitaruUsageError, match="cannot cache a ClaudeSDKClient turn"):
        asyncio.run(KitaruClaudeRunner(cache=True).run_turn(ClaudeSDKClient(), "q"))
    with pytest.raises(KitaruUsageError, match=r"needs a claude_agent_sdk\.ClaudeSDKClient"):
        asyncio.run(KitaruClaudeRunner().run_turn(object(), "q"))


TRANSPORTS = CONVERSATIONS


@kitaru.flow
async def two_turns(q: str) -> Any:
    from claude_agent_sdk import ClaudeSDKClient

    turns = [first_frames(), resumed_frames()] if not TRANSPORTS else [resumed_frames()]
    TRANSPORTS.append(FakeClaudeConversation(turns))
    async with ClaudeSDKClient(transport=TRANSPORTS[-1]) as client:
        first = await KitaruClaudeRunner(name="ask").run_turn(client, q)
        second = await KitaruClaudeRunner(name="approve").run_turn(client, "approved")
    return first.total_cost_usd, second.result


def test_client_turns_are_recorded_and_a_replay_reuses_the_earlier_turn() -> None:
    from kitaru.client import KitaruClient

    TRANSPORTS.clear()
    handle = two_turns.run(PROMPT)
    assert handle.wait(30) == (0.0123, OUTPUT)
    client = KitaruClient()
    record = client.executions.get(handle.exec_id)
    usage = {
        cp.name: [(u.model, u.input_tokens, u.output_tokens, u.cost_usd) for u in cp.usage]
        for cp in record.checkpoints
    }
    assert usage["ask_claude_invocation"] == [("claude-test", 24, 12, 0.0123)]
    again = client.executions.replay(handle.exec_id, from_="approve_claude_invocation")
    assert again.wait(30) == (0.0123, OUTPUT)
    # The replayed run sent only the second turn: the first came from the record.
    sent = [m["message"]["content"] for m in TRANSPORTS[-1].written if m.get("type") == "user"]
    assert len(TRANSPORTS) == 2 and sent == ["approved"]
