"""The public surface of kitaru.otel: every name resolves, is documented, loads lazily."""

from __future__ import annotations

import subprocess
import sys

import kitaru.otel

EXPECTED = [
    "KitaruOtelObserver",
    "TraceIdRatioSampler",
    "configure",
    "flow_span_id_for_execution",
    "shutdown",
    "span_context_for_correlation_id",
    "span_context_for_event",
    "trace_id_for_execution",
]


def test_public_names():
    assert kitaru.otel.__all__ == EXPECTED
    for name in EXPECTED:
        obj = getattr(kitaru.otel, name)
        assert obj.__doc__, f"kitaru.otel.{name} has no docstring"
        assert name in dir(kitaru.otel)


def test_unknown_name_is_an_attribute_error():
    try:
        kitaru.otel.nope  # noqa: B018
    except AttributeError as exc:
        assert "nope" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_importing_the_package_does_not_import_opentelemetry():
    code = (
        "import sys, kitaru.otel, kitaru.otel._auto; "
        "print([m for m in sys.modules if m.startswith('opentelemetry')])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"
