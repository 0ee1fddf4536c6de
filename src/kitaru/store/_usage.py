"""Token usage and cost of model calls, per checkpoint execution and summed per execution.

One :class:`UsageRecord` holds what one checkpoint execution (one attempt) spent on one model.
A cached or replayed checkpoint call reuses earlier work: it carries copies of the source's
records marked ``reused``, with the tokens they stand for and zero incurred cost (the cost the
work had is kept as ``reused_cost_usd``). See ``docs/runtime-logs-and-metadata.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kitaru.store._records import CheckpointRecord

__all__ = ["UsageRecord", "UsageTotals", "summarize_usage", "usage_by_checkpoint_name"]


@dataclass(slots=True)
class UsageRecord:
    """What one checkpoint execution spent on one model.

    Attributes:
        model: The model's name, as the caller reported it.
        attempt: The attempt (checkpoint execution) that spent it; 0 for flow-body usage.
        input_tokens: Prompt tokens.
        output_tokens: Completion tokens.
        cache_read_tokens: Prompt tokens the provider served from its cache.
        cost_usd: Incurred cost in US dollars (``None``: not known); 0 for reused work.
        calls: How many reports were summed into this record.
        reused: True when this is earlier work a cached or replayed call reused.
        reused_cost_usd: For reused work, what it cost when it ran (``None``: not known).
    """

    model: str
    attempt: int
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cost_usd: float | None = None
    calls: int = 1
    reused: bool = False
    reused_cost_usd: float | None = None

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens (cache reads are part of the input)."""
        return self.input_tokens + self.output_tokens

    def add(
        self, input_tokens: int, output_tokens: int, cache_read_tokens: int, cost: float | None
    ) -> None:
        """Add one more report of the same model in the same attempt."""
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.cache_read_tokens += cache_read_tokens
        if cost is not None:
            self.cost_usd = (self.cost_usd or 0.0) + cost
        self.calls += 1

    def as_reused(self) -> UsageRecord:
        """A copy standing for this work when a later call reuses it: zero incurred cost."""
        original = self.reused_cost_usd if self.reused else self.cost_usd
        return UsageRecord(
            model=self.model,
            attempt=self.attempt,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_read_tokens=self.cache_read_tokens,
            cost_usd=0.0,
            calls=self.calls,
            reused=True,
            reused_cost_usd=original,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UsageRecord:
        """Rebuild a record from :meth:`to_dict` output."""
        return cls(**dict(data))


@dataclass(slots=True)
class UsageTotals:
    """Usage summed over several records (a checkpoint call, an execution, a model).

    ``input_tokens``/``output_tokens``/``cache_read_tokens`` count every token, incurred or
    reused; ``reused_*`` count the reused part. ``cost_usd`` is the incurred cost only (``None``
    when no record knew its cost); ``reused_cost_usd`` what the reused work had cost.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    reused_input_tokens: int = 0
    reused_output_tokens: int = 0
    cost_usd: float | None = None
    reused_cost_usd: float | None = None
    calls: int = 0

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def add(self, record: UsageRecord) -> None:
        """Add one record."""
        self.input_tokens += record.input_tokens
        self.output_tokens += record.output_tokens
        self.cache_read_tokens += record.cache_read_tokens
        self.calls += record.calls
        if record.reused:
            self.reused_input_tokens += record.input_tokens
            self.reused_output_tokens += record.output_tokens
            if record.reused_cost_usd is not None:
                self.reused_cost_usd = (self.reused_cost_usd or 0.0) + record.reused_cost_usd
        if record.cost_usd is not None:
            self.cost_usd = (self.cost_usd or 0.0) + record.cost_usd

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (with ``total_tokens``)."""
        data = asdict(self)
        data["total_tokens"] = self.total_tokens
        return data


def summarize_usage(
    checkpoints: Iterable[CheckpointRecord], extra: Iterable[UsageRecord] = ()
) -> dict[str, Any]:
    """The usage of an execution: its total, per model, and per checkpoint call.

    Args:
        checkpoints: The execution's checkpoint records.
        extra: Usage recorded in the flow body, outside any checkpoint.

    Returns:
        ``{"total": {...}, "by_model": {model: {...}}, "by_checkpoint": {step_name: {...}}}``
        (each value a :meth:`UsageTotals.to_dict`); checkpoint calls without usage are left out.
    """
    total = UsageTotals()
    by_model: dict[str, UsageTotals] = {}
    by_step: dict[str, UsageTotals] = {}
    for cp in checkpoints:
        for rec in cp.usage:
            total.add(rec)
            by_model.setdefault(rec.model, UsageTotals()).add(rec)
            by_step.setdefault(cp.step_name, UsageTotals()).add(rec)
    for rec in extra:
        total.add(rec)
        by_model.setdefault(rec.model, UsageTotals()).add(rec)
    return {
        "total": total.to_dict(),
        "by_model": {k: v.to_dict() for k, v in by_model.items()},
        "by_checkpoint": {k: v.to_dict() for k, v in by_step.items()},
    }


def usage_by_checkpoint_name(
    executions: Iterable[Iterable[CheckpointRecord]],
) -> dict[str, dict[str, Any]]:
    """Usage summed per checkpoint *name* over several executions (the usage dashboard).

    Args:
        executions: Each execution's checkpoint records.

    Returns:
        ``{checkpoint name: UsageTotals.to_dict() + {"executions": n}}``, where ``executions``
        counts the executions in which that checkpoint reported usage.
    """
    totals: dict[str, UsageTotals] = {}
    seen: dict[str, int] = {}
    for checkpoints in executions:
        names: set[str] = set()
        for cp in checkpoints:
            for rec in cp.usage:
                totals.setdefault(cp.name, UsageTotals()).add(rec)
                names.add(cp.name)
        for name in names:
            seen[name] = seen.get(name, 0) + 1
    return {name: {**t.to_dict(), "executions": seen[name]} for name, t in totals.items()}
