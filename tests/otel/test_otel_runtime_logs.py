"""Captured runtime log lines also leave as OpenTelemetry log records, under their checkpoint
span; ``KITARU_OTEL_RUNTIME_LOGS=false`` (or log records off) keeps them out."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kitaru import checkpoint, flow
from kitaru.otel import KitaruOtelObserver
from kitaru.runtime._observer import ObserverGroup, RuntimeObserver
from kitaru.testing import capture_events

user_log = logging.getLogger("kitaru_tests.otel_runtime_logs")
TRUE_TEXT = "ducks-7f3a"


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@checkpoint
def chatty(x: int) -> int:
    user_log.info("starting %d %s", x, TRUE_TEXT)
    user_log.warning("careful")
    user_log.error("broken")
    print(f"printed {x}")
    return x


@flow
def chatty_flow() -> int:
    return chatty(7)


class Setup:
    def __init__(self, **bridge_opts: Any) -> None:
        self.spans = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.logs = InMemoryLogRecordExporter()
        self.logger_provider = LoggerProvider()
        self.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(self.logs))
        self.bridge = KitaruOtelObserver(
            tracer_provider=tracer_provider, logger_provider=self.logger_provider, **bridge_opts
        )

    def run(self, tmp_path: Any) -> None:
        with capture_events(tmp_path / "home", observers=(self.bridge,), default_observers=False):
            assert chatty_flow() == 7
        assert self.bridge.force_flush(5.0)

    def line_records(self) -> list[Any]:
        """The exported records of runtime log lines (live events carry an event name)."""
        return [
            d.log_record
            for d in self.logs.get_finished_logs()
            if "kitaru.log.stream" in (d.log_record.attributes or {})
        ]

    def checkpoint_span(self) -> Any:
        (span,) = [
            s for s in self.spans.get_finished_spans() if s.name == "kitaru.checkpoint chatty"
        ]
        return span


@pytest.fixture
def user_handler() -> Any:
    handler = Collect()
    user_log.addHandler(handler)
    user_log.setLevel(logging.INFO)
    yield handler
    user_log.removeHandler(handler)
    user_log.setLevel(logging.NOTSET)


def test_four_lines_leave_with_the_checkpoint_span_ids_and_severities(
    tmp_path: Any, user_handler: Collect, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = Setup()
    setup.run(tmp_path)
    span = setup.checkpoint_span()
    records = setup.line_records()
    assert [(r.body, r.severity_number, r.attributes["kitaru.log.stream"]) for r in records] == [
        (f"starting 7 {TRUE_TEXT}", SeverityNumber.INFO, "logging"),
        ("careful", SeverityNumber.WARN, "logging"),
        ("broken", SeverityNumber.ERROR, "logging"),
        ("printed 7", SeverityNumber.INFO, "stdout"),
    ]
    for record in records:
        assert record.trace_id == span.context.trace_id
        assert record.span_id == span.context.span_id
        assert record.attributes["kitaru.checkpoint.name"] == "chatty"
        assert record.attributes["kitaru.execution.id"] == span.attributes["kitaru.execution.id"]
        assert record.event_name is None
    assert [r.attributes.get("kitaru.log.logger") for r in records] == [user_log.name] * 3 + [None]
    assert [r.severity_text for r in records] == ["INFO", "WARN", "ERROR", "INFO"]
    assert [r.attributes["kitaru.log.line"] for r in records] == [0, 1, 2, 3]
    # The application's own handler and the terminal saw everything, unchanged.
    assert [r.getMessage() for r in user_handler.records] == [
        f"starting 7 {TRUE_TEXT}",
        "careful",
        "broken",
    ]
    assert "printed 7" in capsys.readouterr().out


def test_stderr_is_warn(tmp_path: Any) -> None:
    @checkpoint
    def noisy() -> int:
        import sys

        print("to stderr", file=sys.stderr)
        return 1

    @flow
    def noisy_flow() -> int:
        return noisy()

    setup = Setup()
    with capture_events(tmp_path / "home", observers=(setup.bridge,), default_observers=False):
        assert noisy_flow() == 1
    assert setup.bridge.force_flush(5.0)
    (record,) = setup.line_records()
    assert (record.body, record.severity_number, record.attributes["kitaru.log.stream"]) == (
        "to stderr",
        SeverityNumber.WARN,
        "stderr",
    )


@pytest.mark.parametrize(
    ("env", "opts"),
    [
        ({"KITARU_OTEL_RUNTIME_LOGS": "false"}, {}),
        ({}, {"runtime_logs": False}),
        ({"KITARU_OTEL_LOG_RECORDS": "false"}, {}),
    ],
)
def test_switched_off_no_line_is_exported(
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    opts: dict[str, Any],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    setup = Setup(**opts)
    setup.run(tmp_path)
    assert setup.line_records() == []
    events = [d.log_record.event_name for d in setup.logs.get_finished_logs()]
    if "KITARU_OTEL_LOG_RECORDS" in env:
        assert events == []
    else:  # live events still leave as log records
        assert "kitaru.checkpoint.returned" in events


def test_the_runtime_still_keeps_the_lines_when_they_are_exported(
    tmp_path: Any, user_handler: Collect
) -> None:
    setup = Setup()
    with capture_events(
        tmp_path / "home", observers=(setup.bridge,), default_observers=False
    ) as captured:
        handle = chatty_flow.run()
        handle.wait()
        assert captured.runtime.log_capture is not None
        assert captured.runtime.log_capture.flush(5.0)
        stored = captured.runtime.store.read_logs(handle.exec_id)  # type: ignore[attr-defined]
    assert [line.message for line in stored] == [
        f"starting 7 {TRUE_TEXT}",
        "careful",
        "broken",
        "printed 7",
    ]


class Loud(RuntimeObserver):
    """An observer that logs and prints for every line it is given."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def on_log_line(self, scope: Any, line: Any) -> None:
        self.lines.append(line.message)
        user_log.warning("observer saw a line")
        print("observer printed")


