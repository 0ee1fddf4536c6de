"""What the bridge keeps per flow run and per checkpoint execution.

Kept in ``run.otel`` and ``scope.otel`` (a dict keyed by bridge, so two bridges can follow the
same run): the span, the context token to detach at the end, and what the hot path of every
checkpoint needs without looking it up again (see :mod:`kitaru.otel._bridge`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kitaru.runtime._process import current_pid

if TYPE_CHECKING:
    from collections.abc import Mapping
    from contextvars import ContextVar

    from opentelemetry import context as otel_context
    from opentelemetry._logs import SeverityNumber
    from opentelemetry.trace import Span, SpanContext, Tracer
    from opentelemetry.util.types import AttributeValue

    from kitaru.otel._events import SpanEventBuffer
    from kitaru.otel._logs import LogEmitter
    from kitaru.otel._sdk_tracer import SpanStarter
    from kitaru.otel._spans import CheckpointBase
    from kitaru.runtime._scope import CheckpointScope, FlowRun

__all__ = ["CheckpointState", "FlowState", "current_pid", "states"]


@dataclass(slots=True)
class FlowState:
    """A flow span of this process and what its checkpoints reuse."""

    span: Span
    span_context: SpanContext
    context: otel_context.Context  # the context holding the flow span, current in its body
    token: object
    tracer: Tracer
    pid: int
    trace_hex: str  # the flow span's trace ID as 32 hex digits (its checkpoints share it)
    emitter: LogEmitter | None = None  # log records: where they went when the flow started
    start_span: SpanStarter | None = None  # how the flow's checkpoint spans are started
    # The current context's ContextVar and the span's key in a context, when the API's own
    # functions use them (kitaru.otel._context; None: call the API).
    context_var: ContextVar[Any] | None = None
    span_key: str | None = None
    span_id: int = 0  # span_context.span_id and .trace_id, read once
    trace_id: int = 0
    # Per (checkpoint name, type): the span name, the attributes every checkpoint span of this
    # flow with that name shares, and how to start it, built once (checkpoints are the hot path).
    checkpoint_bases: dict[tuple[str, str], CheckpointBase] = field(default_factory=dict)


@dataclass(slots=True)
class CheckpointState:
    """A checkpoint span while its body runs."""

    span: Span
    token: object
    flow_pid: int
    events: SpanEventBuffer | None = None  # made at the first progress or custom event
    emitter: LogEmitter | None = None  # log records on: where they go
    log_context: otel_context.Context | None = None  # the context holding the span
    log_fixed: dict[str, AttributeValue] | None = None  # attributes of every log record
    started: float = 0.0  # perf_counter() at the start, when metrics are on
    context_var: ContextVar[Any] | None = None  # reset with the token when not None

    def emit_log(
        self,
        body: str | None,
        severity: SeverityNumber,
        event_name: str | None,
        attributes: Mapping[str, AttributeValue] | None,
        timestamp_ns: int,
    ) -> None:
        """Queue a log record for this checkpoint execution (no-op with log records off)."""
        emitter = self.emitter
        if emitter is not None and self.log_context is not None:
            emitter.submit(
                self.log_context,
                self.log_fixed or {},
                None,
                event_name,
                severity,
                body,
                attributes,
                timestamp_ns,
            )


def states(owner: FlowRun | CheckpointScope) -> dict[Any, Any]:
    """The bridges' states of a run or checkpoint execution, by bridge (made on first use)."""
    found = owner.otel
    if not isinstance(found, dict):
        found = {}
        owner.otel = found
    return found
