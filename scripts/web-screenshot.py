"""Regenerate the web view screenshot of the README (docs/images/web-view.png).

Starts a kitaru server in this process (free port on 127.0.0.1, database in a temporary
folder), runs a fan-out flow against it, opens the execution's page in headless Chromium
(through Playwright, on Debian's /usr/bin/chromium or KITARU_TEST_CHROMIUM) while some items
still run, and saves a screenshot of the page.

    .venv/bin/python scripts/web-screenshot.py [--out docs/images/web-view.png]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("KITARU_TEST_CHROMIUM", "/usr/bin/chromium")
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
ITEMS = 12
SLOW = {3, 6, 7, 10}  # still running when the picture is taken


def main() -> int:
    """Start a server, take the picture, stop; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "web-view.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kitaru-screenshot-") as tmp:
        os.environ["KITARU_HOME"] = tmp
        from kitaru.server import serve_in_thread

        with serve_in_thread(db=Path(tmp) / "server.db", lost_after=600) as server:
            os.environ["KITARU_SERVER_URL"] = server.url
            shoot(server.url, args.out)
    print(f"wrote {args.out}")
    return 0


def shoot(url: str, out: Path) -> None:
    """Run the fan-out against ``url`` and save the page of its execution to ``out``."""
    import kitaru
    from kitaru import checkpoint, flow

    release = threading.Event()

    @checkpoint
    def fetch_page(n: int) -> int:
        kitaru.progress(f"page {n}: downloading", percent=0.2)
        time.sleep(0.15 + 0.05 * n)
        kitaru.progress(f"page {n}: parsing", percent=0.6)
        if n in SLOW:
            kitaru.events.flush()
            release.wait(60)
        kitaru.progress(f"page {n}: stored", percent=1.0)
        return n

    @checkpoint
    def summarize(values: list[int]) -> int:
        kitaru.events.publish("report.ready", {"pages": len(values)}, message="report ready")
        return sum(values)

    @flow
    def crawl(items: int) -> int:
        return summarize(list(fetch_page.map(range(1, items + 1), max_concurrency=ITEMS)))

    handle = crawl.run(ITEMS)
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            page = browser.new_page(viewport={"width": 1280, "height": 1000}, device_scale_factor=1)
            page.goto(f"{url}/ui/executions/{handle.exec_id}")
            page.wait_for_function(
                """n => {
                    const rows = [...document.querySelectorAll('#lanes .lane')];
                    return rows.filter(r => r.dataset.status === 'running'
                                         && r.dataset.percent === '60').length === n
                        && rows.filter(r => r.dataset.status === 'returned').length >= 4;
                }""",
                arg=len(SLOW),
                timeout=60_000,
            )
            time.sleep(1.2)  # let the running bars and durations grow visibly
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=True, animations="disabled")
            browser.close()
    finally:
        release.set()
        handle.wait(60)


if __name__ == "__main__":
    sys.exit(main())
