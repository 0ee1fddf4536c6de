"""OpenAI Agents runs that tell the truth: tool outcomes, approvals, usage, resume."""

from __future__ import annotations

from typing import Any

import kitaru
from conftest import (
    CANARIES,
    OUTPUT,
    PROMPT,
    TOOL_ARG,
    TOOL_RESULT,
    assert_lifecycle,
    dumped,
    require_framework,
)
from kitaru.testing import EventCapture

require_framework("agents", "openai-agents")

from agents import Agent, function_tool  # noqa: E402
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call  # noqa: E402
from agents.usage import InputTokensDetails, OutputTokensDetails, Usage  # noqa: E402

from kitaru.adapters.openai_agents import KitaruRunner, OpenAIRunResult  # noqa: E402

PREFIX = "openai_agents.stream"


def usage(inp: int, out: int, cached: int = 0) -> Usage:
    return Usage(
        requests=1,
        input_tokens=inp,
        output_tokens=out,
        total_tokens=inp + out,
        input_tokens_details=InputTokensDetails(cached_tokens=cached, cache_write_tokens=0),
        output_tokens_details=OutputTokensDetails(reasoning_tokens=0),
    )


def make_agent() -> Agent[Any]:
    @function_tool
    def lookup(q: str) -> str:
        """Look something up."""
        return TOOL_RESULT

    @function_tool
    def broken(q: str) -> str:
        """Always fails."""
        raise RuntimeError(f"cannot handle {q}")

    @function_tool(needs_approval=True)
    def deploy(target: str) -> str:
        """Deploys (needs a human's approval)."""
        return TOOL_RESULT

    model = ScriptedModel(
        [
            ModelStep(
                output=[
                    function_call("lookup", {"q": TOOL_ARG}, call_id="call_ok"),
                    function_call("broken", {"q": TOOL_ARG}, call_id="call_bad"),
                ],
                usage=usage(11, 7, 3),
            ),
            ModelStep(
                output=[function_call("deploy", {"target": TOOL_ARG}, call_id="call_approve")],
                usage=usage(13, 5),
            ),
            ModelStep(output=[assistant_message(OUTPUT)], usage=usage(17, 2)),
        ]
    )
    return Agent(name="Ops", model=model, tools=[lookup, broken, deploy])


def _lanes(capture: EventCapture) -> list[list[Any]]:
    lanes: dict[str, list[Any]] = {}
    for event in capture.events:
        if event.kind.startswith(PREFIX):
            lanes.setdefault(event.correlation_id, []).append(event)
    return [sorted(lane, key=lambda e: e.index) for lane in lanes.values()]


def test_failed_tool_then_approval_then_resume(kitaru_events: EventCapture) -> None:
    runner = KitaruRunner(make_agent())

    @kitaru.flow
    async def ops(q: str) -> Any:
        first = await runner.run(q)
        assert isinstance(first, OpenAIRunResult) and first.interrupted
        state = await runner.load_state(first)
        for item in state.get_interruptions():
            state.approve(item)
        second = await runner.run(state)
        return first, second

    import asyncio

    first, second = asyncio.run(ops(PROMPT))
    assert first.final_output is None
    assert first.interruptions == [
        {"call_id": "call_approve", "tool_name": "deploy", "agent_name": "Ops"}
    ]
    assert second.final_output == OUTPUT and not second.interrupted

    run1, run2 = _lanes(kitaru_events)
    assert_lifecycle(run1, PREFIX, terminal="completed")
    assert_lifecycle(run2, PREFIX, terminal="completed")
    results = sorted(
        (d["tool_name"], d["outcome"])
        for d in (e.payload["data"] for e in run1)
        if d["category"] == "tool_result"
    )
    assert results == [("broken", "error"), ("lookup", "ok")]
    for event in run1:
        data = event.payload["data"]
        if data["category"] == "tool_result":
            assert set(data) >= {"tool_name", "call_id", "outcome", "duration_s", "agent_name"}
            assert data["agent_name"] == "Ops"
    end = run1[-1].payload["data"]
    assert end["status"] == "interrupted"
    assert end["interruption_ids"] == ["call_approve"] and end["interruption_count"] == 1
    assert (end["input_tokens"], end["output_tokens"], end["cache_read_tokens"]) == (24, 12, 3)
    assert [u["requests"] for u in end["usage"]] == [2]

    done = run2[-1].payload["data"]
    assert done["status"] == "completed"
    assert ("deploy", "ok") in [
        (d["tool_name"], d["outcome"])
        for d in (e.payload["data"] for e in run2)
        if d["category"] == "tool_result"
    ]
    assert (done["input_tokens"], done["output_tokens"]) == (17, 2)
    for canary in CANARIES:
        assert canary not in dumped(kitaru_events.events)


def test_resume_example_runs() -> None:
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "examples" / "adapters" / "resume_approval.py"
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert "waiting for approval: ['refund']" in out
    assert "The refund is done." in out
    statuses = [line.split()[-1] for line in out.splitlines() if line.startswith("openai_agents")]
    assert statuses == ["interrupted", "completed"]
