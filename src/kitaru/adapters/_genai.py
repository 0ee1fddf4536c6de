"""OpenTelemetry GenAI spans of one adapter run: ``invoke_agent``, ``chat``, ``execute_tool``.

The names and attributes follow the OpenTelemetry GenAI semantic conventions (see
``docs/adapters.md``). Spans carry what kind of thing happened, model names, token counts, tool
names and call IDs, never prompts, tool arguments, tool results or output. They are started on
the global tracer provider (the one ``kitaru.otel`` installs, or the application's own), so the
agent span is a child of the running checkpoint's span; without a provider they cost nothing.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from kitaru.otel._usage_metrics import record_chat_tokens

__all__ = ["GenAISpans"]

logger = logging.getLogger("kitaru.adapters")

_TRACER_NAME = "kitaru.adapters"

OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
AGENT_NAME = "gen_ai.agent.name"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_TYPE = "gen_ai.tool.type"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CACHE_READ_TOKENS = "gen_ai.usage.cache_read.input_tokens"
ERROR_TYPE = "error.type"
TOOL_OUTCOME = "kitaru.tool.outcome"


def _ns() -> int:
    return time.time_ns()


@dataclass(kw_only=True, eq=False)  # spans are compared by identity, like any live object
class GenAISpans:
    """The GenAI spans of one agent run; every method is best-effort and never raises.

    Args:
        provider: ``gen_ai.provider.name`` (e.g. ``openai``, ``anthropic``).
        agent_name: ``gen_ai.agent.name`` and the agent span's name suffix.
        request_model: ``gen_ai.request.model`` of the agent span, when known up front.
        enabled: ``False`` makes no spans (e.g. a framework's own instrumentation does it).
    """

    provider: str
    agent_name: str
    request_model: str | None = None
    enabled: bool = True
    agent_span: Span | None = field(default=None, init=False)
    _tool_starts: dict[str, int] = field(default_factory=dict, init=False, repr=False)

    @contextlib.contextmanager
    def agent(self) -> Iterator[None]:
        """``invoke_agent {agent}`` around the block, current while it runs."""
        if not self.enabled:
            yield
            return
        attrs: dict[str, Any] = {
            OPERATION: "invoke_agent",
            PROVIDER: self.provider,
            AGENT_NAME: self.agent_name,
        }
        if self.request_model:
            attrs[REQUEST_MODEL] = self.request_model
        try:
            tracer = trace.get_tracer(_TRACER_NAME)
            span = tracer.start_span(
                f"invoke_agent {self.agent_name}", kind=SpanKind.INTERNAL, attributes=attrs
            )
        except Exception:  # telemetry never breaks the run
            logger.debug("kitaru: could not start an agent span", exc_info=True)
            yield
            return
        self.agent_span = span
        try:
            with trace.use_span(span, end_on_exit=False, record_exception=False):
                yield
        except BaseException as exc:
            self._safe(self._fail, span, type(exc).__name__)
            raise
        finally:
            self._safe(span.end)

    @staticmethod
    def _safe(func: Any, *args: Any) -> None:
        try:
            func(*args)
        except Exception:
            logger.debug("kitaru: a GenAI span update failed", exc_info=True)

    @staticmethod
    def _fail(span: Span, error_type: str) -> None:
        span.set_attribute(ERROR_TYPE, error_type)
        span.set_status(Status(StatusCode.ERROR))

    def _child(self, name: str, kind: SpanKind, attrs: dict[str, Any], start_ns: int) -> Span:
        parent = self.agent_span
        ctx = trace.set_span_in_context(parent) if parent is not None else None
        return trace.get_tracer(_TRACER_NAME).start_span(
            name, context=ctx, kind=kind, attributes=attrs, start_time=start_ns
        )

    def chat(
        self,
        model: str | None,
        *,
        start_ns: int | None = None,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_read_tokens: int = 0,
        error_type: str | None = None,
    ) -> None:
        """One ended ``chat {model}`` span (from ``start_ns`` to now) with its token usage.

        The same tokens go to the ``gen_ai.client.token.usage`` histogram (docs/adapters.md).
        """
        if not self.enabled:
            return
        record_chat_tokens(
            provider=self.provider,
            model=model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
        )
        attrs: dict[str, Any] = {OPERATION: "chat", PROVIDER: self.provider}
        if model:
            attrs[REQUEST_MODEL] = model
            attrs[RESPONSE_MODEL] = model
        attrs[INPUT_TOKENS] = input_tokens
        attrs[OUTPUT_TOKENS] = output_tokens
        if cache_read_tokens:
            attrs[CACHE_READ_TOKENS] = cache_read_tokens

        def make() -> None:
            span = self._child(
                f"chat {model or 'unknown'}", SpanKind.CLIENT, attrs, start_ns or _ns()
            )
            if error_type:
                self._fail(span, error_type)
            span.end()

        self._safe(make)

    def tool_started(self, call_id: str) -> None:
        """Note when tool call ``call_id`` started (its span is made when it ends)."""
        self._tool_starts.setdefault(call_id, _ns())

    def tool_starts_drop(self, call_id: str | None) -> None:
        """Forget the start time of ``call_id`` (its span is made elsewhere)."""
        if call_id:
            self._tool_starts.pop(call_id, None)

    def tool(
        self,
        name: str,
        call_id: str | None,
        *,
        outcome: str,
        start_ns: int | None = None,
        error_type: str | None = None,
    ) -> None:
        """One ended ``execute_tool {tool}`` span; ERROR status unless ``outcome`` is ``ok``."""
        if not self.enabled:
            return
        begun = start_ns or (self._tool_starts.pop(call_id, None) if call_id else None)
        attrs: dict[str, Any] = {
            OPERATION: "execute_tool",
            PROVIDER: self.provider,
            AGENT_NAME: self.agent_name,
            TOOL_NAME: name,
            TOOL_TYPE: "function",
            TOOL_OUTCOME: outcome,
        }
        if call_id:
            attrs[TOOL_CALL_ID] = call_id

        def make() -> None:
            span = self._child(f"execute_tool {name}", SpanKind.INTERNAL, attrs, begun or _ns())
            if outcome in ("error", "retry"):
                self._fail(span, error_type or f"tool_{outcome}")
            span.end()

        self._safe(make)

    def usage(self, input_tokens: int, output_tokens: int) -> None:
        """The run's total token usage on the agent span."""
        span = self.agent_span
        if span is not None:
            self._safe(
                span.set_attributes, {INPUT_TOKENS: input_tokens, OUTPUT_TOKENS: output_tokens}
            )

    def interrupted(self, count: int) -> None:
        """Mark the agent span as paused for a human or an approval."""
        span = self.agent_span
        if span is not None:
            self._safe(
                span.set_attributes,
                {"kitaru.agent.outcome": "interrupted", "kitaru.agent.interruptions": count},
            )
