"""Identifiers: execution IDs, correlation IDs and the execution-to-trace mapping."""

from __future__ import annotations

import hashlib
import os
import uuid

__all__ = ["new_correlation_id", "new_exec_id", "span_id_hex", "trace_id_for"]


def new_exec_id() -> str:
    """A fresh execution ID (a random UUID in its canonical text form)."""
    return str(uuid.uuid4())


def new_correlation_id(checkpoint_name: str) -> str:
    """``kitaru.checkpoint:<name>:<32 lowercase hex>``, fresh for every checkpoint execution."""
    return f"kitaru.checkpoint:{checkpoint_name}:{os.urandom(16).hex()}"


def trace_id_for(exec_id: str) -> str:
    """The OpenTelemetry trace ID (32 lowercase hex) of an execution.

    A pure function of the execution ID, so every process and every watcher computes the same
    value: a UUID execution ID is its own trace ID (its 128 bits, so pasting the execution ID
    into Jaeger finds the trace); any other string maps to the first 128 bits of its SHA-256.
    """
    try:
        value = uuid.UUID(exec_id).hex
    except (ValueError, AttributeError, TypeError):
        value = hashlib.sha256(str(exec_id).encode()).hexdigest()[:32]
    if value == "0" * 32:  # the all-zero trace ID is invalid in OpenTelemetry
        value = hashlib.sha256(b"kitaru-zero-trace").hexdigest()[:32]
    return value


def span_id_hex(span_id: int) -> str:
    """A span ID as 16 lowercase hex digits."""
    return format(span_id, "016x")
