"""What kitaru's spans are made of: their names, attributes, parents, links and failure status.

Pure helpers of the bridge (:mod:`kitaru.otel._bridge`), on the OpenTelemetry API only:

* a flow span is a root span whose IDs come from the execution ID (see :mod:`kitaru.otel._ids`),
  linked to the span active where the flow was called (or its child, with ``caller_span``
  ``"parent"``) and, for a replay, to the flow span of the execution it replays;
* a checkpoint span is a child of the flow span, or of a span the user opened inside the flow;
  a checkpoint running in another process than its flow parents to the flow span by its
  computed IDs;
* names and attribute keys are those of :mod:`kitaru.otel._attributes`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags

from kitaru._ids import trace_id_for
from kitaru.otel import _attributes as attr
from kitaru.otel._ids import flow_span_id_for_execution

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer
    from opentelemetry.util.types import AttributeValue

    from kitaru.otel._sdk_tracer import SpanStarter
    from kitaru.otel._state import FlowState
    from kitaru.runtime._scope import CheckpointScope, FlowRun
    from kitaru.store._records import CheckpointRecord
    from kitaru.store._usage import UsageRecord

__all__ = [
    "CheckpointBase",
    "checkpoint_base",
    "checkpoint_parent",
    "flow_span_context",
    "flow_span_id",
    "flow_start",
    "is_own",
    "mark_failed",
    "reused_attributes",
    "set_metadata_attributes",
]


def flow_start(
    run: FlowRun, current: otel_context.Context, caller_span: str
) -> tuple[otel_context.Context, dict[str, AttributeValue], list[Link]]:
    """The parent context, attributes and links of a flow span started in ``current``."""
    caller = trace.get_current_span(current).get_span_context()
    attributes: dict[str, AttributeValue] = {
        attr.EXECUTION_ID: run.exec_id,
        attr.FLOW_NAME: run.flow_name,
    }
    links: list[Link] = []
    if run.original_exec_id:
        attributes[attr.ORIGINAL_EXECUTION_ID] = run.original_exec_id
        links.append(
            Link(
                flow_span_context(run.original_exec_id, sampled=True),
                {attr.LINK_TYPE: attr.LINK_TYPE_REPLAY_OF},
            )
        )
    if caller.is_valid and caller_span == "parent":
        return current, attributes, links
    # A root span: the flow is its own trace, found by its execution ID.
    if caller.is_valid:
        links.append(Link(caller, {attr.LINK_TYPE: attr.LINK_TYPE_CALLER}))
    return trace.set_span_in_context(trace.INVALID_SPAN, current), attributes, links


CheckpointBase = tuple[str, dict[str, "AttributeValue"], "SpanStarter | None"]
"""A checkpoint span's name, the attributes a flow's spans of that name share, and how to
start it (``None``: ``tracer.start_span``)."""


def checkpoint_base(scope: CheckpointScope, start: SpanStarter | None) -> CheckpointBase:
    """The span name and the attributes shared by a flow's checkpoint spans of one name.

    ``start`` (a :func:`~kitaru.otel._sdk_tracer.span_starter`) is kept only when every shared
    value is a plain ``str``: it stores attributes without the SDK checking them again.
    """
    attributes: dict[str, AttributeValue] = {
        attr.EXECUTION_ID: scope.exec_id,
        attr.FLOW_NAME: scope.flow_name,
        attr.CHECKPOINT_NAME: scope.name,
        attr.CHECKPOINT_TYPE: scope.checkpoint_type,
    }
    plain = all(type(value) is str for value in attributes.values())
    return attr.CHECKPOINT_SPAN_PREFIX + scope.name, attributes, start if plain else None


def reused_attributes(run: FlowRun, record: CheckpointRecord) -> dict[str, AttributeValue]:
    """The attributes of the zero-length span of a cached or replayed checkpoint call."""
    cached = record.status == "cached"
    attributes: dict[str, AttributeValue] = {
        attr.EXECUTION_ID: run.exec_id,
        attr.FLOW_NAME: run.flow_name,
        attr.CHECKPOINT_NAME: record.name,
        attr.CHECKPOINT_ID: record.checkpoint_id,
        attr.CHECKPOINT_STEP: record.step_name,
        attr.CHECKPOINT_TYPE: record.checkpoint_type,
        attr.CHECKPOINT_STATUS: record.status,
        attr.CACHE_HIT: cached,
        attr.REPLAYED: not cached,
    }
    source_exec = (record.reused_from or "").partition("/")[0]
    if cached and source_exec:
        attributes[attr.CACHE_SOURCE_EXECUTION_ID] = source_exec
    if not cached and run.original_exec_id:
        attributes[attr.ORIGINAL_EXECUTION_ID] = run.original_exec_id
    return attributes


def checkpoint_parent(
    run: FlowRun, flow_state: FlowState | None, tracer: Tracer
) -> tuple[otel_context.Context, int]:
    """The context to start a checkpoint span in, and its parent span's ID."""
    current = otel_context.get_current()
    active_span = trace.get_current_span(current)
    if flow_state is not None:
        if active_span is flow_state.span:  # the usual case: the flow span is current
            return current, flow_state.span_context.span_id
        flow_context = flow_state.span_context
    else:
        # No flow span in this process (the checkpoint runs in another process than its
        # flow, or the bridge joined mid-run): parent to the flow span by its computed IDs,
        # with the sampling decision the flow's process made from the same trace ID.
        trace_id = int(trace_id_for(run.exec_id), 16)
        sampled = _root_sampled(tracer, trace_id, attr.FLOW_SPAN_PREFIX + run.flow_name)
        flow_context = flow_span_context(run.exec_id, sampled=sampled is not False)
    active = active_span.get_span_context()
    if active.is_valid and active.trace_id == flow_context.trace_id:
        # the flow span, or a span the user opened inside the flow
        return current, active.span_id
    return (
        trace.set_span_in_context(NonRecordingSpan(flow_context), current),
        flow_context.span_id,
    )


