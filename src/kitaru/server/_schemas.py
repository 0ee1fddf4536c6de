"""JSON Schemas of the request bodies and SSE answers, for the OpenAPI document only.

Validation itself is hand-written (:mod:`kitaru.server._validate`); these describe the same
shapes so that generated clients and schema-driven tests know what to send.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

__all__ = ["CHECKPOINT", "EVENTS", "EXECUTION", "FINISH", "body", "sse_route"]

_STR_OR_NULL: dict[str, Any] = {"type": ["string", "null"]}
_NUM_OR_NULL: dict[str, Any] = {"type": ["number", "null"]}

STORED_VALUE: dict[str, Any] = {
    "type": ["object", "null"],
    "properties": {"format": {"enum": ["json", "pickle"]}, "data": {"type": "string"}},
    "required": ["format", "data"],
}

EXECUTION: dict[str, Any] = {
    "type": "object",
    "description": "ExecutionRecord.to_dict() without checkpoints",
    "properties": {
        "exec_id": {"type": "string", "minLength": 1},
        "flow_name": {"type": "string", "minLength": 1},
        "flow_ref": _STR_OR_NULL,
        "status": {"enum": ["running", "completed", "failed", "lost", "cancelled"]},
        "created_at": {"type": "number"},
        "ended_at": _NUM_OR_NULL,
        "original_exec_id": _STR_OR_NULL,
        "error_type": _STR_OR_NULL,
        "inputs": STORED_VALUE,
        "output": STORED_VALUE,
        "heartbeat_at": _NUM_OR_NULL,
        "checkpoints": {"type": "array", "maxItems": 0},
    },
    "required": ["exec_id", "flow_name", "status", "created_at"],
}

FINISH: dict[str, Any] = {
    "type": "object",
    "properties": {
        "status": {"enum": ["completed", "failed", "lost", "cancelled"]},
        "output": STORED_VALUE,
        "error_type": _STR_OR_NULL,
    },
    "required": ["status"],
}

CHECKPOINT: dict[str, Any] = {
    "type": "object",
    "description": "CheckpointRecord.to_dict(); IDs must match the path",
    "properties": {
        "checkpoint_id": {"type": "string"},
        "exec_id": {"type": "string"},
        "name": {"type": "string", "minLength": 1},
        "step_name": {"type": "string", "minLength": 1},
        "seq": {"type": "integer", "minimum": 0},
        "checkpoint_type": {"type": "string", "minLength": 1},
        "status": {"enum": ["running", "completed", "failed", "cached", "replayed"]},
        "attempts": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "attempt": {"type": "integer", "minimum": 0},
                    "correlation_id": {"type": "string", "minLength": 1},
                    "status": {"type": "string", "minLength": 1},
                    "started_at": {"type": "number"},
                    "ended_at": _NUM_OR_NULL,
                    "error_type": _STR_OR_NULL,
                    "error_message": _STR_OR_NULL,
                    "error_traceback": _STR_OR_NULL,
                },
                "required": ["attempt", "correlation_id", "status", "started_at"],
            },
        },
        "started_at": {"type": "number"},
        "ended_at": _NUM_OR_NULL,
        "cache_key": _STR_OR_NULL,
        "reused_from": _STR_OR_NULL,
        "error_type": _STR_OR_NULL,
        "output": STORED_VALUE,
        "error_message": _STR_OR_NULL,
        "error_traceback": _STR_OR_NULL,
    },
    "required": [
        "checkpoint_id",
        "exec_id",
        "name",
        "step_name",
        "seq",
        "checkpoint_type",
        "status",
        "started_at",
    ],
}

EVENT: dict[str, Any] = {
    "type": "object",
    "description": "One wire event (at most 64 KiB of JSON)",
    "properties": {
        "exec_id": {"type": "string", "description": "must equal the path's execution ID"},
        "kind": {
            "type": "string",
            "pattern": "^[^\\r\\n]*\\S[^\\r\\n]*$",
            "not": {"enum": ["cursor", "end", "gap", "error", "system"]},
        },
        "correlation_id": {"type": "string", "minLength": 1},
        "index": {"type": "integer", "minimum": 0},
        "checkpoint_id": _STR_OR_NULL,
        "checkpoint_name": _STR_OR_NULL,
        "step_name": _STR_OR_NULL,
        "ts": _NUM_OR_NULL,
        "payload": {
            "type": "object",
            "properties": {"kitaru": {"type": "object"}},
            "required": ["kitaru"],
        },
    },
    "required": ["exec_id", "kind", "correlation_id", "index", "payload"],
}

EVENTS: dict[str, Any] = {"type": "array", "items": EVENT}


def body(schema: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` declaring a required JSON request body with ``schema``."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def sse_route(tag: str, description: str) -> dict[str, Any]:
    """The route options of a stream answering server-sent events (the event and log streams).

    The handler returns its own streaming response, so the document is told the answer's
    media type here.
    """
    return {
        "tags": [tag],
        "response_class": Response,
        "responses": {
            200: {
                "description": description,
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            }
        },
    }
