"""The Agents SDK hooks through which the adapter sees a run: tools, model calls, handoffs.

``RunHooks`` are called for streamed and plain runs alike, so both publish the same tool and
agent events, and feed the run's tool outcomes, durations, usage and GenAI spans. A tool whose
exception the SDK turned into an error message for the model is told apart by the SDK's own
tracing: the SDK marks the tool's function span with an error before ``on_tool_end`` runs
(with the SDK's tracing disabled that mark is lost; see ``docs/adapters.md``).
"""

from __future__ import annotations

import time
from functools import cache
from typing import Any

from kitaru.adapters._common import ident
from kitaru.adapters._run import AgentRun
from kitaru.adapters._usage import Tokens
from kitaru.adapters.openai_agents._bridge import bridge_for

__all__ = ["run_hooks"]


def _name(obj: Any) -> str:
    return ident(getattr(obj, "name", None)) or "unknown"


@cache
def _hooks_class() -> type[Any]:
    from agents import RunHooks

    class KitaruRunHooks(RunHooks[Any]):
        """Publishes tool and agent events; counts usage per model; makes GenAI spans."""

        def __init__(self, run: AgentRun, user: Any, bridge: Any) -> None:
            self.run = run
            self.user = user
            self.bridge = bridge
            self.agent_name: str | None = None
            self._llm_start: int | None = None

        def _fields(self, agent: Any) -> dict[str, Any]:
            return {"agent_name": _name(agent)}

        async def _user(self, method: str, *args: Any) -> None:
            hook = getattr(self.user, method, None) if self.user is not None else None
            if hook is not None:
                await hook(*args)

        async def on_agent_start(self, context: Any, agent: Any) -> None:
            self.agent_name = _name(agent)
            await self._user("on_agent_start", context, agent)

        async def on_llm_start(self, context: Any, agent: Any, *args: Any) -> None:
            self._llm_start = time.time_ns()
            await self._user("on_llm_start", context, agent, *args)

        async def on_llm_end(self, context: Any, agent: Any, response: Any) -> None:
            usage = getattr(response, "usage", None)
            details = getattr(usage, "input_tokens_details", None)
            model = getattr(agent, "model", None)
            model_name = model if isinstance(model, str) else getattr(model, "model", None)
            tokens = Tokens.of(
                getattr(usage, "input_tokens", 0),
                getattr(usage, "output_tokens", 0),
                getattr(details, "cached_tokens", 0),
            )
            name = model_name if isinstance(model_name, str) else type(model).__name__
            self.run.model_call(name, tokens, start_ns=self._llm_start)
            await self._user("on_llm_end", context, agent, response)

        async def on_handoff(self, context: Any, from_agent: Any, to_agent: Any) -> None:
            self.run.live.item(
                {
                    "category": "handoff",
                    "display": f"Handoff: {_name(from_agent)} -> {_name(to_agent)}",
                    "agent_name": _name(from_agent),
                    "new_agent_name": _name(to_agent),
                }
            )
            await self._user("on_handoff", context, from_agent, to_agent)

        async def on_tool_start(self, context: Any, agent: Any, tool: Any) -> None:
            call_id = getattr(context, "tool_call_id", None)
            self.run.tool_started(call_id, _name(tool))
            self.bridge.tag_current(ident(call_id))
            await self._user("on_tool_start", context, agent, tool)

        async def on_tool_end(self, context: Any, agent: Any, tool: Any, result: Any) -> None:
            call_id = getattr(context, "tool_call_id", None)
            name = _name(tool)
            outcome = "error" if _current_span_failed() else "ok"
            # With the SDK's tracing on, its function span is the execute_tool span.
            span = not self.bridge.bridges_tools()
            fields = self.run.tool_finished(call_id, name, outcome, span=span)
            self.run.live.item(
                {
                    "category": "tool_result",
                    "display": f"Tool result: {name} ({outcome})",
                    "tool_name": name,
                    **({"call_id": ident(call_id)} if call_id else {}),
                    **self._fields(agent),
                    **fields,
                }
            )
            await self._user("on_tool_end", context, agent, tool, result)

    return KitaruRunHooks


def run_hooks(run: AgentRun, user_hooks: Any) -> Any:
    """``RunHooks`` reporting to ``run`` that also call the user's ``hooks`` (if any).

    Also activates the SDK tracing bridge of ``run`` in this context.
    """
    return _hooks_class()(run, user_hooks, bridge_for(run))


def _current_span_failed() -> bool:
    from agents.tracing import get_current_span

    span = get_current_span()
    return bool(getattr(span, "error", None)) if span is not None else False
