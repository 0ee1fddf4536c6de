"""Fixtures of the web view tests: servers in threads, and headless Chromium pages."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _webkit import ARTIFACTS, launch, require_browser

from _support import thread_servers


def pytest_configure(config: pytest.Config) -> None:
    # Also to be listed in pyproject.toml's markers; registered here so --strict-markers
    # accepts it either way.
    config.addinivalue_line(
        "markers", "browser: drives headless Chromium (Debian's chromium, through Playwright)"
    )


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Start kitaru servers in threads (127.0.0.1, free port); all are stopped afterwards."""
    yield from thread_servers(tmp_path, ping_interval=0.5)


class PageLog:
    """What a page did that a test may assert on: dialogs, console errors, requests."""

    def __init__(self) -> None:
        self.dialogs: list[str] = []
        self.console: list[str] = []
        self.requests: list[str] = []
        self.page_errors: list[str] = []


@pytest.fixture
def browser_page(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Any, PageLog]]:
    """A fresh headless Chromium page; ``window.alert`` and friends are recorded, not shown.

    On failure, a screenshot named after the test is left in ``test-artifacts/``.
    """
    require_browser()
    from playwright.sync_api import sync_playwright

    log = PageLog()
    with sync_playwright() as pw:
        context = launch(pw, tmp_path / "chromium-profile")
        # Any script that got to run would most likely call one of these.
        context.add_init_script(
            """
            window.__alerts = [];
            for (const name of ['alert', 'confirm', 'prompt']) {
                window[name] = (msg) => { window.__alerts.push(name + ':' + String(msg)); };
            }
            """
        )
        page = context.pages[0] if context.pages else context.new_page()

        def on_dialog(dialog: Any) -> None:
            log.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("console", lambda msg: log.console.append(f"{msg.type}: {msg.text}"))
        page.on("pageerror", lambda err: log.page_errors.append(str(err)))
        page.on("request", lambda req: log.requests.append(req.url))
        try:
            yield page, log
        finally:
            rep = getattr(request.node, "rep_call", None)
            if rep is not None and rep.failed:
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / f"failed-{request.node.name}.png"))
            context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    rep = yield
    if rep.when == "call":
        item.rep_call = rep  # type: ignore[attr-defined]
    return rep
