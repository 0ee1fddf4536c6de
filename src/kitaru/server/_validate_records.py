"""Hand-written validation of the REST API's record bodies.

Executions, checkpoints, finishes, metadata and usage: one pass over each decoded body with
plain type tests, like the event checks of :mod:`kitaru.server._validate`; every error names
the offending field.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from kitaru.server._errors import ApiError, bad_request
from kitaru.server._validate import (
    MAX_INT,
    check_exec_id,
    json_type,
    latest_timestamp,
    short_value,
    timestamp_problem,
)
from kitaru.store._records import (
    CHECKPOINT_STATUSES,
    EXECUTION_STATUSES,
    TERMINAL_EXECUTION_STATUSES,
    AttemptRecord,
    CheckpointRecord,
    ExecutionRecord,
)
from kitaru.store._usage import UsageRecord
from kitaru.store._values import StoredValue

__all__ = [
    "Fields",
    "parse_checkpoint",
    "parse_execution",
    "parse_finish",
    "parse_metadata",
    "parse_usage",
    "same_execution",
]

_VALUE_FORMATS = ("json", "pickle")


class Fields:
    """Typed field access on a decoded JSON object, with errors that name the field."""

    def __init__(self, obj: Any, what: str) -> None:
        if type(obj) is not dict:
            raise bad_request(f"{what} must be a JSON object, got {json_type(obj)}")
        self.obj: dict[str, Any] = obj
        self.what = what

    def _bad(self, name: str, expected: str) -> ApiError:
        value = self.obj.get(name)
        return bad_request(
            f"{self.what}: {name} must be {expected}, got {json_type(value)} {short_value(value)}"
        )

    def text(self, name: str, *, optional: bool = False, nonblank: bool = True) -> Any:
        value = self.obj.get(name)
        if value is None and optional:
            return None
        if not isinstance(value, str) or (nonblank and not value.strip()):
            kind = "a non-blank string" if nonblank else "a string"
            raise self._bad(name, kind + (" or null" if optional else ""))
        return value

    def integer(self, name: str, *, minimum: int = 0) -> int:
        value = self.obj.get(name)
        if type(value) is not int or not minimum <= value <= MAX_INT:
            raise self._bad(name, f"an integer >= {minimum}")
        return value

    def _finite(self, name: str, expected: str, optional: bool) -> float | None:
        """A finite JSON number (``None`` when absent and ``optional``)."""
        value = self.obj.get(name)
        if value is None and optional:
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise self._bad(name, expected + (" or null" if optional else ""))
        return value

    def timestamp(self, name: str, *, optional: bool = False) -> Any:
        """Seconds since the epoch, bounded by the server's clock (see ``MAX_CLOCK_SKEW``)."""
        value = self._finite(name, "a number", optional)
        if value is None:
            return None
        latest = latest_timestamp()
        if not 0 <= value <= latest:
            raise bad_request(f"{self.what}: " + timestamp_problem(name, value, latest))
        return float(value)

    def amount(self, name: str, *, optional: bool = False) -> Any:
        """A finite number >= 0 (a cost, a count of money)."""
        expected = "a number >= 0"
        value = self._finite(name, expected, optional)
        if value is None:
            return None
        if value < 0:
            raise self._bad(name, expected + (" or null" if optional else ""))
        return float(value)

    def choice(self, name: str, choices: tuple[str, ...] | frozenset[str]) -> str:
        value = self.obj.get(name)
        if not isinstance(value, str) or value not in choices:
            raise self._bad(name, "one of " + ", ".join(sorted(choices)))
        return value

    def stored_value(self, name: str) -> StoredValue | None:
        value = self.obj.get(name)
        if value is None:
            return None
        sub = Fields(value, f"{self.what}: {name}")
        fmt = sub.choice("format", _VALUE_FORMATS)
        return StoredValue(fmt, sub.text("data", nonblank=False))


def parse_execution(obj: Any) -> ExecutionRecord:
    """An execution record from ``ExecutionRecord.to_dict()`` (without checkpoints)."""
    f = Fields(obj, "execution")
    exec_id = check_exec_id(obj.get("exec_id"))
    checkpoints = obj.get("checkpoints")
    if checkpoints not in (None, []):
        raise bad_request(
            "execution: checkpoints must be empty or absent; save checkpoint records with "
            "PUT .../checkpoints/{checkpoint_id}"
        )
    return ExecutionRecord(
        exec_id=exec_id,
        flow_name=f.text("flow_name"),
        flow_ref=f.text("flow_ref", optional=True),
        status=f.choice("status", EXECUTION_STATUSES),
        created_at=f.timestamp("created_at"),
        ended_at=f.timestamp("ended_at", optional=True),
        original_exec_id=f.text("original_exec_id", optional=True),
        error_type=f.text("error_type", optional=True),
        inputs=f.stored_value("inputs"),
        output=f.stored_value("output"),
        heartbeat_at=f.timestamp("heartbeat_at", optional=True),
    )


