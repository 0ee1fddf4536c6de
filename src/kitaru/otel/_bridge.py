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

This module is the observer (which hook makes or ends which span); what a span is made of
(names, attributes, parents, links, failure status) is in :mod:`kitaru.otel._spans`, what is
kept per run and per checkpoint execution in :mod:`kitaru.otel._state`, span events in
:mod:`kitaru.otel._events` and the settings in :mod:`kitaru.otel._settings`.

The bridge uses the OpenTelemetry API only; the SDK is touched in ``_sdk_tracer.py`` (to force
the flow span's IDs on an SDK tracer, and how checkpoint spans start and end there, with
``_sdk_span.py``) and ``_setup.py`` (provider and exporters).

Hooks run synchronously on the thread running the flow or checkpoint (see
:class:`~kitaru.runtime.RuntimeObserver`): they are quick, never block on the network, and a
failure inside them is logged by the runtime and never reaches the workload.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Unpack

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import ProxyTracerProvider, Span, SpanKind, Tracer, TracerProvider

from kitaru._ids import trace_id_for
from kitaru._version import __version__
from kitaru.otel import _attributes as attr
from kitaru.otel import _env, _registry
from kitaru.otel._context import runtime_var, span_key
from kitaru.otel._events import SpanEventBuffer
from kitaru.otel._forced import forced_ids
from kitaru.otel._runtime_logs import line_fields, skipped
from kitaru.otel._settings import BridgeOptions, BridgeSettings
from kitaru.otel._spans import (
    checkpoint_base,
    checkpoint_parent,
    flow_span_id,
    flow_start,
    is_own,
    mark_failed,
    reused_attributes,
    set_metadata_attributes,
)
from kitaru.otel._state import CheckpointState, FlowState, current_pid, states
from kitaru.runtime._observer import RuntimeObserver

if TYPE_CHECKING:
    from collections.abc import Callable

    from opentelemetry._logs import LoggerProvider
    from opentelemetry.metrics import MeterProvider

    from kitaru.events._models import EventRecord
    from kitaru.otel._logs import LogEmitter
    from kitaru.otel._metrics import BridgeMetrics
    from kitaru.otel._sdk_tracer import SpanStarter
    from kitaru.runtime._scope import CheckpointScope, FlowRun
    from kitaru.store._logs import LogLine
    from kitaru.store._records import CheckpointRecord

__all__ = ["KitaruOtelObserver"]

logger = logging.getLogger("kitaru.otel")

_FLUSH_BUDGET_SECONDS = 0.5


def _version() -> str:
    return __version__


def _set_attribute(span: Span, key: str, value: str) -> None:
    span.set_attribute(key, value)


