"""The LangChain callback handler through which the adapter sees model calls and tools.

LangGraph runs every node, chat model and tool with LangChain's callbacks, so one handler in
the call's config reports, for any surface: each model call's token usage (and a ``chat``
span), and each tool's outcome and duration (a ``langgraph.stream.tool`` event and an
``execute_tool`` span). It reads names, IDs and counts only (see ``docs/adapters.md``).
"""

from __future__ import annotations

import threading
import time
from functools import cache
from typing import Any

from kitaru.adapters._common import ident
from kitaru.adapters._run import AgentRun
from kitaru.adapters._usage import NO_TOKENS, Tokens
from kitaru.adapters.langgraph._events import SPEC

__all__ = ["TOOL_KIND", "run_callbacks"]

TOOL_KIND = SPEC.kind("tool")


def _model_name(serialized: Any, kwargs: dict[str, Any]) -> str | None:
    meta = kwargs.get("metadata") or {}
    params = kwargs.get("invocation_params") or {}
    for value in (
        meta.get("ls_model_name"),
        params.get("model"),
        params.get("model_name"),
        (serialized or {}).get("name") if isinstance(serialized, dict) else None,
    ):
        if isinstance(value, str) and value:
            return value
    return None


def _usage(response: Any) -> Tokens:
    for batch in getattr(response, "generations", None) or ():
        for gen in batch:
            meta = getattr(getattr(gen, "message", None), "usage_metadata", None)
            if isinstance(meta, dict):
                details = meta.get("input_token_details") or {}
                return Tokens.of(
                    int(meta.get("input_tokens") or 0),
                    int(meta.get("output_tokens") or 0),
                    int(details.get("cache_read") or 0),
                )
    return NO_TOKENS


@cache
def _handler_class() -> type[Any]:
    from langchain_core.callbacks import BaseCallbackHandler

    class KitaruGraphCallbacks(BaseCallbackHandler):
        """Counts usage per model and times tools for one graph call."""

        raise_error = False
        run_inline = True

        def __init__(self, run: AgentRun) -> None:
            self.run = run
            self._models: dict[Any, tuple[str | None, int]] = {}
            self._tools: dict[Any, tuple[str, str | None, str | None]] = {}
            self._lock = threading.Lock()

        def on_chat_model_start(
            self, serialized: Any, messages: Any, *, run_id: Any, **kwargs: Any
        ) -> None:
            with self._lock:
                self._models[run_id] = (_model_name(serialized, kwargs), time.time_ns())

        def on_llm_start(
            self, serialized: Any, prompts: Any, *, run_id: Any, **kwargs: Any
        ) -> None:
            with self._lock:
                self._models[run_id] = (_model_name(serialized, kwargs), time.time_ns())

        def on_llm_end(self, response: Any, *, run_id: Any, **kwargs: Any) -> None:
            with self._lock:
                model, start = self._models.pop(run_id, (None, None))
            self.run.model_call(model, _usage(response), start_ns=start)

        def on_llm_error(self, error: BaseException, *, run_id: Any, **kwargs: Any) -> None:
            with self._lock:
                model, start = self._models.pop(run_id, (None, None))
            self.run.model_call(model, start_ns=start, error_type=type(error).__name__)

        def on_tool_start(
            self, serialized: Any, input_str: str, *, run_id: Any, **kwargs: Any
        ) -> None:
            name = ident((serialized or {}).get("name")) or "unknown"
            inputs = kwargs.get("inputs")
            call_id = kwargs.get("tool_call_id") or (
                inputs.get("tool_call_id") if isinstance(inputs, dict) else None
            )
            meta = kwargs.get("metadata") or {}
            node = ident(meta.get("langgraph_node"))
            key = ident(call_id) or str(run_id)
            with self._lock:
                self._tools[run_id] = (name, key, node)
            self.run.tool_started(key, name)

        def on_tool_end(self, output: Any, *, run_id: Any, **kwargs: Any) -> None:
            status = getattr(output, "status", None)
            call_id = ident(getattr(output, "tool_call_id", None))
            self._finish(run_id, "error" if status == "error" else "ok", None, call_id)

        def on_tool_error(self, error: BaseException, *, run_id: Any, **kwargs: Any) -> None:
            self._finish(run_id, "error", type(error).__name__, None)

        def _finish(
            self, run_id: Any, outcome: str, error_type: str | None, call_id: str | None
        ) -> None:
            with self._lock:
                name, key, node = self._tools.pop(run_id, ("unknown", None, None))
            fields = self.run.tool_finished(key, name, outcome, error_type=error_type)
            event: dict[str, Any] = {
                "category": "tool_result",
                "display": f"Tool result: {name} ({outcome})",
                "tool_name": name,
                **fields,
            }
            if call_id or (key and key != str(run_id)):
                event["tool_call_id"] = call_id or key
            if node:
                event["node_name"] = node
            if error_type:
                event["error_type"] = error_type
            self.run.live.item(event, kind=TOOL_KIND)

    return KitaruGraphCallbacks


def run_callbacks(run: AgentRun) -> Any:
    """A LangChain callback handler reporting one graph call to ``run``."""
    return _handler_class()(run)
