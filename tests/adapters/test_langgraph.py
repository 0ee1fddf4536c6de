"""The LangGraph adapter with a small in-process graph and a fake chat model (offline)."""

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

require_framework("langgraph", "langgraph")

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel  # noqa: E402
from langchain_core.messages import AIMessage, HumanMessage  # noqa: E402
from langgraph.config import get_stream_writer  # noqa: E402
from langgraph.graph import END, START, MessagesState, StateGraph  # noqa: E402

from kitaru.adapters.langgraph import (  # noqa: E402
    LANGGRAPH_STREAM_EVENT_KINDS,
    KitaruGraphRunner,
    LangGraphStreamPolicy,
    bounded_payload,
)

PREFIX = "langgraph.stream"
CONFIG = {"configurable": {"thread_id": "ticket-42"}}


class State(MessagesState):
    tool_arg: str
    tool_result: str


def make_graph(*, fail: bool = False) -> Any:
    model = GenericFakeChatModel(messages=iter([AIMessage(content=OUTPUT + " answer")]))

    def tool(state: State) -> dict[str, Any]:
        get_stream_writer()({"tool_arg": TOOL_ARG, "progress": 1})
        with trace.get_tracer("test-node").start_as_current_span("node.tool"):
            pass
        if fail:
            raise ValueError(f"tool broke on {TOOL_ARG}")
        return {"tool_arg": TOOL_ARG, "tool_result": TOOL_RESULT}

    def answer(state: State) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    g = StateGraph(State)
    g.add_node("tool", tool)
    g.add_node("answer", answer)
    g.add_edge(START, "tool")
    g.add_edge("tool", "answer")
    g.add_edge("answer", END)
    return g.compile(name="Support Graph")


def ask(text: str) -> dict[str, Any]:
    return {"messages": [HumanMessage(content=text)]}


def test_kinds_and_policy_defaults() -> None:
    assert LANGGRAPH_STREAM_EVENT_KINDS[0] == "langgraph.stream.started"
    assert LANGGRAPH_STREAM_EVENT_KINDS[-2:] == (
        "langgraph.stream.completed",
        "langgraph.stream.failed",
    )
    for mode in ("messages", "updates", "custom", "values", "checkpoints", "tasks", "debug"):
        assert f"langgraph.stream.{mode}" in LANGGRAPH_STREAM_EVENT_KINDS
    policy = LangGraphStreamPolicy()
    assert policy.default_modes == ("messages", "updates", "custom")
    assert not (policy.include_raw_payloads or policy.include_message_text_deltas)
    assert not (policy.include_custom_payload or policy.allow_debug)
    assert LangGraphStreamPolicy(default_modes=("updates", "updates")).default_modes == ("updates",)


def test_policy_and_mode_validation() -> None:
    with pytest.raises(kitaru.KitaruUsageError, match="Unsupported LangGraph stream mode"):
        LangGraphStreamPolicy(default_modes=("telepathy",))
    with pytest.raises(kitaru.KitaruUsageError, match="allow_debug"):
        LangGraphStreamPolicy(default_modes=("debug",))
    with pytest.raises(kitaru.KitaruUsageError):
        LangGraphStreamPolicy(default_modes=())
    with pytest.raises(kitaru.KitaruUsageError, match="max_display_chars"):
        LangGraphStreamPolicy(max_display_chars=0)
    runner = KitaruGraphRunner(make_graph())
    with pytest.raises(kitaru.KitaruUsageError, match="allow_debug"):
        runner.run_stream(ask("q"), stream_mode=["debug"])
    with pytest.raises(kitaru.KitaruUsageError, match="graph_call"):
        KitaruGraphRunner(make_graph(), mode="per_node")