def test_what_an_observer_logs_is_not_captured_again(tmp_path: Any, user_handler: Collect) -> None:
    loud = Loud()
    with capture_events(tmp_path / "home", observers=(loud,), default_observers=False) as captured:
        handle = chatty_flow.run()
        handle.wait()
        stored = captured.runtime.store.read_logs(handle.exec_id)  # type: ignore[attr-defined]
    four = [f"starting 7 {TRUE_TEXT}", "careful", "broken", "printed 7"]
    assert loud.lines == four
    assert [line.message for line in stored] == four


def test_only_observers_with_the_hook_are_called() -> None:
    group = ObserverGroup()
    plain = RuntimeObserver()
    loud = Loud()
    group.add(plain)
    assert group.line_observers == ()
    group.add(loud)
    assert group.line_observers == (loud,)
    group.remove(loud)
    assert group.line_observers == ()


class Broken(RuntimeObserver):
    def on_log_line(self, scope: Any, line: Any) -> None:
        raise RuntimeError("boom")


def test_a_failing_line_observer_is_counted_and_the_flow_goes_on(
    tmp_path: Any, user_handler: Collect
) -> None:
    with capture_events(
        tmp_path / "home", observers=(Broken(),), default_observers=False
    ) as captured:
        assert chatty_flow() == 7
        failures = captured.runtime.observer_failures()
    assert list(failures.values()) == [4]


@checkpoint
def unfinished() -> int:
    print("no line break", end="")
    return 1


@flow
def unfinished_flow() -> int:
    return unfinished()


def test_the_end_of_checkpoint_line_is_given_to_observers_once(
    tmp_path: Any, user_handler: Collect
) -> None:
    # The partial line is kept when the checkpoint ends, outside the taps; it reaches the
    # observers too, and what they log or print then is not captured.
    loud = Loud()
    with capture_events(tmp_path / "home", observers=(loud,), default_observers=False) as captured:
        handle = unfinished_flow.run()
        handle.wait()
        stored = captured.runtime.store.read_logs(handle.exec_id)  # type: ignore[attr-defined]
    assert loud.lines == ["no line break"]
    assert [line.message for line in stored] == ["no line break"]
