"""Offline example: an OpenAI Agents run that stops for a human's approval, then resumes.

The first call ends ``interrupted`` (its live terminal event says so, with the waiting call's
ID); the stored result keeps the SDK's ``RunState``; approving it and running again finishes
the run. A scripted model stands in for the real one, so nothing goes online.

Run: python examples/adapters/resume_approval.py   (needs: pip install 'kitaru[openai-agents]')
"""

from __future__ import annotations

import asyncio

from agents import Agent, RunConfig, function_tool
from agents.testing import ScriptedModel, assistant_message, function_call

import kitaru
from kitaru.adapters.openai_agents import KitaruRunner
from kitaru.testing import capture_events


@function_tool(needs_approval=True)
def refund(order: str) -> str:
    """Refund an order (a human must approve)."""
    return f"refunded {order}"


model = ScriptedModel(
    [
        [function_call("refund", {"order": "A-17"}, call_id="call_refund")],
        [assistant_message("The refund is done.")],
    ]
)
runner = KitaruRunner(Agent(name="Support", model=model, tools=[refund]))
NO_SDK_EXPORT = RunConfig(tracing_disabled=True)  # the SDK's own trace exporter goes online


@kitaru.flow
async def support(ticket: str) -> str:
    first = await runner.run(ticket, run_config=NO_SDK_EXPORT)
    if first.interrupted:
        print("waiting for approval:", [i["tool_name"] for i in first.interruptions])
        state = await runner.load_state(first)
        for item in state.get_interruptions():
            state.approve(item)  # a human said yes
        first = await runner.run(state, run_config=NO_SDK_EXPORT)
    return str(first.final_output)


if __name__ == "__main__":
    with capture_events() as captured:  # in-memory live events, no server needed
        print(asyncio.run(support("Please refund order A-17")))
        for event in captured.events:
            if event.kind == "openai_agents.stream.completed":
                print(event.kind, "status:", event.payload["data"]["status"])
