"""Capped exponential backoff with jitter: the one retry rhythm of every kitaru retry loop.

Used by the publisher's sender, the server-mode store, the watcher, snapshot reads and the
Redis event log's followers. The jitter spreads the retries of many clients after one outage
(a restarted server is not hit by all of them at once); a delay is never longer than its step,
so the cap is a real bound.
"""

from __future__ import annotations

import random

__all__ = ["Backoff"]


class Backoff:
    """Capped exponential backoff with jitter (each delay is 50-100 % of its step).

    Args:
        initial: The first step in seconds.
        cap: The largest step in seconds.
    """

    def __init__(self, initial: float, cap: float) -> None:
        self.initial = initial
        self.cap = max(cap, initial)
        self._step = initial

    def next(self) -> float:
        """The next delay; each call doubles the step up to the cap."""
        delay = self._step * (0.5 + random.random() / 2)
        self._step = min(self.cap, self._step * 2)
        return delay

    def reset(self) -> None:
        """Start again from the first step."""
        self._step = self.initial