def set_metadata_attributes(
    span: Span, metadata: Mapping[str, Any] | None, usage: Mapping[str, UsageRecord] | None
) -> None:
    """``kitaru.meta.<key>`` for primitive ``kitaru.log`` values, and the usage sums.

    Lists, dicts and ``None`` stay in the durable record only (docs/runtime-logs-and-metadata.md).
    """
    if metadata and span.is_recording():
        for key, value in metadata.items():
            if isinstance(value, (bool, int, float, str)):
                span.set_attribute(attr.META_PREFIX + key, value)
    if usage and span.is_recording():
        records = list(usage.values())
        span.set_attribute(attr.USAGE_INPUT_TOKENS, sum(u.input_tokens for u in records))
        span.set_attribute(attr.USAGE_OUTPUT_TOKENS, sum(u.output_tokens for u in records))
        costs = [u.cost_usd for u in records if u.cost_usd is not None]
        if costs:
            span.set_attribute(attr.USAGE_COST_USD, float(sum(costs)))


def mark_failed(span: Span, error: BaseException, record_messages: bool) -> None:
    """``error.type`` and an error status; the message and stack trace only when opted in."""
    type_name = type(error).__name__
    span.set_attribute(attr.ERROR_TYPE, type_name)
    description = type_name
    if record_messages:
        try:
            description = f"{type_name}: {error}"
        except Exception:
            description = type_name
        span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, description))


def is_own(span_context: SpanContext, parent: otel_context.Context) -> bool:
    """True when ``span_context`` is a span of its own (a no-op tracer hands back the parent)."""
    parent_context = trace.get_current_span(parent).get_span_context()
    return span_context.is_valid and span_context.span_id != parent_context.span_id


def flow_span_id(exec_id: str) -> int:
    """The flow span's ID of an execution, as an int."""
    return int(flow_span_id_for_execution(exec_id), 16)


def flow_span_context(exec_id: str, *, sampled: bool) -> SpanContext:
    """The (remote) span context of an execution's flow span, computed from its ID."""
    return SpanContext(
        trace_id=int(trace_id_for(exec_id), 16),
        span_id=flow_span_id(exec_id),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT),
    )


def _root_sampled(tracer: Tracer, trace_id: int, name: str) -> bool | None:
    from kitaru.otel._sdk_tracer import root_sampled

    return root_sampled(tracer, trace_id, name)
