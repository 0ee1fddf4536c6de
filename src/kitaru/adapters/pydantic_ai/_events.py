"""Describing PydanticAI stream events without their content (docs/adapters.md, "PydanticAI")."""

from __future__ import annotations

from typing import Any

from kitaru.adapters._common import (
    TEXT_DELTA_MAX_CHARS,
    clip_text,
    display_text,
    ident,
    text_or_none,
)
from kitaru.adapters._spec import AdapterSpec

__all__ = [
    "PYDANTIC_AI_STREAM_EVENT_KINDS",
    "PYDANTIC_AI_STREAM_TERMINAL_EVENT_KINDS",
    "SPEC",
    "describe_event",
    "tool_result_outcome",
]

SPEC = AdapterSpec("pydantic_ai", label="PydanticAI", checkpoint_type="pydantic_ai_agent")
"""The PydanticAI adapter (its events carry ``agent_name``, ``surface``, ``source``)."""

PYDANTIC_AI_STREAM_EVENT_KINDS: tuple[str, ...] = SPEC.kinds
"""Every kind the PydanticAI adapter publishes, in lifecycle order."""

PYDANTIC_AI_STREAM_TERMINAL_EVENT_KINDS: tuple[str, ...] = SPEC.terminal_kinds
"""The kinds that end one PydanticAI stream (exactly one of them per stream)."""

# Labels of event kinds whose display names a tool.
_TOOL_LABELS = {
    "function_tool_call": "Function tool call",
    "function_tool_result": "Function tool result",
    "output_tool_call": "Output tool call",
    "output_tool_result": "Output tool result",
    "builtin_tool_call": "Builtin tool call",
    "builtin_tool_result": "Builtin tool result",
}


# PydanticAI's own tool-return outcomes, in the adapters' shared words.
_RETURN_OUTCOMES = {
    "success": "ok",
    "failed": "error",
    "denied": "denied",
    "retried": "retry",
    "interrupted": "error",
}


def tool_result_outcome(event: Any) -> str:
    """The outcome of a ``FunctionToolResultEvent``: ``ok``, ``error``, ``retry`` or ``denied``."""
    part = getattr(event, "part", None) or getattr(event, "result", None)
    if type(part).__name__ == "RetryPromptPart":
        return "retry"
    return _RETURN_OUTCOMES.get(str(getattr(part, "outcome", "success")), "ok")


def describe_event(event: Any, *, transcripts: bool) -> dict[str, Any]:
    """The fields of one ``pydantic_ai.stream.event``: what happened, never its content.

    Args:
        event: A PydanticAI ``AgentStreamEvent``.
        transcripts: Add clipped text deltas (``CapturePolicy.save_stream_transcripts``).
    """
    event_type = type(event).__name__
    event_kind = text_or_none(getattr(event, "event_kind", None))
    fields: dict[str, Any] = {"category": event_kind or event_type, "event_type": event_type}
    if event_kind:
        fields["event_kind"] = event_kind
    index = getattr(event, "index", None)
    if isinstance(index, int) and not isinstance(index, bool):
        fields["index"] = index
    part = getattr(event, "part", None)
    part_kind = text_or_none(getattr(part, "part_kind", None))
    if part_kind:
        fields["part_kind"] = part_kind
    delta = getattr(event, "delta", None)
    delta_kind = text_or_none(getattr(delta, "part_delta_kind", None))
    if delta_kind:
        fields["delta_kind"] = delta_kind
    # Tool identity only: arguments and results stay out (docs/adapters.md, "Privacy").
    tool_name = text_or_none(getattr(event, "tool_name", None)) or text_or_none(
        getattr(part, "tool_name", None)
    )
    tool_name = tool_name or text_or_none(getattr(delta, "tool_name_delta", None))
    if tool_name:
        fields["tool_name"] = ident(tool_name)
    result_part = getattr(event, "result", None)
    tool_name = tool_name or text_or_none(getattr(result_part, "tool_name", None))
    tool_call_id = text_or_none(getattr(event, "tool_call_id", None)) or text_or_none(
        getattr(part, "tool_call_id", None)
        or getattr(delta, "tool_call_id", None)
        or getattr(result_part, "tool_call_id", None)
    )
    if tool_call_id:
        fields["tool_call_id"] = ident(tool_call_id)

    text: str | None = None
    if transcripts:
        if delta_kind == "text":
            text = text_or_none(getattr(delta, "content_delta", None))
        elif event_kind == "part_start" and part_kind == "text":
            text = text_or_none(getattr(part, "content", None))
    if text is not None:
        fields["text_delta"] = clip_text(text, TEXT_DELTA_MAX_CHARS)
    fields["display"] = _display(event_kind, part_kind, delta_kind, tool_name, fields, event_type)
    return fields


def _display(
    event_kind: str | None,
    part_kind: str | None,
    delta_kind: str | None,
    tool_name: str | None,
    fields: dict[str, Any],
    event_type: str,
) -> str:
    if "text_delta" in fields:
        return display_text(fields["text_delta"]) or "Text delta"
    if event_kind == "part_start":
        return f"Part started: {part_kind or 'unknown'}"
    if event_kind == "part_end":
        return f"Part ended: {part_kind or 'unknown'}"
    if event_kind == "part_delta":
        return "Text delta" if delta_kind == "text" else f"Part delta: {delta_kind or 'unknown'}"
    if event_kind == "final_result":
        return "Final result detected"
    if event_kind in _TOOL_LABELS:
        return f"{_TOOL_LABELS[event_kind]}: {tool_name or 'unknown'}"
    return f"PydanticAI event: {event_kind or event_type}"
