"""``KitaruGraphRunner``: one LangGraph graph call = one kitaru checkpoint."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kitaru.adapters._common import (
    adapter_checkpoint,
    call_extras,
    current_extras,
    normalize_name,
    require_module,
)
from kitaru.adapters.langgraph._events import GraphStreamObserver, new_stream
from kitaru.adapters.langgraph._policy import LangGraphStreamPolicy, resolve_modes
from kitaru.exceptions import KitaruUsageError

__all__ = ["KitaruGraphRunner"]

_EXTRA = "langgraph"
CHECKPOINT_TYPE = "langgraph_graph_call"


@dataclass(frozen=True, slots=True)
class _Extras:
    config: Any
    kwargs: dict[str, Any]
    on_part: Callable[[Any], Any] | None


def _thread_id(config: object) -> str | None:
    configurable = config.get("configurable") if isinstance(config, Mapping) else None
    value = configurable.get("thread_id") if isinstance(configurable, Mapping) else None
    return None if value is None else str(value)[:200]


class KitaruGraphRunner:
    """Runs a compiled LangGraph graph as durable kitaru checkpoints (``graph_call`` mode).

    Each ``invoke``/``ainvoke``/``stream``/``astream`` call is one adapter-owned checkpoint in
    the current ``@flow``: the graph's final output is stored, reused on replay and (with
    ``cache=True``) cached. ``stream()`` and ``astream()`` also publish ``langgraph.stream.*``
    live events: ``started``, one event per stream part of the requested modes
    (``langgraph.stream.messages``, ``.updates``, ``.custom``, ...), then ``completed`` or
    ``failed`` with per-mode counts.

    Args:
        graph: A compiled LangGraph graph (anything with ``invoke``/``stream``).
        name: Label used in events and the checkpoint name (default: the graph's name).
        mode: The durability boundary; only ``"graph_call"`` (one checkpoint per call).
        stream_policy: Stream modes and event content (default :class:`LangGraphStreamPolicy`).
        cache: Reuse the stored output of an earlier call with the same input, thread ID and
            stream settings (other config is not part of the key).
        retries: Extra attempts of a failing call.

    Raises:
        MissingExtraError: LangGraph is not installed (``pip install 'kitaru[langgraph]'``).
    """

    def __init__(
        self,
        graph: Any,
        *,
        name: str | None = None,
        mode: str = "graph_call",
        stream_policy: LangGraphStreamPolicy | None = None,
        cache: bool = False,
        retries: int = 0,
    ) -> None:
        require_module("langgraph", extra=_EXTRA, feature="kitaru.adapters.langgraph")
        if mode != "graph_call":
            raise KitaruUsageError(f"KitaruGraphRunner mode must be 'graph_call', got {mode!r}")
        if stream_policy is not None and not isinstance(stream_policy, LangGraphStreamPolicy):
            raise KitaruUsageError(
                f"stream_policy must be a LangGraphStreamPolicy, got {stream_policy!r}"
            )
        if not callable(getattr(graph, "stream", None)):
            raise KitaruUsageError(f"KitaruGraphRunner needs a compiled graph, got {graph!r}")
        self.graph = graph
        self.mode = mode
        self.graph_name = normalize_name(name or getattr(graph, "name", None), "graph")
        self.stream_policy = stream_policy or LangGraphStreamPolicy()
        base = f"{self.graph_name}_langgraph_call"
        opts: dict[str, Any] = {"type": CHECKPOINT_TYPE, "cache": cache, "retries": retries}
        self._invoke_ckpt = adapter_checkpoint(self._invoke_body, name=base, **opts)
        self._ainvoke_ckpt = adapter_checkpoint(self._ainvoke_body, name=base, **opts)
        self._stream_ckpt = adapter_checkpoint(self._stream_body, name=base, **opts)
        self._astream_ckpt = adapter_checkpoint(self._astream_body, name=base, **opts)

    def __repr__(self) -> str:
        return f"<KitaruGraphRunner {self.graph_name!r}>"

    # -- public surfaces ------------------------------------------------------------------

    def invoke(self, input: Any, config: Any = None, **kwargs: Any) -> Any:
        """``graph.invoke(input, config, **kwargs)`` as one checkpoint; returns its output."""
        with call_extras(_Extras(config, kwargs, None)):
            return self._invoke_ckpt(self._request("invoke", input, config, None))

    async def ainvoke(self, input: Any, config: Any = None, **kwargs: Any) -> Any:
        """``graph.ainvoke(...)`` as one checkpoint; returns its output."""
        with call_extras(_Extras(config, kwargs, None)):
            return await self._ainvoke_ckpt(self._request("ainvoke", input, config, None))

    def stream(
        self,
        input: Any,
        config: Any = None,
        *,
        stream_mode: str | Sequence[str] | None = None,
        on_part: Callable[[Any], Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Stream the graph to its end as one checkpoint, publishing ``langgraph.stream.*``.

        Args:
            input: The graph input (or a ``Command``).
            config: The ``RunnableConfig`` (its ``thread_id`` appears in events).
            stream_mode: Modes to watch (default: the policy's ``default_modes``).
            on_part: Called with every v2 stream part of the requested modes as it arrives.
            **kwargs: Passed to ``graph.stream`` (``subgraphs``, ``context``, ...).

        Returns:
            The graph's final output (its last root-namespace state, as ``invoke`` returns).

        Raises:
            KitaruUsageError: An unknown stream mode, or ``debug`` without ``allow_debug``.
            KitaruContextError: Called outside a ``@flow``.
        """
        modes = self._modes(stream_mode)
        with call_extras(_Extras(config, kwargs, on_part)):
            return self._stream_ckpt(self._request("stream", input, config, modes))

    async def astream(
        self,
        input: Any,
        config: Any = None,
        *,
        stream_mode: str | Sequence[str] | None = None,
        on_part: Callable[[Any], Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Async :meth:`stream` (``on_part`` may be a coroutine function)."""
        modes = self._modes(stream_mode)
        with call_extras(_Extras(config, kwargs, on_part)):
            return await self._astream_ckpt(self._request("astream", input, config, modes))

    # -- checkpoint bodies ----------------------------------------------------------------

    def _modes(self, stream_mode: str | Sequence[str] | None) -> tuple[str, ...]:
        if stream_mode is None:
            return self.stream_policy.default_modes
        return resolve_modes(stream_mode, allow_debug=self.stream_policy.allow_debug)

    def _request(
        self, surface: str, input: Any, config: Any, modes: tuple[str, ...] | None
    ) -> dict[str, Any]:
        policy = self.stream_policy
        request: dict[str, Any] = {
            "surface": surface,
            "input": input,
            "thread_id": _thread_id(config),
        }
        if modes is not None:
            request["stream_modes"] = list(modes)
            request["policy"] = {
                "include_raw_payloads": policy.include_raw_payloads,
                "include_message_text_deltas": policy.include_message_text_deltas,
                "include_custom_payload": policy.include_custom_payload,
                "max_display_chars": policy.max_display_chars,
            }
        return request

    def _extras(self) -> _Extras:
        extras: _Extras | None = current_extras()
        return extras or _Extras(None, {}, None)

    def _invoke_body(self, request: dict[str, Any]) -> Any:
        extras = self._extras()
        return self.graph.invoke(request["input"], extras.config, **extras.kwargs)

    async def _ainvoke_body(self, request: dict[str, Any]) -> Any:
        extras = self._extras()
        return await self.graph.ainvoke(request["input"], extras.config, **extras.kwargs)

    def _observer(self, request: dict[str, Any]) -> GraphStreamObserver:
        live = new_stream(
            self.graph_name,
            request["thread_id"],
            enabled=self.stream_policy.emit_child_events,
        )
        return GraphStreamObserver(live, self.stream_policy, request["stream_modes"])

    @staticmethod
    def _upstream(modes: list[str]) -> list[str]:
        # ``values`` is always requested: the final output is rebuilt from it.
        return modes if "values" in modes else [*modes, "values"]

    def _stream_body(self, request: dict[str, Any]) -> Any:
        extras = self._extras()
        obs = self._observer(request)
        obs.live.start(status="started", stream_modes=request["stream_modes"])
        try:
            for part in self.graph.stream(
                request["input"],
                extras.config,
                stream_mode=self._upstream(request["stream_modes"]),
                version="v2",
                **extras.kwargs,
            ):
                if obs.observe(part) and extras.on_part is not None:
                    extras.on_part(part)
        except BaseException as exc:
            obs.live.fail(exc, **obs.terminal_fields())
            raise
        obs.live.complete(**obs.terminal_fields())
        return obs.output

    async def _astream_body(self, request: dict[str, Any]) -> Any:
        extras = self._extras()
        obs = self._observer(request)
        obs.live.start(status="started", stream_modes=request["stream_modes"])
        try:
            async for part in self.graph.astream(
                request["input"],
                extras.config,
                stream_mode=self._upstream(request["stream_modes"]),
                version="v2",
                **extras.kwargs,
            ):
                if obs.observe(part) and extras.on_part is not None:
                    outcome = extras.on_part(part)
                    if inspect.isawaitable(outcome):
                        await outcome
        except BaseException as exc:
            obs.live.fail(exc, **obs.terminal_fields())
            raise
        obs.live.complete(**obs.terminal_fields())
        return obs.output
