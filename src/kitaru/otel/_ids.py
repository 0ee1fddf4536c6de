"""The execution-to-trace mapping: pure functions every process and watcher can compute.

* trace ID of an execution: :func:`kitaru._ids.trace_id_for` (a UUID execution ID is its own
  128-bit trace ID, so the execution ID pasted into a trace viewer finds the trace);
* span ID of its flow span: the first 16 hex digits of
  ``sha256("kitaru.flow:" + <trace ID>)`` (the next 16 if those are all zero, which the
  OpenTelemetry specification forbids).

Because the flow span's ID is known without asking anyone, a checkpoint running in another
process (a worker, a forked child) can parent its span to the flow span of its execution.
"""

from __future__ import annotations

import functools
import hashlib

from kitaru._ids import trace_id_for

__all__ = ["flow_span_id_for_execution", "trace_id_for_execution"]

_INVALID_SPAN_ID = "0" * 16


def trace_id_for_execution(exec_id: str) -> str:
    """The OpenTelemetry trace ID of an execution, as 32 lowercase hex digits.

    For a UUID execution ID this is the UUID's 128 bits (``str(uuid).replace("-", "")``); any
    other string maps to the first 128 bits of its SHA-256.

    Args:
        exec_id: The execution ID.

    Returns:
        The trace ID every span of the execution belongs to (when kitaru creates the trace).
    """
    return trace_id_for(exec_id)


@functools.lru_cache(maxsize=1024)
def flow_span_id_for_execution(exec_id: str) -> str:
    """The span ID of an execution's flow span, as 16 lowercase hex digits.

    A pure function of the execution ID: ``sha256(b"kitaru.flow:" + trace_id)`` truncated to 64
    bits, where ``trace_id`` is :func:`trace_id_for_execution` of ``exec_id``.

    Args:
        exec_id: The execution ID.

    Returns:
        The flow span's ID, so any process that knows the execution ID can parent to it.
    """
    digest = hashlib.sha256(b"kitaru.flow:" + trace_id_for(exec_id).encode()).hexdigest()
    for start in range(0, len(digest), 16):
        candidate = digest[start : start + 16]
        if candidate != _INVALID_SPAN_ID:
            return candidate
    return "0000000000000001"  # unreachable in practice: SHA-256 is never all zeros
