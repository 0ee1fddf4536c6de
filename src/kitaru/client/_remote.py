"""Server mode: the HTTP store and the HTTP live-event transport (see the server issue)."""

from __future__ import annotations

from typing import Any

from kitaru.exceptions import KitaruFeatureNotAvailableError

__all__ = ["HttpStore", "build_server_runtime"]


class HttpStore:
    """Placeholder until server mode lands."""

    def __init__(self, url: str, token: str | None) -> None:
        raise KitaruFeatureNotAvailableError("server mode is not available yet")


def build_server_runtime(url: str, token: str | None) -> Any:
    """Build the runtime for server mode."""
    raise KitaruFeatureNotAvailableError("server mode is not available yet")
