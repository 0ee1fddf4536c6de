"""Which provider kitaru uses: the application's, one built from OTEL_* variables, or none."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpExporter,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from otlp_sink import OtlpSink
from spantree import from_sdk, render

import kitaru
import kitaru.otel
from kitaru import checkpoint, flow
from kitaru.otel import KitaruOtelObserver, _trace_setup, flow_span_id_for_execution
from kitaru.otel._otlp import ExportOptions
from kitaru.runtime._runtime import get_runtime, reset_runtime
from kitaru.testing import capture_events


@checkpoint
def step_one(x: int) -> int:
    kitaru.progress("one")
    return x + 1


@checkpoint
def step_two(x: int) -> int:
    return x * 2


@flow
def two_steps(x: int) -> int:
    return step_two(step_one(x))


@pytest.fixture
def exporters(monkeypatch):
    """Every OTLP exporter created, with the keyword arguments kitaru passed."""
    made: list[tuple[str, dict]] = []
    for label, cls in (("http", HttpExporter), ("grpc", GrpcExporter)):
        original = cls.__init__

        def spy(self, *args, __original=original, __label=label, **kwargs):
            made.append((__label, dict(kwargs)))
            __original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "__init__", spy)
    return made


@pytest.fixture
def sink():
    s = OtlpSink()
    yield s
    s.close()


def _bridges():
    return [o for o in get_runtime().observers if isinstance(o, KitaruOtelObserver)]


def _user_provider():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


# -- nothing configured --------------------------------------------------------------------


def test_no_provider_and_no_otlp_environment_creates_nothing(exporters):
    reset_runtime()
    assert two_steps(1) == 4
    assert exporters == []
    assert _bridges() == []
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def test_without_configuration_opentelemetry_is_not_even_imported(tmp_path: Path):
    script = (
        "import sys\n"
        "from kitaru import checkpoint, flow\n"
        "@checkpoint\n"
        "def c(x):\n"
        "    return x\n"
        "@flow\n"
        "def f(x):\n"
        "    return c(x)\n"
        "assert f(3) == 3\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "KITARU_"))}
    env["KITARU_HOME"] = str(tmp_path / "home")
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "env",
    [
        {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"},
        {
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
        },
        {"OTEL_TRACES_EXPORTER": "console"},
    ],
)
def test_environment_that_does_not_ask_for_otlp(monkeypatch, exporters, env):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_runtime()
    assert two_steps(1) == 4
    assert exporters == []
    assert _bridges() == []


# -- OTLP from the standard variables --------------------------------------------------------


def test_otlp_endpoint_variable_sets_up_http_export(monkeypatch, exporters, sink):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", sink.url)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "billing")
    reset_runtime()
    handle = two_steps.run(1)
    assert handle.wait(10) == 4
    assert [label for label, _ in exporters] == ["http"]
    # No endpoint argument: the exporter reads the standard variables itself.
    assert exporters[0][1] == {"timeout": 1.0}
    assert len(_bridges()) == 1
    provider = kitaru.otel._setup.owned_provider()
    assert trace.get_tracer_provider() is provider
    assert kitaru.otel.shutdown(timeout=10.0)
    spans = sink.spans()
    assert sorted(s.name for s in spans) == [
        "kitaru.checkpoint step_one",
        "kitaru.checkpoint step_two",
        "kitaru.flow two_steps",
    ]
    assert {s.trace_id.hex() for s in spans} == {handle.exec_id.replace("-", "")}
    assert b"billing" in sink.raw()  # OTEL_SERVICE_NAME is honoured by the SDK


def test_traces_endpoint_and_timeout_variables_are_left_to_the_exporter(
    monkeypatch, exporters, sink
):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", sink.url + "/custom/path")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "7")
    reset_runtime()
    two_steps.run(1).wait(10)
    assert exporters == [("http", {})]
    assert kitaru.otel.shutdown(timeout=10.0)
    assert set(sink.paths) == {"/custom/path"}


def test_grpc_protocol_variable_builds_the_grpc_exporter(monkeypatch, exporters):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")
    reset_runtime()
    get_runtime()
    assert [label for label, _ in exporters] == ["grpc"]


def test_unsupported_protocol_variable_never_breaks_a_run(monkeypatch, exporters, caplog):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    reset_runtime()
    assert two_steps(1) == 4
    assert exporters == []
    assert "OTEL_EXPORTER_OTLP_PROTOCOL" in caplog.text


# -- the application's own provider ------------------------------------------------------------


def test_application_provider_is_used_as_it_is(monkeypatch, exporters):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    provider, exporter = _user_provider()
    original_generator = provider.id_generator
    trace.set_tracer_provider(provider)
    reset_runtime()
    handle = two_steps.run(1)
    handle.wait(10)
    assert trace.get_tracer_provider() is provider
    assert provider.id_generator is original_generator
    assert isinstance(original_generator, RandomIdGenerator)
    assert exporters == []  # the application's provider wins over the variables
    spans = from_sdk(exporter.get_finished_spans())
    assert render(spans, events=False)[0].startswith("kitaru.flow two_steps")
    assert {s.trace_id for s in spans} == {handle.exec_id.replace("-", "")}
    # The application's own spans keep the provider's random IDs.
    with provider.get_tracer("app").start_as_current_span("app work") as own:
        pass
    assert own.get_span_context().trace_id != int(handle.exec_id.replace("-", ""), 16)


def test_configure_before_the_application_sets_its_provider(exporters):
    kitaru.otel.configure()
    provider, exporter = _user_provider()
    trace.set_tracer_provider(provider)  # later, as applications often do
    handle = two_steps.run(1)
    handle.wait(10)
    spans = from_sdk(exporter.get_finished_spans())
    assert len(spans) == 3
    assert {s.trace_id for s in spans} == {handle.exec_id.replace("-", "")}
    assert exporters == []


def test_configure_with_a_provider_replaces_the_bridge(exporters):
    provider, exporter = _user_provider()
    first = kitaru.otel.configure(tracer_provider=provider)
    second = kitaru.otel.configure(tracer_provider=provider, event_attributes=False)
    assert _bridges() == [second]
    assert first is not second
    two_steps(1)
    assert len(exporter.get_finished_spans()) == 3
    assert kitaru.otel.shutdown()
    assert _bridges() == []
    assert kitaru.otel.shutdown()  # idempotent


def test_configure_with_an_endpoint(exporters, sink):
    kitaru.otel.configure(endpoint=sink.url, protocol="http/protobuf", export_timeout=3.0)
    assert exporters == [("http", {"timeout": 3.0, "endpoint": sink.url + "/v1/traces"})]
    two_steps(1)
    assert kitaru.otel.shutdown(timeout=10.0)
    assert len(sink.spans()) == 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"protocol": "http/json"}, "http/json"),
        ({"endpoint": " "}, "endpoint"),
        ({"export_timeout": 0}, "export_timeout"),
        ({"caller_span": "nope"}, "caller_span"),
        ({"endpoint": "http://x", "tracer_provider": TracerProvider()}, "either"),
    ],
)
def test_configure_rejects_bad_arguments(kwargs, match, exporters):
    with pytest.raises(kitaru.KitaruUsageError, match=match):
        kitaru.otel.configure(**kwargs)
    assert exporters == []


# -- IDs on providers kitaru cannot steer --------------------------------------------------------


class _WrappingTracer(trace.Tracer):
    """A tracer that is not an SDK tracer (as a vendor's provider might hand out)."""

    def __init__(self, inner: trace.Tracer) -> None:
        self._inner = inner

    def start_span(self, *args, **kwargs):
        return self._inner.start_span(*args, **kwargs)

    def start_as_current_span(self, *args, **kwargs):
        return self._inner.start_as_current_span(*args, **kwargs)


class _WrappingProvider(trace.TracerProvider):
    def __init__(self, inner: TracerProvider) -> None:
        self._inner = inner

    def get_tracer(self, *args, **kwargs):
        return _WrappingTracer(self._inner.get_tracer(*args, **kwargs))


def test_non_sdk_provider_keeps_its_ids_and_events_carry_them(tmp_path):
    inner, exporter = _user_provider()
    bridge = KitaruOtelObserver(tracer_provider=_WrappingProvider(inner))
    with capture_events(tmp_path / "h", observers=(bridge,)) as captured:
        handle = two_steps.run(1)
        handle.wait(10)
        events = captured.events
    spans = from_sdk(exporter.get_finished_spans())
    assert len(spans) == 3
    (trace_id,) = {s.trace_id for s in spans}
    assert trace_id != handle.exec_id.replace("-", "")  # the provider chose it
    by_span = {s.span_id for s in spans}
    assert {e.trace_id for e in events} == {trace_id}
    assert {e.span_id for e in events} <= by_span


# -- sampling: one decision per run -------------------------------------------------------------


def test_sdk_ratio_sampler_is_biased_on_uuid_trace_ids():
    """Why kitaru has its own ratio sampler: UUID variant bits sit in the SDK's 64 bits."""
    import uuid

    ids = [int(uuid.uuid4().hex, 16) for _ in range(200)]
    sdk = TraceIdRatioBased(0.5)
    ours = kitaru.otel.TraceIdRatioSampler(0.5)
    assert not any(sdk.should_sample(None, t, "x").decision.is_sampled() for t in ids)
    kept = sum(ours.should_sample(None, t, "x").decision.is_sampled() for t in ids)
    assert 50 < kept < 150  # about half (fails far less than once in a million)


def test_ratio_sampler_variable_builds_kitarus_sampler(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    provider = _trace_setup.build_provider(ExportOptions(endpoint="http://127.0.0.1:9"))
    assert "KitaruTraceIdRatio{0.25}" in provider.sampler.get_description()
    assert provider.sampler.get_description().startswith("ParentBased")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "2")
    with pytest.raises(kitaru.KitaruUsageError, match="OTEL_TRACES_SAMPLER_ARG"):
        _trace_setup.build_provider(ExportOptions(endpoint="http://127.0.0.1:9"))


def test_ratio_sampling_keeps_or_drops_whole_runs(tmp_path):
    exporter = InMemorySpanExporter()
    ratio = kitaru.otel.TraceIdRatioSampler(0.5)
    provider = TracerProvider(sampler=ParentBased(ratio))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with capture_events(tmp_path / "h", observers=(KitaruOtelObserver(tracer_provider=provider),)):
        exec_ids = []
        for i in range(24):
            handle = two_steps.run(i)
            handle.wait(10)
            exec_ids.append(handle.exec_id)
    spans = from_sdk(exporter.get_finished_spans())
    kept = {s.trace_id for s in spans}
    for exec_id in exec_ids:
        tid = exec_id.replace("-", "")
        expected = ratio.should_sample(None, int(tid, 16), "x").decision.is_sampled()
        count = sum(1 for s in spans if s.trace_id == tid)
        assert count == (3 if expected else 0), exec_id
    assert 0 < len(kept) < len(exec_ids)  # both outcomes happened (fails ~1 in 8 million)


def test_checkpoint_without_a_local_flow_span_parents_to_the_computed_one(make_traced):
    """What a checkpoint in another process does: it only knows the execution ID."""
    traced = make_traced()
    bridge = traced.bridge
    runtime = traced.capture.runtime
    runtime.remove_observer(bridge)

    @flow
    def joined_late() -> int:
        runtime.add_observer(bridge)  # the flow span was never started here
        return step_two(3)

    handle = joined_late.run()
    assert handle.wait(10) == 6
    (span,) = traced.spans()
    assert span.trace_id == handle.exec_id.replace("-", "")
    assert span.parent_id == flow_span_id_for_execution(handle.exec_id)


def test_computed_parent_follows_the_ratio_decision(tmp_path):
    exporter = InMemorySpanExporter()
    ratio = kitaru.otel.TraceIdRatioSampler(0.5)
    provider = TracerProvider(sampler=ParentBased(ratio))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    bridge = KitaruOtelObserver(tracer_provider=provider)
    with capture_events(tmp_path / "h") as captured:

        @flow
        def late(i: int) -> int:
            captured.runtime.add_observer(bridge)
            return step_two(i)

        exec_ids = []
        for i in range(16):
            captured.runtime.remove_observer(bridge)
            handle = late.run(i)
            handle.wait(10)
            exec_ids.append(handle.exec_id)
    spans = from_sdk(exporter.get_finished_spans())
    for exec_id in exec_ids:
        tid = exec_id.replace("-", "")
        expected = ratio.should_sample(None, int(tid, 16), "x").decision.is_sampled()
        assert any(s.trace_id == tid for s in spans) == expected


def test_public_mapping_functions_are_pure():
    exec_id = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
    assert kitaru.otel.trace_id_for_execution(exec_id) == "7c9e6679742540de944be07fc1f90ae7"
    span_id = kitaru.otel.flow_span_id_for_execution(exec_id)
    assert len(span_id) == 16 and int(span_id, 16) != 0
    script = (
        "import kitaru.otel as o; "
        f"print(o.flow_span_id_for_execution({exec_id!r}), o.trace_id_for_execution('run-42'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split() == [span_id, kitaru.otel.trace_id_for_execution("run-42")]


def test_without_any_provider_events_carry_no_span_ids(tmp_path):
    bridge = KitaruOtelObserver()  # the global provider: none set, so a no-op proxy
    with capture_events(tmp_path / "h", observers=(bridge,)) as captured:
        handle = two_steps.run(1)
        handle.wait(10)

        @flow
        def joined_late() -> int:
            captured.runtime.add_observer(bridge)  # parent by computed IDs, on a no-op tracer
            return step_two(1)

        captured.runtime.remove_observer(bridge)
        late = joined_late.run()
        late.wait(10)
        events = captured.events
    assert len(events) == 7
    assert all(e.span_id is None for e in events)
    assert {e.trace_id for e in events} == {
        handle.exec_id.replace("-", ""),
        late.exec_id.replace("-", ""),
    }
