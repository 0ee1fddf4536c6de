"""Offline example: a LangGraph graph call as one kitaru checkpoint, with live events.

Run: python examples/adapters/langgraph_stream.py   (needs: pip install 'kitaru[langgraph]')
"""

from __future__ import annotations

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.graph import END, START, MessagesState, StateGraph

import kitaru
from kitaru.adapters.langgraph import KitaruGraphRunner
from kitaru.testing import capture_events

model = GenericFakeChatModel(messages=iter([AIMessage(content="Ticket triaged: billing")]))


def answer(state: MessagesState) -> dict[str, object]:
    return {"messages": [model.invoke(state["messages"])]}


builder = StateGraph(MessagesState)
builder.add_node("answer", answer)
builder.add_edge(START, "answer")
builder.add_edge("answer", END)
runner = KitaruGraphRunner(builder.compile(name="triage"))


@kitaru.flow
def triage(ticket: str) -> str:
    out = runner.run_stream({"messages": [HumanMessage(content=ticket)]})
    return str(out["messages"][-1].content)


if __name__ == "__main__":
    with capture_events() as captured:  # in-memory live events, no server needed
        print(triage("My invoice is wrong"))
        for event in captured.events:
            display = event.payload.get("data", {}).get("display", "")
            print(f"{event.index:>2} {event.kind:<28} {display}")
