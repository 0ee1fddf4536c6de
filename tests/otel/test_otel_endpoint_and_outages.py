"""OTLP endpoints are checked when read; a dead collector is one warning per outage."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

import kitaru.otel
from kitaru import checkpoint, flow
from kitaru.exceptions import KitaruUsageError
from kitaru.otel import _setup
from kitaru.otel._trace_setup import TrackedSpanExporter
from kitaru.runtime._runtime import reset_runtime


@checkpoint
def double(x: int) -> int:
    return 2 * x


@flow
def doubled(x: int) -> int:
    return double(x)


@pytest.mark.parametrize(
    "value", ["127.0.0.1:4318", "localhost:4317", "ftp://collector:4318", "http://", "http://:4318"]
)
def test_configure_refuses_an_endpoint_without_http_scheme_and_host(value: str) -> None:
    with pytest.raises(KitaruUsageError) as info:
        kitaru.otel.configure(endpoint=value)
    message = str(info.value)
    assert "endpoint must be an http:// or https:// URL with a host" in message
    assert repr(value) in message
    if value == "127.0.0.1:4318":
        assert "did you mean http://127.0.0.1:4318?" in message


@pytest.mark.parametrize(
    "name", ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
)
def test_a_mistyped_endpoint_variable_is_one_line_naming_it_and_the_flow_runs(
    name: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(name, "127.0.0.1:4318")
    reset_runtime()
    with caplog.at_level(logging.WARNING, logger="kitaru"):
        assert doubled(21) == 42
    lines = [r for r in caplog.records if "OpenTelemetry" in r.getMessage()]
    assert len(lines) == 1, caplog.text
    assert lines[0].exc_info is None  # no traceback
    assert name in lines[0].getMessage() and "http://127.0.0.1:4318" in lines[0].getMessage()
    assert _setup.owned_provider() is None


class _Flaky(SpanExporter):
    def __init__(self, outcomes: Sequence[object]) -> None:
        self.outcomes = list(outcomes)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        assert isinstance(outcome, SpanExportResult)
        return outcome

    def shutdown(self) -> None:
        pass


def test_one_warning_per_outage_and_one_when_it_is_over(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ok, bad = SpanExportResult.SUCCESS, SpanExportResult.FAILURE
    inner = _Flaky([ok, bad, ConnectionError("down"), bad, ok, ok, ConnectionError("x"), bad])
    tracked = TrackedSpanExporter(inner, "http://user:secret@collector:4318/v1/traces?k=v")
    with caplog.at_level(logging.INFO, logger="kitaru.otel"):
        results = [tracked.export([]) for _ in range(8)]
    assert results == [ok, bad, bad, bad, ok, ok, bad, bad]  # never raises
    messages = [r.getMessage() for r in caplog.records if r.name == "kitaru.otel"]
    assert messages == [
        "kitaru: cannot export spans to http://collector:4318 (the collector did not accept "
        "them); spans are dropped until it answers (flows are not affected)",
        "kitaru: span export to http://collector:4318 works again",
        "kitaru: cannot export spans to http://collector:4318 (ConnectionError); spans are "
        "dropped until it answers (flows are not affected)",
    ]
    assert "secret" not in caplog.text


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_a_dead_collector_costs_one_warning_line_not_sdk_tracebacks(
    protocol: str, tmp_path: Path
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    script = textwrap.dedent(
        """
        import logging
        from kitaru.otel import _setup
        from kitaru import checkpoint, flow

        logging.basicConfig(level=logging.DEBUG if False else logging.INFO)

        @checkpoint
        def step(i: int) -> int:
            return i

        @flow
        def many(n: int) -> int:
            total = 0
            for i in range(n):
                total += step(i)
                _setup.owned_provider().force_flush(2000)
            return total

        print("result", many(4))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KITARU_", "OTEL_"))}
    env.update(
        KITARU_HOME=str(tmp_path / "home"),
        OTEL_EXPORTER_OTLP_ENDPOINT=closed,
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_EXPORTER_OTLP_TIMEOUT="0.5",
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "result 6"
    warnings = [line for line in done.stderr.splitlines() if "cannot export spans" in line]
    assert len(warnings) == 1, done.stderr
    assert closed in warnings[0]
    assert "Traceback" not in done.stderr
    assert "Transient error" not in done.stderr and "Failed to export" not in done.stderr
