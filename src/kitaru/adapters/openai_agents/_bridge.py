"""The Agents SDK's own tracing, bridged into OpenTelemetry spans of the kitaru run.

The SDK traces with its own (non-OpenTelemetry) system. A tracing processor, added once next to
whatever processors you configured, turns the spans of runs that kitaru is running into
OpenTelemetry spans under the run's ``invoke_agent`` span, in the execution's trace:
``invoke_agent {agent}`` per SDK agent span (one per agent after handoffs), ``execute_tool
{tool}`` per function span (ERROR when the SDK marked the tool as failed), ``handoff`` and the
SDK's other span types by name. Model calls stay the hooks' ``chat`` spans. Only names, IDs and
the SDK's error class go into attributes, never inputs or outputs (see ``docs/adapters.md``).
With the SDK's tracing disabled nothing is bridged and the hooks make the tool spans.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from functools import cache
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from kitaru.adapters import _genai as g
from kitaru.adapters._common import ident
from kitaru.adapters._run import AgentRun

__all__ = ["RunBridge", "bridge_for"]

logger = logging.getLogger("kitaru.adapters")

_TRACER = "kitaru.adapters.openai_agents"
_SKIPPED = frozenset({"generation", "response", "task", "turn"})  # chat spans come from hooks

_active: contextvars.ContextVar[RunBridge | None] = contextvars.ContextVar(
    "kitaru_openai_bridge", default=None
)
_install_lock = threading.Lock()
_installed = False


def _name(value: object) -> str:
    return ident(value) or "unknown"


class RunBridge:
    """The SDK spans of one kitaru-run agent call, as OpenTelemetry spans."""

    def __init__(self, run: AgentRun) -> None:
        self.run = run
        self.tracing = False  # set when the SDK starts a span for this run
        self._spans: dict[str, Span] = {}
        self._lock = threading.Lock()

    def _parent(self, parent_id: str | None) -> Any:
        with self._lock:
            parent = self._spans.get(parent_id) if parent_id else None
        parent = parent or self.run.spans.agent_span
        return trace.set_span_in_context(parent) if parent is not None else None

    def start(self, span: Any) -> None:
        data = getattr(span, "span_data", None)
        kind = getattr(data, "type", None)
        self.tracing = True
        if kind in _SKIPPED or not isinstance(kind, str) or not self.run.spans.enabled:
            return
        provider = self.run.spans.provider
        attrs: dict[str, Any] = {g.PROVIDER: provider, "openai_agents.span.type": kind}
        if kind == "agent":
            name = _name(getattr(data, "name", None))
            title, span_kind = f"invoke_agent {name}", SpanKind.INTERNAL
            attrs.update({g.OPERATION: "invoke_agent", g.AGENT_NAME: name})
        elif kind == "function":
            name = _name(getattr(data, "name", None))
            title, span_kind = f"execute_tool {name}", SpanKind.INTERNAL
            attrs.update({g.OPERATION: "execute_tool", g.TOOL_NAME: name, g.TOOL_TYPE: "function"})
        elif kind == "handoff":
            source = _name(getattr(data, "from_agent", None))
            target = _name(getattr(data, "to_agent", None))
            title, span_kind = f"handoff {source} -> {target}", SpanKind.INTERNAL
            attrs.update({"openai_agents.handoff.from": source, "openai_agents.handoff.to": target})
        else:
            title, span_kind = (
                f"openai_agents.{kind} {_name(getattr(data, 'name', None))}",
                (SpanKind.INTERNAL),
            )
        otel = trace.get_tracer(_TRACER).start_span(
            title,
            context=self._parent(getattr(span, "parent_id", None)),
            kind=span_kind,
            attributes=attrs,
        )
        with self._lock:
            self._spans[str(getattr(span, "span_id", id(span)))] = otel

    def end(self, span: Any) -> None:
        with self._lock:
            otel = self._spans.pop(str(getattr(span, "span_id", id(span))), None)
        if otel is None:
            return
        error = getattr(span, "error", None)
        if error:
            kind = getattr(getattr(span, "span_data", None), "type", None)
            otel.set_attribute(g.ERROR_TYPE, "tool_error" if kind == "function" else "agent_error")
            if kind == "function":
                otel.set_attribute(g.TOOL_OUTCOME, "error")
            otel.set_status(Status(StatusCode.ERROR))
        elif getattr(getattr(span, "span_data", None), "type", None) == "function":
            otel.set_attribute(g.TOOL_OUTCOME, "ok")
        otel.end()

    def tag_current(self, call_id: str | None) -> None:
        """Put the tool call ID on the bridged span of the SDK's current (function) span."""
        from agents.tracing import get_current_span

        current = get_current_span()
        with self._lock:
            otel = self._spans.get(str(getattr(current, "span_id", None)))
        if otel is not None and call_id:
            otel.set_attribute(g.TOOL_CALL_ID, call_id)

    def bridges_tools(self) -> bool:
        """Whether the SDK's function spans become the ``execute_tool`` spans of this run."""
        return self.tracing and self.run.spans.enabled


@cache
def _processor_class() -> type[Any]:
    from agents.tracing import TracingProcessor

    class KitaruOtelBridge(TracingProcessor):
        """Hands the SDK spans of kitaru-run agent calls to their :class:`RunBridge`."""

        def on_trace_start(self, trace: Any) -> None:
            pass

        def on_trace_end(self, trace: Any) -> None:
            pass

        def on_span_start(self, span: Any) -> None:
            bridge = _active.get()
            if bridge is not None:
                try:
                    bridge.start(span)
                except Exception:  # telemetry never breaks the run
                    logger.debug("kitaru: could not bridge an Agents SDK span", exc_info=True)

        def on_span_end(self, span: Any) -> None:
            bridge = _active.get()
            if bridge is not None:
                try:
                    bridge.end(span)
                except Exception:
                    logger.debug("kitaru: could not bridge an Agents SDK span", exc_info=True)

        def shutdown(self) -> None:
            pass

        def force_flush(self) -> None:
            pass

    return KitaruOtelBridge


def _install() -> None:
    global _installed
    with _install_lock:
        if _installed:
            return
        from agents.tracing import add_trace_processor

        add_trace_processor(_processor_class()())
        _installed = True


def bridge_for(run: AgentRun) -> RunBridge:
    """The bridge of ``run``, active in this context (the checkpoint body) from now on."""
    _install()
    bridge = RunBridge(run)
    _active.set(bridge)
    return bridge
