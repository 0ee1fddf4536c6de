"""End to end: the real Prometheus scrapes a real kitaru server's /metrics during a run that 10
Python watchers follow, and every query of the dashboard's server row returns data."""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import kitaru
from _support import ServerProcess, free_port
from kitaru import KitaruClient, checkpoint, flow
from kitaru.runtime._runtime import reset_runtime

try:
    from . import _procs
    from .test_collector_tooling import dashboard_queries
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _procs  # type: ignore[no-redef]
    from test_collector_tooling import dashboard_queries  # type: ignore[no-redef]

pytestmark = [pytest.mark.prometheus, pytest.mark.server, pytest.mark.timeout(180)]

TOKEN = "prom-e2e-token-5c1d"
WATCHERS = 10

gate = threading.Event()


@checkpoint
def busy() -> int:
    n = 0
    while not gate.is_set():
        n += 1
        kitaru.progress(f"tick {n}", n=n)
        time.sleep(0.1)
    return n


@flow
def watched_flow() -> int:
    return busy()


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path / "server.db", free_port(), tmp_path / "server.log", token=TOKEN)
    monkeypatch.setenv("KITARU_SERVER_URL", srv.url)
    monkeypatch.setenv("KITARU_API_TOKEN", TOKEN)
    reset_runtime()
    try:
        yield srv
    finally:
        gate.set()
        reset_runtime()
        srv.stop()


def _values(result: list[dict[str, Any]]) -> list[float]:
    return [float(r["value"][1]) for r in result if math.isfinite(float(r["value"][1]))]


def test_prometheus_scrapes_the_server_while_ten_watchers_follow_a_run(
    tmp_path: Path, server: ServerProcess
) -> None:
    target = server.url.removeprefix("http://")
    prom = _procs.start_prometheus(
        tmp_path / "prometheus",
        [],
        config_text=_procs.kitaru_server_scrape_config(target, TOKEN),
    )
    try:
        gate.clear()
        handle = watched_flow.run()
        received = [0] * WATCHERS
        ended = [False] * WATCHERS

        def follow(i: int) -> None:
            for _ in KitaruClient(server_url=server.url, api_token=TOKEN).executions.events(
                handle.exec_id
            ):
                received[i] += 1
            ended[i] = True

        threads = [threading.Thread(target=follow, args=(i,), daemon=True) for i in range(10)]
        for t in threads:
            t.start()

        def ten_open() -> list[float] | None:
            values = _values(prom.query("sum(kitaru_server_open_streams)"))
            return values if values == [WATCHERS] else None

        _procs.wait_until(ten_open, timeout=30, interval=0.5, what="10 open streams in Prometheus")

        queries = dashboard_queries("server")
        assert len(queries) >= 8
        pending = dict(queries)

        def server_row_has_data() -> bool:
            for title, expr in list(pending.items()):
                if _values(prom.query(expr)):
                    del pending[title]
            return not pending

        try:
            _procs.wait_until(
                server_row_has_data, timeout=60, interval=0.5, what="the server row's queries"
            )
        except AssertionError as exc:
            details = "\n".join(f"  {t}: {e} -> {prom.query(e)}" for t, e in pending.items())
            raise AssertionError(f"{exc}\nqueries without data:\n{details}") from None
        # The row's open-streams query itself reads 10 while the watchers follow the run.
        (open_streams,) = [e for t, e in queries if t == "panel 'Open streams' A"]
        assert _values(prom.query(open_streams)) == [WATCHERS]
        ingested = _values(prom.query("sum(kitaru_server_events_ingested_total)"))
        assert ingested and ingested[0] > 0
        assert _values(prom.query('up{job="kitaru-server"}')) == [1.0]  # scraped with the token

        gate.set()
        assert handle.wait(30) > 0
        for t in threads:
            t.join(30)
        assert all(ended), "a watcher did not see the run end"
        assert min(received) > 0
        _procs.wait_until(
            lambda: _values(prom.query("sum(kitaru_server_open_streams)")) == [0],
            timeout=20,
            interval=0.5,
            what="open streams back to 0",
        )
    finally:
        gate.set()
        prom.process.stop()
