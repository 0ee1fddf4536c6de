"""What every adapter's entry point shares: its checkpoints, its policy, its framework check.

Each entry point (``KitaruAgent``, ``KitaruRunner``, ``KitaruClaudeRunner``,
``KitaruGraphRunner``) is an :class:`AdapterEntry`: it checks that its framework is installed,
takes its capture policy, and runs every call as an adapter-owned checkpoint whose arguments
are the call's durable identity while callbacks and live SDK objects travel in
:func:`call_extras` (see ``docs/adapters.md``, "Cache keys").
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Callable, Coroutine, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar, Generic, TypeVar, cast

from kitaru.adapters._common import AdapterPolicy, normalize_name, require_module
from kitaru.adapters._genai import GenAISpans
from kitaru.adapters._run import AgentRun
from kitaru.adapters._spec import AdapterSpec
from kitaru.exceptions import KitaruUsageError
from kitaru.runtime._checkpoint import Checkpoint

__all__ = [
    "AdapterEntry",
    "AgentEntry",
    "adapter_checkpoint",
    "call_extras",
    "current_extras",
    "run_coroutine_sync",
]

T = TypeVar("T")
P = TypeVar("P", bound=AdapterPolicy)

_extras: contextvars.ContextVar[Any] = contextvars.ContextVar("kitaru_adapter_extras", default=None)


def adapter_checkpoint(
    func: Callable[..., Any],
    *,
    name: str,
    type: str,
    cache: bool = False,
    retries: int = 0,
) -> Checkpoint[Any, Any]:
    """An adapter-owned checkpoint: a real :class:`~kitaru.Checkpoint` (durable, replay, cache).

    Its arguments are the call's durable identity (they form the cache key with ``cache=True``);
    whatever must not be part of it (callbacks, dependencies, live SDK objects) travels in
    :func:`call_extras`.
    """
    return Checkpoint(func, name=name, type=type, cache=cache, retries=retries)


@contextlib.contextmanager
def call_extras(value: Any) -> Iterator[None]:
    """Make ``value`` the non-durable extras of the adapter checkpoint called in this block."""
    token = _extras.set(value)
    try:
        yield
    finally:
        _extras.reset(token)


def current_extras() -> Any:
    """The extras set by :func:`call_extras` around the running adapter checkpoint call."""
    return _extras.get()


def run_coroutine_sync(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run the coroutine ``factory()`` makes to its end from synchronous code.

    With no event loop running in this thread it uses :func:`asyncio.run`; inside a running
    loop (a notebook, an async framework) it runs on a helper thread with a copy of this
    context, so checkpoint scope and OpenTelemetry context carry over.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    ctx = contextvars.copy_context()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kitaru-adapter") as pool:
        return pool.submit(ctx.run, lambda: asyncio.run(factory())).result()


class AdapterEntry(Generic[P]):
    """The shared part of an adapter's entry point; subclasses set the class attributes.

    Attributes:
        SPEC: The adapter's names: package, framework module, event kinds, checkpoints.
        POLICY: The adapter's policy class (what its live events may contain).
        cache: Whether the adapter's checkpoints reuse earlier results with the same identity.
    """

    SPEC: ClassVar[AdapterSpec]
    POLICY: ClassVar[type[AdapterPolicy]]

    _label: str
    _policy: AdapterPolicy
    _checkpoint_opts: dict[str, Any]
    cache: bool

    @classmethod
    def require(cls) -> None:
        """Raise :class:`~kitaru.adapters.MissingExtraError` when the framework is missing."""
        spec = cls.SPEC
        require_module(spec.module, extra=spec.extra, feature=f"kitaru.adapters.{spec.adapter}")

    def _setup(
        self, label: str, policy: P | None, *, cache: bool, retries: int, arg: str = "capture"
    ) -> P:
        """Take the entry point's name and checkpoint options; return its policy.

        Raises:
            KitaruUsageError: ``policy`` is not an instance of :attr:`POLICY`.
        """
        cls_name = self.POLICY.__name__
        if policy is not None and not isinstance(policy, self.POLICY):
            article = "an" if cls_name[0] in "AEIOU" else "a"
            raise KitaruUsageError(f"{arg} must be {article} {cls_name}, got {policy!r}")
        self._label = label
        self.cache = cache
        self._checkpoint_opts = {
            "name": f"{label}_{self.SPEC.checkpoint_suffix}",
            "type": self.SPEC.checkpoint_type,
            "cache": cache,
            "retries": retries,
        }
        chosen = policy if policy is not None else cast(P, self.POLICY())
        self._policy = chosen
        return chosen

    def _checkpoint(self, body: Callable[..., Any], suffix: str = "") -> Checkpoint[Any, Any]:
        """An adapter checkpoint running ``body``, named after the entry point (+ ``suffix``)."""
        opts = dict(self._checkpoint_opts)
        opts["name"] += suffix
        return adapter_checkpoint(body, **opts)

    def _agent_run(self, fields: Mapping[str, Any], spans: GenAISpans) -> AgentRun:
        """A new run of this entry point: its live stream (events carry ``fields``) and spans."""
        live = self.SPEC.open(
            fields,
            enabled=self._policy.emit_child_events,
            delta_interval=self._policy.delta_interval,
        )
        return AgentRun(live, spans)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._label!r}>"


class AgentEntry(AdapterEntry[P]):
    """An entry point wrapping one agent object: ``Entry(agent, name=, capture=, ...)``.

    Args:
        agent: The framework's agent.
        name: The agent name used in events and the checkpoint name (default: the agent's
            ``name``); normalised to letters, digits and ``_``.
        capture: What live events may contain (default: the adapter's policy).
        cache: Reuse the stored result of an earlier run with the same identity.
        retries: Extra attempts of a failing run.
    """

    def __init__(
        self,
        agent: Any,
        *,
        name: str | None = None,
        capture: P | None = None,
        cache: bool = False,
        retries: int = 0,
    ) -> None:
        self.require()
        self._check_agent(agent)
        self.agent = agent
        self.agent_name = normalize_name(name or getattr(agent, "name", None), "agent")
        self.capture: P = self._setup(self.agent_name, capture, cache=cache, retries=retries)
        self._make_checkpoints()

    def _check_agent(self, agent: Any) -> None:
        """Raise :class:`~kitaru.KitaruUsageError` when ``agent`` is not the framework's."""

    def _make_checkpoints(self) -> None:
        """Build the entry point's checkpoints (with :meth:`_checkpoint`)."""
        raise NotImplementedError
