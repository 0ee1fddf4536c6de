"""``scripts/web-screenshot.py`` regenerates the README's web view picture."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from _webkit import ROOT, require_browser

pytestmark = [pytest.mark.browser, pytest.mark.server, pytest.mark.slow]

SCRIPT = ROOT / "scripts" / "web-screenshot.py"


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_script_writes_the_picture_the_readme_shows(tmp_path: Path) -> None:
    require_browser()
    readme = (ROOT / "README.md").read_text()
    assert "](docs/images/web-view.png)" in readme
    assert "scripts/web-screenshot.py" in readme
    assert _png_size(ROOT / "docs" / "images" / "web-view.png")[0] == 1280  # committed

    out = tmp_path / "web-view.png"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KITARU_", "OTEL_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == f"wrote {out}"
    width, height = _png_size(out)
    assert width == 1280 and height >= 800  # the page with its lanes and waterfall
