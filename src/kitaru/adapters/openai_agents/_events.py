"""Describing OpenAI Agents SDK stream events without their content (docs/adapters.md)."""

from __future__ import annotations

from typing import Any

from kitaru.adapters._common import (
    TEXT_DELTA_MAX_CHARS,
    LiveStream,
    clip_text,
    display_text,
    stream_kinds,
)

__all__ = [
    "OPENAI_AGENTS_STREAM_EVENT_KINDS",
    "OPENAI_AGENTS_STREAM_TERMINAL_EVENT_KINDS",
    "describe_stream_event",
    "new_stream",
]

_PREFIX = "openai_agents.stream"

_KINDS = stream_kinds(_PREFIX)

OPENAI_AGENTS_STREAM_EVENT_KINDS: tuple[str, ...] = _KINDS[0]
"""Every kind the OpenAI Agents adapter publishes, in lifecycle order."""

OPENAI_AGENTS_STREAM_TERMINAL_EVENT_KINDS: tuple[str, ...] = _KINDS[1]
"""The kinds that end one OpenAI Agents stream."""

_ID_MAX_CHARS = 200

_ITEM_LABELS = {
    "tool_called": "Tool called",
    "tool_output": "Tool output received",
    "message_output_created": "Message output created",
    "handoff_requested": "Handoff requested",
    "handoff_occured": "Handoff occurred",  # the SDK's spelling
    "handoff_occurred": "Handoff occurred",
    "reasoning_item_created": "Reasoning item created",
    "mcp_approval_requested": "MCP approval requested",
    "mcp_approval_response": "MCP approval response",
    "mcp_list_tools": "MCP tools listed",
    "tool_search_called": "Tool search called",
    "tool_search_output_created": "Tool search output created",
}

_TEXT_DELTA_TYPES = frozenset({"response.output_text.delta"})


def new_stream(
    agent_name: str, surface: str, *, enabled: bool, delta_interval: float | None = None
) -> LiveStream:
    """The live-event lane of one OpenAI Agents stream."""
    return LiveStream(
        _PREFIX,
        adapter="openai_agents",
        label="OpenAI Agents",
        base={"agent_name": agent_name, "surface": surface},
        enabled=enabled,
        delta_interval=delta_interval,
    )


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _get(obj: object, name: str) -> Any:
    # Raw items are pydantic models or plain dicts depending on the item type.
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def describe_stream_event(event: Any, *, text_deltas: bool) -> dict[str, Any]:
    """The fields of one ``openai_agents.stream.event``: what happened, never its content.

    Args:
        event: An Agents SDK ``StreamEvent`` (raw response, run item or agent updated event).
        text_deltas: Add clipped output-text deltas
            (``OpenAICapturePolicy.include_stream_text_deltas``).
    """
    event_kind = _str(getattr(event, "type", None)) or type(event).__name__
    fields: dict[str, Any] = {"category": event_kind}
    if event_kind == "raw_response_event":
        data = getattr(event, "data", None)
        data_type = _str(getattr(data, "type", None)) or type(data).__name__
        fields["event_type"] = data_type
        fields["display"] = data_type
        if text_deltas and data_type in _TEXT_DELTA_TYPES:
            delta = _str(getattr(data, "delta", None))
            if delta is not None:
                fields["text_delta"] = clip_text(delta, TEXT_DELTA_MAX_CHARS)
                fields["display"] = display_text(delta) or data_type
        return fields
    if event_kind == "run_item_stream_event":
        name = _str(getattr(event, "name", None)) or "unknown"
        item = getattr(event, "item", None)
        fields["name"] = name
        fields["item_type"] = _str(getattr(item, "type", None)) or type(item).__name__
        raw = getattr(item, "raw_item", None)
        item_name = _str(_get(raw, "name"))
        target = getattr(item, "target_agent", None)
        if item_name is None and target is not None:
            item_name = _str(getattr(target, "name", None))
        call_id = _str(_get(raw, "call_id"))
        if item_name:
            fields["item_name"] = clip_text(item_name, _ID_MAX_CHARS)
        if call_id:
            fields["call_id"] = clip_text(call_id, _ID_MAX_CHARS)
        label = _ITEM_LABELS.get(name, f"Run item: {name}")
        suffix = item_name or call_id
        fields["display"] = f"{label}: {suffix}" if suffix else label
        return fields
    if event_kind == "agent_updated_stream_event":
        agent_name = _str(getattr(getattr(event, "new_agent", None), "name", None)) or "unknown"
        fields["new_agent_name"] = clip_text(agent_name, _ID_MAX_CHARS)
        fields["display"] = f"Agent updated: {agent_name}"
        return fields
    fields["event_type"] = type(event).__name__
    fields["display"] = f"OpenAI Agents event: {event_kind}"
    return fields
