"""Helpers of the web view tests: producer processes, Chromium, artifacts."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
from httpx_sse import connect_sse

from _support import clean_env, require, require_server_deps
from kitaru import _wire
from kitaru.events._models import ExecutionEvent

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
PRODUCER = Path(__file__).with_name("_producer.py")
CHROMIUM = os.environ.get("KITARU_TEST_CHROMIUM", "/usr/bin/chromium")
# Headless Chromium as root, on a machine without network: no sandbox, no GPU, and none of
# the background fetches that would try to reach the internet.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 45_000  # an upper bound for a page to reach a state, never a timing assertion


def require_browser() -> None:
    """Skip without Chromium and Playwright; fail instead in CI (CI=true)."""
    require_server_deps()
    require(
        f"Chromium ({CHROMIUM})",
        Path(CHROMIUM).exists(),
        "apt-get install -y chromium chromium-driver",
    )
    require(
        "Playwright",
        importlib.util.find_spec("playwright") is not None,
        "pip install playwright (it drives /usr/bin/chromium; never run `playwright install`)",
    )


class Producer:
    """``_producer.py`` as a subprocess: a ``.map()`` of 4 whose steps the test releases."""

    def __init__(self, server_url: str, gates: Path, log: Path, token: str | None = None) -> None:
        gates.mkdir(parents=True, exist_ok=True)
        self.gates = gates
        extra = {"KITARU_SERVER_URL": server_url, "KITARU_TEST_GATES": str(gates)}
        if token:
            extra["KITARU_API_TOKEN"] = token
        self._err = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(PRODUCER)],
            stdout=subprocess.PIPE,
            stderr=self._err,
            env=clean_env(**extra),
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        assert line, "the producer printed no execution ID: " + log.read_text()
        self.exec_id = line

    def release(self, step: int) -> None:
        (self.gates / f"gate-{step}").touch()

    def finish(self, timeout: float = 60) -> str:
        out, _ = self.proc.communicate(timeout=timeout)
        self._err.close()
        return out

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        if not self._err.closed:
            self._err.close()


def read_all_events(url: str, exec_id: str, token: str | None = None) -> list[ExecutionEvent]:
    """Every event of an ended execution, read from its stream from the start."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    events: list[ExecutionEvent] = []
    with (
        httpx.Client(timeout=30, headers=headers) as client,
        connect_sse(client, "GET", url + _wire.path_stream(exec_id)) as source,
    ):
        assert source.response.status_code == 200
        for sse in source.iter_sse():
            if sse.event in ("end", "error"):
                assert sse.event == "end", sse.data
                break
            if sse.event in ("cursor", "gap") or not sse.data:
                continue
            events.append(ExecutionEvent.from_wire(orjson.loads(sse.data), sse.id))
    return events


def launch(pw: Any, profile: Path) -> Any:
    """A headless Chromium context with a fresh profile folder."""
    return pw.chromium.launch_persistent_context(
        str(profile),
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1280, "height": 900},
        device_scale_factor=1,
    )


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    # Finished transitions: the picture shows the state, not a bar halfway through growing.
    page.screenshot(path=str(path), full_page=True, animations="disabled")
    return path


def lanes_state(page: Any) -> list[dict[str, Any]]:
    """What the page shows per lane."""
    result: list[dict[str, Any]] = page.eval_on_selector_all(
        "#lanes .lane",
        """rows => rows.map(r => ({
            correlation_id: r.dataset.correlationId,
            status: r.dataset.status,
            percent: r.dataset.percent,
            events: Number(r.dataset.events),
            message: r.querySelector('.lane-message').textContent,
            name: r.querySelector('.lane-name').textContent,
            width: r.querySelector('.bar-fill').style.width,
        }))""",
    )
    return result


def all_lanes_at(page: Any, count: int, percent: str) -> None:
    """Wait until ``count`` lanes show ``percent`` (a string such as ``"50"``)."""
    page.wait_for_function(
        """([count, percent]) => {
            const rows = [...document.querySelectorAll('#lanes .lane')]
                .filter(r => r.dataset.percent === percent);
            return rows.length >= count;
        }""",
        arg=[count, percent],
        timeout=WAIT_MS,
    )


def connection_is(page: Any, state: str) -> None:
    page.wait_for_function(
        "s => document.getElementById('conn')?.dataset.state === s", arg=state, timeout=WAIT_MS
    )


def iter_lines(path: Path) -> Iterator[str]:
    if path.exists():
        yield from path.read_text(errors="replace").splitlines()
