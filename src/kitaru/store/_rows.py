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
    "list_filters",
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


def list_filters(
    placeholder: str,
    *,
    flow_name: str | None,
    status: str | None,
    limit: int,
    id_prefix: str | None = None,
    offset: int = 0,
) -> tuple[str, list[Any]]:
    """The ``WHERE ... ORDER BY ... LIMIT ... OFFSET`` tail of ``list_executions``, and its args.

    Args:
        placeholder: The driver's parameter marker (``?`` for sqlite3, ``%s`` for psycopg).
        flow_name: Only executions of this flow.
        status: Only executions with this status.
        limit: Most rows (negative counts as 0).
        id_prefix: Only executions whose ID starts with this text (compared as text, so
            ``%`` and ``_`` are no wildcards).
        offset: Rows to skip (paging; the order is newest first, then by ID, so stable).
    """
    where: list[str] = []
    args: list[Any] = []
    if flow_name is not None:
        where.append(f"flow_name={placeholder}")
        args.append(flow_name)
    if status is not None:
        where.append(f"status={placeholder}")
        args.append(status)
    if id_prefix:
        where.append(f"substr(exec_id, 1, {len(id_prefix)})={placeholder}")
        args.append(id_prefix)
    sql = " WHERE " + " AND ".join(where) if where else ""
    sql += f" ORDER BY created_at DESC, exec_id DESC LIMIT {placeholder} OFFSET {placeholder}"
    args.append(max(0, int(limit)))
    args.append(max(0, int(offset)))
    return sql, args


def metadata_body(metadata: Mapping[str, Any], usage: Sequence[Mapping[str, Any]]) -> str:
    """The ``body`` column of an execution's flow-body metadata and usage."""
    return orjson.dumps({"metadata": dict(metadata), "usage": [dict(u) for u in usage]}).decode()


def attach_metadata(record: ExecutionRecord, body: str) -> None:
    """Fill ``record.metadata`` and ``record.usage`` from a :func:`metadata_body` column."""
    raw = orjson.loads(body)
    record.metadata = dict(raw.get("metadata") or {})
    record.usage = [UsageRecord.from_dict(u) for u in raw.get("usage") or []]
