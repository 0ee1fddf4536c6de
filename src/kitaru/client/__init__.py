"""The client: ``KitaruClient`` reads, replays and watches executions."""

from kitaru.client._client import Executions, KitaruClient

__all__ = ["Executions", "KitaruClient"]
