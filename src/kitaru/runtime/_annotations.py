"""``kitaru.log(**fields)`` and ``kitaru.record_usage(...)``: what a checkpoint attaches.

Both write to the running checkpoint execution (the ``contextvars`` scope, so threads and tasks
that copy the checkpoint's context attach to it too), or to the execution when called in the
flow body. Values are checked here, on the calling thread, and land in the durable record when
the checkpoint execution ends. See ``docs/runtime-logs-and-metadata.md``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from typing import Any

import orjson

from kitaru.exceptions import KitaruContextError, KitaruUsageError
from kitaru.runtime._scope import _current_checkpoint, current_flow
from kitaru.store._usage import UsageRecord

__all__ = ["MAX_METADATA_BYTES", "log", "record_usage"]

MAX_METADATA_BYTES = 64 * 1024
"""Most bytes of one ``kitaru.log`` field's JSON value."""

_MAX_DEPTH = 32
_MAX_KEY = 256
_lock = threading.Lock()


def _check_value(name: str, value: object, depth: int = 0) -> Any:
    """A JSON-safe copy of ``value``, or a usage error naming the field and the bad part."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise KitaruUsageError(
                f"kitaru.log(): field {name!r} must be JSON-safe; {value!r} is not a finite number"
            )
        return value
    if depth >= _MAX_DEPTH:
        raise KitaruUsageError(f"kitaru.log(): field {name!r} is nested deeper than {_MAX_DEPTH}")
    if isinstance(value, (list, tuple)):
        return [_check_value(name, v, depth + 1) for v in value]
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise KitaruUsageError(
                    f"kitaru.log(): field {name!r} must be JSON-safe; its mapping key {k!r} is "
                    "not a str"
                )
            out[k] = _check_value(name, v, depth + 1)
        return out
    raise KitaruUsageError(
        f"kitaru.log(): field {name!r} must be JSON-safe (None, bool, int, float, str, or "
        f"lists and str-keyed dicts of them); got {type(value).__name__}"
    )


def _check_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    for name, value in fields.items():
        if not name.strip() or len(name) > _MAX_KEY or any(c in name for c in "\r\n"):
            raise KitaruUsageError(
                f"kitaru.log(): field name {name[:40]!r} must be non-blank, at most {_MAX_KEY} "
                "characters and on one line"
            )
        safe = _check_value(name, value)
        size = len(orjson.dumps(safe))
        if size > MAX_METADATA_BYTES:
            raise KitaruUsageError(
                f"kitaru.log(): field {name!r} is {size} bytes as JSON, over the "
                f"{MAX_METADATA_BYTES}-byte bound"
            )
        checked[name] = safe
    return checked


def log(**fields: Any) -> None:
    """Attach JSON-safe key-values to the running checkpoint execution's record.

    Called in a flow body (outside any checkpoint), they go to the execution's record instead.
    Repeated calls merge (a later value replaces an earlier one of the same key). The values are
    stored in the durable record (``AttemptRecord.metadata``, ``ExecutionRecord.metadata``),
    shown by ``kitaru executions get`` and the web view, and primitive values are set on the
    checkpoint's (or flow's) OpenTelemetry span as ``kitaru.meta.<key>``::

        @checkpoint
        def grade(answer: str) -> float:
            score = judge(answer)
            kitaru.log(score=score, model="judge-v2")
            return score

    Raises:
        KitaruUsageError: A value is not JSON-safe, or too large (the error names the field).
        KitaruContextError: Called outside a running flow.
    """
    checked = _check_fields(fields)
    scope = _current_checkpoint.get()
    if scope is not None:
        with _lock:
            if scope.metadata is None:
                scope.metadata = {}
            scope.metadata.update(checked)
        return
    run = current_flow()
    if run is None:
        raise KitaruContextError(
            "kitaru.log() must be called inside a @flow (in a @checkpoint body, or in the flow "
            "body for execution-level metadata)"
        )
    with _lock:
        run.metadata.update(checked)


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise KitaruUsageError(f"kitaru.record_usage(): {name} must be an int >= 0, got {value!r}")
    return value


def record_usage(
    model: str,
    *,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cache_read_tokens: int = 0,
    cost_usd: float | None = None,
) -> None:
    """Record the token usage (and cost, where known) of one model call.

    Usage is summed per checkpoint execution and model: each retried attempt keeps its own
    records, and ``ExecutionRecord.usage_summary()`` sums them per execution. Called in a flow
    body, it is recorded on the execution. When a later run reuses this checkpoint's output
    (``cache=True`` hit, or a replay), that call reports the same tokens as reused, with zero
    incurred cost.

    Args:
        model: The model's name (non-blank).
        input_tokens: Prompt tokens (cache reads included).
        output_tokens: Completion tokens.
        cache_read_tokens: Prompt tokens the provider served from its cache.
        cost_usd: What the call cost in US dollars, when known.

    Raises:
        KitaruUsageError: An argument is invalid.
        KitaruContextError: Called outside a running flow.
    """
    if not isinstance(model, str) or not model.strip():
        raise KitaruUsageError(
            f"kitaru.record_usage(): model must be a non-blank str, got {model!r}"
        )
    inp = _count("input_tokens", input_tokens)
    out = _count("output_tokens", output_tokens)
    cached = _count("cache_read_tokens", cache_read_tokens)
    cost: float | None = None
    if cost_usd is not None:
        if isinstance(cost_usd, bool) or not isinstance(cost_usd, (int, float)):
            raise KitaruUsageError(
                f"kitaru.record_usage(): cost_usd must be a number or None, got {cost_usd!r}"
            )
        cost = float(cost_usd)
        if not math.isfinite(cost) or cost < 0:
            raise KitaruUsageError(
                f"kitaru.record_usage(): cost_usd must be a finite number >= 0, got {cost_usd!r}"
            )
    name = model.strip()
    scope = _current_checkpoint.get()
    if scope is not None:
        attempt = scope.attempt
        with _lock:
            if scope.usage is None:
                scope.usage = {}
            table = scope.usage
            _add(table, name, attempt, inp, out, cached, cost)
        return
    run = current_flow()
    if run is None:
        raise KitaruContextError(
            "kitaru.record_usage() must be called inside a @flow (in a @checkpoint body, or in "
            "the flow body)"
        )
    with _lock:
        _add(run.usage, name, 0, inp, out, cached, cost)


def _add(
    table: dict[str, UsageRecord],
    model: str,
    attempt: int,
    inp: int,
    out: int,
    cached: int,
    cost: float | None,
) -> None:
    rec = table.get(model)
    if rec is None:
        # An empty record (no calls yet): the first report is added like every later one.
        rec = table[model] = UsageRecord(model=model, attempt=attempt, calls=0)
    rec.add(inp, out, cached, cost)
