"""Privacy on the wire: real OTLP/HTTP requests never carry inputs, outputs or exception text."""

from __future__ import annotations

import pytest
from otlp_sink import OtlpSink

import kitaru
import kitaru.otel
from kitaru import checkpoint, flow

CANARY = "canary-7f3a9c-do-not-leak"

tries: dict[str, int] = {}


@checkpoint(retries=1)
def handle_secret(secret: str, note: str) -> dict[str, str]:
    tries["n"] = tries.get("n", 0) + 1
    kitaru.progress("visible-progress-marker", api_key=secret, note=note)
    if tries["n"] == 1:
        raise ValueError(f"upstream refused {secret}")
    return {"answer": f"{secret}-out"}


@flow
def secret_flow(secret: str) -> str:
    return handle_secret(secret, note="ok")["answer"]


@pytest.fixture
def sink():
    s = OtlpSink()
    yield s
    s.close()


def _run_and_ship(sink: OtlpSink, **options: object) -> bytes:
    kitaru.otel.configure(endpoint=sink.url, **options)
    tries.clear()
    handle = secret_flow.run(CANARY)
    assert handle.wait(10) == f"{CANARY}-out"
    assert kitaru.otel.shutdown(timeout=10.0)
    raw = sink.raw()
    # The export really happened: the request holds our spans.
    names = sorted(s.name for s in sink.spans())
    assert names == [
        "kitaru.checkpoint handle_secret",
        "kitaru.checkpoint handle_secret",
        "kitaru.flow secret_flow",
    ]
    # configure(endpoint=...) sends all three signals there; live events as log records too.
    assert set(sink.paths) == {"/v1/traces", "/v1/logs", "/v1/metrics"}
    assert any(r.event_name == "kitaru.checkpoint.progress" for r in sink.log_records())
    return raw


def test_nothing_secret_on_the_wire_with_event_attributes_off(sink):
    raw = _run_and_ship(sink, event_attributes=False)
    assert CANARY.encode() not in raw
    assert b"upstream refused" not in raw
    assert b"visible-progress-marker" not in raw
    assert b"kitaru.checkpoint.progress" in raw  # the event itself is there, by kind


def test_default_sends_progress_text_but_no_inputs_outputs_or_exception_text(sink):
    @checkpoint
    def echo(secret: str) -> str:
        kitaru.progress("visible-progress-marker", step=1)
        return secret

    @flow
    def echo_flow(secret: str) -> str:
        return echo(secret)

    kitaru.otel.configure(endpoint=sink.url)
    assert echo_flow.run(CANARY).wait(10) == CANARY
    assert kitaru.otel.shutdown(timeout=10.0)
    raw = sink.raw()
    assert b"visible-progress-marker" in raw  # progress text is the product feature
    assert CANARY.encode() not in raw


def test_progress_fields_are_user_text_and_are_sent_by_default(sink):
    # The positive control of the test above: a field the user puts in progress IS sent,
    # so the opt-out is what keeps it off the wire.
    raw = _run_and_ship(sink)
    assert CANARY.encode() in raw  # via kitaru.event.data.api_key, the user's own choice
    assert b"upstream refused" not in raw
    assert f"{CANARY}-out".encode() not in raw
