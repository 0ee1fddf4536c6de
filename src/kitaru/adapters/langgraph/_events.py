"""Describing LangGraph v2 stream parts without their content (docs/adapters.md, "LangGraph")."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

from kitaru.adapters._common import ID_MAX_CHARS, LiveStream, clip_text, display_text
from kitaru.adapters._spec import AdapterSpec
from kitaru.adapters.langgraph._policy import STREAM_MODES, LangGraphStreamPolicy
from kitaru.events._jsonsafe import Bounds, json_safe

__all__ = [
    "LANGGRAPH_STREAM_EVENT_KINDS",
    "LANGGRAPH_STREAM_TERMINAL_EVENT_KINDS",
    "SPEC",
    "GraphStreamObserver",
    "bounded_payload",
]

SPEC = AdapterSpec(
    "langgraph",
    label="LangGraph",
    checkpoint_type="langgraph_graph_call",
    checkpoint_suffix="langgraph_call",
    items=(*STREAM_MODES, "tool"),
    item="debug",
)
"""The LangGraph adapter (its events carry ``graph_name``, ``thread_id``, ``surface``); parts it
cannot place go to ``langgraph.stream.debug``."""

LANGGRAPH_STREAM_EVENT_KINDS: tuple[str, ...] = SPEC.kinds
"""Every kind the LangGraph adapter publishes: started, one per stream mode, ``tool`` (a tool's
outcome, from LangChain's callbacks), then terminal."""

LANGGRAPH_STREAM_TERMINAL_EVENT_KINDS: tuple[str, ...] = SPEC.terminal_kinds
"""The kinds that end one LangGraph stream."""

_DEBUG_KIND = SPEC.kind("debug")
_MAX_ITEMS = 20
_MAX_DEPTH = 4
_METADATA_KEYS = (
    "thread_id",
    "langgraph_node",
    "langgraph_step",
    "langgraph_path",
    "langgraph_checkpoint_ns",
    "ls_provider",
    "ls_model_type",
    "tags",
)
# Opted-in payloads still never show values under names that usually hold credentials.
_SECRET_KEY = re.compile(
    r"api[_-]?key|token|secret|password|passwd|authorization|cookie|credential", re.IGNORECASE
)


def _label(value: object) -> str:
    return clip_text(str(value), ID_MAX_CHARS)


_PAYLOAD_REASON = "unsupported_stream_value"


def bounded_payload(value: Any, *, limit: int, depth: int = 0) -> Any:
    """An opted-in payload made small and safe: bounded size, credentials redacted, no repr.

    The one JSON-safety walker of kitaru (:func:`kitaru.events._jsonsafe.json_safe`) with
    bounds: strings are clipped to ``limit``; mappings keep 20 keys (``_kitaru_omitted_keys``
    counts the rest) and lists 20 items (a trailing ``{"_kitaru_omitted_items": n}``); nesting
    stops at depth 4; values of keys that look like credentials become ``"[redacted]"``;
    anything else becomes ``{"python_type", "serialization_error": "unsupported_stream_value"}``.
    """
    return json_safe(value, _bounds(limit), depth=depth)


@functools.lru_cache(maxsize=16)
def _bounds(limit: int) -> Bounds:
    return Bounds(
        max_string=limit,
        max_items=_MAX_ITEMS,
        max_depth=_MAX_DEPTH,
        redact=_SECRET_KEY,
        unsupported=_PAYLOAD_REASON,
    )


def _bounded_list(values: Sequence[Any]) -> list[Any]:
    out: list[Any] = [v if not isinstance(v, str) else _label(v) for v in values[:_MAX_ITEMS]]
    out = [v if isinstance(v, (str, int, float, bool)) or v is None else _label(v) for v in out]
    if len(values) > _MAX_ITEMS:
        out.append({"_kitaru_omitted_items": len(values) - _MAX_ITEMS})
    return out


def _metadata(meta: object) -> dict[str, Any]:
    if not isinstance(meta, Mapping):
        return {}
    out: dict[str, Any] = {}
    for key in _METADATA_KEYS:
        if key not in meta:
            continue
        value = meta[key]
        if isinstance(value, str):
            out[key] = _label(value)
        elif isinstance(value, (int, float, bool)) or value is None:
            out[key] = value
        elif isinstance(value, (list, tuple)):
            out[key] = _bounded_list(list(value))
        else:
            out[key] = {"python_type": type(value).__name__}
    return out


def _message_text(message: object) -> str | None:
    content = getattr(message, "content", None)
    if isinstance(content, str):
        return content or None
    if isinstance(content, list):
        parts = [
            str(block["text"])
            for block in content
            if isinstance(block, Mapping) and isinstance(block.get("text"), str)
        ]
        return "".join(parts) or None
    return None


def _keys_summary(data: object) -> dict[str, Any]:
    if isinstance(data, Mapping):
        keys = [_label(k) for k in list(data)[:_MAX_ITEMS]]
        return {"keys": keys, "keys_truncated": len(data) > _MAX_ITEMS}
    return {"python_type": type(data).__name__}


class GraphStreamObserver:
    """Turns each v2 stream part into one live event and rebuilds the graph's final output.

    Args:
        live: The stream's live-event lane.
        policy: What events may carry.
        requested: The modes the caller asked for (other parts, like the ``values`` the adapter
            always requests for the final output, are not published).
    """

    def __init__(
        self, live: LiveStream, policy: LangGraphStreamPolicy, requested: Sequence[str]
    ) -> None:
        self.live = live
        self.policy = policy
        self.requested = tuple(requested)
        self.counts: dict[str, int] = {}
        self.part_count = 0
        self.output: Any = None
        self.interrupt_ids: list[str] = []

    def terminal_fields(self) -> dict[str, Any]:
        """``stream_event_counts_by_mode`` and ``stream_part_count`` for the terminal event."""
        return {
            "stream_event_counts_by_mode": dict(self.counts),
            "stream_part_count": self.part_count,
        }

    def observe(self, part: Any) -> bool:
        """Publish ``part`` when asked for; returns whether the caller asked for its mode."""
        self.part_count += 1
        mode = part.get("type") if isinstance(part, Mapping) else None
        namespace = part.get("ns", ()) if isinstance(part, Mapping) else ()
        if mode == "values" and isinstance(part, Mapping) and not namespace:
            self._remember_output(part)
        if mode in STREAM_MODES and mode not in self.requested:
            return False
        data = part.get("data") if isinstance(part, Mapping) else None
        if mode == "messages" and self._chunk(part, data):
            return True
        try:
            kind, fields = self._describe(part, mode)
        except Exception:
            kind = _DEBUG_KIND
            fields = {
                "category": "stream_part_normalization_failed",
                "display": "LangGraph stream part",
                "event_type": type(part).__name__,
                "mode": mode if isinstance(mode, str) else None,
            }
        self.counts[fields.get("mode") or "debug"] = (
            self.counts.get(fields.get("mode") or "debug", 0) + 1
        )
        self.live.item(fields, kind=kind)
        return mode in self.requested

    def _chunk(self, part: Mapping[str, Any], data: object) -> bool:
        """Coalesce a streamed message chunk (token); ``False`` for whole messages."""
        if not isinstance(data, tuple | list) or len(data) != 2:
            return False
        message, meta = data
        if not type(message).__name__.endswith("Chunk"):
            return False
        self.counts["messages"] = self.counts.get("messages", 0) + 1
        metadata = _metadata(meta)
        namespace = part.get("ns") or ()
        fields = {
            "category": "stream_part",
            "mode": "messages",
            "langgraph": {
                "stream_version": "v2",
                "namespace": [_label(n) for n in namespace][:_MAX_ITEMS],
                "subgraph": bool(namespace),
            },
            "message_type": type(message).__name__,
            "metadata": metadata,
            "node_name": metadata.get("langgraph_node"),
            "display": type(message).__name__,
        }
        text = _message_text(message) if self.policy.include_message_text_deltas else None
        key = f"msg:{getattr(message, 'id', None)}"
        self.live.delta(
            key,
            fields,
            text=text,
            kind=SPEC.kind("messages"),
            text_limit=self.policy.max_display_chars,
        )
        return True

    def _remember_output(self, part: Mapping[str, Any]) -> None:
        data = part.get("data")
        interrupts = part.get("interrupts") or ()
        self.interrupt_ids = [str(getattr(i, "id", "")) for i in interrupts]
        if interrupts and isinstance(data, Mapping):
            # What ``graph.invoke`` returns for an interrupted run.
            data = {**data, "__interrupt__": list(interrupts)}
        self.output = data

    def _describe(self, part: Any, mode: object) -> tuple[str, dict[str, Any]]:
        limit = self.policy.max_display_chars
        if not isinstance(part, Mapping) or not isinstance(mode, str):
            return _DEBUG_KIND, {
                "category": "stream_part_normalization_failed",
                "display": "Malformed LangGraph stream part",
                "event_type": type(part).__name__,
                "mode": None,
            }
        namespace = part.get("ns") or ()
        base: dict[str, Any] = {
            "category": "stream_part",
            "mode": mode,
            "langgraph": {
                "stream_version": "v2",
                "namespace": [_label(n) for n in namespace][:_MAX_ITEMS],
                "subgraph": bool(namespace),
            },
        }
        if mode not in STREAM_MODES:
            base.update(
                category="stream_part_unknown_mode",
                display=display_text(f"Unknown LangGraph stream mode: {mode}", limit),
                mode=_label(mode),
            )
            return _DEBUG_KIND, base
        data = part.get("data")
        kind = SPEC.kind(mode)
        if mode == "messages":
            base.update(self._messages(data, limit))
        elif mode == "updates":
            base.update(self._updates(data, limit))
        elif mode == "custom":
            base.update(self._custom(data, limit))
        else:
            base.update(self._structural(mode, part, data, limit))
        return kind, base

    def _messages(self, data: object, limit: int) -> dict[str, Any]:
        if not isinstance(data, (tuple, list)) or len(data) != 2:
            raise ValueError("a messages part holds (message, metadata)")
        message, meta = data
        message_type = type(message).__name__
        metadata = _metadata(meta)
        fields: dict[str, Any] = {
            "message_type": message_type,
            "metadata": metadata,
            "node_name": metadata.get("langgraph_node"),
            "display": display_text(message_type, limit),
        }
        if message_type == "ToolMessage":
            # A tool's result: its outcome, never its content.
            status = getattr(message, "status", "success")
            fields["outcome"] = "error" if status == "error" else "ok"
            fields["tool_name"] = _label(getattr(message, "name", None) or "unknown")
            call_id = getattr(message, "tool_call_id", None)
            if isinstance(call_id, str):
                fields["tool_call_id"] = _label(call_id)
        text = _message_text(message) if self.policy.include_message_text_deltas else None
        if text is not None:
            fields["text_delta"] = clip_text(text, limit)
            fields["display"] = display_text(text, limit) or fields["display"]
        return fields

    def _updates(self, data: object, limit: int) -> dict[str, Any]:
        if not isinstance(data, Mapping):
            raise ValueError("an updates part maps node names to updates")
        nodes = list(data)[:_MAX_ITEMS]
        names = [_label(n) for n in nodes]
        keys_by_node: dict[str, list[str]] = {}
        counts: dict[str, int] = {}
        types: dict[str, dict[str, str]] = {}
        for node, name in zip(nodes, names, strict=True):
            update = data[node]
            if isinstance(update, Mapping):
                keys = list(update)
                keys_by_node[name] = [_label(k) for k in keys[:_MAX_ITEMS]]
                counts[name] = len(keys)
                types[name] = {_label(k): type(update[k]).__name__ for k in keys[:_MAX_ITEMS]}
            else:
                keys_by_node[name] = []
                counts[name] = 0
                types[name] = {"_value": type(update).__name__}
        fields: dict[str, Any] = {
            "node_count": len(data),
            "node_names": names,
            "nodes_truncated": len(data) > _MAX_ITEMS,
            "updated_keys_by_node": keys_by_node,
            "updated_key_counts_by_node": counts,
            "value_types_by_node": types,
            "display": display_text(f"Graph update: {', '.join(names) or 'no nodes'}", limit),
        }
        if self.policy.include_raw_payloads:
            fields["raw"] = bounded_payload(data, limit=limit)
        return fields

    def _custom(self, data: object, limit: int) -> dict[str, Any]:
        summary: dict[str, Any] = {"python_type": type(data).__name__}
        if isinstance(data, Mapping):
            summary["key_count"] = len(data)
            summary["summary"] = f"mapping with {len(data)} keys"
        elif isinstance(data, (list, tuple)):
            summary["item_count"] = len(data)
            summary["summary"] = f"sequence with {len(data)} items"
        else:
            summary["summary"] = f"{type(data).__name__} value"
        fields: dict[str, Any] = {"custom_summary": summary, "display": "Custom stream payload"}
        if self.policy.include_custom_payload:
            fields["custom"] = bounded_payload(data, limit=limit)
        return fields

    def _structural(
        self, mode: str, part: Mapping[str, Any], data: object, limit: int
    ) -> dict[str, Any]:
        summary = _keys_summary(data)
        fields: dict[str, Any] = {"summary": summary}
        interrupts = part.get("interrupts")
        if isinstance(data, Mapping) and interrupts is None:
            interrupts = data.get("interrupts")
        if isinstance(interrupts, (list, tuple)):
            fields["interrupt_count"] = len(interrupts)
            ids = [getattr(i, "id", None) for i in interrupts[:_MAX_ITEMS]]
            fields["interrupts"] = [{"id": _label(i)} for i in ids if isinstance(i, str)]
        task_name = data.get("name") if isinstance(data, Mapping) else None
        if mode == "tasks" and isinstance(task_name, str):
            fields["task_name"] = _label(task_name)
            fields["display"] = display_text(f"Graph task: {task_name}", limit)
        else:
            count = len(summary.get("keys", ()))
            fields["display"] = display_text(f"Graph {mode}: {count} keys", limit)
        if self.policy.include_raw_payloads:
            fields["raw"] = bounded_payload(data, limit=limit)
        return fields
