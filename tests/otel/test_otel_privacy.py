"""Spans say what kind of thing happened, never checkpoint inputs, outputs or exception text."""

from __future__ import annotations

import pytest
from spantree import strings_of

import kitaru
from kitaru import checkpoint, flow

CANARY = "canary-1d94e2-do-not-leak"


@checkpoint
def takes_secret(secret: str, *, config: dict) -> dict:
    kitaru.progress("working", token=secret)
    kitaru.events.publish("custom.secretive", {"secret": secret}, message=f"about {secret}")
    return {"out": secret, "config": config}


@checkpoint
def fails_with_secret(secret: str) -> None:
    raise PermissionError(f"denied for {secret}")


@flow
def secret_inputs_and_outputs(secret: str) -> dict:
    return takes_secret(secret, config={"password": secret})


@flow
def secret_failure(secret: str) -> None:
    fails_with_secret(secret)


def test_no_canary_in_any_span_with_event_attributes_off(make_traced):
    traced = make_traced(event_attributes=False)
    out = secret_inputs_and_outputs.run(CANARY).wait(10)
    assert out["out"] == CANARY
    handle = secret_failure.run(CANARY)
    with pytest.raises(PermissionError):
        handle.wait(10)
    spans = traced.spans()
    assert len(spans) == 4
    said = strings_of(spans)
    assert CANARY not in said
    assert "denied for" not in said
    # It says what kind of thing happened.
    assert "custom.secretive" in said
    assert "PermissionError" in said


def test_by_default_only_user_chosen_event_text_carries_the_canary(make_traced):
    traced = make_traced()
    secret_inputs_and_outputs.run(CANARY).wait(10)
    handle = secret_failure.run(CANARY)
    with pytest.raises(PermissionError):
        handle.wait(10)
    for span in traced.spans():
        assert CANARY not in repr(span.attributes)
        assert CANARY not in (span.description or "")
        for name, attrs in span.events:
            leaked = {k for k, v in attrs.items() if CANARY in str(v)}
            # Only what the user put in a live event on purpose.
            assert leaked <= {
                "kitaru.event.data.token",
                "kitaru.event.data.secret",
                "kitaru.event.message",
            }, (name, leaked)
