"""LangGraph runs that tell the truth: tool outcomes, interrupts, usage, resume, volume."""

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

require_framework("langgraph", "langgraph")

from langchain_core.language_models.chat_models import BaseChatModel  # noqa: E402
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel  # noqa: E402
from langchain_core.messages import AIMessage, HumanMessage  # noqa: E402
from langchain_core.outputs import ChatGeneration, ChatResult  # noqa: E402
from langchain_core.tools import tool  # noqa: E402
from langgraph.checkpoint.memory import InMemorySaver  # noqa: E402
from langgraph.graph import END, START, MessagesState, StateGraph  # noqa: E402
from langgraph.prebuilt import ToolNode  # noqa: E402
from langgraph.types import Command, interrupt  # noqa: E402

from kitaru.adapters.langgraph import KitaruGraphRunner  # noqa: E402

PREFIX = "langgraph.stream"
CONFIG = {"configurable": {"thread_id": "ops-1"}}


class ScriptedChat(BaseChatModel):
    """Answers from a script, with the script's token usage (offline)."""

    script: list[AIMessage]

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(self, messages: Any, stop: Any = None, **kwargs: Any) -> ChatResult:
        turn = sum(1 for m in messages if isinstance(m, AIMessage))
        return ChatResult(generations=[ChatGeneration(message=self.script[turn])])

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": "scripted-1"}


def usage(inp: int, out: int, cached: int = 0) -> dict[str, Any]:
    return {
        "input_tokens": inp,
        "output_tokens": out,
        "total_tokens": inp + out,
        "input_token_details": {"cache_read": cached},
    }


def make_graph() -> Any:
    @tool
    def lookup(q: str) -> str:
        """Look something up."""
        return TOOL_RESULT

    @tool
    def broken(q: str) -> str:
        """Always fails."""
        raise ValueError(f"cannot handle {q}")

    calls = [
        {"name": "lookup", "args": {"q": TOOL_ARG}, "id": "call_ok"},
        {"name": "broken", "args": {"q": TOOL_ARG}, "id": "call_bad"},
    ]
    model = ScriptedChat(
        script=[
            AIMessage(content="", tool_calls=calls, usage_metadata=usage(11, 7, 3)),
            AIMessage(content=OUTPUT, usage_metadata=usage(17, 2)),
        ]
    )

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    def approve(state: MessagesState) -> dict[str, Any]:
        if not interrupt({"question": "deploy?"}):
            return {"messages": [HumanMessage(content="denied")]}
        return {}

    def route(state: MessagesState) -> str:
        last = state["messages"][-1]
        return "tools" if getattr(last, "tool_calls", None) else END

    g = StateGraph(MessagesState)
    g.add_node("agent", agent)
    g.add_node("tools", ToolNode([lookup, broken], handle_tool_errors=True))
    g.add_node("approve", approve)
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", route, ["tools", END])
    g.add_edge("tools", "approve")
    g.add_edge("approve", "agent")
    return g.compile(name="Ops", checkpointer=InMemorySaver())


def _lanes(capture: EventCapture) -> list[list[Any]]:
    lanes: dict[str, list[Any]] = {}
    for event in capture.events:
        if event.kind.startswith(PREFIX):
            lanes.setdefault(event.correlation_id, []).append(event)
    return [sorted(lane, key=lambda e: e.index) for lane in lanes.values()]


def test_failed_tool_then_interrupt_then_resume(kitaru_events: EventCapture) -> None:
    runner = KitaruGraphRunner(make_graph())

    @kitaru.flow
    def ops(q: str) -> Any:
        first = runner.invoke({"messages": [HumanMessage(content=q)]}, CONFIG)
        second = runner.invoke(Command(resume=True), CONFIG)
        return first, second

    first, second = ops(PROMPT)
    assert "__interrupt__" in first
    assert second["messages"][-1].content == OUTPUT

    run1, run2 = _lanes(kitaru_events)
    assert_lifecycle(run1, PREFIX, terminal="completed")
    assert_lifecycle(run2, PREFIX, terminal="completed")
    kinds = [e.kind.rsplit(".", 1)[1] for e in run1]
    assert kinds[0] == "started" and kinds[-1] == "completed"
    tools = sorted(
        (d["tool_name"], d["outcome"])
        for e in run1
        if e.kind == f"{PREFIX}.tool"
        for d in [e.payload["data"]]
    )
    assert tools == [("broken", "error"), ("lookup", "ok")]
    for event in run1:
        data = event.payload["data"]
        if event.kind == f"{PREFIX}.tool":
            assert set(data) >= {"tool_name", "tool_call_id", "outcome", "duration_s"}
    tool_messages = sorted(
        (d["tool_name"], d["outcome"])
        for d in (e.payload["data"] for e in run1)
        if d.get("message_type") == "ToolMessage"
    )
    assert tool_messages == [("broken", "error"), ("lookup", "ok")]
    end = run1[-1].payload["data"]
    assert end["status"] == "interrupted"
    assert end["interruption_count"] == 1 and end["interruption_kinds"] == ["interrupt"]
    assert end["interruption_ids"] == [first["__interrupt__"][0].id]
    assert (end["input_tokens"], end["output_tokens"], end["cache_read_tokens"]) == (11, 7, 3)

    done = run2[-1].payload["data"]
    assert done["status"] == "completed"
    assert (done["input_tokens"], done["output_tokens"]) == (17, 2)
    for canary in CANARIES:
        assert canary not in dumped(kitaru_events.events)


def test_long_answer_is_coalesced(kitaru_events: EventCapture) -> None:
    text = " ".join(f"tok{i}" for i in range(500))
    model = GenericFakeChatModel(messages=iter([AIMessage(content=text)]))

    def answer(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    g = StateGraph(MessagesState)
    g.add_node("answer", answer)
    g.add_edge(START, "answer")
    g.add_edge("answer", END)
    runner = KitaruGraphRunner(g.compile(name="Long"))

    @kitaru.flow
    def ask() -> str:
        out = runner.run_stream({"messages": [HumanMessage(content="q")]})
        return out["messages"][-1].content  # type: ignore[no-any-return]

    assert ask() == text
    events = [e for e in kitaru_events.events if e.kind == f"{PREFIX}.messages"]
    assert 1 <= len(events) <= 5, len(events)
    assert sum(e.payload["data"]["delta_count"] for e in events) >= 500
    end = next(e for e in kitaru_events.events if e.kind == f"{PREFIX}.completed")
    assert end.payload["data"]["delta_count"] >= 500
