"""Durable records of executions and checkpoint calls, as stored and as returned to users."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from kitaru.store._usage import UsageRecord, summarize_usage
from kitaru.store._values import StoredValue, load_value

__all__ = [
    "CHECKPOINT_STATUSES",
    "EXECUTION_STATUSES",
    "TERMINAL_EXECUTION_STATUSES",
    "AttemptRecord",
    "CheckpointRecord",
    "ExecutionRecord",
]

EXECUTION_STATUSES = ("running", "completed", "failed", "lost", "cancelled")
"""Statuses of an execution (``docs/outcomes.md``)."""

TERMINAL_EXECUTION_STATUSES = frozenset({"completed", "failed", "lost", "cancelled"})
"""Statuses after which an execution never changes again."""

CHECKPOINT_STATUSES = ("running", "completed", "failed", "cached", "replayed")
"""Statuses of a checkpoint call: ``cached`` and ``replayed`` reused a recorded output."""


@dataclass(slots=True)
class AttemptRecord:
    """One attempt of a checkpoint call: one checkpoint execution with its own correlation ID."""

    attempt: int
    correlation_id: str
    status: str
    started_at: float
    ended_at: float | None = None
    error_type: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    """What ``kitaru.log(**fields)`` attached to this checkpoint execution."""
    error_message: str | None = None
    error_traceback: str | None = None


@dataclass(slots=True)
class CheckpointRecord:
    """The durable record of one checkpoint call inside an execution.

    Attributes:
        checkpoint_id: UUID of this call.
        exec_id: The execution it belongs to.
        name: The checkpoint's name.
        step_name: Unique name of the call in its execution (``name``, ``name_2``, ...).
        seq: Order in which calls started inside the execution, from 0.
        checkpoint_type: The checkpoint's type (``checkpoint`` unless an adapter says otherwise).
        status: One of :data:`CHECKPOINT_STATUSES`.
        attempts: Every attempt, in order.
        started_at: Wall-clock start (seconds since the epoch).
        ended_at: Wall-clock end, once finished.
        cache_key: Key of a ``cache=True`` checkpoint's inputs.
        reused_from: ``exec_id/checkpoint_id`` whose output a cached or replayed call reused.
        error_type: Exception class name of a failed call.
        output: The stored output (see :meth:`load_output`).
        usage: Token usage and cost per attempt and model (``kitaru.record_usage``); for a
            cached or replayed call, the reused work's usage with zero incurred cost.
        error_message: The failed call's exception message (bounded; ``None`` when
            ``KITARU_ERROR_DETAIL=type``).
        error_traceback: Its formatted traceback (bounded, with a visible truncation mark).
    """

    checkpoint_id: str
    exec_id: str
    name: str
    step_name: str
    seq: int
    checkpoint_type: str
    status: str
    attempts: list[AttemptRecord] = field(default_factory=list)
    started_at: float = 0.0
    ended_at: float | None = None
    cache_key: str | None = None
    reused_from: str | None = None
    error_type: str | None = None
    output: StoredValue | None = None
    usage: list[UsageRecord] = field(default_factory=list)
    error_message: str | None = None
    error_traceback: str | None = None

    @property
    def retries(self) -> int:
        """How many attempts failed before the last one (0 for a call that ran once)."""
        return max(0, len(self.attempts) - 1)

    def load_output(self) -> Any:
        """Return the stored output as a Python value."""
        if self.output is None:
            raise LookupError(f"checkpoint {self.step_name!r} has no stored output")
        return load_value(self.output)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary of this record."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckpointRecord:
        """Rebuild a record from :meth:`to_dict` output."""
        values = dict(data)
        values["attempts"] = [AttemptRecord(**a) for a in values.get("attempts") or []]
        out = values.get("output")
        values["output"] = StoredValue(**out) if isinstance(out, Mapping) else None
        values["usage"] = [UsageRecord.from_dict(u) for u in values.get("usage") or []]
        return cls(**values)


@dataclass(slots=True)
class ExecutionRecord:
    """The durable record of one flow execution.

    Attributes:
        exec_id: UUID of the execution (also its OpenTelemetry trace ID).
        flow_name: The flow's name.
        flow_ref: ``module:qualname`` of the flow function, for replay in another process.
        status: One of :data:`EXECUTION_STATUSES`.
        created_at: Wall-clock start (seconds since the epoch).
        ended_at: Wall-clock end, once terminal.
        original_exec_id: For a replay, the execution it replays.
        error_type: Exception class name of a failed execution.
        inputs: The flow's stored arguments (for replay).
        output: The flow's stored result.
        heartbeat_at: Last heartbeat of the producing process (server mode).
        checkpoints: The checkpoint calls, in start order (filled by ``get``).
        metadata: What ``kitaru.log(**fields)`` attached in the flow body (filled by ``get``).
        usage: Token usage reported in the flow body, outside checkpoints (filled by ``get``).
    """

    exec_id: str
    flow_name: str
    flow_ref: str | None
    status: str
    created_at: float
    ended_at: float | None = None
    original_exec_id: str | None = None
    error_type: str | None = None
    inputs: StoredValue | None = None
    output: StoredValue | None = None
    heartbeat_at: float | None = None
    checkpoints: list[CheckpointRecord] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    usage: list[UsageRecord] = field(default_factory=list)

    @property
    def is_terminal(self) -> bool:
        """True once the execution completed, failed, was lost or was cancelled."""
        return self.status in TERMINAL_EXECUTION_STATUSES

    def load_output(self) -> Any:
        """Return the flow's stored result as a Python value."""
        if self.output is None:
            raise LookupError(f"execution {self.exec_id} has no stored output")
        return load_value(self.output)

    def checkpoint(self, step_name: str) -> CheckpointRecord:
        """The checkpoint call with this step name."""
        for cp in self.checkpoints:
            if cp.step_name == step_name:
                return cp
        raise KeyError(step_name)

    def usage_summary(self) -> dict[str, Any]:
        """Token usage and cost: total, per model and per checkpoint call.

        See :func:`kitaru.store.summarize_usage`.
        """
        return summarize_usage(self.checkpoints, self.usage)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary of this record."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExecutionRecord:
        """Rebuild a record from :meth:`to_dict` output."""
        values = dict(data)
        for key in ("inputs", "output"):
            raw = values.get(key)
            values[key] = StoredValue(**raw) if isinstance(raw, Mapping) else None
        values["checkpoints"] = [
            CheckpointRecord.from_dict(c) for c in values.get("checkpoints") or []
        ]
        values["metadata"] = dict(values.get("metadata") or {})
        values["usage"] = [UsageRecord.from_dict(u) for u in values.get("usage") or []]
        return cls(**values)
