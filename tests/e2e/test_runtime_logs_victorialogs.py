"""End to end: what a checkpoint logs and prints, in the real log store under its span.

kitaru (OTLP over HTTP, by the standard variables) -> the real Collector (its logs pipeline)
-> the real VictoriaLogs, queried over its LogsQL HTTP API by the trace ID computed from the
execution ID: the checkpoint's three ``logging`` lines and its printed line are there with
their severities, and carry the span ID that the checkpoint's finished span has in the real
Jaeger.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import pytest

import kitaru.otel
from kitaru import checkpoint, flow

try:
    from . import _procs
    from .test_live_logs_victorialogs import _hex, _set_env, clean_otel
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _procs  # type: ignore[no-redef]
    from test_live_logs_victorialogs import (  # type: ignore[no-redef]  # noqa: F401
        _hex,
        _set_env,
        clean_otel,
    )

pytestmark = [
    pytest.mark.collector,
    pytest.mark.jaeger,
    pytest.mark.victorialogs,
    pytest.mark.timeout(180),
]

MARK = "runlog-5c2e8a"
user_log = logging.getLogger("kitaru_e2e.runtime_logs")


@checkpoint
def talkative(n: int) -> int:
    user_log.info("%s info %d", MARK, n)
    user_log.warning("%s warning", MARK)
    user_log.error("%s error", MARK)
    print(f"{MARK} printed")
    return n


@flow
def talkative_flow(n: int) -> int:
    return talkative(n)


@pytest.fixture
def info_logger() -> Any:
    user_log.setLevel(logging.INFO)
    yield user_log
    user_log.setLevel(logging.NOTSET)


def test_checkpoint_log_lines_are_in_victorialogs_under_the_checkpoint_span(
    monkeypatch: pytest.MonkeyPatch,
    info_logger: logging.Logger,
    otelcol_logs: _procs.Otelcol,
    victorialogs: _procs.VictoriaLogs,
    jaeger: _procs.Jaeger,
) -> None:
    _set_env(monkeypatch, otelcol_logs, "http/protobuf")
    handle = talkative_flow.run(3)
    assert handle.wait(60) == 3
    trace_id = kitaru.otel.trace_id_for_execution(handle.exec_id)

    def lines() -> list[dict[str, Any]] | None:
        rows = victorialogs.query(f'trace_id:"{trace_id}" AND "kitaru.log.stream":*')
        return rows if len(rows) >= 4 else None

    rows = _procs.wait_until(lines, timeout=30, interval=0.3, what="the runtime log lines")
    rows.sort(key=lambda r: int(r["kitaru.log.line"]))
    assert [
        (r["_msg"], r["severity_text"], r["kitaru.log.stream"], r.get("kitaru.log.logger"))
        for r in rows
    ] == [
        (f"{MARK} info 3", "INFO", "logging", user_log.name),
        (f"{MARK} warning", "WARN", "logging", user_log.name),
        (f"{MARK} error", "ERROR", "logging", user_log.name),
        (f"{MARK} printed", "INFO", "stdout", None),
    ]

    spans = jaeger.wait_for_trace(trace_id, min_spans=2, timeout=60)
    (span_id,) = [_hex(s["spanId"]) for s in spans if s["name"] == "kitaru.checkpoint talkative"]
    assert {r["trace_id"] for r in rows} == {trace_id}
    assert {r["span_id"] for r in rows} == {span_id}
    assert {r["kitaru.checkpoint.name"] for r in rows} == {"talkative"}
    assert {r["kitaru.execution.id"] for r in rows} == {handle.exec_id}


def test_runtime_logs_switch_keeps_the_lines_out_but_not_the_live_events(
    monkeypatch: pytest.MonkeyPatch,
    info_logger: logging.Logger,
    otelcol_logs: _procs.Otelcol,
    victorialogs: _procs.VictoriaLogs,
    jaeger: _procs.Jaeger,
) -> None:
    _set_env(monkeypatch, otelcol_logs, "http/protobuf")
    monkeypatch.setenv("KITARU_OTEL_RUNTIME_LOGS", "false")
    handle = talkative_flow.run(4)
    assert handle.wait(60) == 4
    trace_id = kitaru.otel.trace_id_for_execution(handle.exec_id)
    # The live events arrive (so the pipeline works) ...
    _procs.wait_until(
        lambda: victorialogs.query(
            f'trace_id:"{trace_id}" AND event_name:"kitaru.checkpoint.returned"'
        ),
        timeout=30,
        interval=0.3,
        what="the returned event",
    )
    # ... and no line of the checkpoint's own (it would have been queued before the
    # returned event, on the same emitter, to the same batch processor).
    assert victorialogs.query(f'trace_id:"{trace_id}" AND "kitaru.log.stream":*') == []
    assert victorialogs.query(f'trace_id:"{trace_id}" AND "{MARK}"') == []
