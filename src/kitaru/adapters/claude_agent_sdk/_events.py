"""Describing Claude Agent SDK messages without their content (docs/adapters.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kitaru.adapters._common import (
    ID_MAX_CHARS,
    clip_text,
    display_text,
    ident,
    text_delta_fields,
    text_or_none,
)
from kitaru.adapters._spec import AdapterSpec

__all__ = [
    "CLAUDE_STREAM_EVENT_KINDS",
    "CLAUDE_STREAM_TERMINAL_EVENT_KINDS",
    "SPEC",
    "ClaudeStreamDescriber",
]

SPEC = AdapterSpec(
    "claude_agent_sdk",
    label="Claude",
    checkpoint_type="claude_agent_sdk_invocation",
    checkpoint_suffix="claude_invocation",
)
"""The Claude Agent SDK adapter (its events carry ``runner_name``, ``scope``)."""

CLAUDE_STREAM_EVENT_KINDS: tuple[str, ...] = SPEC.kinds
"""Every kind the Claude Agent SDK adapter publishes, in lifecycle order."""

CLAUDE_STREAM_TERMINAL_EVENT_KINDS: tuple[str, ...] = SPEC.terminal_kinds
"""The kinds that end one Claude stream."""

_TOOL_BLOCK_TYPES = frozenset({"tool_use", "server_tool_use", "mcp_tool_use"})


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class ClaudeStreamDescriber:
    """Describes one invocation's messages; remembers which content block is which tool.

    Tool state lives per content-block index: a ``tool_use`` block start names the tool, its
    ``input_json_delta`` events are attributed to it (their ``partial_json`` never is
    published), and the state is cleared when that block stops or a message starts or stops.

    Args:
        text_deltas: Add clipped text deltas (``ClaudeCapturePolicy.include_stream_text_deltas``).
    """

    def __init__(self, *, text_deltas: bool) -> None:
        self.text_deltas = text_deltas
        self._tools: dict[int, tuple[str | None, str | None]] = {}

    def __call__(self, message: Any) -> dict[str, Any]:
        """The fields of the ``claude_agent_sdk.stream.event`` for one SDK message."""
        kind = type(message).__name__
        if kind == "StreamEvent":
            return self._stream_event(getattr(message, "event", None))
        if kind == "AssistantMessage":
            return self._assistant(message)
        if kind == "UserMessage":
            return self._user(message)
        if kind == "ResultMessage":
            return describe_result(message)
        if kind == "RateLimitEvent":
            info = getattr(message, "rate_limit_info", None)
            status = text_or_none(getattr(info, "status", None)) or "unknown"
            fields: dict[str, Any] = {
                "category": "rate_limit",
                "display": f"Claude rate limit: {status}",
                "status": status,
                "rate_limit_type": text_or_none(getattr(info, "rate_limit_type", None)),
            }
            utilization = getattr(info, "utilization", None)
            if isinstance(utilization, (int, float)) and not isinstance(utilization, bool):
                fields["utilization"] = float(utilization)
            return fields
        if isinstance(getattr(message, "subtype", None), str) and hasattr(message, "data"):
            # SystemMessage and its subclasses (task started/progress/...): subtype only.
            subtype = display_text(message.subtype, ID_MAX_CHARS)
            return {
                "category": "system_message",
                "display": f"Claude system message: {subtype}",
                "subtype": subtype,
                "message_type": kind,
            }
        return {
            "category": "unknown_message",
            "display": f"Claude message: {kind}",
            "message_type": kind,
        }

    # -- partial-message stream events ----------------------------------------------------

    def _stream_event(self, event: object) -> dict[str, Any]:
        if not isinstance(event, Mapping):
            return {"category": "unknown_message", "display": "Claude stream event"}
        etype = text_or_none(event.get("type")) or "unknown"
        index = _int(event.get("index"))
        if etype in ("message_start", "message_stop"):
            self._tools.clear()
            verb = "started" if etype == "message_start" else "stopped"
            return {"category": etype, "display": f"Claude message {verb}"}
        if etype == "message_delta":
            fields: dict[str, Any] = {"category": etype, "display": "Claude message delta"}
            delta = event.get("delta")
            if isinstance(delta, Mapping) and text_or_none(delta.get("stop_reason")):
                fields["stop_reason"] = ident(delta.get("stop_reason"))
            return fields
        if etype == "content_block_start":
            block = event.get("content_block")
            block_type = text_or_none(block.get("type")) if isinstance(block, Mapping) else None
            if isinstance(block, Mapping) and block_type in _TOOL_BLOCK_TYPES:
                tool_name, tool_id = ident(block.get("name")), ident(block.get("id"))
                if index is not None:
                    self._tools[index] = (tool_name, tool_id)
                return {
                    "category": "tool_call_started",
                    "display": f"Claude tool call started: {tool_name or 'unknown'}",
                    "tool_name": tool_name,
                    "tool_id": tool_id,
                    "content_block_type": block_type,
                    "content_block_index": index,
                }
            return {
                "category": "content_block_start",
                "display": f"Claude content block started: {block_type or 'unknown'}",
                "content_block_type": block_type,
                "content_block_index": index,
            }
        if etype == "content_block_delta":
            return self._block_delta(event, index)
        if etype == "content_block_stop":
            if index is not None:
                self._tools.pop(index, None)
            return {
                "category": "content_block_stop",
                "display": "Claude content block stopped",
                "content_block_index": index,
            }
        return {
            "category": "stream_event",
            "display": f"Claude stream event: {etype}",
            "stream_event_type": clip_text(etype, ID_MAX_CHARS),
        }

    def _block_delta(self, event: Mapping[str, Any], index: int | None) -> dict[str, Any]:
        delta = event.get("delta")
        delta_type = text_or_none(delta.get("type")) if isinstance(delta, Mapping) else None
        if delta_type == "text_delta" and isinstance(delta, Mapping):
            fields: dict[str, Any] = {
                "category": "text_delta",
                "display": "Claude text delta",
                "content_block_index": index,
            }
            text = text_or_none(delta.get("text"))
            if self.text_deltas and text is not None:
                fields.update(text_delta_fields(text, "Claude text delta"))
            return fields
        if delta_type == "input_json_delta":
            tool_name, tool_id = (
                self._tools.get(index, (None, None))
                if index is not None
                else (
                    None,
                    None,
                )
            )
            return {
                "category": "tool_input_delta",
                "display": f"Claude tool input delta: {tool_name or 'unknown'}",
                "tool_name": tool_name,
                "tool_id": tool_id,
                "content_block_index": index,
            }
        # Thinking and signature deltas: the kind only, never the reasoning text.
        return {
            "category": "content_block_delta",
            "display": f"Claude content block delta: {delta_type or 'unknown'}",
            "delta_type": delta_type,
            "content_block_index": index,
        }

    # -- whole messages -------------------------------------------------------------------

    def _assistant(self, message: Any) -> dict[str, Any]:
        content = getattr(message, "content", None)
        fields: dict[str, Any] = {
            "category": "assistant_message",
            "display": "Claude assistant message",
            "model": ident(getattr(message, "model", None)),
            "content_block_count": len(content) if isinstance(content, list) else 0,
            "has_usage": getattr(message, "usage", None) is not None,
            "stop_reason": ident(getattr(message, "stop_reason", None)),
        }
        error = ident(getattr(message, "error", None))
        if error:
            fields["assistant_error"] = error
        parent = ident(getattr(message, "parent_tool_use_id", None))
        if parent:
            fields["parent_tool_use_id"] = parent
        return fields

    def _user(self, message: Any) -> dict[str, Any]:
        content = getattr(message, "content", None)
        fields: dict[str, Any] = {
            "category": "user_message",
            "display": "Claude user message",
            "has_tool_use_result": getattr(message, "tool_use_result", None) is not None,
        }
        if isinstance(content, list):
            fields["content_block_count"] = len(content)
        else:
            fields["content_kind"] = "text" if isinstance(content, str) else type(content).__name__
        parent = ident(getattr(message, "parent_tool_use_id", None))
        if parent:
            fields["parent_tool_use_id"] = parent
        return fields


def describe_result(message: Any) -> dict[str, Any]:
    """The fields for a ``ResultMessage``: never its ``result`` or ``structured_output``."""
    is_error = bool(getattr(message, "is_error", False))
    status = "failed" if is_error else "completed"
    return {
        "category": "result_message",
        "display": f"Claude result: {status}",
        "status": status,
        "is_error": is_error,
        "has_usage": getattr(message, "usage", None) is not None,
        "has_model_usage": getattr(message, "model_usage", None) is not None,
        "has_result": getattr(message, "result", None) is not None,
        "has_structured_output": getattr(message, "structured_output", None) is not None,
        "session_id": ident(getattr(message, "session_id", None)),
        "subtype": ident(getattr(message, "subtype", None)),
        "api_error_status": _int(getattr(message, "api_error_status", None)),
        "stop_reason": ident(getattr(message, "stop_reason", None)),
        "num_turns": _int(getattr(message, "num_turns", None)),
        "has_cost": getattr(message, "total_cost_usd", None) is not None,
    }