def _end(span: Span) -> None:
    span.end()


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
        logger_provider: LoggerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        **options: Unpack[BridgeOptions],
    ) -> None:
        self.settings = BridgeSettings.resolve(**options)
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
        # How checkpoint spans are started on the tracer once it is known for good
        # (kitaru.otel._sdk_tracer.span_starter); None: tracer.start_span.
        self._start_span: SpanStarter | None = None
        # How the status attribute is set at a checkpoint span's end (kitaru's own str):
        # kitaru.otel._sdk_tracer.set_own_attribute once the SDK module is loaded.
        self._set_status: Callable[[Span, str, str], None] = _set_attribute
        # How a checkpoint span ends: kitaru.otel._sdk_tracer.end_own_span likewise.
        self._end_span: Callable[[Span], None] = _end
        self._lock = threading.Lock()
        self._flush_healthy = True
        if tracer is not None:
            from kitaru.otel._sdk_tracer import (
                derive_tracer,
                end_own_span,
                set_own_attribute,
                span_starter,
            )

            self._tracer, self._forcing = derive_tracer(tracer)
            self._start_span = span_starter(self._tracer)
            self._set_status = set_own_attribute
            self._end_span = end_own_span

    def __repr__(self) -> str:
        return f"<KitaruOtelObserver {self.settings}>"

    # -- tracer -------------------------------------------------------------------------

    def _resolve(self) -> tuple[Tracer, bool]:
        tracer = self._tracer
        if tracer is not None:
            return tracer, self._forcing
        from kitaru.otel._sdk_tracer import (
            end_own_span,
            set_own_attribute,
            span_starter,
            tracer_for,
        )

        with self._lock:
            if self._tracer is not None:
                return self._tracer, self._forcing
            provider = self._provider or trace.get_tracer_provider()
            tracer, forcing = tracer_for(provider, attr.TRACER_NAME, _version())
            # Before the application sets its provider the global one is a proxy: use it for
            # now, look again at the next flow.
            if self._provider is not None or not isinstance(provider, ProxyTracerProvider):
                self._start_span = span_starter(tracer)
                self._set_status = set_own_attribute
                self._end_span = end_own_span
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
        # The logger provider is looked for here, once per flow, not at every checkpoint:
        # one the application sets while a flow runs is used from its next flow on.
        emitter = self._emitter if self._emitter_final else self._log_emitter()
        exec_id = run.exec_id
        parent, attributes, links = flow_start(
            run, otel_context.get_current(), self.settings.caller_span
        )
        with forced_ids(int(trace_id_for(exec_id), 16), flow_span_id(exec_id)):
            span = tracer.start_span(
                attr.FLOW_SPAN_PREFIX + run.flow_name,
                context=parent,
                kind=SpanKind.INTERNAL,
                attributes=attributes,
                links=links,
            )
        span_context = span.get_span_context()
        flow_context = trace.set_span_in_context(span)
        token = otel_context.attach(flow_context)
        trace_hex = format(span_context.trace_id, "032x")
        states(run)[self] = FlowState(
            span,
            span_context,
            flow_context,
            token,
            tracer,
            current_pid(),
            trace_hex,
            emitter,
            self._start_span if tracer is self._tracer else None,
            context_var=runtime_var(),
            span_key=span_key(),
            span_id=span_context.span_id,
            trace_id=span_context.trace_id,
        )
        if is_own(span_context, parent):
            run.trace_id = trace_hex

    def on_flow_end(self, run: FlowRun, status: str, error: BaseException | None) -> None:
        state = states(run).pop(self, None)
        if not isinstance(state, FlowState):
            return
        try:
            set_metadata_attributes(state.span, run.metadata, None)
            state.span.set_attribute(attr.FLOW_STATUS, status)
            if error is not None:
                mark_failed(state.span, error, self.settings.record_exception_messages)
            state.span.end()
        finally:
            otel_context.detach(state.token)  # type: ignore[arg-type]

    # -- checkpoints ----------------------------------------------------------------------

    def on_checkpoint_start(self, scope: CheckpointScope) -> None:
        # The hot path of every checkpoint (benchmarks/README.md, "Where the time goes"): the
        # attributes go to the SDK in one dict (it checks each one), the ones a flow's
        # checkpoints of one name share are built once, and once the flow's tracer is known
        # neither a lock of kitaru's nor the environment is touched here.
        run = scope.run
        run_states = run.otel
        flow = run_states.get(self) if type(run_states) is dict else None
        flow_state = flow if type(flow) is FlowState else None
        tracer = flow_state.tracer if flow_state is not None else self._resolve()[0]
        var = flow_state.context_var if flow_state is not None else None
        current = var.get() if var is not None else otel_context.get_current()
        if flow_state is not None and current is flow_state.context:
            parent, parent_span_id = current, flow_state.span_id  # the usual case
        else:
            parent, parent_span_id = checkpoint_parent(run, flow_state, tracer)
        if flow_state is not None:
            key = (scope.name, scope.checkpoint_type)
            base = flow_state.checkpoint_bases.get(key)
            if base is None:
                base = flow_state.checkpoint_bases[key] = checkpoint_base(
                    scope, flow_state.start_span
                )
            emitter = self._emitter if self._emitter_final else flow_state.emitter
        else:
            base = checkpoint_base(scope, None)
            emitter = self._emitter if self._emitter_final else self._log_emitter()
        name, attributes, start = base
        attributes = attributes.copy()
        # kitaru's own str and int values (what checkpoint_base's starter relies on)
        attributes[attr.CHECKPOINT_ID] = scope.checkpoint_id
        attributes[attr.CHECKPOINT_STEP] = scope.step_name
        attributes[attr.CHECKPOINT_ATTEMPT] = scope.attempt
        attributes[attr.CORRELATION_ID] = scope.correlation_id
        span = (
            start(name, parent, attributes)
            if start is not None
            else tracer.start_span(
                name, context=parent, kind=SpanKind.INTERNAL, attributes=attributes
            )
        )
        # Current while the body runs: the user's instrumented calls (and threads or tasks
        # that copy this context) become children of the checkpoint span.
        span_key = flow_state.span_key if flow_state is not None else None
        span_in_context = (
            otel_context.Context({**parent, span_key: span})
            if span_key is not None
            else trace.set_span_in_context(span, parent)
        )
        token = (
            var.set(span_in_context) if var is not None else otel_context.attach(span_in_context)
        )
        state = CheckpointState(
            span, token, flow_state.pid if flow_state is not None else -1, context_var=var
        )
        if emitter is not None:
            state.emitter = emitter
            state.log_context = span_in_context
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
        if span_context.is_valid:
            span_id = span_context.span_id
            if span_id == parent_span_id:
                return
            trace_id = span_context.trace_id
            if flow_state is not None and trace_id == flow_state.trace_id:
                scope.trace_id = flow_state.trace_hex
            else:
                scope.trace_id = format(trace_id, "032x")
            scope.span_id = format(span_id, "016x")
            _registry.register(scope.correlation_id, span_context)

    def on_event(self, record: EventRecord, scope: CheckpointScope) -> None:
        # Runs on the publishing thread for every progress() call: keep a reference to the
        # record only; attributes and span events are made when the span ends, log records
        # on the emitter's thread.
        states = scope.otel
        state = states.get(self) if type(states) is dict else None
        if type(state) is not CheckpointState:
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
            if not state.span.is_recording():
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
        if type(state) is not CheckpointState or state.emitter is None or skipped(line):
            return
        severity, body, attributes, ts = line_fields(line)
        state.emit_log(body, severity, None, attributes, ts)

    def on_checkpoint_end(
        self, scope: CheckpointScope, status: str, error: BaseException | None
    ) -> None:
        states = scope.otel
        state = states.pop(self, None) if type(states) is dict else None
        if type(state) is not CheckpointState:
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
            if scope.metadata or scope.usage:
                set_metadata_attributes(span, scope.metadata, scope.usage)
            self._set_status(span, attr.CHECKPOINT_STATUS, status)
            if error is not None:
                mark_failed(span, error, self.settings.record_exception_messages)
            self._end_span(span)
        finally:
            var = state.context_var
            if var is None:
                otel_context.detach(state.token)  # type: ignore[arg-type]
            else:
                try:
                    var.reset(state.token)  # type: ignore[arg-type]
                except Exception:  # what detach does with it: log it (kitaru.otel._context)
                    otel_context.detach(state.token)  # type: ignore[arg-type]
        if state.flow_pid != current_pid():
            self._flush_foreign()

    def on_checkpoint_reused(self, run: FlowRun, record: CheckpointRecord) -> None:
        flow = states(run).get(self)
        flow_state = flow if isinstance(flow, FlowState) else None
        tracer = flow_state.tracer if flow_state is not None else self._resolve()[0]
        # Zero-length: the body did not run this time.
        now = time.time_ns()
        span = tracer.start_span(
            attr.CHECKPOINT_SPAN_PREFIX + record.name,
            context=checkpoint_parent(run, flow_state, tracer)[0],
            kind=SpanKind.INTERNAL,
            attributes=reused_attributes(run, record),
            start_time=now,
        )
        span.end(end_time=now)
        if flow_state is None or flow_state.pid != current_pid():
            self._flush_foreign()

    # -- helpers --------------------------------------------------------------------------

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
