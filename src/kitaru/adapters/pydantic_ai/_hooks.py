"""The PydanticAI capability through which the adapter sees a run (tools, model requests, stream).

Two flavours: :func:`run_capability` without a stream hook (so a run that was not streamed is
not turned into a streamed one) publishes tool and model events from PydanticAI's tool and
model-request hooks; with ``stream=True`` it also publishes every node-stream event. Both feed
the run's tool outcomes, durations and usage (see ``docs/adapters.md``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator
from functools import cache
from typing import Any

from kitaru.adapters._common import ident
from kitaru.adapters._run import AgentRun
from kitaru.adapters._usage import Tokens
from kitaru.adapters.pydantic_ai._events import describe_event, tool_result_outcome

__all__ = ["run_capability"]


def _tool_fields(call: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    name = ident(getattr(call, "tool_name", None))
    call_id = ident(getattr(call, "tool_call_id", None))
    if name:
        fields["tool_name"] = name
    if call_id:
        fields["tool_call_id"] = call_id
    return fields


def _outcome_of(exc: BaseException) -> str | None:
    """The tool outcome a tool exception means, or ``None`` for control flow (deferral)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {"ToolRetryError", "ModelRetry"}:
        return "retry"
    if names & {"CallDeferred", "ApprovalRequired", "SkipToolExecution"}:
        return None
    return "error"


@cache
def _classes() -> tuple[type[Any], type[Any]]:
    from pydantic_ai.capabilities import AbstractCapability

    class KitaruRunHooks(AbstractCapability[Any]):
        """Tool and model-request hooks: outcomes, durations, usage (and events if unstreamed)."""

        def __init__(self, run: AgentRun, *, transcripts: bool, streamed: bool) -> None:
            self._run = run
            self._transcripts = transcripts
            self._streamed = streamed

        async def wrap_tool_execute(
            self, ctx: Any, *, call: Any, tool_def: Any, args: Any, handler: Any
        ) -> Any:
            run, fields = self._run, _tool_fields(call)
            call_id, name = fields.get("tool_call_id"), fields.get("tool_name")
            run.tool_started(call_id, name)
            if not self._streamed:
                run.live.item(
                    {
                        "category": "function_tool_call",
                        "event_type": "FunctionToolCallEvent",
                        "display": f"Function tool call: {name or 'unknown'}",
                        **fields,
                    }
                )
            try:
                result = await handler(args)
            except BaseException as exc:
                outcome = _outcome_of(exc)
                if outcome is not None:
                    self._finish(fields, outcome, type(exc).__name__)
                raise
            self._finish(fields, "ok", None)
            return result

        def _finish(self, fields: dict[str, Any], outcome: str, error_type: str | None) -> None:
            call_id, name = fields.get("tool_call_id"), fields.get("tool_name")
            result = self._run.tool_finished(call_id, name, outcome, error_type=error_type)
            if not self._streamed:
                self._run.live.item(
                    {
                        "category": "function_tool_result",
                        "event_type": "FunctionToolResultEvent",
                        "display": f"Function tool result: {name or 'unknown'} ({outcome})",
                        **fields,
                        **result,
                    }
                )

        async def wrap_model_request(self, ctx: Any, *, request_context: Any, handler: Any) -> Any:
            start = time.time_ns()
            try:
                response = await handler(request_context)
            except BaseException as exc:
                model = getattr(getattr(request_context, "model", None), "model_name", None)
                self._run.model_call(model, start_ns=start, error_type=type(exc).__name__)
                raise
            usage = getattr(response, "usage", None)
            model = getattr(response, "model_name", None)
            tokens = Tokens.of(
                getattr(usage, "input_tokens", 0),
                getattr(usage, "output_tokens", 0),
                getattr(usage, "cache_read_tokens", 0),
            )
            self._run.model_call(model, tokens, start_ns=start)
            if not self._streamed:
                parts = getattr(response, "parts", ()) or ()
                self._run.live.item(
                    {
                        "category": "model_response",
                        "event_type": "ModelResponse",
                        "display": f"Model response: {len(parts)} parts",
                        "part_count": len(parts),
                        "part_kinds": sorted({str(getattr(p, "part_kind", "?")) for p in parts}),
                    }
                )
            return response

    class KitaruStreamHooks(KitaruRunHooks):
        """Also publishes each node-stream event, coalescing text deltas."""

        async def wrap_run_event_stream(
            self, ctx: Any, *, stream: AsyncIterable[Any]
        ) -> AsyncIterator[Any]:
            try:
                async for event in stream:
                    self._publish(event)
                    yield event
            finally:
                aclose = getattr(stream, "aclose", None)
                if aclose is not None:
                    await aclose()

        def _publish(self, event: Any) -> None:
            live, transcripts = self._run.live, self._transcripts

            def describe(e: Any) -> dict[str, Any]:
                fields = describe_event(e, transcripts=transcripts)
                if fields.get("event_kind") == "function_tool_result":
                    call_id = fields.get("tool_call_id")
                    known = self._run.tools.result(call_id) if call_id else None
                    outcome = known[0] if known else tool_result_outcome(e)
                    fields["outcome"] = outcome
                    if known and known[1] is not None:
                        fields["duration_s"] = known[1]
                    if known is None:
                        self._run.spans.tool(
                            fields.get("tool_name", "unknown"), call_id, outcome=outcome
                        )
                return fields

            if getattr(event, "event_kind", None) == "part_delta":
                try:
                    fields = describe_event(event, transcripts=False)
                    text = describe_event(event, transcripts=True).get("text_delta")
                except Exception:
                    live.item(live.fallback_fields(event))
                    return
                key = f"part:{fields.get('index', '?')}"
                live.delta(key, fields, text=text if transcripts else None)
                return
            if getattr(event, "event_kind", None) == "part_end":
                live.flush_deltas(f"part:{getattr(event, 'index', '?')}")
            live.observe(event, describe)

    return KitaruRunHooks, KitaruStreamHooks


def run_capability(run: AgentRun, *, transcripts: bool, stream: bool) -> Any:
    """The capability that reports one run to ``run`` (with node-stream events if ``stream``)."""
    plain, streamed = _classes()
    cls = streamed if stream else plain
    return cls(run, transcripts=transcripts, streamed=stream)
