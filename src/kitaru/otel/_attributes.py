"""Names of the spans, attributes and links kitaru emits (one place, shared with the e2e tests).

Every attribute is namespaced under ``kitaru.`` except ``error.type``, the OpenTelemetry
semantic-convention attribute for the class of a failure.
"""

from __future__ import annotations

__all__ = [
    "CACHE_HIT",
    "CACHE_SOURCE_EXECUTION_ID",
    "CHECKPOINT_ATTEMPT",
    "CHECKPOINT_ID",
    "CHECKPOINT_NAME",
    "CHECKPOINT_SPAN_PREFIX",
    "CHECKPOINT_STATUS",
    "CHECKPOINT_STEP",
    "CHECKPOINT_TYPE",
    "CORRELATION_ID",
    "ERROR_TYPE",
    "EVENTS_DROPPED",
    "EVENT_DATA_DROPPED",
    "EVENT_DATA_PREFIX",
    "EVENT_INDEX",
    "EVENT_MESSAGE",
    "EXECUTION_ID",
    "FLOW_NAME",
    "FLOW_SPAN_PREFIX",
    "FLOW_STATUS",
    "LINK_TYPE",
    "LINK_TYPE_CALLER",
    "LINK_TYPE_REPLAY_OF",
    "META_PREFIX",
    "ORIGINAL_EXECUTION_ID",
    "REPLAYED",
    "TRACER_NAME",
    "USAGE_COST_USD",
    "USAGE_INPUT_TOKENS",
    "USAGE_OUTPUT_TOKENS",
]

TRACER_NAME = "kitaru"
"""Instrumentation scope name of every kitaru span."""

FLOW_SPAN_PREFIX = "kitaru.flow "
"""Flow spans are named ``kitaru.flow <flow name>``."""

CHECKPOINT_SPAN_PREFIX = "kitaru.checkpoint "
"""Checkpoint spans are named ``kitaru.checkpoint <checkpoint name>``."""

EXECUTION_ID = "kitaru.execution.id"
FLOW_NAME = "kitaru.flow.name"
FLOW_STATUS = "kitaru.flow.status"
"""``completed`` or ``failed``, set when the flow span ends."""
CHECKPOINT_NAME = "kitaru.checkpoint.name"
CHECKPOINT_ID = "kitaru.checkpoint.id"
CHECKPOINT_STEP = "kitaru.checkpoint.step"
CHECKPOINT_TYPE = "kitaru.checkpoint.type"
CHECKPOINT_STATUS = "kitaru.checkpoint.status"
"""``returned``, ``failed``, ``cached`` or ``replayed``."""
CHECKPOINT_ATTEMPT = "kitaru.checkpoint.attempt"
CORRELATION_ID = "kitaru.correlation_id"
CACHE_HIT = "kitaru.cache_hit"
REPLAYED = "kitaru.replayed"
ORIGINAL_EXECUTION_ID = "kitaru.original_execution.id"
"""On a replay's flow span and its replayed checkpoint spans: the execution replayed."""
CACHE_SOURCE_EXECUTION_ID = "kitaru.cache.source_execution.id"
"""On a cache-hit span: the execution whose recorded output was reused."""
EVENTS_DROPPED = "kitaru.events.dropped"
"""On a checkpoint span: live events not recorded as span events because of the per-span cap."""

EVENT_INDEX = "kitaru.event.index"
EVENT_MESSAGE = "kitaru.event.message"
EVENT_DATA_PREFIX = "kitaru.event.data."
EVENT_DATA_DROPPED = "kitaru.event.data_dropped"
"""On a span event: data fields left out (not a primitive, or beyond the per-event bound)."""

ERROR_TYPE = "error.type"
"""Semantic-convention attribute: the exception's class name (never its message)."""

LINK_TYPE = "kitaru.link.type"
LINK_TYPE_CALLER = "caller"
"""A flow span's link to the span that was active where the flow was called."""
LINK_TYPE_REPLAY_OF = "replay_of"
"""A replay's flow span's link to the flow span of the execution it replays."""

META_PREFIX = "kitaru.meta."
"""``kitaru.log(key=value)``: primitive values become ``kitaru.meta.<key>`` on the span."""
USAGE_INPUT_TOKENS = "kitaru.usage.input_tokens"
"""On a checkpoint span: input tokens ``kitaru.record_usage`` reported, summed over models."""
USAGE_OUTPUT_TOKENS = "kitaru.usage.output_tokens"
"""On a checkpoint span: output tokens ``kitaru.record_usage`` reported, summed over models."""
USAGE_COST_USD = "kitaru.usage.cost_usd"
"""On a checkpoint span: incurred cost ``kitaru.record_usage`` reported (when known)."""
