"""The bridge: a runtime observer that turns flows and checkpoints into spans.

* one trace per flow execution, whose ID is computed from the execution ID, with a flow span
  whose span ID is computed too (see :mod:`kitaru.otel._ids`);
* one child span per checkpoint execution (each retry attempt is its own sibling span), made
  the current span while the body runs, so the user's own instrumented calls nest under it;
* progress and custom live events as span events; ``started``/``returned``/``failed`` as the
  span's start, end and status; cache hits and replayed checkpoints as zero-length spans;
* with a logger provider, every live event also as a log record emitted at once, carrying the
  checkpoint span's IDs (see :mod:`kitaru.otel._logs`);
* with a meter provider, checkpoint durations and event and drop counts as metrics (see
  :mod:`kitaru.otel._metrics`).

The bridge uses the OpenTelemetry API only; the SDK is touched in ``_sdk_tracer.py`` (to force
the flow span's IDs on an SDK tracer) and ``_setup.py`` (provider and exporters).

Hooks run synchronously on the thread running the flow or checkpoint (see
:class:`~kitaru.runtime.RuntimeObserver`): they are quick, never block on the network, and a
failure inside them is logged by the runtime and never reaches the workload.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    ProxyTracerProvider,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    Tracer,
    TracerProvider,
)

from kitaru._ids import trace_id_for
from kitaru._version import __version__
from kitaru.otel import _attributes as attr
from kitaru.otel import _env, _registry
from kitaru.otel._events import SpanEventBuffer
from kitaru.otel._forced import forced_ids
from kitaru.otel._ids import flow_span_id_for_execution
from kitaru.otel._runtime_logs import line_fields, skipped
from kitaru.otel._settings import BridgeSettings
from kitaru.runtime._observer import RuntimeObserver

if TYPE_CHECKING:
    from collections.abc import Mapping

    from opentelemetry._logs import LoggerProvider, SeverityNumber
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.util.types import AttributeValue

    from kitaru.events._models import EventRecord
    from kitaru.otel._logs import LogEmitter
    from kitaru.otel._metrics import BridgeMetrics
    from kitaru.runtime._scope import CheckpointScope, FlowRun
    from kitaru.store._logs import LogLine
    from kitaru.store._records import CheckpointRecord
    from kitaru.store._usage import UsageRecord

__all__ = ["KitaruOtelObserver"]

logger = logging.getLogger("kitaru.otel")

_FLUSH_BUDGET_SECONDS = 0.5

# os.getpid() is a system call on every checkpoint end; the pid only changes at fork.
_PID = os.getpid()


def _after_fork() -> None:
    global _PID
    _PID = os.getpid()


os.register_at_fork(after_in_child=_after_fork)


def _pid() -> int:
    return _PID


def _version() -> str:
    return __version__


@dataclass(slots=True)
class _FlowState:
    span: Span
    span_context: SpanContext
    token: object
    tracer: Tracer
    pid: int
    trace_hex: str  # the flow span's trace ID as 32 hex digits (its checkpoints share it)
    # Per (checkpoint name, type): the span name and the attributes every checkpoint span of
    # this flow with that name shares, built once (checkpoints are the hot path).
    checkpoint_bases: dict[tuple[str, str], tuple[str, dict[str, AttributeValue]]] = field(
        default_factory=dict
    )


@dataclass(slots=True)
class _CheckpointState:
    span: Span
    token: object
    recording: bool  # False: the span records nothing (sampled out, a no-op tracer)
    flow_pid: int
    events: SpanEventBuffer | None = None  # made at the first progress or custom event
    emitter: LogEmitter | None = None  # log records on: where they go
    log_context: otel_context.Context | None = None  # the context holding the span
    log_fixed: dict[str, AttributeValue] | None = None  # attributes of every log record
    started: float = 0.0  # perf_counter() at the start, when metrics are on

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


class KitaruOtelObserver(RuntimeObserver):
    """Follows every flow and checkpoint of a runtime and records them as OpenTelemetry spans.

    Usually installed for you (see :func:`kitaru.otel.configure`); build one yourself to use a
    specific provider or tracer, for example in tests::

        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
        bridge = KitaruOtelObserver(tracer_provider=provider)
        with kitaru.testing.capture_events(observers=(bridge,)):
            my_flow()

    Args:
        tracer_provider: The provider to use, as it is (never replaced or reconfigured).
            ``None``: the global provider, looked up when a flow starts.
        tracer: A tracer to use instead of asking a provider.
        record_exception_messages: Also record a failure's message and stack trace (an
            ``exception`` span event and the status description). Default: off, or
            ``KITARU_OTEL_RECORD_EXCEPTIONS``.
        event_attributes: Give span events the live event's message and primitive data
            fields. Default: on, or ``KITARU_OTEL_EVENT_ATTRIBUTES``.
        max_span_events: Most span events per checkpoint span. Default: 64, or
            ``KITARU_OTEL_MAX_SPAN_EVENTS``.
        max_event_fields: Most data fields per span event. Default: 16.
        max_value_length: Longest string attribute value. Default: 256.
        caller_span: ``"link"`` (default, or ``KITARU_OTEL_CALLER_SPAN``): a flow called while
            another span is active starts its own trace and links to that span; ``"parent"``:
            its flow span becomes a child of that span (and so joins the caller's trace).
        logger_provider: Where live events go as log records, used as it is. ``None``: the
            provider kitaru built from the ``OTEL_*`` variables, else the application's global
            one, else no log records.
        log_records: ``False`` turns kitaru's log records off. Default: on, or
            ``KITARU_OTEL_LOG_RECORDS`` (``OTEL_LOGS_EXPORTER=none`` also turns them off).
        runtime_logs: ``False`` keeps the checkpoints' captured runtime log lines (the user's
            own ``logging`` records and printed lines) from becoming log records; live events
            still do. Default: on, or ``KITARU_OTEL_RUNTIME_LOGS``.
        meter_provider: Where checkpoint metrics go, used as it is. ``None``: the provider
            kitaru built from the ``OTEL_*`` variables, if any, else no metrics.
    """

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        tracer: Tracer | None = None,
        record_exception_messages: bool | None = None,
        event_attributes: bool | None = None,
        max_span_events: int | None = None,
        max_event_fields: int | None = None,
        max_value_length: int | None = None,
        caller_span: str | None = None,
        logger_provider: LoggerProvider | None = None,
        log_records: bool | None = None,
        meter_provider: MeterProvider | None = None,
        runtime_logs: bool | None = None,
    ) -> None:
        self.settings = BridgeSettings.resolve(
            record_exception_messages=record_exception_messages,
            event_attributes=event_attributes,
            max_span_events=max_span_events,
            max_event_fields=max_event_fields,
            max_value_length=max_value_length,
            caller_span=caller_span,
            log_records=log_records,
            runtime_logs=runtime_logs,
        )
        self._logger_provider = logger_provider
        self._emitter: LogEmitter | None = None
        self._emitter_final = False  # True once the provider is known (or logs are off)
        self._meter_provider = meter_provider
        self._metrics: BridgeMetrics | None = None
        self._metrics_final = False
        self._provider = tracer_provider
        self._resolved_provider: TracerProvider | None = tracer_provider
        self._tracer: Tracer | None = None
        self._forcing = False
        self._lock = threading.Lock()
        self._flush_healthy = True
        if tracer is not None:
            from kitaru.otel._sdk_tracer import derive_tracer

            self._tracer, self._forcing = derive_tracer(tracer)

    def __repr__(self) -> str:
        return f"<KitaruOtelObserver {self.settings}>"

    # -- tracer -------------------------------------------------------------------------

    def _resolve(self) -> tuple[Tracer, bool]:
        tracer = self._tracer
        if tracer is not None:
            return tracer, self._forcing
        from kitaru.otel._sdk_tracer import tracer_for

        with self._lock:
            if self._tracer is not None:
                return self._tracer, self._forcing
            provider = self._provider or trace.get_tracer_provider()
            tracer, forcing = tracer_for(provider, attr.TRACER_NAME, _version())
            # Before the application sets its provider the global one is a proxy: use it for
            # now, look again at the next flow.
            if self._provider is not None or not isinstance(provider, ProxyTracerProvider):
                self._tracer, self._forcing = tracer, forcing
                self._resolved_provider = provider
            return tracer, forcing

    @property
    def tracer(self) -> Tracer:
        """The tracer kitaru's spans are started with."""
        return self._resolve()[0]

    # -- log records and metrics ----------------------------------------------------------

    def _log_emitter(self) -> LogEmitter | None:
        """The emitter of this bridge's log records, or ``None`` while there is no provider."""
        with self._lock:
            if self._emitter_final:
                return self._emitter
            if not self.settings.log_records or (
                self._logger_provider is None and _env.exporter_off("logs")
            ):
                self._emitter_final = True
                return None
            from kitaru.otel import _log_setup
            from kitaru.otel._logs import LogEmitter

            provider = (
                self._logger_provider
                or _log_setup.owned_logger_provider()
                or _log_setup.application_logger_provider()
            )
            if provider is None:
                return None  # the application may set one later: look again next time
            self._emitter = LogEmitter(provider, self.settings, version=_version())
            self._emitter_final = True
            return self._emitter

    @property
    def log_emitter(self) -> LogEmitter | None:
        """Where this bridge's log records go (``None``: log records are off)."""
        return self._log_emitter()

    def _bridge_metrics(self) -> BridgeMetrics | None:
        with self._lock:
            if self._metrics_final:
                return self._metrics
            from kitaru.otel import _metric_setup

            provider = self._meter_provider or _metric_setup.owned_meter_provider()
            if provider is not None:
                from kitaru.otel._metrics import BridgeMetrics

                self._metrics = BridgeMetrics(provider, self, version=_version())
            self._metrics_final = True
            return self._metrics

    def close_logs(self, timeout: float) -> bool:
        """Hand the queued log records to the provider within ``timeout``; emit no more."""
        emitter = self._emitter
        return True if emitter is None else emitter.close(timeout)

    # -- flows ----------------------------------------------------------------------------

    def on_flow_start(self, run: FlowRun) -> None:
        tracer, _ = self._resolve()
        exec_id = run.exec_id
        current = otel_context.get_current()
        caller = trace.get_current_span(current).get_span_context()
        attributes: dict[str, AttributeValue] = {
            attr.EXECUTION_ID: exec_id,
            attr.FLOW_NAME: run.flow_name,
        }
        links: list[Link] = []
        if run.original_exec_id:
            attributes[attr.ORIGINAL_EXECUTION_ID] = run.original_exec_id
            links.append(
                Link(
                    _flow_span_context(run.original_exec_id, sampled=True),
                    {attr.LINK_TYPE: attr.LINK_TYPE_REPLAY_OF},
                )
            )
        if caller.is_valid and self.settings.caller_span == "parent":
            parent = current
        else:
            # A root span: the flow is its own trace, found by its execution ID.
            parent = trace.set_span_in_context(trace.INVALID_SPAN, current)
            if caller.is_valid:
                links.append(Link(caller, {attr.LINK_TYPE: attr.LINK_TYPE_CALLER}))
        with forced_ids(int(trace_id_for(exec_id), 16), _flow_span_id(exec_id)):
            span = tracer.start_span(
                attr.FLOW_SPAN_PREFIX + run.flow_name,
                context=parent,
                kind=SpanKind.INTERNAL,
                attributes=attributes,
                links=links,
            )
        span_context = span.get_span_context()
        token = otel_context.attach(trace.set_span_in_context(span))
        _states(run)[self] = _FlowState(
            span, span_context, token, tracer, _PID, format(span_context.trace_id, "032x")
        )
        if _is_own(span_context, parent):
            run.trace_id = format(span_context.trace_id, "032x")

    def on_flow_end(self, run: FlowRun, status: str, error: BaseException | None) -> None:
        state = _states(run).pop(self, None)
        if not isinstance(state, _FlowState):
            return
        try:
            set_metadata_attributes(state.span, run.metadata, None)
            state.span.set_attribute(attr.FLOW_STATUS, status)
            if error is not None:
                self._mark_failed(state.span, error)
            state.span.end()
        finally:
            otel_context.detach(state.token)  # type: ignore[arg-type]

    # -- checkpoints ----------------------------------------------------------------------

    def on_checkpoint_start(self, scope: CheckpointScope) -> None:
        # The hot path of every checkpoint: the attributes go to the SDK in one dict (it checks
        # each one), and once the flow's tracer is known no lock of kitaru's is taken here.
        run = scope.run
        run_states = run.otel
        flow = run_states.get(self) if type(run_states) is dict else None
        flow_state = flow if type(flow) is _FlowState else None
        tracer = flow_state.tracer if flow_state is not None else self._resolve()[0]
        parent, parent_span_id = self._parent_context(run, flow_state, tracer)
        key = (scope.name, scope.checkpoint_type)
        base = flow_state.checkpoint_bases.get(key) if flow_state is not None else None
        if base is None:
            base = (
                attr.CHECKPOINT_SPAN_PREFIX + scope.name,
                {
                    attr.EXECUTION_ID: scope.exec_id,
                    attr.FLOW_NAME: scope.flow_name,
                    attr.CHECKPOINT_NAME: scope.name,
                    attr.CHECKPOINT_TYPE: scope.checkpoint_type,
                },
            )
            if flow_state is not None:
                flow_state.checkpoint_bases[key] = base
        attributes = base[1].copy()
        attributes[attr.CHECKPOINT_ID] = scope.checkpoint_id
        attributes[attr.CHECKPOINT_STEP] = scope.step_name
        attributes[attr.CHECKPOINT_ATTEMPT] = scope.attempt
        attributes[attr.CORRELATION_ID] = scope.correlation_id
        span = tracer.start_span(
            base[0], context=parent, kind=SpanKind.INTERNAL, attributes=attributes
        )
        # Current while the body runs: the user's instrumented calls (and threads or tasks
        # that copy this context) become children of the checkpoint span.
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        state = _CheckpointState(
            span, token, span.is_recording(), flow_state.pid if flow_state is not None else -1
        )
        emitter = self._emitter if self._emitter_final else self._log_emitter()
        if emitter is not None:
            state.emitter = emitter
            state.log_context = trace.set_span_in_context(span, parent)
            state.log_fixed = {
                attr.EXECUTION_ID: scope.exec_id,
                attr.FLOW_NAME: scope.flow_name,
                attr.CHECKPOINT_NAME: scope.name,
                attr.CHECKPOINT_ATTEMPT: scope.attempt,
                attr.CORRELATION_ID: scope.correlation_id,
            }
        metrics = self._metrics if self._metrics_final else self._bridge_metrics()
        if metrics is not None:
            state.started = time.perf_counter()
            metrics.remember(scope)
        scope_states = scope.otel
        if type(scope_states) is dict:
            scope_states[self] = state
        else:
            scope.otel = {self: state}
        span_context = span.get_span_context()
        # A no-op tracer hands back the parent itself: those are not this span's IDs.
        if span_context.is_valid and span_context.span_id != parent_span_id:
            trace_id = span_context.trace_id
            if flow_state is not None and trace_id == flow_state.span_context.trace_id:
                scope.trace_id = flow_state.trace_hex
            else:
                scope.trace_id = format(trace_id, "032x")
            scope.span_id = format(span_context.span_id, "016x")
            _registry.register(scope.correlation_id, span_context)

    def on_event(self, record: EventRecord, scope: CheckpointScope) -> None:
        # Runs on the publishing thread for every progress() call: keep a reference to the
        # record only; attributes and span events are made when the span ends, log records
        # on the emitter's thread.
        states = scope.otel
        state = states.get(self) if type(states) is dict else None
        if type(state) is not _CheckpointState:
            return
        emitter = state.emitter
        if emitter is not None:
            emitter.submit(state.log_context, state.log_fixed, record)  # type: ignore[arg-type]
        metrics = self._metrics
        if metrics is not None:
            metrics.count_event(record)
        if record.lifecycle:
            return  # started/returned/failed are the span's start, end and status
        events = state.events
        if events is None:
            if not state.recording:
                return  # a span that records nothing takes no events
            with self._lock:  # once per checkpoint span with events (threads may race here)
                events = state.events
                if events is None:
                    events = state.events = SpanEventBuffer(self.settings.max_span_events)
        events.add(record)

    def on_log_line(self, scope: CheckpointScope, line: LogLine) -> None:
        # Through this bridge's own state only (not emit_checkpoint_log, which reaches every
        # bridge): with two bridges, each exports each line once.
        if not self.settings.runtime_logs:
            return
        states = scope.otel
        state = states.get(self) if type(states) is dict else None
        if type(state) is not _CheckpointState or state.emitter is None or skipped(line):
            return
        severity, body, attributes, ts = line_fields(line)
        state.emit_log(body, severity, None, attributes, ts)

    def on_checkpoint_end(
        self, scope: CheckpointScope, status: str, error: BaseException | None
    ) -> None:
        states = scope.otel
        state = states.pop(self, None) if type(states) is dict else None
        if type(state) is not _CheckpointState:
            return
        span = state.span
        metrics = self._metrics
        if metrics is not None and state.started:
            metrics.checkpoint_ended(scope, status, time.perf_counter() - state.started)
        try:
            events = state.events
            if events is not None:
                dropped = events.close(span, scope.correlation_id, self.settings)
                if dropped and metrics is not None:
                    metrics.span_events_dropped(dropped)
            set_metadata_attributes(span, scope.metadata, scope.usage)
            span.set_attribute(attr.CHECKPOINT_STATUS, status)
            if error is not None:
                self._mark_failed(span, error)
            span.end()
        finally:
            otel_context.detach(state.token)  # type: ignore[arg-type]
        if state.flow_pid != _PID:
            self._flush_foreign()

    def on_checkpoint_reused(self, run: FlowRun, record: CheckpointRecord) -> None:
        flow = _states(run).get(self)
        flow_state = flow if isinstance(flow, _FlowState) else None
        tracer = flow_state.tracer if flow_state is not None else self._resolve()[0]
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
        # Zero-length: the body did not run this time.
        now = time.time_ns()
        span = tracer.start_span(
            attr.CHECKPOINT_SPAN_PREFIX + record.name,
            context=self._parent_context(run, flow_state, tracer)[0],
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            start_time=now,
        )
        span.end(end_time=now)
        if flow_state is None or flow_state.pid != _pid():
            self._flush_foreign()

    # -- helpers --------------------------------------------------------------------------

    def _parent_context(
        self, run: FlowRun, flow_state: _FlowState | None, tracer: Tracer
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
            flow_context = _flow_span_context(run.exec_id, sampled=sampled is not False)
        active = active_span.get_span_context()
        if active.is_valid and active.trace_id == flow_context.trace_id:
            # the flow span, or a span the user opened inside the flow
            return current, active.span_id
        return (
            trace.set_span_in_context(NonRecordingSpan(flow_context), current),
            flow_context.span_id,
        )

    def _mark_failed(self, span: Span, error: BaseException) -> None:
        type_name = type(error).__name__
        span.set_attribute(attr.ERROR_TYPE, type_name)
        description = type_name
        if self.settings.record_exception_messages:
            try:
                description = f"{type_name}: {error}"
            except Exception:
                description = type_name
            span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, description))

    def _flush_foreign(self) -> None:
        """Flush spans ended in a process other than the flow's.

        Such a process may end without exit handlers (a forked child ends with ``os._exit``).
        The flush runs on a helper thread and the checkpoint waits for it at most
        ``_FLUSH_BUDGET_SECONDS``; once a flush overran, later ones in this process are
        skipped, so a dead or hung collector costs that process one budget, once.
        """
        if not self._flush_healthy:
            return
        done = threading.Event()
        outcome = [False]

        def flush() -> None:
            try:
                outcome[0] = self.force_flush(_FLUSH_BUDGET_SECONDS)
            finally:
                done.set()

        try:
            threading.Thread(target=flush, name="kitaru-otel-flush", daemon=True).start()
        except RuntimeError:  # no new threads (interpreter shutting down)
            return
        if not done.wait(_FLUSH_BUDGET_SECONDS) or not outcome[0]:
            self._flush_healthy = False

    def force_flush(self, timeout: float = 2.0) -> bool:
        """Ask the provider in use to export finished spans now.

        Args:
            timeout: Seconds, passed on to the provider.

        Returns:
            What the provider answered (True when there is nothing to flush).
        """
        deadline = time.monotonic() + timeout
        target: Any = self._resolved_provider
        if target is None and self._tracer is not None:
            target = getattr(self._tracer, "span_processor", None)
        flush = getattr(target, "force_flush", None)
        ok = True
        if flush is not None:
            try:
                ok = bool(flush(int(timeout * 1000)))
            except Exception:
                logger.debug("kitaru: flushing spans failed", exc_info=True)
                ok = False
        emitter = self._emitter
        if emitter is not None:
            ok = emitter.force_flush(max(0.0, deadline - time.monotonic())) and ok
        return ok

    def shutdown(self) -> None:
        """Nothing to release: the provider's lifecycle belongs to its owner.

        The provider kitaru sets up itself is shut down by :func:`kitaru.otel.shutdown` and at
        exit; an application's own provider is never shut down by kitaru.
        """


def _states(owner: FlowRun | CheckpointScope) -> dict[KitaruOtelObserver, Any]:
    states = owner.otel
    if not isinstance(states, dict):
        states = {}
        owner.otel = states
    return states


def _is_own(span_context: SpanContext, parent: otel_context.Context) -> bool:
    parent_context = trace.get_current_span(parent).get_span_context()
    return span_context.is_valid and span_context.span_id != parent_context.span_id


def _flow_span_id(exec_id: str) -> int:
    return int(flow_span_id_for_execution(exec_id), 16)


def _flow_span_context(exec_id: str, *, sampled: bool) -> SpanContext:
    return SpanContext(
        trace_id=int(trace_id_for(exec_id), 16),
        span_id=_flow_span_id(exec_id),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT),
    )


def _root_sampled(tracer: Tracer, trace_id: int, name: str) -> bool | None:
    from kitaru.otel._sdk_tracer import root_sampled

    return root_sampled(tracer, trace_id, name)
