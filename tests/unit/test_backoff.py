"""The one backoff rhythm (``kitaru._backoff.Backoff``) shared by every retry loop."""

from __future__ import annotations

import random

from kitaru._backoff import Backoff


def test_steps_double_up_to_the_cap_with_jitter_within_half_to_whole_step() -> None:
    random.seed(7)
    backoff = Backoff(0.1, 1.0)
    steps = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    for step in steps:
        delay = backoff.next()
        assert step / 2 <= delay <= step, (step, delay)
    delays = {round(Backoff(0.1, 1.0).next(), 6) for _ in range(20)}
    assert len(delays) > 1  # jittered, not a fixed delay


def test_reset_starts_again_and_the_cap_is_never_below_the_first_step() -> None:
    backoff = Backoff(0.1, 1.0)
    for _ in range(5):
        backoff.next()
    backoff.reset()
    assert backoff.next() <= 0.1
    assert Backoff(2.0, 1.0).cap == 2.0


def test_every_retry_loop_uses_it() -> None:
    """No module keeps a backoff of its own (the three copies this replaced)."""
    from pathlib import Path

    src = Path(__file__).resolve().parents[2] / "src" / "kitaru"
    for path in src.rglob("*.py"):
        text = path.read_text()
        assert "(0.5 + random.random())" not in text, path
