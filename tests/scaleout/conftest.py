"""Fixtures of the scale-out tests: server replicas on shared Redis and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _replicas import Replica, start_replicas


@pytest.fixture
def redis_log_url(redis_url: str) -> str:
    """The session's Redis with a key prefix of this test's own."""
    sep = "&" if "?" in redis_url else "?"
    return f"{redis_url}{sep}prefix=t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def replicas(
    postgres_schema_url: str, redis_log_url: str, tmp_path: Path
) -> Iterator[Callable[..., list[Replica]]]:
    """Start replica processes sharing this test's schema and key prefix; stopped after."""
    started: list[Replica] = []

    def start(n: int, *extra: str) -> list[Replica]:
        reps = start_replicas(n, postgres_schema_url, redis_log_url, tmp_path, extra=list(extra))
        started.extend(reps)
        return reps

    yield start
    for rep in started:
        rep.stop()