def test_stream_publishes_documented_events(kitaru_events: EventCapture) -> None:
    runner = KitaruGraphRunner(make_graph())
    parts: list[Any] = []

    @kitaru.flow
    def triage(q: str) -> str:
        out = runner.run_stream(ask(q), CONFIG, on_part=parts.append)
        return out["messages"][-1].content  # type: ignore[no-any-return]

    assert triage(PROMPT) == OUTPUT + " answer"
    events = of_prefix(kitaru_events.events, PREFIX)
    assert_lifecycle(events, PREFIX, terminal="completed")
    kinds = [e.kind for e in events[1:-1]]
    assert set(kinds) == {
        "langgraph.stream.custom",
        "langgraph.stream.updates",
        "langgraph.stream.messages",
    }
    assert "langgraph.stream.values" not in kinds, "values is requested upstream, not published"
    # on_part sees every part; message chunks are coalesced into fewer events.
    published = [k.rsplit(".", 1)[1] for k in kinds]
    assert [t for t in (p["type"] for p in parts) if t != "messages"] == [
        t for t in published if t != "messages"
    ]
    assert 1 <= published.count("messages") <= sum(p["type"] == "messages" for p in parts)
    datas = [e.payload["data"] for e in events]
    for data in datas:
        assert data["adapter"] == "langgraph"
        assert data["graph_name"] == "Support_Graph"
        assert data["thread_id"] == "ticket-42"
    items = datas[1:-1]
    for data in items:
        assert data["category"] == "stream_part"
        assert data["langgraph"] == {"stream_version": "v2", "namespace": [], "subgraph": False}
    updates = [d for d in items if d["mode"] == "updates"]
    assert updates[0]["node_names"] == ["tool"]
    assert updates[0]["updated_keys_by_node"] == {"tool": ["tool_arg", "tool_result"]}
    assert updates[0]["updated_key_counts_by_node"] == {"tool": 2}
    assert updates[0]["value_types_by_node"] == {"tool": {"tool_arg": "str", "tool_result": "str"}}
    assert updates[0]["nodes_truncated"] is False and "raw" not in updates[0]
    custom = next(d for d in items if d["mode"] == "custom")
    assert custom["display"] == "Custom stream payload"
    assert custom["custom_summary"] == {
        "python_type": "dict",
        "key_count": 2,
        "summary": "mapping with 2 keys",
    }
    assert "custom" not in custom
    message = next(d for d in items if d["mode"] == "messages")
    assert message["message_type"] == "AIMessageChunk"
    assert message["node_name"] == "answer"
    assert message["metadata"]["langgraph_node"] == "answer"
    assert message["display"] == "AIMessageChunk" and "text_delta" not in message
    terminal = datas[-1]
    assert terminal["stream_event_counts_by_mode"] == {
        "custom": 1,
        "updates": 2,
        "messages": sum(p["type"] == "messages" for p in parts),  # parts seen, not events
    }
    assert terminal["stream_part_count"] > len(items)
    text = dumped(kitaru_events.events)
    for canary in CANARIES:
        assert canary not in text


def test_opt_ins_add_bounded_content(kitaru_events: EventCapture) -> None:
    policy = LangGraphStreamPolicy(
        include_raw_payloads=True,
        include_message_text_deltas=True,
        include_custom_payload=True,
        max_display_chars=12,
    )
    runner = KitaruGraphRunner(make_graph(), stream_policy=policy)

    @kitaru.flow
    def triage(q: str) -> str:
        return runner.run_stream(ask(q), CONFIG)["messages"][-1].content  # type: ignore[no-any-return]

    triage(PROMPT)
    items = [e.payload["data"] for e in of_prefix(kitaru_events.events, PREFIX)][1:-1]
    custom = next(d for d in items if d["mode"] == "custom")
    assert custom["custom"]["tool_arg"] == TOOL_ARG[:9] + "..."
    update = next(d for d in items if d["mode"] == "updates")
    assert update["raw"]["tool"]["tool_result"] == TOOL_RESULT[:9] + "..."
    deltas = [d["text_delta"] for d in items if "text_delta" in d]
    assert deltas and all(len(t) <= 12 for t in deltas)


def test_bounded_payload_never_uses_repr() -> None:
    class Opaque:
        def __repr__(self) -> str:
            return PROMPT

    value = {
        "api_key": "sk-1",
        "items": list(range(30)),
        "obj": Opaque(),
        **{f"k{i}": i for i in range(25)},
    }
    out = bounded_payload(value, limit=240)
    assert out["api_key"] == "[redacted]"
    assert out["items"][-1] == {"_kitaru_omitted_items": 10}
    assert out["obj"] == {
        "python_type": "Opaque",
        "serialization_error": "unsupported_stream_value",
    }
    assert out["_kitaru_omitted_keys"] == len(value) - 20
    assert PROMPT not in str(out)


