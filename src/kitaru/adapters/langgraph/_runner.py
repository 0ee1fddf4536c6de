"""``KitaruGraphRunner``: one LangGraph graph call = one kitaru checkpoint."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from kitaru.adapters._common import maybe_await, normalize_name
from kitaru.adapters._entry import AdapterEntry, call_extras, current_extras
from kitaru.adapters._genai import GenAISpans
from kitaru.adapters.langgraph._callbacks import run_callbacks
from kitaru.adapters.langgraph._events import SPEC, GraphStreamObserver
from kitaru.adapters.langgraph._policy import LangGraphStreamPolicy, resolve_modes
from kitaru.exceptions import KitaruUsageError

__all__ = ["KitaruGraphRunner"]


@dataclass(frozen=True, slots=True)
class _Extras:
    config: Any
    kwargs: dict[str, Any]
    on_part: Callable[[Any], Any] | None
    version: str = "v2"


def _thread_id(config: object) -> str | None:
    configurable = config.get("configurable") if isinstance(config, Mapping) else None
    value = configurable.get("thread_id") if isinstance(configurable, Mapping) else None
    return None if value is None else str(value)[:200]


class KitaruGraphRunner(AdapterEntry[LangGraphStreamPolicy]):
    """Runs a compiled LangGraph graph as durable kitaru checkpoints (``graph_call`` mode).

    Each ``invoke``/``ainvoke``/``run_stream``/``arun_stream`` call is one adapter-owned
    checkpoint in the current ``@flow``: the graph's final output is stored, reused on replay
    and (with ``cache=True``) cached. Every surface publishes ``langgraph.stream.*`` live
    events: ``started``, one event per stream part of the watched modes
    (``langgraph.stream.messages``, ``.updates``, ``.custom``, ...; message chunks coalesced),
    one ``langgraph.stream.tool`` per tool call with its outcome, then ``completed`` (status
    ``interrupted`` when the graph stopped in ``interrupt()``) or ``failed``, with per-mode
    counts and token usage. ``run_stream`` returns the final output: it is not an iterator,
    hence not named like LangGraph's ``stream`` (which is refused with a pointer here).

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

    SPEC = SPEC
    POLICY = LangGraphStreamPolicy

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
        self.require()
        if mode != "graph_call":
            raise KitaruUsageError(f"KitaruGraphRunner mode must be 'graph_call', got {mode!r}")
        self.graph_name = normalize_name(name or getattr(graph, "name", None), "graph")
        self.stream_policy = self._setup(
            self.graph_name, stream_policy, cache=cache, retries=retries, arg="stream_policy"
        )
        if not callable(getattr(graph, "stream", None)):
            raise KitaruUsageError(f"KitaruGraphRunner needs a compiled graph, got {graph!r}")
        self.graph = graph
        self.mode = mode
        self._stream_ckpt = self._checkpoint(self._stream_body)
        self._astream_ckpt = self._checkpoint(self._astream_body)

    # -- public surfaces ------------------------------------------------------------------

    def invoke(self, input: Any, config: Any = None, **kwargs: Any) -> Any:
        """``graph.invoke(input, config, **kwargs)`` as one checkpoint; returns its output.

        It runs the graph through its own stream (as ``invoke`` does) to publish the same
        events as :meth:`run_stream` with the policy's default modes. ``Command(resume=...)``
        as ``input`` resumes an interrupted thread.
        """
        version = kwargs.pop("version", "v2")
        modes = self.stream_policy.default_modes
        with call_extras(_Extras(config, kwargs, None, version)):
            return self._stream_ckpt(self._request("invoke", input, config, modes))

    async def ainvoke(self, input: Any, config: Any = None, **kwargs: Any) -> Any:
        """``graph.ainvoke(...)`` as one checkpoint; returns its output (see :meth:`invoke`)."""
        version = kwargs.pop("version", "v2")
        modes = self.stream_policy.default_modes
        with call_extras(_Extras(config, kwargs, None, version)):
            return await self._astream_ckpt(self._request("ainvoke", input, config, modes))

    def run_stream(
        self,
        input: Any,
        config: Any = None,
        *,
        stream_mode: str | Sequence[str] | None = None,
        on_part: Callable[[Any], Any] | None = None,
        version: str = "v2",
        **kwargs: Any,
    ) -> Any:
        """Stream the graph to its end as one checkpoint, publishing ``langgraph.stream.*``.

        Args:
            input: The graph input, or ``Command(resume=...)`` to resume an interrupt.
            config: The ``RunnableConfig`` (its ``thread_id`` appears in events).
            stream_mode: Modes to watch (default: the policy's ``default_modes``).
            on_part: Called with every stream part of the requested modes as it arrives, in
                LangGraph's ``version`` format (``"v2"`` dicts or ``"v1"`` tuples).
            version: The stream part format ``on_part`` receives.
            **kwargs: Passed to ``graph.stream`` (``subgraphs``, ``context``, ...).

        Returns:
            The graph's final output (its last root-namespace state, as ``invoke`` returns,
            with ``__interrupt__`` when it stopped in ``interrupt()``).

        Raises:
            KitaruUsageError: An unknown stream mode, or ``debug`` without ``allow_debug``.
            KitaruContextError: Called outside a ``@flow``.
        """
        modes = self._modes(stream_mode)
        with call_extras(_Extras(config, kwargs, on_part, _version(version))):
            return self._stream_ckpt(self._request("run_stream", input, config, modes))

    async def arun_stream(
        self,
        input: Any,
        config: Any = None,
        *,
        stream_mode: str | Sequence[str] | None = None,
        on_part: Callable[[Any], Any] | None = None,
        version: str = "v2",
        **kwargs: Any,
    ) -> Any:
        """Async :meth:`run_stream` (``on_part`` may be a coroutine function)."""
        modes = self._modes(stream_mode)
        with call_extras(_Extras(config, kwargs, on_part, _version(version))):
            return await self._astream_ckpt(self._request("arun_stream", input, config, modes))

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        """Refused: LangGraph's ``stream`` is an iterator, this adapter returns a final state.

        Raises:
            KitaruUsageError: Always; use :meth:`run_stream` (or ``on_part=`` for the parts).
        """
        raise KitaruUsageError(
            "KitaruGraphRunner.stream() would return the final state, not an iterator of "
            "parts; call run_stream(input, config, on_part=...) (or arun_stream) instead"
        )

    async def astream(self, *args: Any, **kwargs: Any) -> Any:
        """Refused like :meth:`stream`; use :meth:`arun_stream`."""
        raise KitaruUsageError(
            "KitaruGraphRunner.astream() would return the final state, not an async iterator "
            "of parts; call arun_stream(input, config, on_part=...) instead"
        )

    # -- checkpoint bodies ----------------------------------------------------------------

    def _modes(self, stream_mode: str | Sequence[str] | None) -> tuple[str, ...]:
        if stream_mode is None:
            return self.stream_policy.default_modes
        return resolve_modes(stream_mode, allow_debug=self.stream_policy.allow_debug)

    def _request(
        self, surface: str, input: Any, config: Any, modes: tuple[str, ...]
    ) -> dict[str, Any]:
        policy = self.stream_policy
        return {
            "surface": surface,
            "input": input,
            "thread_id": _thread_id(config),
            "stream_modes": list(modes),
            "policy": {
                "include_raw_payloads": policy.include_raw_payloads,
                "include_message_text_deltas": policy.include_message_text_deltas,
                "include_custom_payload": policy.include_custom_payload,
                "max_display_chars": policy.max_display_chars,
            },
        }

    def _extras(self) -> _Extras:
        extras: _Extras | None = current_extras()
        return extras or _Extras(None, {}, None)

    @staticmethod
    def _upstream(modes: list[str]) -> list[str]:
        # ``values`` is always requested: the final output is rebuilt from it.
        return modes if "values" in modes else [*modes, "values"]

    @contextmanager
    def _tracked(
        self, request: dict[str, Any]
    ) -> Iterator[tuple[_Extras, GraphStreamObserver, dict[str, Any]]]:
        extras = self._extras()
        run = self._agent_run(
            {
                "graph_name": self.graph_name,
                "thread_id": request["thread_id"],
                "surface": request["surface"],
            },
            GenAISpans(provider="langgraph", agent_name=self.graph_name),
        )
        live = run.live
        obs = GraphStreamObserver(live, self.stream_policy, request["stream_modes"])
        config = dict(extras.config or {})
        callbacks = config.get("callbacks")
        handler = run_callbacks(run)
        if callbacks is None:
            config["callbacks"] = [handler]
        elif isinstance(callbacks, list):
            config["callbacks"] = [*callbacks, handler]
        else:  # a callback manager: LangChain's own way to add one
            callbacks = callbacks.copy()
            callbacks.add_handler(handler, inherit=True)
            config["callbacks"] = callbacks
        kwargs = {
            **extras.kwargs,
            "stream_mode": self._upstream(request["stream_modes"]),
            "version": "v2",
        }
        with run.track(stream_modes=request["stream_modes"]):
            try:
                yield extras, obs, {"config": config, **kwargs}
            finally:
                live.terminal.update(obs.terminal_fields())
            if obs.interrupt_ids:
                run.interrupt(obs.interrupt_ids, kinds=["interrupt"])

    def _stream_body(self, request: dict[str, Any]) -> Any:
        with self._tracked(request) as (extras, obs, kwargs):
            config = kwargs.pop("config")
            for part in self.graph.stream(request["input"], config, **kwargs):
                if obs.observe(part) and extras.on_part is not None:
                    extras.on_part(_as_version(part, extras.version))
        return obs.output

    async def _astream_body(self, request: dict[str, Any]) -> Any:
        with self._tracked(request) as (extras, obs, kwargs):
            config = kwargs.pop("config")
            async for part in self.graph.astream(request["input"], config, **kwargs):
                if obs.observe(part) and extras.on_part is not None:
                    await maybe_await(extras.on_part(_as_version(part, extras.version)))
        return obs.output


def _version(version: str) -> str:
    if version not in ("v1", "v2"):
        raise KitaruUsageError(f"LangGraph stream version must be 'v1' or 'v2', got {version!r}")
    return version


def _as_version(part: Any, version: str) -> Any:
    """A v2 stream part in the format the caller asked for (v1: ``(ns, mode, data)`` tuple)."""
    if version == "v2" or not isinstance(part, Mapping):
        return part
    namespace = tuple(part.get("ns") or ())
    return (namespace, part.get("type"), part.get("data"))
