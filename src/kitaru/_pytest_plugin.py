"""The pytest plugin kitaru registers: the ``kitaru_events`` fixture."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kitaru.testing import EventCapture, capture_events


@pytest.fixture
def kitaru_events(tmp_path: Path) -> Iterator[EventCapture]:
    """Capture the live events published during one test (fresh runtime, temporary store)."""
    with capture_events(tmp_path / "kitaru-home") as captured:
        yield captured
