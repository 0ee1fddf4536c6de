"""How records become SQL rows and back: shared by the SQLite and PostgreSQL stores.

Both stores keep the same columns: an execution's scalar fields plus its ``inputs`` and
``output`` as JSON text, and a checkpoint record's key fields plus its whole record as a JSON
``body``. Only the SQL text (placeholders, table names) differs between them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from kitaru.store._records import CheckpointRecord, ExecutionRecord
from kitaru.store._usage import UsageRecord
from kitaru.store._values import StoredValue

__all__ = [
    "attach_metadata",
    "checkpoint_from_body",
    "checkpoint_row",
    "execution_from_row",
    "execution_row",
    "metadata_body",
    "value_from",
    "value_text",
]


def value_text(value: StoredValue | None) -> str | None:
    """A stored value as the JSON text of its column (``None`` stays ``None``)."""
    if value is None:
        return None
    return orjson.dumps({"format": value.format, "data": value.data}).decode()


def value_from(text: str | None) -> StoredValue | None:
    """The inverse of :func:`value_text`."""
    if text is None:
        return None
    raw = orjson.loads(text)
    return StoredValue(raw["format"], raw["data"])


def execution_row(record: ExecutionRecord) -> tuple[Any, ...]:
    """The values of an execution row, in column order.

    The columns are ``exec_id, flow_name, flow_ref, status, created_at, ended_at,
    original_exec_id, error_type, inputs, output, heartbeat_at``.
    """
    return (
        record.exec_id,
        record.flow_name,
        record.flow_ref,
        record.status,
        record.created_at,
        record.ended_at,
        record.original_exec_id,
        record.error_type,
        value_text(record.inputs),
        value_text(record.output),
        record.heartbeat_at,
    )


def execution_from_row(row: tuple[Any, ...]) -> ExecutionRecord:
    """The inverse of :func:`execution_row` (without checkpoint records)."""
    return ExecutionRecord(
        exec_id=row[0],
        flow_name=row[1],
        flow_ref=row[2],
        status=row[3],
        created_at=row[4],
        ended_at=row[5],
        original_exec_id=row[6],
        error_type=row[7],
        inputs=value_from(row[8]),
        output=value_from(row[9]),
        heartbeat_at=row[10],
    )


def checkpoint_row(record: CheckpointRecord) -> tuple[Any, ...]:
    """The values of a checkpoint row, in column order.

    The columns are ``checkpoint_id, exec_id, seq, cache_key, status, ended_at, body``.
    """
    return (
        record.checkpoint_id,
        record.exec_id,
        record.seq,
        record.cache_key,
        record.status,
        record.ended_at,
        orjson.dumps(record.to_dict()).decode(),
    )


def checkpoint_from_body(body: str) -> CheckpointRecord:
    """A checkpoint record from its ``body`` column."""
    return CheckpointRecord.from_dict(orjson.loads(body))


def metadata_body(metadata: Mapping[str, Any], usage: Sequence[Mapping[str, Any]]) -> str:
    """The ``body`` column of an execution's flow-body metadata and usage."""
    return orjson.dumps({"metadata": dict(metadata), "usage": [dict(u) for u in usage]}).decode()


def attach_metadata(record: ExecutionRecord, body: str) -> None:
    """Fill ``record.metadata`` and ``record.usage`` from a :func:`metadata_body` column."""
    raw = orjson.loads(body)
    record.metadata = dict(raw.get("metadata") or {})
    record.usage = [UsageRecord.from_dict(u) for u in raw.get("usage") or []]
