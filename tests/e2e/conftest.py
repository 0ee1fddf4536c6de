"""Session fixtures for end-to-end tests against a real Jaeger, Collector and Prometheus.

``jaeger``      Jaeger v2 in memory (collector-config/jaeger.yaml) on free ports.
``otelcol``     the kitaru collector (collector-config/otelcol.yaml) exporting to ``jaeger``,
                with test-speed settings: 100 % sampling, 1 s sampling decision, span
                metrics flushed every second, privacy mode ``hash`` with salt
                ``OTELCOL_TEST_SALT``.
``prometheus``  Prometheus scraping ``otelcol``'s span metrics every second.
``victorialogs`` VictoriaLogs (single node, data in a temporary folder) on a free port.
``otelcol_logs`` a second collector like ``otelcol`` whose logs pipeline exports to
                ``victorialogs``.

The binaries come from scripts/tools/build-tools.sh; without them the tests that use
these fixtures skip, or fail when CI=true.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

try:  # tests/e2e as a package
    from . import _procs
except ImportError:  # rootdir-relative "prepend" import mode, or importlib mode
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _procs  # type: ignore[no-redef]

OTELCOL_TEST_SALT = "kitaru-e2e-salt"

MARKERS = {
    "collector": "needs the OpenTelemetry Collector built by scripts/tools/build-tools.sh",
    "jaeger": "needs Jaeger built by scripts/tools/build-tools.sh (.tools/bin/jaeger)",
    "prometheus": "needs a prometheus binary (scripts/tools/install-prometheus.sh)",
    "victorialogs": "needs VictoriaLogs built by scripts/tools/build-tools.sh",
}


def pytest_configure(config: pytest.Config) -> None:
    # Until pyproject.toml registers them.
    for name, help_text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {help_text}")


@pytest.fixture(scope="session")
def e2e_log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the session's tool processes write their logs (and Prometheus its data)."""
    return tmp_path_factory.mktemp("e2e-tools")


@pytest.fixture(scope="session")
def jaeger(e2e_log_dir: Path) -> Iterator[_procs.Jaeger]:
    instance = _procs.start_jaeger(e2e_log_dir)
    try:
        yield instance
    finally:
        instance.process.stop()


@pytest.fixture(scope="session")
def otelcol(e2e_log_dir: Path, jaeger: _procs.Jaeger) -> Iterator[_procs.Otelcol]:
    instance = _procs.start_otelcol(
        e2e_log_dir,
        jaeger_endpoint=jaeger.otlp_grpc_endpoint,
        env={"KITARU_OTELCOL_PRIVACY": "hash", "KITARU_OTELCOL_HASH_SALT": OTELCOL_TEST_SALT},
    )
    try:
        yield instance
    finally:
        instance.process.stop()


@pytest.fixture(scope="session")
def prometheus(e2e_log_dir: Path, otelcol: _procs.Otelcol) -> Iterator[_procs.Prometheus]:
    instance = _procs.start_prometheus(e2e_log_dir / "prometheus", [otelcol.prometheus_target])
    try:
        yield instance
    finally:
        instance.process.stop()


@pytest.fixture(scope="session")
def victorialogs(e2e_log_dir: Path) -> Iterator[_procs.VictoriaLogs]:
    instance = _procs.start_victorialogs(e2e_log_dir / "victoria-logs")
    try:
        yield instance
    finally:
        instance.process.stop()


@pytest.fixture(scope="session")
def otelcol_logs(
    e2e_log_dir: Path, jaeger: _procs.Jaeger, victorialogs: _procs.VictoriaLogs
) -> Iterator[_procs.Otelcol]:
    instance = _procs.start_otelcol(
        e2e_log_dir,
        jaeger_endpoint=jaeger.otlp_grpc_endpoint,
        victorialogs_url=victorialogs.url,
        env={"KITARU_OTELCOL_PRIVACY": "hash", "KITARU_OTELCOL_HASH_SALT": OTELCOL_TEST_SALT},
        name="otelcol-logs",
    )
    try:
        yield instance
    finally:
        instance.process.stop()