def same_execution(a: ExecutionRecord, b: ExecutionRecord) -> bool:
    """True when two creates describe the same execution (fields a create fixes for good)."""
    return (
        a.exec_id == b.exec_id
        and a.flow_name == b.flow_name
        and a.flow_ref == b.flow_ref
        and a.created_at == b.created_at
        and a.original_exec_id == b.original_exec_id
        and a.inputs == b.inputs
    )


def parse_finish(obj: Any) -> tuple[str, StoredValue | None, str | None]:
    """``{"status", "output", "error_type"}`` of a finish request."""
    f = Fields(obj, "finish")
    return (
        f.choice("status", TERMINAL_EXECUTION_STATUSES),
        f.stored_value("output"),
        f.text("error_type", optional=True),
    )


def _attempt(obj: Any, where: str) -> AttemptRecord:
    f = Fields(obj, where)
    return AttemptRecord(
        attempt=f.integer("attempt"),
        correlation_id=f.text("correlation_id"),
        status=f.text("status"),
        started_at=f.timestamp("started_at"),
        ended_at=f.timestamp("ended_at", optional=True),
        error_type=f.text("error_type", optional=True),
        metadata=parse_metadata(obj.get("metadata"), f"{where}: metadata"),
        error_message=f.text("error_message", optional=True, nonblank=False),
        error_traceback=f.text("error_traceback", optional=True, nonblank=False),
    )


_MAX_METADATA_BYTES = 1024 * 1024


def parse_metadata(obj: Any, where: str) -> dict[str, Any]:
    """``kitaru.log`` metadata: a JSON object (``null``: none), at most 1 MiB as JSON."""
    if obj is None:
        return {}
    if type(obj) is not dict:
        raise bad_request(f"{where} must be a JSON object, got {json_type(obj)}")
    if len(orjson.dumps(obj)) > _MAX_METADATA_BYTES:
        raise bad_request(f"{where} is over {_MAX_METADATA_BYTES} bytes as JSON")
    return obj


def parse_usage(obj: Any, where: str) -> list[UsageRecord]:
    """A list of usage records (``null``: none)."""
    if obj is None:
        return []
    if not isinstance(obj, list):
        raise bad_request(f"{where} must be an array, got {json_type(obj)}")
    out: list[UsageRecord] = []
    for i, item in enumerate(obj):
        f = Fields(item, f"{where}[{i}]")
        cost = f.amount("cost_usd", optional=True)
        reused_cost = f.amount("reused_cost_usd", optional=True)
        reused = item.get("reused", False)
        if not isinstance(reused, bool):
            raise bad_request(f"{where}[{i}]: reused must be a boolean")
        out.append(
            UsageRecord(
                model=f.text("model"),
                attempt=f.integer("attempt"),
                input_tokens=f.integer("input_tokens"),
                output_tokens=f.integer("output_tokens"),
                cache_read_tokens=f.integer("cache_read_tokens"),
                cost_usd=cost,
                calls=f.integer("calls"),
                reused=reused,
                reused_cost_usd=reused_cost,
            )
        )
    return out


def parse_checkpoint(obj: Any, exec_id: str, checkpoint_id: str) -> CheckpointRecord:
    """A checkpoint record from ``CheckpointRecord.to_dict()``; IDs must match the path."""
    f = Fields(obj, "checkpoint")
    if obj.get("checkpoint_id") != checkpoint_id:
        raise bad_request(
            f"checkpoint: checkpoint_id {short_value(obj.get('checkpoint_id'))} does not match the "
            f"path ({checkpoint_id!r})"
        )
    if obj.get("exec_id") != exec_id:
        raise bad_request(
            f"checkpoint: exec_id {short_value(obj.get('exec_id'))} does not match the path "
            f"({exec_id!r})"
        )
    attempts = obj.get("attempts")
    if attempts is None:
        attempts = []
    if not isinstance(attempts, list):
        raise bad_request(f"checkpoint: attempts must be an array, got {json_type(attempts)}")
    return CheckpointRecord(
        checkpoint_id=checkpoint_id,
        exec_id=exec_id,
        name=f.text("name"),
        step_name=f.text("step_name"),
        seq=f.integer("seq"),
        checkpoint_type=f.text("checkpoint_type"),
        status=f.choice("status", CHECKPOINT_STATUSES),
        attempts=[_attempt(a, f"checkpoint: attempts[{i}]") for i, a in enumerate(attempts)],
        started_at=f.timestamp("started_at"),
        ended_at=f.timestamp("ended_at", optional=True),
        cache_key=f.text("cache_key", optional=True),
        reused_from=f.text("reused_from", optional=True),
        error_type=f.text("error_type", optional=True),
        output=f.stored_value("output"),
        usage=parse_usage(obj.get("usage"), "checkpoint: usage"),
        error_message=f.text("error_message", optional=True, nonblank=False),
        error_traceback=f.text("error_traceback", optional=True, nonblank=False),
    )
