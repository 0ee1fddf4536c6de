"""Helpers the examples share: a kitaru server to talk to, and a printed trace tree.

Not part of kitaru; the examples import it from their own folder.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def kitaru_server() -> Iterator[str]:
    """The server named by ``KITARU_SERVER_URL``, else one started in this process.

    Live events need a server-backed connection, so an example that watches them runs against
    one. The in-process server listens on a free 127.0.0.1 port and keeps its database in a
    temporary folder; it stops when the block ends.
    """
    url = os.environ.get("KITARU_SERVER_URL", "").strip()
    if url:
        yield url
        return
    from kitaru.server import serve_in_thread

    with (
        tempfile.TemporaryDirectory(prefix="kitaru-example-") as tmp,
        serve_in_thread(db=Path(tmp) / "server.db") as server,
    ):
        # Set before the first flow runs: kitaru builds its runtime from the environment.
        os.environ["KITARU_SERVER_URL"] = server.url
        try:
            yield server.url
        finally:
            import kitaru

            kitaru.events.flush(timeout=5.0)  # nothing left for a server that is going away
            os.environ.pop("KITARU_SERVER_URL", None)


def trace_tree(spans: Iterable[Any]) -> list[str]:
    """Lines of an indented tree of finished OpenTelemetry SDK spans, parents first."""
    spans = list(spans)
    children: dict[int | None, list[Any]] = {}
    ids = {s.context.span_id for s in spans}
    for span in spans:
        parent = span.parent.span_id if span.parent is not None else None
        children.setdefault(parent if parent in ids else None, []).append(span)
    lines: list[str] = []

    def walk(span: Any, prefix: str, last: bool, top: bool) -> None:
        attrs = dict(span.attributes or {})
        step = attrs.get("kitaru.checkpoint.step") or attrs.get("kitaru.flow.name") or ""
        status = attrs.get("kitaru.checkpoint.status") or attrs.get("kitaru.flow.status") or ""
        took = (span.end_time - span.start_time) / 1e9 if span.end_time else 0.0
        events = f", {len(span.events)} events" if span.events else ""
        branch = "" if top else ("└─ " if last else "├─ ")
        kind = span.name.split(" ", 1)[0]  # "kitaru.flow" / "kitaru.checkpoint" / another
        label = f"{kind} {step}" if step else span.name
        lines.append(f"{prefix}{branch}{label} [{status}] {took:.2f}s{events}")
        kids = sorted(children.get(span.context.span_id, []), key=lambda s: s.start_time)
        inner = prefix + ("" if top else ("   " if last else "│  "))
        for i, kid in enumerate(kids):
            walk(kid, inner, i == len(kids) - 1, False)

    for root in sorted(children.get(None, []), key=lambda s: s.start_time):
        lines.append(f"trace {root.context.trace_id:032x}")
        walk(root, "", True, True)
    return lines
