"""Render spans as an indented tree of lines, for exact assertions.

Works on SDK ``ReadableSpan`` objects (unit tests) and on plain dictionaries built from Jaeger
or OTLP payloads (e2e tests), through the small :class:`S` record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Attributes shown in the tree: the ones whose values are stable across runs.
SHOWN = (
    "kitaru.checkpoint.step",
    "kitaru.checkpoint.attempt",
    "kitaru.checkpoint.status",
    "kitaru.cache_hit",
    "kitaru.replayed",
    "kitaru.flow.status",
    "error.type",
    "kitaru.events.dropped",
)


@dataclass
class S:
    name: str
    trace_id: str
    span_id: str
    parent_id: str | None
    status: str  # UNSET | OK | ERROR
    description: str | None
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    links: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    start: int = 0
    end: int = 0


def from_sdk(spans: Iterable[Any]) -> list[S]:
    out = []
    for sp in spans:
        out.append(
            S(
                name=sp.name,
                trace_id=format(sp.context.trace_id, "032x"),
                span_id=format(sp.context.span_id, "016x"),
                parent_id=format(sp.parent.span_id, "016x") if sp.parent else None,
                status=sp.status.status_code.name,
                description=sp.status.description,
                attributes=dict(sp.attributes or {}),
                events=[(e.name, dict(e.attributes or {})) for e in sp.events],
                links=[
                    (
                        format(ln.context.trace_id, "032x"),
                        format(ln.context.span_id, "016x"),
                        dict(ln.attributes or {}),
                    )
                    for ln in sp.links
                ],
                start=sp.start_time,
                end=sp.end_time,
            )
        )
    return out


def _label(span: S, with_events: bool) -> list[str]:
    shown = " ".join(f"{k}={span.attributes[k]}" for k in SHOWN if k in span.attributes)
    head = f"{span.name} [{span.status}{':' + span.description if span.description else ''}]"
    lines = [f"{head} {shown}".rstrip()]
    if with_events:
        for name, attrs in span.events:
            shown_attrs = ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs))
            lines.append(f"  * {name} {{{shown_attrs}}}")
    return lines


def _order(span: S) -> tuple[Any, ...]:
    step = str(span.attributes.get("kitaru.checkpoint.step", ""))
    base, _, num = step.rpartition("_")
    key = (base, int(num)) if num.isdigit() and base else (step, 1)
    return (*key, int(span.attributes.get("kitaru.checkpoint.attempt", 0)), span.name, span.start)


def render(spans: Iterable[S], *, events: bool = True) -> list[str]:
    """Indented lines, roots first; children ordered by step name (natural) then attempt.

    Orphans (a parent ID that is not among the spans) are shown as roots marked ``(orphan)``.
    """
    items = list(spans)
    ids = {s.span_id for s in items}
    children: dict[str | None, list[S]] = {}
    for s in items:
        parent = s.parent_id if s.parent_id in ids else None
        children.setdefault(parent, []).append(s)
    lines: list[str] = []

    def walk(span: S, depth: int) -> None:
        label = _label(span, events)
        if depth == 0 and span.parent_id is not None:
            label[0] += " (orphan)"
        lines.extend("  " * depth + line for line in label)
        for child in sorted(children.get(span.span_id, []), key=_order):
            walk(child, depth + 1)

    for root in sorted(children.get(None, []), key=_order):
        walk(root, 0)
    return lines


def strings_of(spans: Iterable[S]) -> str:
    """Everything a span says, as one string (to search for leaked secrets)."""
    parts: list[str] = []
    for s in spans:
        parts += [s.name, s.description or "", repr(s.attributes)]
        parts += [f"{n} {a!r}" for n, a in s.events]
        parts += [repr(ln) for ln in s.links]
    return "\n".join(parts)


def attrs_map(values: Mapping[str, Any]) -> dict[str, Any]:
    return dict(values)
