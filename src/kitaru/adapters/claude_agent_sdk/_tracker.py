"""What the Claude adapter learns from whole SDK messages: tools, subagents, usage, outcome.

Claude Code runs tools itself; the SDK reports each call as a ``ToolUseBlock`` in an
``AssistantMessage`` and its result as a ``ToolResultBlock`` (``is_error`` when it failed) in a
``UserMessage``. A subagent's messages carry ``parent_tool_use_id`` (the ``Task`` call that
spawned it). The final ``ResultMessage`` holds usage and cost per model, permission denials
and a deferred tool use (a run paused for a decision). See ``docs/adapters.md``.
"""

from __future__ import annotations

from typing import Any

from kitaru.adapters._common import clip_text
from kitaru.adapters._run import AgentRun

__all__ = ["ClaudeRunTracker"]

_ID_MAX_CHARS = 200


def _ident(value: object) -> str | None:
    return clip_text(value, _ID_MAX_CHARS) if isinstance(value, str) and value else None


class ClaudeRunTracker:
    """Turns whole Claude messages into tool events, usage and the run's outcome."""

    def __init__(self, run: AgentRun) -> None:
        self.run = run
        self._names: dict[str, str] = {}
        self._last_model: str | None = None

    def _attribution(self, message: Any) -> dict[str, Any]:
        parent = _ident(getattr(message, "parent_tool_use_id", None))
        return {"agent": "subagent", "parent_tool_use_id": parent} if parent else {"agent": "main"}

    def observe(self, message: Any) -> None:
        """Publish tool events for one whole message (partial stream events are ignored)."""
        kind = type(message).__name__
        if kind == "AssistantMessage":
            self._assistant(message)
        elif kind == "UserMessage":
            self._user(message)

    def _assistant(self, message: Any) -> None:
        model = _ident(getattr(message, "model", None))
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
            call_id = _ident(getattr(block, "id", None))
            name = _ident(getattr(block, "name", None)) or "unknown"
            if call_id:
                self._names[call_id] = name
            self.run.tool_started(call_id, name)
            self.run.live.item(
                {
                    "category": "tool_call",
                    "display": f"Claude tool call: {name}",
                    "tool_name": name,
                    "tool_use_id": call_id,
                    **self._attribution(message),
                }
            )

    def _user(self, message: Any) -> None:
        content = getattr(message, "content", None)
        for block in content if isinstance(content, list) else ():
            if type(block).__name__ != "ToolResultBlock":
                continue
            call_id = _ident(getattr(block, "tool_use_id", None))
            name = self._names.pop(call_id, "unknown") if call_id else "unknown"
            outcome = "error" if getattr(block, "is_error", None) else "ok"
            fields = self.run.tool_finished(call_id, name, outcome)
            self.run.live.item(
                {
                    "category": "tool_result",
                    "display": f"Claude tool result: {name} ({outcome})",
                    "tool_name": name,
                    "tool_use_id": call_id,
                    **fields,
                    **self._attribution(message),
                }
            )

    def finish(self, result: Any) -> None:
        """Usage, cost, denials and the outcome from the final ``ResultMessage``."""
        per_model = getattr(result, "model_usage", None)
        if isinstance(per_model, dict) and per_model:
            for model, usage in per_model.items():
                if isinstance(usage, dict):
                    self.run.usage.add(
                        model,
                        input_tokens=usage.get("inputTokens", 0),
                        output_tokens=usage.get("outputTokens", 0),
                        cache_read_tokens=usage.get("cacheReadInputTokens", 0),
                        cost_usd=usage.get("costUSD"),
                        requests=0,
                    )
        else:
            usage = getattr(result, "usage", None) or {}
            self.run.usage.add(
                self._last_model,
                input_tokens=usage.get("input_tokens", 0),
                output_tokens=usage.get("output_tokens", 0),
                cache_read_tokens=usage.get("cache_read_input_tokens", 0),
                cost_usd=getattr(result, "total_cost_usd", None),
                requests=0,
            )
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
