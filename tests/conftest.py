"""Shared fixtures: every test runs with a clean kitaru environment and runtime."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from _services import (  # noqa: F401  (session fixtures: real Redis and PostgreSQL servers)
    postgres_schema_url,
    postgres_url,
    redis_service,
    redis_url,
)
from _support import require  # noqa: F401  (kept importable from here)
from kitaru.runtime._runtime import reset_runtime

_KEEP = ("KITARU_HOME",)


@pytest.fixture(autouse=True)
def clean_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No KITARU_* / OTEL_* settings leak in; each test has its own KITARU_HOME."""
    for name in list(os.environ):
        if name.startswith(("KITARU_", "OTEL_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KITARU_HOME", str(tmp_path / "kitaru-home"))
    reset_runtime()
    yield
    reset_runtime()


def pytest_configure(config: pytest.Config) -> None:
    # Markers of the scale-out tests (docs/deployment.md); also listed in pyproject.toml.
    config.addinivalue_line("markers", "redis: needs a Redis server (scripts/services/)")
    config.addinivalue_line("markers", "postgres: needs a PostgreSQL server (scripts/services/)")
