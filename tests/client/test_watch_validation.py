"""Call-time validation of ``events()``: bad input fails before any network request."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from _client_fake import EXEC_ID, URL

from kitaru import KitaruClient, KitaruFeatureNotAvailableError, KitaruUsageError


class NoNetwork(httpx.BaseTransport, httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.calls = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        raise AssertionError(f"unexpected request {request.url}")

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        raise AssertionError(f"unexpected request {request.url}")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"exec_id": ""}, "exec_id"),
        ({"exec_id": "   "}, "exec_id"),
        ({"exec_id": None}, "exec_id"),
        ({"exec_id": 42}, "exec_id"),
        ({"exec_id": " abc"}, "whitespace"),
        ({"kinds": "kitaru.checkpoint.progress"}, "wrap a single value in a list"),
        ({"kinds": []}, "must not be empty"),
        ({"kinds": ["ok", ""]}, "non-blank"),
        ({"kinds": ["ok", "   "]}, "non-blank"),
        ({"kinds": ["bad\nkind"]}, "newlines"),
        ({"kinds": ["bad\rkind"]}, "newlines"),
        ({"kinds": [1]}, "non-blank str"),
        ({"kinds": {"a": 1}}, "list of str"),
        ({"correlation_ids": "kitaru.checkpoint:x:1"}, "correlation_ids"),
        ({"correlation_ids": [None]}, "correlation_ids"),
        ({"checkpoint": ""}, "checkpoint"),
        ({"checkpoint": 3}, "checkpoint"),
        ({"since": ""}, "since"),
        ({"since": "  "}, "since"),
        ({"since": 12}, "since"),
        ({"since": "c1\nX-Evil: 1"}, "since"),
        ({"reconnect": "yes"}, "reconnect"),
        ({"reconnect": 1}, "reconnect"),
        ({"on_gap": "ignore"}, "on_gap"),
        ({"heartbeat_timeout": 0}, "heartbeat_timeout"),
        ({"heartbeat_timeout": float("nan")}, "heartbeat_timeout"),
        ({"max_outage": -1}, "max_outage"),
        ({"timeout": True}, "timeout"),
        ({"backoff_initial": "1"}, "backoff_initial"),
        ({"no_such_option": 1}, "no_such_option"),
        ({"transport": object()}, "transport"),
    ],
)
def test_bad_arguments_are_usage_errors_before_any_request(
    kwargs: dict[str, Any], match: str
) -> None:
    transport = NoNetwork()
    client = KitaruClient(URL)
    args = {"exec_id": EXEC_ID, **kwargs}
    exec_id = args.pop("exec_id")
    if "transport" not in args:
        args["transport"] = transport
    with pytest.raises(KitaruUsageError, match=match):
        client.executions.events(exec_id, **args)
    with pytest.raises(KitaruUsageError, match=match):
        client.executions.aevents(exec_id, **args)
    assert transport.calls == 0


def test_local_mode_raises_before_any_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("local mode must not touch the network")

    monkeypatch.setattr(httpx.Client, "send", no_network)
    monkeypatch.setattr(httpx.AsyncClient, "send", no_network)
    client = KitaruClient()
    assert client.is_local
    with pytest.raises(KitaruFeatureNotAvailableError, match="server-backed connection"):
        client.executions.events(EXEC_ID)
    with pytest.raises(KitaruFeatureNotAvailableError, match="server-backed connection"):
        client.executions.aevents(EXEC_ID)
    # Not even the local store was opened for a lookup.
    assert client._store is None


def test_local_mode_wins_even_for_an_unknown_execution() -> None:
    client = KitaruClient()
    with pytest.raises(KitaruFeatureNotAvailableError):
        client.executions.events("not-an-execution")