def test_astream_and_structural_modes(kitaru_events: EventCapture) -> None:
    runner = KitaruGraphRunner(make_graph())

    @kitaru.flow
    async def triage(q: str) -> str:
        out = await runner.arun_stream(ask(q), CONFIG, stream_mode=["values", "tasks"])
        return out["messages"][-1].content  # type: ignore[no-any-return]

    assert asyncio.run(triage(PROMPT)) == OUTPUT + " answer"
    events = of_prefix(kitaru_events.events, PREFIX)
    assert_lifecycle(events, PREFIX, terminal="completed")
    values = [e.payload["data"] for e in events if e.kind == "langgraph.stream.values"]
    assert values and values[-1]["summary"]["keys_truncated"] is False
    assert "messages" in values[-1]["summary"]["keys"]
    tasks = [e.payload["data"] for e in events if e.kind == "langgraph.stream.tasks"]
    assert {t.get("task_name") for t in tasks} >= {"tool", "answer"}
    for canary in CANARIES:
        assert canary not in dumped(events)


def test_graph_failure_publishes_failed(kitaru_events: EventCapture) -> None:
    runner = KitaruGraphRunner(make_graph(fail=True))

    @kitaru.flow
    def triage() -> Any:
        return runner.run_stream(ask("q"), CONFIG)

    with pytest.raises(ValueError):
        triage()
    events = of_prefix(kitaru_events.events, PREFIX)
    assert_lifecycle(events, PREFIX, terminal="failed")
    failed = events[-1].payload["data"]
    assert failed["error_type"] == "ValueError" and failed["message"] == "ValueError"
    assert "stream_event_counts_by_mode" in failed
    assert TOOL_ARG not in dumped(kitaru_events.events)


@pytest.mark.usefixtures("publish_raises")
def test_publish_failure_leaves_result_unchanged(kitaru_events: EventCapture) -> None:
    runner = KitaruGraphRunner(make_graph())

    @kitaru.flow
    def triage() -> str:
        return runner.run_stream(ask("q"), CONFIG)["messages"][-1].content  # type: ignore[no-any-return]

    assert triage() == OUTPUT + " answer"


def test_failing_transport_leaves_result_unchanged(failing_capture: EventCapture) -> None:
    runner = KitaruGraphRunner(make_graph())

    @kitaru.flow
    def triage() -> str:
        return runner.run_stream(ask("q"), CONFIG)["messages"][-1].content  # type: ignore[no-any-return]

    assert triage() == OUTPUT + " answer"


def test_invoke_is_a_durable_checkpoint(kitaru_events: EventCapture) -> None:
    runner = KitaruGraphRunner(make_graph(), cache=True)

    @kitaru.flow
    def triage() -> str:
        return runner.invoke(ask("q"), CONFIG)["messages"][-1].content  # type: ignore[no-any-return]

    assert triage() == OUTPUT + " answer"
    kitaru_events.clear()
    # The fake model's script is used up, so only a cache hit can answer again.
    assert triage() == OUTPUT + " answer"
    assert kitaru_events.events == []


def test_node_spans_nest_under_the_checkpoint(traced: Traced) -> None:
    trace.set_tracer_provider(traced.provider)
    runner = KitaruGraphRunner(make_graph())

    @kitaru.flow
    def triage() -> Any:
        return runner.run_stream(ask("q"), CONFIG)

    triage()
    ckpt = traced.checkpoint_span("langgraph_graph_call")
    node = [s for s in traced.spans() if s.name == "node.tool"]
    assert len(node) == 1
    agent = next(s for s in traced.spans() if s.name == "invoke_agent Support_Graph")
    assert agent.parent.span_id == ckpt.context.span_id
    assert node[0].parent.span_id == agent.context.span_id
    assert node[0].context.trace_id == ckpt.context.trace_id


@kitaru.flow
def served_graph_flow(q: str) -> str:
    out = KitaruGraphRunner(make_graph()).run_stream(ask(q), CONFIG)
    return out["messages"][-1].content  # type: ignore[no-any-return]


@pytest.mark.server
def test_events_reach_a_real_server_watcher(live_server: Any) -> None:
    handle = served_graph_flow.run("q")
    assert handle.wait(30) == OUTPUT + " answer"
    events = watch_all(handle.exec_id, PREFIX)
    assert_lifecycle(events, PREFIX, terminal="completed")
    assert {e.kind for e in events[1:-1]} == {
        "langgraph.stream.custom",
        "langgraph.stream.updates",
        "langgraph.stream.messages",
    }
