"""``AgentRun``: what every adapter tracks for one agent run, in one place.

It bundles the run's live-event lane (:class:`~kitaru.adapters._common.LiveStream`), its tool
clock, its usage tally and its GenAI spans, so each adapter only translates its framework's
hooks into four calls: :meth:`AgentRun.tool_started`, :meth:`AgentRun.tool_finished`,
:meth:`AgentRun.model_call` and :meth:`AgentRun.interrupt`, inside :meth:`AgentRun.track`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from kitaru.adapters._common import LiveStream, ToolClock, clip_text
from kitaru.adapters._genai import GenAISpans
from kitaru.adapters._usage import NO_TOKENS, Tokens, UsageTally, report_usage

__all__ = ["TOOL_OUTCOMES", "AgentRun"]

TOOL_OUTCOMES = ("ok", "error", "retry", "denied")
"""The outcomes a tool-result event may carry (see ``docs/adapters.md``)."""

_ID_MAX_CHARS = 200
_MAX_IDS = 20


class AgentRun:
    """One agent run's live events, tool timings, usage and GenAI spans.

    Args:
        live: The run's live-event lane.
        spans: Its GenAI spans.
    """

    def __init__(self, live: LiveStream, spans: GenAISpans) -> None:
        self.live = live
        self.spans = spans
        self.tools = ToolClock()
        self.usage = UsageTally()

    @contextlib.contextmanager
    def track(self, **start_fields: Any) -> Iterator[AgentRun]:
        """The run's ``invoke_agent`` span and its live stream from started to terminal.

        At the end the usage goes into the terminal event (and onto the agent span).
        """
        with self.spans.agent(), self.live.track(**start_fields):
            try:
                yield self
            finally:
                models = report_usage(self.live, self.usage)
                self.spans.usage(
                    sum(m["input_tokens"] for m in models),
                    sum(m["output_tokens"] for m in models),
                )

    def tool_started(self, call_id: str | None, name: str | None = None) -> None:
        """A tool call began (its ``execute_tool`` span starts now)."""
        if call_id:
            self.tools.start(call_id)
            self.spans.tool_started(call_id)

    def tool_finished(
        self,
        call_id: str | None,
        name: str | None,
        outcome: str,
        *,
        error_type: str | None = None,
        span: bool = True,
    ) -> dict[str, Any]:
        """A tool call ended with ``outcome``; returns the fields its result event carries.

        ``span=False`` when the framework's own tracing already made the ``execute_tool`` span.
        """
        duration = self.tools.finish(call_id, outcome) if call_id else None
        if span:
            self.spans.tool(name or "unknown", call_id, outcome=outcome, error_type=error_type)
        else:
            self.spans.tool_starts_drop(call_id)
        fields: dict[str, Any] = {"outcome": outcome}
        if duration is not None:
            fields["duration_s"] = duration
        return fields

    def model_call(
        self,
        model: str | None,
        tokens: Tokens = NO_TOKENS,
        *,
        start_ns: int | None = None,
        error_type: str | None = None,
    ) -> None:
        """One model request: counted in the usage tally and shown as a ``chat`` span."""
        self.usage.add(model, tokens)
        self.spans.chat(
            model,
            start_ns=start_ns,
            input_tokens=tokens.input,
            output_tokens=tokens.output,
            cache_read_tokens=tokens.cache_read,
            error_type=error_type,
        )

    def interrupt(self, ids: Sequence[str], *, kinds: Sequence[str] = ()) -> None:
        """The run paused for a human or an approval: ``ids`` of what waits (no content)."""
        shown = [clip_text(str(i), _ID_MAX_CHARS) for i in ids[:_MAX_IDS]]
        fields: dict[str, Any] = {"interruption_count": len(ids), "interruption_ids": shown}
        if kinds:
            fields["interruption_kinds"] = sorted(set(kinds))[:_MAX_IDS]
        self.live.interrupt(**fields)
        self.spans.interrupted(len(ids))
