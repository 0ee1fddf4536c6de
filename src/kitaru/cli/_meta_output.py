"""The metadata and usage sections of ``kitaru executions get``.

Metadata comes from the producer and is untrusted: values are printed as JSON with control
characters escaped. See ``docs/runtime-logs-and-metadata.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from kitaru.cli._logs import printable
from kitaru.store._records import ExecutionRecord

__all__ = ["describe_metadata_and_usage"]

_MAX_VALUE_CHARS = 200


def _value(value: Any) -> str:
    text = orjson.dumps(value).decode() if not isinstance(value, str) else value
    if len(text) > _MAX_VALUE_CHARS:
        text = text[: _MAX_VALUE_CHARS - 3] + "..."
    return printable(text)


def _fields(meta: Mapping[str, Any]) -> str:
    return "  ".join(f"{printable(k)}={_value(v)}" for k, v in meta.items())


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
        for row in (header, *rows)
    ]


def _cost(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def describe_metadata_and_usage(record: ExecutionRecord) -> list[str]:
    """Lines for the execution's metadata and token usage (none when there is neither)."""
    lines: list[str] = []
    meta_rows: list[str] = []
    if record.metadata:
        meta_rows.append(f"  (flow)  {_fields(record.metadata)}")
    for cp in sorted(record.checkpoints, key=lambda c: c.seq):
        for attempt in cp.attempts:
            if attempt.metadata:
                label = printable(cp.step_name) + (
                    f" #{attempt.attempt}" if len(cp.attempts) > 1 else ""
                )
                meta_rows.append(f"  {label}  {_fields(attempt.metadata)}")
    if meta_rows:
        lines += ["", "metadata", *meta_rows]
    usage_rows: list[tuple[str, ...]] = []
    for cp in sorted(record.checkpoints, key=lambda c: c.seq):
        for u in cp.usage:
            usage_rows.append(
                (
                    printable(cp.step_name),
                    printable(u.model),
                    str(u.attempt),
                    str(u.input_tokens),
                    str(u.output_tokens),
                    str(u.cache_read_tokens),
                    _cost(u.cost_usd),
                    f"yes ({_cost(u.reused_cost_usd)})" if u.reused else "",
                )
            )
    for u in record.usage:
        usage_rows.append(
            (
                "(flow)",
                printable(u.model),
                "-",
                str(u.input_tokens),
                str(u.output_tokens),
                str(u.cache_read_tokens),
                _cost(u.cost_usd),
                "",
            )
        )
    if usage_rows:
        total = record.usage_summary()["total"]
        lines += ["", "usage"]
        lines += [
            "  " + row
            for row in _table(
                ("STEP", "MODEL", "ATTEMPT", "INPUT", "OUTPUT", "CACHE_READ", "COST_USD", "REUSED"),
                usage_rows,
            )
        ]
        lines.append(
            f"  total: {total['total_tokens']} tokens ({total['input_tokens']} input, "
            f"{total['output_tokens']} output; {total['reused_input_tokens']} input and "
            f"{total['reused_output_tokens']} output reused), incurred cost "
            f"{_cost(total['cost_usd'])} USD"
        )
    return lines
