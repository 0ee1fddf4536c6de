"""Fixtures for server tests: real uvicorn servers on 127.0.0.1 in threads."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from _support import thread_servers


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Start servers with the given options; every one is stopped after the test."""
    yield from thread_servers(tmp_path, ping_interval=0.2)


@pytest.fixture
def server(make_server: Callable[..., Any]) -> Any:
    return make_server()


@pytest.fixture
def client(server: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c
