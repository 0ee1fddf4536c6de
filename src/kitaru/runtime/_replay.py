"""Replay planning: which checkpoint calls of an execution are reused, which run again."""

from __future__ import annotations

from dataclasses import dataclass, field

from kitaru.exceptions import KitaruStateError
from kitaru.store._records import CheckpointRecord, ExecutionRecord

__all__ = ["RESUMABLE_STATUSES", "ReplayPlan", "plan_replay", "plan_resume"]

_REUSABLE = frozenset({"completed", "cached", "replayed"})

RESUMABLE_STATUSES = ("failed", "lost", "cancelled")
"""Statuses of an execution that ``resume`` continues."""


@dataclass(slots=True)
class ReplayPlan:
    """Step names whose recorded outputs a replay reuses, and the step it re-executes from."""

    original_exec_id: str
    from_step: str | None
    reuse: dict[str, CheckpointRecord] = field(default_factory=dict)


def plan_replay(original: ExecutionRecord, from_: str | None) -> ReplayPlan:
    """Plan a replay of ``original`` from the checkpoint call ``from_``.

    ``from_`` is a step name (``fetch``, ``fetch_2``; ``fetch_1`` also names the first call),
    a checkpoint ID, or a checkpoint name that was called exactly once. Every checkpoint call
    that started before it and has a recorded output is reused; it and everything after it run
    again. ``None`` re-runs every checkpoint.

    Raises:
        KitaruStateError: ``from_`` names no checkpoint call of the execution, or a checkpoint
            called several times (the message lists the step names to choose from).
    """
    plan = ReplayPlan(original_exec_id=original.exec_id, from_step=None)
    if from_ is None:
        return plan
    if not isinstance(from_, str) or not from_.strip():
        raise KitaruStateError(f"from_ must be a step or checkpoint name, got {from_!r}")
    selector = from_.strip()
    calls = original.checkpoints
    by_name = [c for c in calls if c.name == selector]
    if len(by_name) > 1:
        steps = ", ".join(f"{selector}_1" if i == 0 else c.step_name for i, c in enumerate(by_name))
        raise KitaruStateError(
            f"from_={selector!r} is ambiguous in execution {original.exec_id}: checkpoint "
            f"{selector!r} ran {len(by_name)} times; pass one of {steps} (or a checkpoint ID)"
        )
    target = next((c for c in calls if selector in (c.step_name, c.checkpoint_id)), None)
    if target is None and selector.endswith("_1"):
        # ``name_1`` selects the first call of a checkpoint called several times.
        first = [c for c in calls if c.name == selector[:-2]]
        target = first[0] if first else None
    if target is None:
        known = ", ".join(dict.fromkeys(c.step_name for c in calls)) or "none"
        raise KitaruStateError(
            f"from_={selector!r} names no checkpoint of execution {original.exec_id} "
            f"(its steps: {known})"
        )
    plan.from_step = target.step_name
    for call in calls:
        if call.seq < target.seq and call.status in _REUSABLE and call.output is not None:
            plan.reuse[call.step_name] = call
    return plan


def plan_resume(original: ExecutionRecord) -> ReplayPlan:
    """Plan a resume of ``original``: reuse every checkpoint call that completed, run the rest.

    Calls are matched by step name (``fetch``, ``fetch_2``, ...), which a flow hands out in
    call order, so the same code with the same inputs finds the same names again.

    Raises:
        KitaruStateError: ``original`` is not ``failed``, ``lost`` or ``cancelled``.
    """
    if original.status not in RESUMABLE_STATUSES:
        raise KitaruStateError(
            f"execution {original.exec_id} is {original.status}; only "
            f"{', '.join(RESUMABLE_STATUSES)} executions can be resumed"
        )
    plan = ReplayPlan(original_exec_id=original.exec_id, from_step=None)
    for call in original.checkpoints:
        if call.status in _REUSABLE and call.output is not None:
            plan.reuse[call.step_name] = call
    return plan
