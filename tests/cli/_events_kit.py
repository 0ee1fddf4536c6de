"""Synthetic live events for the lane and rendering tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kitaru.events import (
    CHECKPOINT_FAILED_KIND,
    CHECKPOINT_PROGRESS_KIND,
    CHECKPOINT_RETURNED_KIND,
    CHECKPOINT_STARTED_KIND,
    ExecutionEvent,
)

EXEC = "6f1c1f0e-5d0a-4c8e-9a57-0a1b2c3d4e5f"
TRACE = "6f1c1f0e5d0a4c8e9a570a1b2c3d4e5f"


def ev(
    corr: str,
    index: int,
    kind: str,
    *,
    name: str = "fetch",
    ts: float | None = None,
    message: str | None = None,
    data: dict[str, Any] | None = None,
    cursor: str | None = None,
    attempt: int = 1,
    **extra: Any,
) -> ExecutionEvent:
    meta: dict[str, Any] = {
        "source": "kitaru",
        "checkpoint_name": name,
        "correlation_id": corr,
        "execution_id": EXEC,
        "attempt": attempt,
        "trace_id": TRACE,
        "span_id": f"{abs(hash(corr)) % 16**16:016x}",
    }
    if ts is not None:
        meta["ts"] = ts
    payload: dict[str, Any] = {"kitaru": meta, **extra}
    if message is not None:
        payload["message"] = message
    if data is not None:
        payload["data"] = data
    return ExecutionEvent(
        exec_id=EXEC,
        kind=kind,
        payload=payload,
        correlation_id=corr,
        index=index,
        cursor=cursor,
        checkpoint_id=f"cp-{corr}",
        checkpoint_name=name,
        step_name=name,
    )


def lane_events(
    corr: str, *, name: str = "fetch", t0: float = 100.0, fail: bool = False
) -> Iterator[ExecutionEvent]:
    yield ev(corr, 0, CHECKPOINT_STARTED_KIND, name=name, ts=t0, status="started")
    yield ev(
        corr,
        1,
        CHECKPOINT_PROGRESS_KIND,
        name=name,
        ts=t0 + 1,
        message="Collecting notes",
        data={"percent": 0.25},
    )
    yield ev(
        corr, 2, "custom.note", name=name, ts=t0 + 2, message="a custom note", data={"rows": 3}
    )
    yield ev(
        corr,
        3,
        CHECKPOINT_PROGRESS_KIND,
        name=name,
        ts=t0 + 3,
        message="Writing draft",
        data={"percent": 0.75},
    )
    if fail:
        yield ev(
            corr,
            4,
            CHECKPOINT_FAILED_KIND,
            name=name,
            ts=t0 + 4,
            status="failed",
            error_type="ValueError",
            message="Checkpoint function raised an exception.",
        )
    else:
        yield ev(corr, 4, CHECKPOINT_RETURNED_KIND, name=name, ts=t0 + 4, status="returned")
