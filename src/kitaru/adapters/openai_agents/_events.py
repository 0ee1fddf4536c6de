"""Describing OpenAI Agents SDK stream events without their content (docs/adapters.md)."""

from __future__ import annotations

from typing import Any

from kitaru.adapters._common import ident, text_delta_fields, text_or_none
from kitaru.adapters._spec import AdapterSpec

__all__ = [
    "OPENAI_AGENTS_STREAM_EVENT_KINDS",
    "OPENAI_AGENTS_STREAM_TERMINAL_EVENT_KINDS",
    "SPEC",
    "describe_stream_event",
]

SPEC = AdapterSpec(
    "openai_agents", label="OpenAI Agents", checkpoint_type="openai_agents_run", module="agents"
)
"""The OpenAI Agents adapter (its events carry ``agent_name``, ``surface``)."""

OPENAI_AGENTS_STREAM_EVENT_KINDS: tuple[str, ...] = SPEC.kinds
"""Every kind the OpenAI Agents adapter publishes, in lifecycle order."""

OPENAI_AGENTS_STREAM_TERMINAL_EVENT_KINDS: tuple[str, ...] = SPEC.terminal_kinds
"""The kinds that end one OpenAI Agents stream."""

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
    event_kind = text_or_none(getattr(event, "type", None)) or type(event).__name__
    fields: dict[str, Any] = {"category": event_kind}
    if event_kind == "raw_response_event":
        data = getattr(event, "data", None)
        data_type = text_or_none(getattr(data, "type", None)) or type(data).__name__
        fields["event_type"] = data_type
        fields["display"] = data_type
        if text_deltas and data_type in _TEXT_DELTA_TYPES:
            delta = text_or_none(getattr(data, "delta", None))
            if delta is not None:
                fields.update(text_delta_fields(delta, data_type))
        return fields
    if event_kind == "run_item_stream_event":
        name = text_or_none(getattr(event, "name", None)) or "unknown"
        item = getattr(event, "item", None)
        fields["name"] = name
        fields["item_type"] = text_or_none(getattr(item, "type", None)) or type(item).__name__
        raw = getattr(item, "raw_item", None)
        item_name = text_or_none(_get(raw, "name"))
        target = getattr(item, "target_agent", None)
        if item_name is None and target is not None:
            item_name = text_or_none(getattr(target, "name", None))
        call_id = text_or_none(_get(raw, "call_id"))
        if item_name:
            fields["item_name"] = ident(item_name)
        if call_id:
            fields["call_id"] = ident(call_id)
        label = _ITEM_LABELS.get(name, f"Run item: {name}")
        suffix = item_name or call_id
        fields["display"] = f"{label}: {suffix}" if suffix else label
        return fields
    if event_kind == "agent_updated_stream_event":
        agent_name = (
            text_or_none(getattr(getattr(event, "new_agent", None), "name", None)) or "unknown"
        )
        fields["new_agent_name"] = ident(agent_name)
        fields["display"] = f"Agent updated: {agent_name}"
        return fields
    fields["event_type"] = type(event).__name__
    fields["display"] = f"OpenAI Agents event: {event_kind}"
    return fields
