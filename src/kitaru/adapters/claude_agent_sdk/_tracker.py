"""What the Claude adapter learns from whole SDK messages: tools, subagents, usage, outcome.

Claude Code runs tools itself; the SDK reports each call as a ``ToolUseBlock`` in an
``AssistantMessage`` and its result as a ``ToolResultBlock`` (``is_error`` when it failed) in a
``UserMessage``. A subagent's messages carry ``parent_tool_use_id`` (the ``Task`` call that
spawned it). The final ``ResultMessage`` holds usage and cost per model, permission denials
and a deferred tool use (a run paused for a decision). See ``docs/adapters.md``.
"""

from __future__ import annotations

from typing import Any

from kitaru.adapters._common import ident
from kitaru.adapters._run import AgentRun
from kitaru.adapters._usage import Tokens

__all__ = ["ClaudeRunTracker"]


class ClaudeRunTracker:
    """Turns whole Claude messages into tool events, usage and the run's outcome."""

    def __init__(self, run: AgentRun) -> None:
        self.run = run
        self._names: dict[str, str] = {}
        self._last_model: str | None = None

    def _tool_event(
        self,
        message: Any,
        category: str,
        display: str,
        name: str,
        call_id: str | None,
        **fields: Any,
    ) -> None:
        """A ``tool_call`` or ``tool_result`` event, attributed to the main agent or a subagent."""
        parent = ident(getattr(message, "parent_tool_use_id", None))
        agent = {"agent": "subagent", "parent_tool_use_id": parent} if parent else {"agent": "main"}
        self.run.live.item(
            {
                "category": category,
                "display": f"Claude {display}",
                "tool_name": name,
                "tool_use_id": call_id,
                **fields,
                **agent,
            }
        )

    def observe(self, message: Any) -> None:
        """Publish tool events for one whole message (partial stream events are ignored)."""
        kind = type(message).__name__
        if kind == "AssistantMessage":
            self._assistant(message)
        elif kind == "UserMessage":
            self._user(message)

    def _assistant(self, message: Any) -> None:
        model = ident(getattr(message, "model", None))
        self._last_model = model or self._last_model
        usage = getattr(message, "usage", None)
        usage = usage if isinstance(usage, dict) else {}
        # One model response: its span (the run's usage comes from the ResultMessage).
        self.run.spans.chat(
            model,
            input_tokens=int(usage.get("input_tokens") or 0),
            output_tokens=int(usage.get("output_tokens") or 0),
            cache_read_tokens=int(usage.get("cache_read_input_tokens") or 0),
        )
        for block in getattr(message, "content", None) or ():
            if type(block).__name__ not in ("ToolUseBlock", "ServerToolUseBlock"):
                continue
            call_id = ident(getattr(block, "id", None))
            name = ident(getattr(block, "name", None)) or "unknown"
            if call_id:
                self._names[call_id] = name
            self.run.tool_started(call_id, name)
            self._tool_event(message, "tool_call", f"tool call: {name}", name, call_id)

    def _user(self, message: Any) -> None:
        content = getattr(message, "content", None)
        for block in content if isinstance(content, list) else ():
            if type(block).__name__ != "ToolResultBlock":
                continue
            call_id = ident(getattr(block, "tool_use_id", None))
            name = self._names.pop(call_id, "unknown") if call_id else "unknown"
            outcome = "error" if getattr(block, "is_error", None) else "ok"
            fields = self.run.tool_finished(call_id, name, outcome)
            display = f"tool result: {name} ({outcome})"
            self._tool_event(message, "tool_result", display, name, call_id, **fields)

    def finish(self, result: Any) -> None:
        """Usage, cost, denials and the outcome from the final ``ResultMessage``."""
        for model, tokens, cost in self._reported_usage(result):
            # Claude does not count model requests: ``requests`` stays 0 (docs/adapters.md).
            self.run.usage.add(model, tokens, cost_usd=cost, requests=0)
        denials = getattr(result, "permission_denials", None)
        if isinstance(denials, list) and denials:
            self.run.live.terminal["permission_denial_count"] = len(denials)
        deferred = getattr(result, "deferred_tool_use", None)
        if deferred is not None:
            self.run.interrupt([str(getattr(deferred, "id", ""))], kinds=["deferred_tool_use"])
        reason = getattr(result, "terminal_reason", None)
        if isinstance(reason, str) and reason.startswith("aborted"):
            # Claude Code's own word for a cancelled turn.
            self.run.live.status = "cancelled"

    def _reported_usage(self, result: Any) -> list[tuple[object, Tokens, object]]:
        """``(model, tokens, cost)``: per model from ``modelUsage``, else the run's ``usage``."""
        per_model = getattr(result, "model_usage", None)
        if isinstance(per_model, dict) and per_model:
            return [
                (
                    model,
                    Tokens.of(
                        usage.get("inputTokens", 0),
                        usage.get("outputTokens", 0),
                        usage.get("cacheReadInputTokens", 0),
                    ),
                    usage.get("costUSD"),
                )
                for model, usage in per_model.items()
                if isinstance(usage, dict)
            ]
        usage = getattr(result, "usage", None) or {}
        tokens = Tokens.of(
            usage.get("input_tokens", 0),
            usage.get("output_tokens", 0),
            usage.get("cache_read_input_tokens", 0),
        )
        return [(self._last_model, tokens, getattr(result, "total_cost_usd", None))]
