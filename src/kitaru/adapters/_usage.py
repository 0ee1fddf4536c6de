"""Token usage and cost of one adapter run, per model, for its terminal event.

Every adapter adds what its framework reports to a :class:`UsageTally` while the run goes and
hands the tally to :func:`report_usage` once, when the run ends: that single function builds the
normalised per-model value that the terminal event carries (see ``docs/adapters.md``).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from kitaru.adapters._common import LiveStream, clip_text
from kitaru.exceptions import KitaruError
from kitaru.runtime._annotations import record_usage

__all__ = ["ModelUsage", "Tokens", "UsageTally", "report_usage"]

logger = logging.getLogger("kitaru.adapters")

_MODEL_MAX_CHARS = 200
_UNKNOWN_MODEL = "unknown"


@dataclass
class ModelUsage:
    """What one model used in one run.

    Attributes:
        model: The model name the framework reported.
        requests: Model requests counted.
        input_tokens: Input (prompt) tokens, cache reads included.
        output_tokens: Output (completion) tokens.
        cache_read_tokens: Input tokens served from the provider's prompt cache.
        cost_usd: Cost in US dollars, when the framework reports one.
    """

    model: str
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cost_usd: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON form carried by the terminal event."""
        out: dict[str, Any] = {
            "model": self.model,
            "requests": self.requests,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
        }
        if self.cost_usd is not None:
            out["cost_usd"] = self.cost_usd
        return out


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


@dataclass(frozen=True)
class Tokens:
    """The token counts of one model request or one run's report.

    Attributes:
        input: Input (prompt) tokens, cache reads included.
        output: Output (completion) tokens.
        cache_read: Input tokens served from the provider's prompt cache.
    """

    input: int = 0
    output: int = 0
    cache_read: int = 0

    @classmethod
    def of(cls, input: object = 0, output: object = 0, cache_read: object = 0) -> Tokens:
        """Counts as a framework reports them: non-integer or negative values count as 0."""
        return cls(_count(input), _count(output), _count(cache_read))


NO_TOKENS = Tokens()
"""A model request that reported no usage (e.g. it failed)."""


class UsageTally:
    """Usage of one run, added up per model (thread-safe)."""

    __slots__ = ("_lock", "_models")

    def __init__(self) -> None:
        self._models: dict[str, ModelUsage] = {}
        self._lock = threading.Lock()

    def add(
        self, model: object, tokens: Tokens, *, cost_usd: object = None, requests: int = 1
    ) -> None:
        """Add one report of ``model`` (``requests`` model requests, 1 by default)."""
        name = clip_text(model, _MODEL_MAX_CHARS) if isinstance(model, str) and model else None
        with self._lock:
            entry = self._models.get(name or _UNKNOWN_MODEL)
            if entry is None:
                entry = self._models[name or _UNKNOWN_MODEL] = ModelUsage(name or _UNKNOWN_MODEL)
            entry.requests += requests
            entry.input_tokens += tokens.input
            entry.output_tokens += tokens.output
            entry.cache_read_tokens += tokens.cache_read
            if isinstance(cost_usd, int | float) and not isinstance(cost_usd, bool):
                entry.cost_usd = (entry.cost_usd or 0.0) + float(cost_usd)

    def models(self) -> list[ModelUsage]:
        """Per-model usage in first-seen order."""
        with self._lock:
            return list(self._models.values())


def report_usage(live: LiveStream, tally: UsageTally) -> list[dict[str, Any]]:
    """Put the run's per-model usage into ``live``'s terminal event; returns that value.

    The terminal event gets ``usage`` (one entry per model: ``model``, ``requests``,
    ``input_tokens``, ``output_tokens``, ``cache_read_tokens`` and ``cost_usd`` when reported)
    and the run totals ``input_tokens``, ``output_tokens``, ``cache_read_tokens``. The same
    figures go into the checkpoint execution's durable record through
    :func:`kitaru.record_usage` (per model), so cost per checkpoint needs nothing more from the
    user (see ``docs/runtime-logs-and-metadata.md``).
    """
    models = tally.models()
    value = [m.as_dict() for m in models]
    live.terminal["usage"] = value
    live.terminal["input_tokens"] = sum(m.input_tokens for m in models)
    live.terminal["output_tokens"] = sum(m.output_tokens for m in models)
    live.terminal["cache_read_tokens"] = sum(m.cache_read_tokens for m in models)
    costs = [m.cost_usd for m in models if m.cost_usd is not None]
    if costs:
        live.terminal["cost_usd"] = sum(costs)
    for m in models:
        if not (m.input_tokens or m.output_tokens or m.cache_read_tokens or m.cost_usd):
            continue
        try:
            record_usage(
                m.model,
                input_tokens=m.input_tokens,
                output_tokens=m.output_tokens,
                cache_read_tokens=m.cache_read_tokens,
                cost_usd=m.cost_usd,
            )
        except KitaruError as exc:
            # Outside a flow there is no record to add to; recording never changes the agent
            # run (adapters are best-effort observers, docs/adapters.md).
            logger.debug("kitaru: usage not recorded (%s)", type(exc).__name__)
    return value
