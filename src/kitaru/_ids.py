"""Identifiers: execution IDs, correlation IDs and the execution-to-trace mapping."""

from __future__ import annotations

import hashlib
import random
import uuid

__all__ = [
    "new_checkpoint_id",
    "new_correlation_id",
    "new_exec_id",
    "span_id_hex",
    "trace_id_for",
]

# Checkpoint and correlation IDs only need to be unique, not unguessable: they come from the
# process's seeded generator (re-seeded in a forked child, like OpenTelemetry's span IDs), which
# costs a fraction of a system call for entropy on every checkpoint.
_bits = random.getrandbits
_V4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_V4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_exec_id() -> str:
    """A fresh execution ID (a random UUID in its canonical text form)."""
    return str(uuid.uuid4())


def new_checkpoint_id() -> str:
    """A fresh checkpoint ID: a random (version 4) UUID in its canonical text form."""
    h = f"{(_bits(128) & _V4_CLEAR) | _V4_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_correlation_id(checkpoint_name: str) -> str:
    """``kitaru.checkpoint:<name>:<32 lowercase hex>``, fresh for every checkpoint execution."""
    return f"kitaru.checkpoint:{checkpoint_name}:{_bits(128):032x}"


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
